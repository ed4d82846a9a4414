"""Results loaded by QGIS (processing.runAndLoadResults, the dialog's "open output file") are named
after the input and the scale and open in true colour from the .qml written beside them."""
from pathlib import Path

import numpy as np
import pytest
import rasterio

from ..conftest import smooth_cube

pytestmark = pytest.mark.qgis
SAMPLE = Path(__file__).resolve().parents[2] / "sample" / "enmap_potsdam.tif"


def sample_true_colour() -> tuple:
    """1-based bands nearest 640, 550, 470 nm among the sample's good bands, from its metadata."""
    with rasterio.open(SAMPLE) as ds:
        wavelengths = np.array([float(ds.tags(b + 1)["wavelength"]) for b in range(ds.count)])
        wavelengths[[ds.tags(b + 1)["bbl"] == "0" for b in range(ds.count)]] = np.inf
    return tuple(int(np.argmin(abs(wavelengths - t))) + 1 for t in (640, 550, 470))


def loaded_layer(path: str):
    from qgis.core import QgsProject

    layers = [layer for layer in QgsProject.instance().mapLayers().values() if layer.source() == path]
    assert len(layers) == 1, [layer.source() for layer in QgsProject.instance().mapLayers().values()]
    return layers[0]


def rgb(renderer) -> tuple:
    assert renderer.type() == "multibandcolor"
    return renderer.redBand(), renderer.greenBand(), renderer.blueBand()


@pytest.fixture
def project():
    from qgis.core import QgsProject

    yield QgsProject.instance()
    QgsProject.instance().removeAllMapLayers()


VISIBLE = list(range(1, 49))  # 418-667 nm: the network runs on fewer bands, band numbers stay the same


@pytest.mark.parametrize("algorithm, output, name", [
    ("coarse", "TEMPORARY_OUTPUT", "enmap_potsdam x2 (Coarse)"),
    ("fine", "TEMPORARY_OUTPUT", "enmap_potsdam x2 (Fine)"),
    ("dualsr", "file", "enmap_potsdam x2 (DualSR)"),
    ("degrade", "file", "enmap_potsdam x1/2 (Degraded)"),
])
def test_loaded_result_is_named_and_in_true_colour(qgis_processing, project, tmp_path, tiny_weights,
                                                   algorithm, output, name):
    from qgis.core import QgsRasterLayer

    parameters = {"INPUT": str(SAMPLE), "SCALE": "2",
                  "OUTPUT": output if output != "file" else str(tmp_path / "result.tif")}
    if algorithm != "degrade":
        parameters.update(WEIGHTS=str(tiny_weights[2]), PRECISION="fp32", SCHEDULE="band", BANDS=VISIBLE)
    result = qgis_processing.runAndLoadResults(f"dualsr:{algorithm}", parameters)
    layer = loaded_layer(result["OUTPUT"])
    assert layer.name() == name
    expected = sample_true_colour()
    assert expected == (44, 28, 11)
    assert rgb(layer.renderer()) == expected
    # The same style when the file is opened later, as QGIS and EnMAP-Box open it.
    assert Path(result["OUTPUT"]).with_suffix(".qml").is_file()
    again = QgsRasterLayer(result["OUTPUT"], "again")
    assert rgb(again.renderer()) == expected
    with rasterio.open(result["OUTPUT"]) as ds:
        raw = ds.read(expected[0]).astype(np.float64)
        values = raw[raw != ds.nodata] * ds.scales[expected[0] - 1]
    red = again.renderer().redContrastEnhancement()
    np.testing.assert_allclose([red.minimumValue(), red.maximumValue()], np.percentile(values, [2, 98]),
                               rtol=1e-6, atol=1e-7)


def test_without_wavelengths_qgis_default_stays(qgis_processing, project, make_raster, tiny_weights):
    src = make_raster(smooth_cube(5, 12, 12), name="plain.tif")
    result = qgis_processing.runAndLoadResults("dualsr:coarse", {"INPUT": str(src), "SCALE": "2", "PRECISION": "fp32",
                                                                 "SCHEDULE": "band", "WEIGHTS": str(tiny_weights[2]),
                                                                 "OUTPUT": "TEMPORARY_OUTPUT"})
    layer = loaded_layer(result["OUTPUT"])
    assert layer.name() == "plain x2 (Coarse)"
    assert not Path(result["OUTPUT"]).with_suffix(".qml").exists()
    assert rgb(layer.renderer()) == (1, 2, 3)  # QGIS's own default for a multiband raster


def test_processing_run_loads_nothing_and_still_writes_the_style(qgis_processing, project, tmp_path):
    out = tmp_path / "low.tif"
    qgis_processing.run("dualsr:degrade", {"INPUT": str(SAMPLE), "SCALE": "2", "OUTPUT": str(out)})
    assert not project.mapLayers() and out.with_suffix(".qml").is_file()
