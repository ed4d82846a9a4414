"""dualsr:evaluate through processing.run: metrics as outputs, files, and errors."""
import math

import numpy as np
import pytest

from ..conftest import smooth_cube

pytestmark = pytest.mark.qgis


def test_metrics_are_returned_as_outputs(qgis_processing, make_raster, tmp_path):
    ref = smooth_cube(5, 24, 20, seed=1)
    res = (ref + np.random.default_rng(2).normal(0, 0.01, ref.shape)).astype(np.float32)
    result = qgis_processing.run("dualsr:evaluate", {
        "REFERENCE": str(make_raster(ref, "ref.tif")), "RESULT": str(make_raster(res, "res.tif")),
        "DATA_RANGE": 0.5, "SCALE": "4", "TILE_SIZE": 16, "OUTPUT_CSV": str(tmp_path / "m.csv"),
        "OUTPUT_HTML": str(tmp_path / "m.html")})
    mse = np.mean((ref.astype(np.float64) - res) ** 2)
    assert result["RMSE"] == pytest.approx(math.sqrt(mse), rel=1e-9)
    assert result["PSNR"] == pytest.approx(10 * math.log10(0.5**2 / mse), rel=1e-9)
    assert 0 < result["SSIM"] < 1 and result["SAM"] > 0 and result["ERGAS"] > 0 and 0 < result["CC"] < 1
    assert (result["VALID_PIXELS"], result["BANDS_USED"]) == (480, 5)
    assert result["OUTPUT_CSV"] == str(tmp_path / "m.csv") and (tmp_path / "m.csv").is_file()
    assert result["OUTPUT_HTML"] == str(tmp_path / "m.html") and (tmp_path / "m.html").is_file()
    assert "OUTPUT_PLOT" not in result or not result["OUTPUT_PLOT"]
    assert not (tmp_path / "m.png").exists()


def test_mismatched_grid_is_a_processing_exception(qgis_processing, make_raster, tmp_path):
    from qgis.core import QgsProcessingException

    ref = make_raster(smooth_cube(4, 16, 16), "ref.tif")
    res = make_raster(smooth_cube(4, 32, 32), "res.tif")
    with pytest.raises(QgsProcessingException, match="RESULT is 32 x 32 pixels but REFERENCE is 16 x 16"):
        qgis_processing.run("dualsr:evaluate", {"REFERENCE": str(ref), "RESULT": str(res),
                                           "OUTPUT_CSV": str(tmp_path / "m.csv")})
    assert not (tmp_path / "m.csv").exists()


def test_metrics_are_declared_outputs_for_models(qgis_processing):
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().algorithmById("dualsr:evaluate")
    outputs = {o.name() for o in algorithm.outputDefinitions()}
    assert {"PSNR", "SSIM", "SAM", "ERGAS", "RMSE", "CC", "OUTPUT_CSV"} <= outputs
