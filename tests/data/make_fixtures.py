"""Regenerate the committed graphical models: the test fixture under tests/data and the shipped one in models/.

Run with headless QGIS and the plugin on QGIS_PLUGINPATH (make fixtures). The models are written
with QGIS's own API so that they load in every QGIS >= 3.22.
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from qgis.PyQt.QtCore import QPointF  # noqa: E402
from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsProcessing,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterLayer,
)

HERE = Path(__file__).resolve().parent


def source_param(name):
    return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]


def static(value):
    return [QgsProcessingModelChildParameterSource.fromStaticValue(value)]


def child_output(child_id, output):
    return [QgsProcessingModelChildParameterSource.fromChildOutput(child_id, output)]


def add_child(model, algorithm_id, child_id, sources, outputs):
    child = QgsProcessingModelChildAlgorithm(algorithm_id)
    child.setChildId(child_id)
    child.setDescription(child_id)
    for name, source in sources.items():
        child.addParameterSources(name, source)
    model_outputs = {}
    for output_name, label in outputs.items():
        out = QgsProcessingModelOutput(label)
        out.setChildId(child_id)
        out.setChildOutputName(output_name)
        model_outputs[label] = out
    child.setModelOutputs(model_outputs)
    model.addChildAlgorithm(child)


def add_raster_input(model, name, description):
    model.addModelParameter(QgsProcessingParameterRasterLayer(name, description), QgsProcessingModelParameter(name))


def coarse_then_statistics() -> QgsProcessingModelAlgorithm:
    """DualSR Coarse x2, then QGIS's raster layer statistics of its band 1."""
    model = QgsProcessingModelAlgorithm("Coarse then statistics", "DualSR tests")
    add_raster_input(model, "lowres", "Low-resolution raster")
    model.addModelParameter(QgsProcessingParameterFile("weights", "Weights", extension="pt", optional=True),
                            QgsProcessingModelParameter("weights"))
    add_child(model, "dualsr:coarse", "dualsr:coarse_1",
              {"INPUT": source_param("lowres"), "WEIGHTS": source_param("weights"), "SCALE": static("2"),
               "PRECISION": static("fp32")}, {"OUTPUT": "superresolved"})
    add_child(model, "native:rasterlayerstatistics", "native:rasterlayerstatistics_1",
              {"INPUT": child_output("dualsr:coarse_1", "OUTPUT"), "BAND": static(1)},
              {"OUTPUT_HTML_FILE": "statistics"})
    return model


def with_defaults(child: QgsProcessingModelChildAlgorithm) -> None:
    """Give every parameter the algorithm declares and the child leaves unset its default, as a static
    value: the Modeler reports a mandatory parameter without a source as invalid, even one with a default."""
    algorithm = QgsApplication.processingRegistry().algorithmById(child.algorithmId())
    for definition in algorithm.parameterDefinitions():
        name = definition.name()
        if definition.isDestination() or name in child.parameterSources() or definition.defaultValue() is None:
            continue
        child.addParameterSources(name, static(definition.defaultValue()))


def model_child(algorithm_id: str, child_id: str, description: str, position: QPointF,
                sources: dict) -> QgsProcessingModelChildAlgorithm:
    """A step of a shipped model: placed, described, its parameters taken from `sources` and every other
    one set to its default (`with_defaults`)."""
    child = QgsProcessingModelChildAlgorithm(algorithm_id)
    child.setChildId(child_id)
    child.setDescription(description)
    child.setPosition(position)
    for name, source in sources.items():
        child.addParameterSources(name, source)
    with_defaults(child)
    return child


def coarse_then_fine() -> QgsProcessingModelAlgorithm:
    """The shipped model: DualSR Coarse at x4 and x2, then DualSR Fine on both (the method's two stages).

    Laid out top to bottom (inputs, the two coarse runs side by side, Fine, the result); every child
    sets every parameter; the parameter names sort in the order the run dialog should list them
    (QGIS 3.22 lists a model's inputs by name).
    """
    model = QgsProcessingModelAlgorithm("DualSR coarse then fine (x4)", "Models", "models")
    model.setHelpContent({"ALG_DESC": "The two stages of DualSR as a model you can open and change: DualSR Coarse "
                                      "at x4 and at x2, then DualSR Fine back-projects the x4 result onto the x2 "
                                      "result (the reference). The same as DualSR (coarse + fine) at x4."})
    inputs = (QgsProcessingParameterRasterLayer("input", "Low-resolution hyperspectral raster"),
              QgsProcessingParameterFile("weights_coarse", "Weights for x4 (empty: bundled)", extension="pt",
                                         optional=True),
              QgsProcessingParameterFile("weights_reference", "Weights for x2, the reference (empty: bundled)",
                                         extension="pt", optional=True))
    for definition, x in zip(inputs, (300, 80, 520)):
        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(x, 60))
        model.addModelParameter(definition, component)
    children = (
        ("dualsr:coarse", "coarse_x4", "DualSR Coarse x4", QPointF(120, 200),
         {"INPUT": source_param("input"), "WEIGHTS": source_param("weights_coarse"), "SCALE": static("4"),
          "OUTPUT_FLOAT": static(True)}),
        ("dualsr:coarse", "coarse_x2", "DualSR Coarse x2 (the reference)", QPointF(480, 200),
         {"INPUT": source_param("input"), "WEIGHTS": source_param("weights_reference"), "SCALE": static("2"),
          "OUTPUT_FLOAT": static(True)}),
        ("dualsr:fine", "fine", "DualSR Fine (back-projection)", QPointF(300, 340),
         {"INPUT": source_param("input"), "SCALE": static("4"), "COARSE": child_output("coarse_x4", "OUTPUT"),
          "REFERENCE": child_output("coarse_x2", "OUTPUT")}),
    )
    for algorithm_id, child_id, description, position, sources in children:
        child = model_child(algorithm_id, child_id, description, position, sources)
        if child_id == "fine":
            output = QgsProcessingModelOutput("superresolved", "Super-resolved raster (x4)")
            output.setChildId(child_id)
            output.setChildOutputName("OUTPUT")
            output.setPosition(QPointF(300, 460))
            child.setModelOutputs({"superresolved": output})
        model.addChildAlgorithm(child)
    return model


