"""Raster reader: the bad-band survey and the block cache sized from the file's layout."""
import numpy as np
import pytest
import rasterio
from osgeo import gdal
from rasterio.transform import from_origin

from dualsr_core.io.raster import GDAL_CACHE_BYTES, RasterReader


def write(path, data, interleave, tiled, nodata=-1.0):
    layout = {"tiled": True, "blockxsize": 64, "blockysize": 64} if tiled else {"tiled": False, "blockysize": 1}
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, nodata=nodata, transform=from_origin(300000, 5800000, 30, 30),
                       interleave=interleave, **layout) as ds:
        ds.write(data)
    return path


@pytest.mark.parametrize("interleave", ["pixel", "band"])
@pytest.mark.parametrize("tiled", [True, False], ids=["tiled", "striped"])
def test_empty_bands_is_exact_wherever_the_valid_pixels_are(tmp_path, interleave, tiled):
    data = np.full((5, 300, 520), -1.0, np.float32)
    data[0] = 1.0                 # valid everywhere
    data[1, 299, 519] = 0.5       # a single valid pixel, in the last window read
    data[3, 150, 10] = 2.0        # a single valid pixel inside
    data[4] = np.nan              # NaN is never valid
    path = write(tmp_path / "survey.tif", data, interleave, tiled)
    with RasterReader(path) as reader:
        assert reader.dataset.interleaving.value.lower() == interleave
        assert reader.empty_bands() == [False, False, True, False, True]


def test_block_cache_holds_every_band_of_a_pixel_interleaved_file(tmp_path):
    data = np.ones((12, 256, 256), np.uint16)
    sizes = {}
    for interleave in ("pixel", "band"):
        with RasterReader(write(tmp_path / f"{interleave}.tif", data, interleave, True, nodata=0)) as reader:
            with reader.block_cache(100, 100, 3):
                sizes[interleave] = gdal.GetCacheMax()
    blocks = 3 * 3  # a 100-pixel window touches at most 3 blocks of 64 per side
    assert sizes["pixel"] == blocks * 64 * 64 * 2 * 12 + GDAL_CACHE_BYTES
    assert sizes["band"] == blocks * 64 * 64 * 2 * 3 + GDAL_CACHE_BYTES


def test_grids_match_within_a_millionth_of_a_pixel_at_every_corner():
    from rasterio.transform import Affine

    from dualsr_core.io.raster import GRID_TOLERANCE, grids_match

    base = from_origin(300000.0, 5800000.0, 7.5, 7.5)
    assert grids_match(base, base, 1000, 800)
    # an origin shift: 0.1 of the tolerance passes, 10 times it fails, in x and in y
    for dx, dy in ((1, 0), (0, 1)):
        for factor, expected in ((0.1, True), (10, False)):
            step = factor * GRID_TOLERANCE * 7.5
            shifted = from_origin(300000.0 + dx * step, 5800000.0 + dy * step, 7.5, 7.5)
            assert grids_match(base, shifted, 1000, 800) is expected
    # a pixel-size error grows across the grid: harmless on 10 pixels, refused on a million
    slightly = from_origin(300000.0, 5800000.0, 7.5 * (1 + 1e-8), 7.5)
    assert grids_match(base, slightly, 10, 10) and not grids_match(base, slightly, 10**6, 10)
    rotated = Affine(7.5, 1e-3, 300000.0, 0.0, -7.5, 5800000.0)
    assert not grids_match(base, rotated, 100, 100)


def test_copy_encoded_assembles_stripes_bit_for_bit_in_chunks_of_rows_and_bands(tmp_path):
    from dualsr_core.io.raster import RasterWriter
    from dualsr_core.tools.tiling import Region

    source = write(tmp_path / "in.tif", np.ones((20, 10, 6), np.uint16), "band", False, nodata=0)
    encoded = np.random.default_rng(3).integers(1, 60000, (20, 20, 12)).astype(np.uint16)  # x2 of 10 x 6
    with RasterReader(source) as reader:
        stripes = []
        for k, (row0, rows) in enumerate(((0, 6), (6, 4))):  # input rows 0-5 and 6-9
            stripe = tmp_path / f"stripe{k}.tif"
            with RasterWriter(stripe, reader, 2, region=Region(row0, 0, rows, 6)) as writer:
                writer.write_encoded(encoded[:, 2 * row0:2 * (row0 + rows)], 0, 0)
            stripes.append((stripe, 2 * row0))
        with RasterWriter(tmp_path / "whole.tif", reader, 2) as writer:
            for stripe, row0 in stripes:  # 3 rows and 7 bands at a time: every chunk has a remainder
                writer.copy_encoded(stripe, row0, rows=3, bands=7)
        with pytest.raises(RuntimeError, match="does not fit"):
            with RasterWriter(tmp_path / "half.tif", reader, 2, bands=list(range(10))) as writer:
                writer.copy_encoded(stripes[0][0], 0)
    with rasterio.open(tmp_path / "whole.tif") as ds:
        np.testing.assert_array_equal(ds.read(), encoded)
    assert not (tmp_path / "half.tif").exists()
