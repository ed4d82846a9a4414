"""Tile plans for tiled inference, in pixel space (no I/O, no torch).

A tile is a core window whose output is kept plus an overlap on every side that is read but cut
off after the network, so every kept output pixel saw its whole receptive field. At the raster's
edges the read window stops at the edge (no padding), so an edge tile sees exactly what a run on
the whole raster sees there: with an overlap of at least the network's receptive radius the
mosaic does not depend on the tile size.
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


@dataclass(frozen=True)
class Tile:
    """read: the input window fed to the network; core: the part of it whose output is kept."""

    read: Region
    core: Region

    @property
    def core_offset(self) -> tuple[int, int]:
        """(row, col) of the core inside the read window, in input pixels."""
        return self.core.row0 - self.read.row0, self.core.col0 - self.read.col0


def plan_tiles(region: Region, raster_height: int, raster_width: int, tile: int, overlap: int) -> list[Tile]:
    """Cover `region` with cores of at most tile x tile pixels, each read with `overlap` context.

    Args:
        region: the input window to process (the whole raster or an EXTENT).
        raster_height, raster_width: raster size; reads never leave it, but may leave `region`,
            so a region's output equals the same window of a full run.
        tile: core side in input pixels (>= 1).
        overlap: context on each side in input pixels (>= 0).
    """
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile must be >= 1 and overlap >= 0, got {tile} and {overlap}")
    tiles = []
    for row0 in range(region.row0, region.row0 + region.height, tile):
        rows = min(tile, region.row0 + region.height - row0)
        for col0 in range(region.col0, region.col0 + region.width, tile):
            cols = min(tile, region.col0 + region.width - col0)
            r0, c0 = max(0, row0 - overlap), max(0, col0 - overlap)
            r1 = min(raster_height, row0 + rows + overlap)
            c1 = min(raster_width, col0 + cols + overlap)
            tiles.append(Tile(read=Region(r0, c0, r1 - r0, c1 - c0), core=Region(row0, col0, rows, cols)))
    return tiles
