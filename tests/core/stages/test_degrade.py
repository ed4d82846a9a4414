"""Degrade: antialiased bicubic downsampling on the right grid, tiled exactly, nodata propagated."""
import numpy as np
import pytest
import rasterio
from osgeo import gdal
from rasterio.transform import from_origin

from dualsr_core.errors import InputError
from dualsr_core.io.style import MARK
from dualsr_core.stages.degrade import degrade

from ...conftest import smooth_cube
from ...reference import matlab_resize


@pytest.mark.parametrize("tile", [3, 256])
def test_degrade_equals_matlab_imresize_on_the_coarser_grid(make_raster, tmp_path, tile):
    cube = smooth_cube(4, 26, 31, seed=2)
    src = make_raster(cube, transform=from_origin(364095.5, 5809965.25, 10.0, 10.0), nodata=-1.0)
    out = tmp_path / "low.tif"
    result = degrade(src, out, 3, tile_size=tile)
    assert (result["WIDTH"], result["HEIGHT"]) == (10, 8)
    expected = matlab_resize(cube[:, :24, :30].astype(np.float64), (8, 10))
    with rasterio.open(out) as ds:
        assert np.abs(ds.read() - expected).max() < 1e-6
        assert ds.nodata == -1.0
    gt = gdal.Open(str(out)).GetGeoTransform()
    assert gt == (364095.5, 30.0, 0.0, 5809965.25, 0.0, -30.0)
    assert gdal.Open(str(out)).GetProjection() == gdal.Open(str(src)).GetProjection()


def test_the_coarser_pixel_is_the_input_pixel_times_the_scale_to_the_last_bit(make_raster, tmp_path):
    # 1/3 as a float would give 29.7 / (1 / 3) = 89.10000000000001 m, and Coarse x3 then 29.700000000000003.
    src = make_raster(smooth_cube(2, 12, 12), transform=from_origin(364095.5, 5809965.25, 29.7, 30.3))
    low = tmp_path / "low.tif"
    degrade(src, low, 3)
    gt = gdal.Open(str(low)).GetGeoTransform()
    assert (gt[1], gt[5]) == (29.7 * 3, -30.3 * 3) == (89.1, -90.9)


def test_an_output_beside_its_input_may_not_replace_the_inputs_style(make_raster, tmp_path):
    # The input is an earlier result with the style DualSR wrote: a later run would replace that style.
    src = make_raster(smooth_cube(2, 12, 12))
    style = src.with_suffix(".qml")
    style.write_text(f"<qgis>{MARK}</qgis>")
    with pytest.raises(InputError, match="would also write '.*input.qml', a file of INPUT"):
        degrade(src, src.with_suffix(".img"), 2)
    assert style.read_text() == f"<qgis>{MARK}</qgis>"
    assert not src.with_suffix(".img").exists() and not src.with_suffix(".hdr").exists()
    style.unlink()  # and where the input has no style, the output would give it one
    with pytest.raises(InputError, match="would also write '.*input.qml', a file of INPUT"):
        degrade(src, src.with_suffix(".img"), 2)
    assert not style.exists()


def test_nodata_marks_the_pixels_under_its_kernel(make_raster, tmp_path):
    cube = smooth_cube(3, 32, 32, seed=3)
    cube[:, 16, 16] = -1.0
    src = make_raster(cube, nodata=-1.0)
    degrade(src, tmp_path / "low.tif", 4)
    with rasterio.open(tmp_path / "low.tif") as ds:
        data = ds.read()
    assert data[0, 4, 4] == -1.0 and data[0, 3, 3] == -1.0
    assert data[0, 0, 0] != -1.0 and data[0, 7, 7] != -1.0
    assert np.all(data[data != -1.0] > 0)
