"""Sensor products as inputs of the QGIS algorithms, given by their path as downloaded: the one-step
DualSR at x2 on each kind, and a product's result named after its mission, level and date."""
import numpy as np
import pytest
import rasterio

from ..core.io.products.synthetic import product

pytestmark = pytest.mark.qgis


@pytest.fixture
def project():
    from qgis.core import QgsProject

    yield QgsProject.instance()
    QgsProject.instance().removeAllMapLayers()


@pytest.mark.parametrize("kind, name", [("enmap", "ENMAP01 L2A 2022-06-09"), ("desis", "DESIS L2A 2020-07-02"),
                                        ("prisma", "PRISMA L2D 2020-11-07"), ("emit", "EMIT L2A 2022-08-15")])
def test_dualsr_x2_on_each_product(qgis_processing, project, tmp_path, tiny_weights, kind, name):
    from dualsr_core.io.products import open_raster

    source = product(kind, tmp_path / "in")
    out = tmp_path / "result.tif"
    result = qgis_processing.runAndLoadResults("dualsr:dualsr", {
        "INPUT": str(source), "SCALE": "2", "WEIGHTS": str(tiny_weights[2]), "PRECISION": "fp32",
        "SCHEDULE": "band", "OUTPUT": str(out)})
    assert result["OUTPUT"] == str(out)
    layers = [layer for layer in project.mapLayers().values() if layer.source() == str(out)]
    assert [layer.name() for layer in layers] == [f"{name} x2 (DualSR)"]
    with open_raster(source) as reader, rasterio.open(out) as written:
        assert (written.width, written.height, written.count) == (reader.width * 2, reader.height * 2, reader.count)
        a, b, c, d, e, f = reader.transform[:6]
        assert written.transform[:6] == (a / 2, b, c, d, e / 2, f) and written.crs == reader.crs
        for band in range(reader.count):
            tags = written.tags(band + 1)
            assert {key: tags.get(key) for key in ("wavelength", "fwhm", "bbl")} == \
                {key: reader.band_tags(band).get(key) for key in ("wavelength", "fwhm", "bbl")}
        assert written.tags()["SCENE_ID"] == reader.scene_id
        flagged = np.array(reader.bad_band_list())
        if flagged.any():
            assert (written.read(int(np.argmax(flagged)) + 1) == written.nodata).all()
    assert out.with_suffix(".qml").is_file()


def test_a_broken_product_is_refused_before_the_run(qgis_processing, tmp_path):
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException

    source = product("enmap", tmp_path)
    next(source.parent.glob("*SPECTRAL_IMAGE.TIF")).unlink()
    parameters = {"INPUT": str(source), "SCALE": "2", "OUTPUT": str(tmp_path / "o.tif")}
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("dualsr:degrade")
    ok, message = algorithm.checkParameterValues(parameters, QgsProcessingContext())  # the check, not the run
    assert not ok and "INPUT" in message and "looks like an EnMAP L2A product but no " in message, message
    assert message.rstrip(".").endswith("SPECTRAL_IMAGE.TIF lies beside its METADATA.XML"), message
    with pytest.raises(QgsProcessingException, match="looks like an EnMAP L2A product but no .*SPECTRAL_IMAGE.TIF"):
        qgis_processing.run("dualsr:degrade", {"INPUT": str(source), "SCALE": "2", "OUTPUT": str(tmp_path / "o.tif")})
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("kind", ["enmap", "emit"])
def test_import_sensor_product_loads_the_product_named_and_styled(qgis_processing, project, tmp_path, kind):
    from dualsr_core.io.products import open_raster
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().algorithmById("dualsr:importproduct")
    assert (algorithm.groupId(), algorithm.group()) == ("data", "Data")  # a data tool, not Super-resolution
    assert "pick the product's METADATA.XML" in algorithm.shortHelpString()  # the dialog cannot pick a folder
    source = product(kind, tmp_path / "in")
    out = tmp_path / "imported.tif"
    result = qgis_processing.runAndLoadResults("dualsr:importproduct", {"INPUT": str(source), "OUTPUT": str(out)})
    assert result["OUTPUT"] == str(out)
    layers = [layer for layer in project.mapLayers().values() if layer.source() == str(out)]
    name = {"enmap": "ENMAP01 L2A 2022-06-09", "emit": "EMIT L2A 2022-08-15"}[kind]
    assert [layer.name() for layer in layers] == [name]
    assert layers[0].renderer().type() == "multibandcolor" and out.with_suffix(".qml").is_file()
    with open_raster(source) as reader, open_raster(out) as imported:
        assert imported.wavelengths_um() == reader.wavelengths_um()
        assert imported.bad_band_list() == reader.bad_band_list()
        assert imported.transform == reader.transform


def test_the_shipped_model_imports_and_super_resolves(qgis_processing, tmp_path, tiny_weights):
    from dualsr_core.io.products import open_raster

    source = product("enmap", tmp_path / "in")
    result = qgis_processing.run("dualsr:importproductthendualsr", {
        "input": str(source), "weights": str(tiny_weights[2]), "import:imported": str(tmp_path / "imported.tif"),
        "dualsr:superresolved": str(tmp_path / "x2.tif")})
    assert result["import:imported"] == str(tmp_path / "imported.tif")
    with open_raster(source) as reader, rasterio.open(tmp_path / "x2.tif") as written:
        assert (written.width, written.height) == (reader.width * 2, reader.height * 2)
        assert [written.tags(b + 1)["bbl"] for b in range(reader.count)] == \
            [reader.band_tags(b)["bbl"] for b in range(reader.count)]
