"""Invalid pixels and questionable inputs through processing.run: NaN and infinity are nodata,
a raster without CRS and an EXTENT beyond the raster are warned about."""
import numpy as np
import pytest
import rasterio

from ..conftest import smooth_cube

pytestmark = pytest.mark.qgis


class Recorder:
    """A QgsProcessingFeedback that keeps what the algorithm said."""

    def __new__(cls):
        from qgis.core import QgsProcessingFeedback

        class Recording(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.infos, self.warnings = [], []

            def pushInfo(self, info):  # noqa: N802 (QGIS API name)
                self.infos.append(info)

            def pushWarning(self, warning):  # noqa: N802 (QGIS API name)
                self.warnings.append(warning)

        return Recording()


@pytest.mark.parametrize("algorithm", ["coarse", "dualsr", "degrade"])
def test_nan_and_infinity_are_nodata(qgis_processing, make_raster, tmp_path, tiny_weights, algorithm):
    cube = smooth_cube(8, 20, 20)
    invalid = np.zeros(cube.shape, bool)
    invalid[:, 3, 4] = True
    invalid[2, 10, 10] = invalid[5, 0:2, 0:2] = True
    with_nan = cube.copy()
    with_nan[:, 3, 4] = np.nan
    with_nan[2, 10, 10], with_nan[5, 0:2, 0:2] = np.inf, -np.inf
    with_nodata = np.where(invalid, np.float32(-9999), cube)
    outputs = {}
    feedback = Recorder()
    for name, array, nodata in (("nan", with_nan, None), ("nodata", with_nodata, -9999.0)):
        src = make_raster(array, name=f"{name}.tif", nodata=nodata)
        outputs[name] = tmp_path / f"{name}_{algorithm}.tif"
        options = {"WEIGHTS": str(tiny_weights[2]), "PRECISION": "fp32", "SCHEDULE": "band"} \
            if algorithm != "degrade" else {}
        qgis_processing.run(f"dualsr:{algorithm}", {"INPUT": str(src), "SCALE": "2", "OUTPUT": str(outputs[name]),
                                                     **options}, feedback=feedback)
    with rasterio.open(outputs["nan"]) as a, rasterio.open(outputs["nodata"]) as b:
        assert np.isnan(a.nodata)  # declared, so every reader masks them
        ours, theirs = a.read(), b.read()
    valid = theirs != -9999
    assert np.isfinite(ours[valid]).all() and np.isnan(ours[~valid]).all()
    np.testing.assert_array_equal(ours[valid], theirs[valid])
    assert any("INPUT holds 13 invalid pixel values" in line for line in feedback.infos)


def test_no_crs_and_a_clipped_extent_are_warned_about(qgis_processing, make_raster, tmp_path, tiny_weights):
    feedback = Recorder()
    src = make_raster(smooth_cube(6, 16, 16), crs=None)
    qgis_processing.run("dualsr:coarse", {"INPUT": str(src), "SCALE": "2", "WEIGHTS": str(tiny_weights[2]),
                                          "OUTPUT": str(tmp_path / "a.tif")}, feedback=feedback)
    assert any("INPUT has no coordinate reference system" in w for w in feedback.warnings)
    feedback = Recorder()
    src = make_raster(smooth_cube(6, 16, 16), name="utm.tif")  # 30 m pixels from UTM33_ORIGIN
    with rasterio.open(src) as ds:
        left, bottom, right, top = ds.bounds
    extent = f"{left + 240},{right + 300},{bottom},{top} [EPSG:32633]"
    qgis_processing.run("dualsr:coarse", {"INPUT": str(src), "SCALE": "2", "WEIGHTS": str(tiny_weights[2]),
                                          "EXTENT": extent, "OUTPUT": str(tmp_path / "b.tif")}, feedback=feedback)
    assert any("EXTENT reaches beyond INPUT: it is clipped to the raster, 8 x 16 pixels instead of 18 x 16" in w
               for w in feedback.warnings), feedback.warnings
    with rasterio.open(tmp_path / "b.tif") as ds:
        assert (ds.width, ds.height) == (16, 32)
