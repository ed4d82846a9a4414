"""Degrade: simulate a low-resolution raster from a high-resolution one (docs/method.md#degradation-model).

The degradation is the one the training pairs use: MATLAB's antialiased bicubic `imresize` by
1/scale, after cropping the raster to a multiple of the scale (modcrop). The output grid is the
input grid with the pixel size multiplied by the scale (29.7 m at x3 is 89.1 m, not
89.10000000000001), so Coarse on the output returns to the input's grid. Computed tile by tile
with sliced resampling matrices: the result equals a whole-image resize and memory does not grow
with the raster.
"""
from __future__ import annotations

import os
import time
from fractions import Fraction

import numpy as np

from ..errors import InputError
from ..feedback import Feedback
from ..io.atomic import refuse_inputs
from ..io.products import open_raster
from ..io.raster import RasterWriter
from ..io.style import write_default_style
from ..options import DEGRADE_TILE
from ..tools import resize
from ..tools.nodata import spread_invalid
from ..tools.tiling import Region, window_grid


def degrade(input_path: str | os.PathLike, output_path: str | os.PathLike, scale: int,
            tile_size: int = DEGRADE_TILE, output_float: bool = False, feedback: Feedback | None = None) -> dict:
    """Write imresize(input, 1/scale) with pixel size x scale; returns OUTPUT and the cropped size.

    Args:
        input_path: high-resolution raster.
        output_path: low-resolution GeoTIFF in the input's encoding (or float32 reflectance).
        scale: integer factor >= 2.
        tile_size: output tile side in pixels.
        output_float: write float32 reflectance.
        feedback: progress, cancel and log callbacks.
    """
    feedback = feedback or Feedback()
    if int(scale) != scale or scale < 2:
        raise InputError(f"SCALE must be an integer >= 2, got {scale}.")
    started = time.perf_counter()
    refuse_inputs(output_path, [("INPUT", input_path)], styled=True)
    with open_raster(input_path) as reader:
        height, width = reader.height - reader.height % scale, reader.width - reader.width % scale
        if height == 0 or width == 0:
            raise InputError(f"INPUT is {reader.width} x {reader.height} pixels, smaller than SCALE {scale}.")
        if (height, width) != (reader.height, reader.width):
            feedback.warn(f"INPUT cropped to {width} x {height} pixels (a multiple of {scale}) before degrading.")
        low_h, low_w = height // scale, width // scale
        wy = resize.matlab_weights(height, low_h, 1.0 / scale)
        wx = resize.matlab_weights(width, low_w, 1.0 / scale)
        tiles = window_grid(Region(0, 0, low_h, low_w), tile_size)
        reader.report_problems(feedback)
        with RasterWriter(output_path, reader, Fraction(1, scale), region=Region(0, 0, height, width),
                          output_float=output_float, log=feedback.log) as writer:
            for done, part in enumerate(tiles):
                feedback.check_cancelled()
                rows, cols = part.rows, part.cols
                hr_rows, hr_cols = resize.window_rows(wy, *rows), resize.window_rows(wx, *cols)
                cube, valid = reader.read(Region(hr_rows[0], hr_cols[0], hr_rows[1] - hr_rows[0],
                                                 hr_cols[1] - hr_cols[0]))
                tile_wy = wy[rows[0]:rows[1], hr_rows[0]:hr_rows[1]]
                tile_wx = wx[cols[0]:cols[1], hr_cols[0]:hr_cols[1]]
                low = resize.apply_weights(cube.astype(np.float64), tile_wy, tile_wx)
                # A low-resolution pixel is nodata when any pixel under its kernel is.
                touched = spread_invalid(~valid, tile_wy, tile_wx)
                writer.write(low.astype(np.float32), ~touched, rows[0], cols[0])
                feedback.progress((done + 1) / len(tiles))
    seconds = time.perf_counter() - started
    feedback.log(f"Wrote {output_path}: {low_w} x {low_h} pixels (x1/{scale}) in {seconds:.1f} s.")
    write_default_style(output_path, feedback)
    return {"OUTPUT": str(output_path), "WIDTH": low_w, "HEIGHT": low_h, "SECONDS": seconds}
