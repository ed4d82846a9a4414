"""dualsr:train in headless QGIS: a few iterations on a small cube, then the weights feed Coarse in a model."""
from pathlib import Path

import numpy as np
import pytest
import rasterio

from ..conftest import smooth_cube

pytestmark = pytest.mark.qgis
MODEL = Path(__file__).resolve().parents[1] / "data" / "train_then_coarse.model3"


def test_train_writes_weights_log_and_curve(qgis_processing, make_raster, tmp_path):
    scene = make_raster(smooth_cube(6, 40, 40, seed=1), name="scene.tif",
                        wavelengths_nm=[500 + 9 * b for b in range(6)])
    out = tmp_path / "mine.pt"
    result = qgis_processing.run("dualsr:train", {
        "INPUT": [str(scene)], "SCALE": "2", "EPOCHS": 1, "BATCH_SIZE": 2, "PATCH_SIZE": 8, "FEATURES": 8,
        "MAX_ITERATIONS": 3, "VAL_FRACTION": 0.3, "SPECTRAL_WEIGHT": 0.5, "POSITIONS_PER_KILOPIXEL": 2.5,
        "OUTPUT_WEIGHTS": str(out)})
    assert result["OUTPUT_WEIGHTS"] == str(out) and out.is_file()
    assert result["PSNR"] > 10
    assert (tmp_path / "mine.csv").is_file() and (tmp_path / "mine_curve.png").is_file()
    assert (result["CSV"], result["CURVE"]) == (str(tmp_path / "mine.csv"), str(tmp_path / "mine_curve.png"))
    from dualsr_core.network.weights import read

    header, _ = read(out, expected_scale=2)
    assert header["n_feats"] == 8 and header["scenes"] == ["scene"] and header["spectral_weight"] == 0.5
    assert header["patch_sampling"] == "2.5 positions per 1000 trainable pixels"


def test_without_validation_the_last_weights_are_written_and_psnr_is_empty(qgis_processing, make_raster, tmp_path):
    scene = make_raster(smooth_cube(6, 24, 24, seed=2), name="scene.tif")
    out = tmp_path / "last.pt"
    result = qgis_processing.run("dualsr:train", {
        "INPUT": [str(scene)], "SCALE": "2", "EPOCHS": 1, "BATCH_SIZE": 2, "PATCH_SIZE": 8, "FEATURES": 8,
        "MAX_ITERATIONS": 2, "VAL_FRACTION": 0.0, "OUTPUT_WEIGHTS": str(out)})
    assert result["OUTPUT_WEIGHTS"] == str(out) and out.is_file() and result["PSNR"] is None
    from dualsr_core.network.weights import read

    assert read(out, expected_scale=2)[0]["patch_sampling"] == "48 positions per rescaled copy"


def test_no_scenes_is_refused(qgis_processing, tmp_path):
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="INPUT layers or a FOLDER"):
        qgis_processing.run("dualsr:train", {"SCALE": "2", "OUTPUT_WEIGHTS": str(tmp_path / "w.pt")})


def test_model_feeds_trained_weights_into_coarse(qgis_processing, make_raster, tmp_path):
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    scene = make_raster(smooth_cube(6, 40, 40, seed=2), name="scene.tif")
    low = make_raster(smooth_cube(6, 9, 7, seed=3), name="low.tif")
    out = tmp_path / "sr.tif"
    result = qgis_processing.run(model, {"scenes": [str(scene)], "lowres": str(low),
                                         "dualsr:train_1:weights": str(tmp_path / "w.pt"),
                                         "dualsr:coarse_1:superresolved": str(out)})
    assert Path(result["dualsr:train_1:weights"]).is_file()
    with rasterio.open(out) as ds, rasterio.open(low) as src:
        assert (ds.width, ds.height, ds.count) == (14, 18, 6)
        assert ds.transform.a == src.transform.a / 2 and ds.crs == src.crs
        chained = ds.read()
    from dualsr_core.stages.coarse import super_resolve

    for weights, name in ((tmp_path / "w.pt", "trained.tif"), (None, "bundled.tif")):
        super_resolve(low, tmp_path / name, 2, weights=weights, precision="fp32")
    with rasterio.open(tmp_path / "trained.tif") as trained, rasterio.open(tmp_path / "bundled.tif") as bundled:
        np.testing.assert_allclose(chained, trained.read(), atol=1e-5)  # Coarse ran the weights Train wrote
        assert np.abs(chained - bundled.read()).max() > 1e-3
