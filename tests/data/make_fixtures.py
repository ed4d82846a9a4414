"""Regenerate the committed test fixtures: the graphical models under tests/data.

Run with headless QGIS and the plugin on QGIS_PLUGINPATH (make fixtures). The models are written
with QGIS's own API so that they load in every QGIS >= 3.22.
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFile,
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


def main():
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    from dualsr.provider.provider import DualSRProvider

    QgsApplication.processingRegistry().addProvider(DualSRProvider())
    for name, build in {"coarse_then_statistics": coarse_then_statistics}.items():
        path = HERE / f"{name}.model3"
        if not build().toFile(str(path)):
            raise SystemExit(f"could not write {path}")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
