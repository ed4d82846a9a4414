"""Tile plans: cores cover every pixel once, and a tiled local "model" equals the untiled one exactly."""
import numpy as np
import pytest
from scipy import ndimage

from dualsr_core.tools.tiling import Region, plan_tiles, window_grid

SCALE = 3


def nearest_model(x: np.ndarray, radius: int) -> np.ndarray:
    """A stand-in network with a receptive radius: a (2r+1)^2 maximum, then nearest-neighbour x SCALE.

    The maximum is exact (no rounding), and mirrored at the edges of whatever window it is given,
    as a network pads its input: so a tile border inside the raster changes the result unless the
    overlap covers the radius.
    """
    if radius:
        x = ndimage.maximum_filter(x, size=2 * radius + 1, mode="mirror")
    return np.repeat(np.repeat(x, SCALE, axis=0), SCALE, axis=1)


def tiled(image: np.ndarray, region: Region, tile: int, overlap: int, radius: int,
          same_size_reads: bool = False) -> np.ndarray:
    """The region's output assembled from the tiles' cores, each run on its read window alone."""
    out = np.full((region.height * SCALE, region.width * SCALE), np.nan)
    for t in plan_tiles(region, *image.shape, tile, overlap, same_size_reads):
        result = nearest_model(image[t.read.row0:t.read.row0 + t.read.height,
                                     t.read.col0:t.read.col0 + t.read.width], radius)
        r, c = t.core_offset
        core = result[r * SCALE:(r + t.core.height) * SCALE, c * SCALE:(c + t.core.width) * SCALE]
        rows = slice((t.core.row0 - region.row0) * SCALE, (t.core.row0 - region.row0 + t.core.height) * SCALE)
        cols = slice((t.core.col0 - region.col0) * SCALE, (t.core.col0 - region.col0 + t.core.width) * SCALE)
        assert np.isnan(out[rows, cols]).all()  # no core written twice
        out[rows, cols] = core
    return out


SHAPES = [(37, 53), (1, 29), (29, 1), (1, 1), (16, 16), (5, 64)]


@pytest.mark.parametrize("same_size_reads", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tile, overlap", [(1, 0), (4, 2), (7, 3), (16, 5), (100, 2)])
def test_cores_cover_every_pixel_of_the_region_once_and_reads_stay_in_the_raster(shape, tile, overlap,
                                                                                  same_size_reads):
    height, width = shape
    for region in (Region(0, 0, height, width), Region(height // 3, width // 4, height - height // 3,
                                                         max(1, width // 2))):
        count = np.zeros(shape, int)
        for t in plan_tiles(region, height, width, tile, overlap, same_size_reads):
            count[t.core.row0:t.core.row0 + t.core.height, t.core.col0:t.core.col0 + t.core.width] += 1
            assert 1 <= t.core.height <= tile and 1 <= t.core.width <= tile
            assert 0 <= t.read.row0 <= t.core.row0 and 0 <= t.read.col0 <= t.core.col0
            assert t.read.row0 + t.read.height <= height and t.read.col0 + t.read.width <= width
            # the overlap on each side, cut only by the raster's edge; with same_size_reads made up on
            # the other side there, so every read is the core plus twice the overlap, or the raster's side
            for read0, read, core0, core, side in ((t.read.row0, t.read.height, t.core.row0, t.core.height, height),
                                                   (t.read.col0, t.read.width, t.core.col0, t.core.width, width)):
                before, after = core0 - read0, read0 + read - core0 - core
                if same_size_reads:
                    assert before >= min(overlap, core0) and after >= min(overlap, side - core0 - core)
                    assert read == min(core + 2 * overlap, side)
                else:
                    assert before == min(overlap, core0) and after == min(overlap, side - core0 - core)
        inside = np.zeros(shape, int)
        inside[region.row0:region.row0 + region.height, region.col0:region.col0 + region.width] = 1
        assert (count == inside).all()


@pytest.mark.parametrize("same_size_reads", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tile", [1, 3, 8, 64])
@pytest.mark.parametrize("radius", [0, 2])
def test_tiled_output_equals_the_untiled_output_exactly(shape, tile, radius, same_size_reads):
    image = np.random.default_rng(shape[0] * 100 + shape[1]).random(shape)
    whole = nearest_model(image, radius)
    assert np.array_equal(tiled(image, Region(0, 0, *shape), tile, radius, radius, same_size_reads), whole)
    # a window of the raster gives exactly that window of the whole run (reads may leave the window)
    region = Region(shape[0] // 3, shape[1] // 4, shape[0] - shape[0] // 3, max(1, shape[1] // 2))
    window = whole[region.row0 * SCALE:(region.row0 + region.height) * SCALE,
                   region.col0 * SCALE:(region.col0 + region.width) * SCALE]
    assert np.array_equal(tiled(image, region, tile, radius + 1, radius, same_size_reads), window)


def test_too_little_overlap_shows_the_tile_borders():
    """The test above can fail: with less overlap than the radius, the mosaic differs."""
    image = np.random.default_rng(1).random((37, 53))
    assert not np.array_equal(tiled(image, Region(0, 0, 37, 53), 8, 1, 2), nearest_model(image, 2))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tile, tile_width", [(1, None), (4, None), (7, 3), (512, 5), (2, 1000)])
def test_window_grid_covers_the_region_once_row_by_row(shape, tile, tile_width):
    region = Region(2, 1, shape[0], shape[1])
    windows = window_grid(region, tile, tile_width)
    count = np.zeros((shape[0] + 2, shape[1] + 1), int)
    for w in windows:
        count[w.row0:w.row0 + w.height, w.col0:w.col0 + w.width] += 1
        assert 1 <= w.height <= tile and 1 <= w.width <= (tile_width or tile)
        assert w.rows == (w.row0, w.row0 + w.height) and w.cols == (w.col0, w.col0 + w.width)
    assert (count[2:, 1:] == 1).all() and count[:2].sum() == 0 and count[:, :1].sum() == 0
    assert [(w.row0, w.col0) for w in windows] == sorted((w.row0, w.col0) for w in windows)
    assert [t.core for t in plan_tiles(region, shape[0] + 2, shape[1] + 1, tile, 0)] == window_grid(region, tile)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        window_grid(Region(0, 0, 4, 4), 0)
    with pytest.raises(ValueError):
        plan_tiles(Region(0, 0, 4, 4), 4, 4, 2, -1)
