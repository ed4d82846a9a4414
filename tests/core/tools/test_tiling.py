"""Tile plans: cores cover every pixel once, a network's reads keep one size, and a tiled local
"model" equals the untiled one exactly."""
import math

import numpy as np
import pytest
from scipy import ndimage

from dualsr_core.tools.tiling import (Region, network_cells, network_read, plan_network_tiles, plan_tiles,
                                     window_grid)

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


def plan(kind: str, region: Region, height: int, width: int, size: int, overlap: int):
    """'cut': cores of `size` with cut reads (Evaluate); 'network': reads of at most `size` (Coarse);
    'fit': the same, an EXTENT that fits a window read as it is."""
    if kind == "cut":
        return plan_tiles(region, height, width, size, overlap)
    return plan_network_tiles(region, height, width, size, overlap, fit_region=kind == "fit")


def tiled(image: np.ndarray, region: Region, tile: int, overlap: int, radius: int, kind: str = "cut") -> np.ndarray:
    """The region's output assembled from the tiles' cores, each run on its read window alone."""
    out = np.full((region.height * SCALE, region.width * SCALE), np.nan)
    for t in plan(kind, region, *image.shape, tile, overlap):
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


def regions(height: int, width: int) -> tuple[Region, Region]:
    """The whole raster and a window of it."""
    return Region(0, 0, height, width), Region(height // 3, width // 4, height - height // 3, max(1, width // 2))


def count_cores(tiles, shape, region: Region) -> None:
    count = np.zeros(shape, int)
    for t in tiles:
        count[t.core.row0:t.core.row0 + t.core.height, t.core.col0:t.core.col0 + t.core.width] += 1
    inside = np.zeros(shape, int)
    inside[region.row0:region.row0 + region.height, region.col0:region.col0 + region.width] = 1
    assert (count == inside).all()


def spans(t):
    """Per axis: (pixels read before the core, after it, read length, core start, core length)."""
    return [(core0 - read0, read0 + read - core0 - core, read, core0, core)
            for read0, read, core0, core in ((t.read.row0, t.read.height, t.core.row0, t.core.height),
                                             (t.read.col0, t.read.width, t.core.col0, t.core.width))]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tile, overlap", [(1, 0), (4, 2), (7, 3), (16, 5), (100, 2)])
def test_cut_reads_are_the_core_and_its_overlap_up_to_the_raster_edge(shape, tile, overlap):
    height, width = shape
    for region in regions(height, width):
        tiles = plan_tiles(region, height, width, tile, overlap)
        count_cores(tiles, shape, region)
        for t in tiles:
            assert 1 <= t.core.height <= tile and 1 <= t.core.width <= tile
            for (before, after, _, core0, core), side in zip(spans(t), shape):
                assert before == min(overlap, core0) and after == min(overlap, side - core0 - core)


@pytest.mark.parametrize("shape", SHAPES + [(300, 41)])
@pytest.mark.parametrize("window, overlap", [(1, 0), (5, 2), (7, 3), (16, 5), (100, 2), (12, 0)])
def test_network_reads_are_one_window_size_and_hold_their_cores_overlap(shape, window, overlap):
    height, width = shape
    for region in regions(height, width):
        tiles = plan_network_tiles(region, height, width, window, overlap)
        fitted = plan_network_tiles(region, height, width, window, overlap, fit_region=True)
        if region == Region(0, 0, height, width):
            assert fitted == tiles  # a whole raster: the same plan
        count_cores(fitted, shape, region)
        for t in fitted:
            for (before, after, read, core0, core), side in zip(spans(t), shape):
                assert read <= window and before >= min(overlap, core0) and after >= min(overlap, side - core0 - core)
        count_cores(tiles, shape, region)
        for t in tiles:
            assert 0 <= t.read.row0 and t.read.row0 + t.read.height <= height
            assert 0 <= t.read.col0 and t.read.col0 + t.read.width <= width
            for (before, after, read, core0, core), side in zip(spans(t), shape):
                assert read == network_read(side, window, overlap) <= window  # one size along each axis
                assert before >= min(overlap, core0) and after >= min(overlap, side - core0 - core)
    # the fewest reads: one where the raster fits, else the edges need no overlap outwards; and of the
    # smallest size with which that many still cover the side
    for side in shape:
        count = 1 if side <= window else math.ceil((side - 2 * overlap) / (window - 2 * overlap))
        assert len(network_cells(side, window, overlap)) == count
        read = network_read(side, window, overlap)
        assert count == 1 or (count * read - 2 * overlap * (count - 1) >= side
                              > count * (read - 1) - 2 * overlap * (count - 1))


def test_the_reads_of_a_side_are_evened_out():
    """512 pixels at window 256 and overlap 16 need three reads; three of 192 cover them as well as
    three of 256 would (a third of the pixels computed) and the memory stays below a 256 read's."""
    assert network_read(512, 256, 16) == 192
    assert network_cells(512, 256, 16) == [(0, 176), (176, 160), (336, 176)]
    assert network_read(2048, 256, 16) == 256 and network_read(200, 256, 16) == 200


def test_a_stripe_of_whole_core_rows_holds_exactly_the_tiles_of_the_whole_raster():
    height, width, window, overlap = 100, 37, 16, 3
    whole = plan_network_tiles(Region(0, 0, height, width), height, width, window, overlap)
    cells = network_cells(height, window, overlap)
    assert cells[0] == (0, 13) and cells[1] == (13, 10) and sum(size for _, size in cells) == height
    stripes = [(cells[0][0], cells[0][1] + cells[1][1]), (cells[2][0], height - cells[2][0])]
    pieces = [t for row0, rows in stripes for t in plan_network_tiles(Region(row0, 0, rows, width), height, width,
                                                                      window, overlap)]
    assert pieces == whole


def test_an_extent_that_fits_a_window_is_one_read_of_itself_and_its_overlap():
    height, width, window, overlap = 1000, 900, 256, 16
    # the raster's cores: rows 0, 210, 404, 598, 792 (reads of 226); columns 0, 233, 450, 667 (249)
    extent = Region(200, 400, 100, 120)  # across the core boundaries at row 210 and column 450
    assert len(plan_network_tiles(extent, height, width, window, overlap)) == 4  # four grid tiles
    (tile,) = plan_network_tiles(extent, height, width, window, overlap, fit_region=True)
    assert tile.core == extent and tile.read == Region(184, 384, 132, 152)
    tall = Region(0, 400, 500, 120)  # too tall for one window: the grid's cores along the rows
    tiles = plan_network_tiles(tall, height, width, window, overlap, fit_region=True)
    assert [(t.core.row0, t.core.height) for t in tiles] == [(0, 210), (210, 194), (404, 96)]
    assert {(t.read.col0, t.read.width) for t in tiles} == {(384, 152)} and {t.read.height for t in tiles} == {226}


def test_a_window_too_small_for_its_overlap_is_refused_only_where_one_read_does_not_hold_the_raster():
    assert network_cells(4, 4, 2) == [(0, 4)]
    with pytest.raises(ValueError, match="no core"):
        network_cells(5, 4, 2)


@pytest.mark.parametrize("kind", ["cut", "network", "fit"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tile", [1, 3, 8, 64])
@pytest.mark.parametrize("radius", [0, 2])
def test_tiled_output_equals_the_untiled_output_exactly(shape, tile, radius, kind):
    if kind != "cut":
        tile += 2 * radius + 2  # a read of `tile` and the overlap on both sides (the cut plan's core is `tile`)
    image = np.random.default_rng(shape[0] * 100 + shape[1]).random(shape)
    whole = nearest_model(image, radius)
    assert np.array_equal(tiled(image, Region(0, 0, *shape), tile, radius, radius, kind), whole)
    # a window of the raster gives exactly that window of the whole run (reads may leave the window)
    region = regions(*shape)[1]
    window = whole[region.row0 * SCALE:(region.row0 + region.height) * SCALE,
                   region.col0 * SCALE:(region.col0 + region.width) * SCALE]
    assert np.array_equal(tiled(image, region, tile, radius + 1, radius, kind), window)


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