def import_then_dualsr() -> QgsProcessingModelAlgorithm:
    """The shipped model for downloaded products: Import sensor product, then DualSR (coarse + fine) x2
    on the imported raster; the imported raster is an output too, to look at or to chain further."""
    from dualsr.algorithms.import_product import PRODUCT_FILTER

    model = QgsProcessingModelAlgorithm("Import sensor product then DualSR (x2)", "Models", "models")
    model.setHelpContent({"ALG_DESC": "An EnMAP L2A, DESIS L2A, PRISMA L2D or EMIT L2A product as downloaded, "
                                      "imported as a raster with its wavelengths, bad bands and true-colour style, "
                                      "then super-resolved x2 by DualSR (coarse + fine). Every DualSR tool also "
                                      "reads the product directly; this model keeps the imported raster."})
    inputs = (QgsProcessingParameterFile("input", "Sensor product (as downloaded)", fileFilter=PRODUCT_FILTER),
              QgsProcessingParameterFile("weights", "Weights for x2 (empty: bundled)", extension="pt",
                                         optional=True))
    for definition, x in zip(inputs, (160, 440)):
        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(x, 60))
        model.addModelParameter(definition, component)
    children = (
        ("dualsr:importproduct", "import", "Import sensor product", QPointF(160, 200),
         {"INPUT": source_param("input")}, ("imported", "Imported raster", QPointF(40, 320))),
        ("dualsr:dualsr", "dualsr", "DualSR (coarse + fine) x2", QPointF(300, 340),
         {"INPUT": child_output("import", "OUTPUT"), "WEIGHTS": source_param("weights"), "SCALE": static("2")},
         ("superresolved", "Super-resolved raster (x2)", QPointF(300, 460))),
    )
    for algorithm_id, child_id, description, position, sources, (output_id, label, output_position) in children:
        child = model_child(algorithm_id, child_id, description, position, sources)
        output = QgsProcessingModelOutput(output_id, label)
        output.setChildId(child_id)
        output.setChildOutputName("OUTPUT")
        output.setPosition(output_position)
        child.setModelOutputs({output_id: output})
        model.addChildAlgorithm(child)
    return model


def train_then_coarse() -> QgsProcessingModelAlgorithm:
    """Train x2 weights on given scenes, then DualSR Coarse with them: the weights file chains."""
    model = QgsProcessingModelAlgorithm("Train then coarse", "DualSR tests")
    model.addModelParameter(QgsProcessingParameterMultipleLayers("scenes", "High-resolution scenes",
                                                                 QgsProcessing.TypeRaster),
                            QgsProcessingModelParameter("scenes"))
    add_raster_input(model, "lowres", "Low-resolution raster")
    add_child(model, "dualsr:train", "dualsr:train_1",
              {"INPUT": source_param("scenes"), "SCALE": static("2"), "EPOCHS": static(1), "BATCH_SIZE": static(2),
               "PATCH_SIZE": static(8), "FEATURES": static(8), "MAX_ITERATIONS": static(3),
               "VAL_FRACTION": static(0.3)}, {"OUTPUT_WEIGHTS": "weights"})
    add_child(model, "dualsr:coarse", "dualsr:coarse_1",
              {"INPUT": source_param("lowres"), "SCALE": static("2"), "PRECISION": static("fp32"),
               "WEIGHTS": child_output("dualsr:train_1", "OUTPUT_WEIGHTS")}, {"OUTPUT": "superresolved"})
    return model


def main():
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    from dualsr.provider.provider import DualSRProvider

    provider = DualSRProvider()  # kept: the registry does not keep the Python object alive
    QgsApplication.processingRegistry().addProvider(provider)
    targets = {HERE / "coarse_then_statistics.model3": coarse_then_statistics,
               HERE / "train_then_coarse.model3": train_then_coarse,
               HERE.parent.parent / "models" / "dualsr_coarse_then_fine.model3": coarse_then_fine,
               HERE.parent.parent / "models" / "import_product_then_dualsr.model3": import_then_dualsr}
    for path, build in targets.items():
        path.parent.mkdir(exist_ok=True)
        if not build().toFile(str(path)):
            raise SystemExit(f"could not write {path}")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
