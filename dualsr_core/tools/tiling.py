"""Tile plans for tiled processing, in pixel space (no I/O, no torch).

`window_grid` covers a window with windows that do not overlap, row by row: for work that plans
its own reads per window (resampling with sliced matrices, copies). `plan_tiles` adds context for
a network: a tile is a core window whose output is kept plus an overlap on every side that is read
but cut off after the network, so every kept output pixel saw its whole receptive field. At the
raster's edges the read window stops at the edge (no padding), so an edge tile sees exactly what a
run on the whole raster sees there: with an overlap of at least the network's receptive radius the
mosaic does not depend on the tile size. For a network (`same_size_reads`) an edge tile reads as far
inwards as it lacks outwards, so every tile of a full-size core reads the same window size: with
edge tiles of other sizes the heap kept blocks of each size (Coarse x2 in fp32 on 2048 x 2048 x 8:
peak RSS 1048 MB, with one window size 880 MB; a 256 x 256 raster, one tile, 690-770 MB).
"""
from __future__ import annotations

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


def plan_tiles(region: Region, raster_height: int, raster_width: int, tile: int, overlap: int,
               same_size_reads: bool = False) -> list[Tile]:
    """Cover `region` with cores of at most tile x tile pixels, each read with `overlap` context.

    Args:
        region: the input window to process (the whole raster or an EXTENT).
        raster_height, raster_width: raster size; reads never leave it, but may leave `region`,
            so a region's output equals the same window of a full run.
        tile: core side in input pixels (>= 1).
        overlap: context on each side in input pixels (>= 0).
        same_size_reads: move a read that would leave the raster inwards instead of cutting it, so
            that it keeps the size core + 2 x overlap (at most the raster's); otherwise every read is
            its core and `overlap` cut at the raster's edge (Evaluate's SSIM windows, which count
            every window of a read once).
    """
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile must be >= 1 and overlap >= 0, got {tile} and {overlap}")
    tiles = []
    for core in window_grid(region, tile):
        r0, rows = _read_span(core.row0, core.height, overlap, raster_height, same_size_reads)
        c0, cols = _read_span(core.col0, core.width, overlap, raster_width, same_size_reads)
        tiles.append(Tile(read=Region(r0, c0, rows, cols), core=core))
    return tiles


def _read_span(start: int, length: int, overlap: int, limit: int, same_size: bool) -> tuple[int, int]:
    """(first, count) of the pixels read along one axis for a core of `length` from `start`: the core
    and `overlap` on each side, moved inwards (`same_size`) or cut where it would leave 0..limit-1."""
    if not same_size:
        first = max(0, start - overlap)
        return first, min(limit, start + length + overlap) - first
    count = min(length + 2 * overlap, limit)
    return min(max(0, start - overlap), limit - count), count
