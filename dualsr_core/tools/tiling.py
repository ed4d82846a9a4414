"""Tile plans for tiled processing, in pixel space (no I/O, no torch).

`window_grid` covers a window with windows that do not overlap, row by row: for work that plans
its own reads per window (resampling with sliced matrices, copies). `plan_tiles` adds context: a
tile is a core window whose output is kept plus an overlap on every side that is read but cut off
afterwards, so every kept output pixel saw its whole receptive field. At the raster's edges the read
stops at the edge (no padding), so an edge tile sees exactly what a run on the whole raster sees
there: with an overlap of at least the network's receptive radius the mosaic does not depend on the
tile size.

`plan_network_tiles` plans a network's tiles by the size of their reads, overlap included (a run's
TILE_SIZE), because a read's size is what sets the memory of its forward pass. A raster no larger
than the window is one read of its own size; a larger one is covered by the fewest reads of at most
the window (an edge tile reads as far inwards as it lacks outwards), all of one size, so a run's
peak memory never exceeds that of one window (docs/benchmarks.md#memory: with reads of the core
plus the overlap, Coarse x2 on 2048 x 2048 x 8 peaked at 880 MB in fp32, above every run on
256 x 256, 686-790 MB; with reads of the window, 725 MB).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    """A window of a raster in pixels: rows row0..row0+height-1, columns col0..col0+width-1."""

    row0: int
    col0: int
    height: int
    width: int

    @property
    def rows(self) -> tuple[int, int]:
        """(first row, last row + 1)."""
        return self.row0, self.row0 + self.height

    @property
    def cols(self) -> tuple[int, int]:
        """(first column, last column + 1)."""
        return self.col0, self.col0 + self.width


@dataclass(frozen=True)
class Tile:
    """read: the input window fed to the network; core: the part of it whose output is kept."""

    read: Region
    core: Region

    @property
    def core_offset(self) -> tuple[int, int]:
        """(row, col) of the core inside the read window, in input pixels."""
        return self.core.row0 - self.read.row0, self.core.col0 - self.read.col0


# A copy of a raster window by window (Import sensor product, Fine's extract) reads at most this
# many bytes of float32 reflectance at once: a window of a product with hundreds of bands in groups.
READ_BYTES = 64 * 2**20


def band_groups(count: int, pixels: int) -> list[list[int]]:
    """Bands 0..count-1 in consecutive groups of at most READ_BYTES of float32 over `pixels` pixels
    (at least one band a group)."""
    size = max(1, READ_BYTES // (4 * max(1, pixels)))
    return [list(range(first, min(first + size, count))) for first in range(0, count, size)]


def window_grid(region: Region, tile: int, tile_width: int | None = None) -> list[Region]:
    """Cover `region` with windows of at most tile x tile_width pixels (default square), row by row.

    Windows do not overlap and cover every pixel of `region` once; those on its last row and column
    are smaller where the size does not divide.
    """
    tile_width = tile if tile_width is None else tile_width
    if tile < 1 or tile_width < 1:
        raise ValueError(f"tile sides must be >= 1, got {tile} and {tile_width}")
    row_end, col_end = region.row0 + region.height, region.col0 + region.width
    return [Region(row0, col0, min(tile, row_end - row0), min(tile_width, col_end - col0))
            for row0 in range(region.row0, row_end, tile) for col0 in range(region.col0, col_end, tile_width)]


def plan_tiles(region: Region, raster_height: int, raster_width: int, tile: int, overlap: int) -> list[Tile]:
    """Cover `region` with cores of at most tile x tile pixels, each read with `overlap` context.

    Args:
        region: the window to process (the whole raster or an EXTENT).
        raster_height, raster_width: raster size; reads never leave it, but may leave `region`,
            so a region's output equals the same window of a full run.
        tile: core side in pixels (>= 1).
        overlap: context on each side in pixels (>= 0), cut where it would leave the raster.
    """
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile must be >= 1 and overlap >= 0, got {tile} and {overlap}")
    return [_tile(core, overlap, raster_height, raster_width) for core in window_grid(region, tile)]


def network_cells(side: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """(first, length) of a network's cores along an axis of `side` pixels, for reads of at most
    `window` pixels with `overlap` on each side of a core.

    One core where one read holds the whole axis. Else the fewest reads that cover it, all of one
    size (`network_read`, at most the window) so that a run meets one window shape: the first and
    last cores need no overlap outwards (read - overlap pixels, the last one at most that), the
    others have it on both sides (read - 2 x overlap).

    Raises:
        ValueError: the axis needs more than one read and the window is no more than twice the
            overlap (no room for a core).
    """
    return _network_axis(side, window, overlap)[0]


def network_read(side: int, window: int, overlap: int) -> int:
    """The read size along an axis of `side` pixels: the whole axis where it fits the window, else the
    smallest size with which the fewest reads of at most `window` pixels still cover it (a 512-pixel
    side at window 256 and overlap 16: three reads of 192, not of 256)."""
    return _network_axis(side, window, overlap)[1]


def _network_axis(side: int, window: int, overlap: int) -> tuple[list[tuple[int, int]], int]:
    """`network_cells` and `network_read` of one axis, computed together."""
    if side <= window:
        return [(0, side)], side
    step = window - 2 * overlap
    if step < 1 or overlap < 0:
        raise ValueError(f"a window of {window} pixels leaves no core inside an overlap of {overlap} on each side")
    count = math.ceil((side - 2 * overlap) / step)  # the fewest reads of `window` pixels that cover the side
    read = math.ceil((side + 2 * overlap * (count - 1)) / count)
    firsts = [0] + [read - overlap + k * (read - 2 * overlap) for k in range(count - 1)]
    return [(first, end - first) for first, end in zip(firsts, firsts[1:] + [side])], read


def plan_network_tiles(region: Region, raster_height: int, raster_width: int, window: int, overlap: int,
                       fit_region: bool = False) -> list[Tile]:
    """Cover `region` with tiles whose reads are at most window x window pixels, overlap included.

    The cores are the raster's `network_cells` in both directions cut to the region, so a region of
    whole cells (a stripe) holds exactly the tiles of a run on the whole raster. A read is its core
    with `overlap` on every side, moved inwards where it would leave the raster, and of one size
    along each axis (`network_read`: at most the window). With `fit_region` (an EXTENT), an
    axis along which the region and its overlap fit in one window is one core, read as the region
    and its overlap cut at the raster's edge: a small window of a large raster costs no more than
    it reads.
    """
    rows = _axis_plan(raster_height, region.row0, region.height, window, overlap, fit_region)
    cols = _axis_plan(raster_width, region.col0, region.width, window, overlap, fit_region)
    return [Tile(read=Region(read_row0, read_col0, read_rows, read_cols), core=Region(row0, col0, height, width))
            for row0, height, read_row0, read_rows in rows for col0, width, read_col0, read_cols in cols]


def _axis_plan(side: int, first: int, length: int, window: int, overlap: int, fit_region: bool) -> list[tuple]:
    """(core first, core length, read first, read length) along one axis."""
    read_first, read_length = _read_span(first, length, overlap, side, None)
    if fit_region and read_length <= window:
        return [(first, length, read_first, read_length)]
    cells, read = _network_axis(side, window, overlap)
    return [(start, size, *_read_span(start, size, overlap, side, read)) for start, size in _cut(cells, first, length)]


def _cut(cells: list[tuple[int, int]], first: int, length: int) -> list[tuple[int, int]]:
    """The parts of `cells` inside first..first+length-1."""
    parts = ((max(start, first), min(start + size, first + length)) for start, size in cells)
    return [(start, end - start) for start, end in parts if end > start]


def _tile(core: Region, overlap: int, raster_height: int, raster_width: int) -> Tile:
    row0, rows = _read_span(core.row0, core.height, overlap, raster_height, None)
    col0, cols = _read_span(core.col0, core.width, overlap, raster_width, None)
    return Tile(read=Region(row0, col0, rows, cols), core=core)


def _read_span(start: int, length: int, overlap: int, limit: int, size: int | None) -> tuple[int, int]:
    """(first, count) of the pixels read along one axis for a core of `length` from `start`: with a
    `size`, that many pixels (at most `limit`) holding the core and `overlap` on each side, moved
    inwards at the edges of 0..limit-1; without, the core and `overlap` cut at those edges."""
    if size is None:
        first = max(0, start - overlap)
        return first, min(limit, start + length + overlap) - first
    count = min(size, limit)
    return min(max(0, start - overlap), limit - count), count
