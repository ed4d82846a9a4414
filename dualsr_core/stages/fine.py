"""DualSR Fine: enhanced back-projection with a spectral-angle weight (docs/method.md#fine-stage).

U is the coarse result at scale s, V a reference on a grid `ratio` times coarser: the coarse result
at s/2 for x4 and x8 (ratio 2), the low-resolution input itself for x2 and x3, where s/2 is no
CoarSR scale (ratio s, classic back-projection). One iteration, over the good bands:

    D = imresize(U, 1/ratio)            MATLAB antialiased bicubic, mirrored borders
    c = min(1, mean spectral angle between D and V, in degrees)
    U = U + imresize(c * (V - D), ratio)

c is one number per image, so the raster version makes two tiled passes per iteration: one sums
the angles, the next applies the correction. Resizing windows with sliced weight matrices gives
exactly the whole-image result, so the output does not depend on the tile size.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..evaluation import metrics
from ..feedback import Feedback
from ..io import bands as band_rules
from ..io.atomic import prepare_folder, refuse_inputs, work_folder
from ..io.products import open_raster
from ..io.raster import RasterReader, RasterWriter, grids_match, output_driver, scaled_transform
from ..io.style import write_default_style
from ..network.weights import check_weights
from ..options import DEFAULT_TILE
from ..tools import resize
from ..tools.nodata import spread_invalid
from ..tools.tiling import Region, band_groups, window_grid


def back_project(u: np.ndarray, v: np.ndarray, iterations: int = 1) -> tuple[np.ndarray, list[float]]:
    """Enhanced back-projection of whole (L,H,W) and (L,h,w) arrays; returns the result and each c.

    The grid ratio is H/h (an integer). Used on small arrays and as the definition the tiled
    raster version is tested against.
    """
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    result = np.asarray(u, dtype=np.float64)
    weights = []
    for _ in range(iterations):
        down = resize.resize(result, v.shape[-2:], "matlab")
        c = min(1.0, metrics.sam(v, down))
        result = result + resize.resize(c * (v - down), result.shape[-2:], "matlab")
        weights.append(c)
    return result, weights


class _Grids:
    """Resampling matrices between the U grid (H,W) and the V grid (h,w)."""

    def __init__(self, height: int, width: int, ratio: int):
        self.h, self.w = height // ratio, width // ratio
        self.down_y = resize.matlab_weights(height, self.h, 1.0 / ratio)
        self.down_x = resize.matlab_weights(width, self.w, 1.0 / ratio)
        self.up_y = resize.matlab_weights(self.h, height, float(ratio))
        self.up_x = resize.matlab_weights(self.w, width, float(ratio))


def _down(u_window, u_valid, grids: _Grids, rows: tuple, cols: tuple, u_rows: tuple, u_cols: tuple):
    """D(U) on V rows/cols from a U window starting at (u_rows[0], u_cols[0]); and its validity,
    band by band: a pixel of D is valid where its kernel reaches no invalid pixel of that band."""
    wy = grids.down_y[rows[0]:rows[1], u_rows[0]:u_rows[1]]
    wx = grids.down_x[cols[0]:cols[1], u_cols[0]:u_cols[1]]
    down = resize.apply_weights(u_window, wy, wx)
    if u_valid.all():
        return down, np.ones(down.shape, dtype=bool)
    return down, ~spread_invalid(~u_valid, wy, wx)


def _read(reader: RasterReader, rows: tuple, cols: tuple):
    """A window as float64 (0 where invalid) and its validity, band by band."""
    cube, valid = reader.read(Region(rows[0], cols[0], rows[1] - rows[0], cols[1] - cols[0]))
    return cube.astype(np.float64), valid


def good_bands(reader: RasterReader) -> list[int]:
    """Bands that take part in the back-projection: not flagged bad, not empty (as in Coarse)."""
    good = band_rules.good_bands(reader.bad_band_list(), reader.empty_bands())
    if not good:
        raise InputError(f"{reader.parameter} has no good band: every band is flagged bad or empty.")
    return good


def mean_angle(u: RasterReader, v: RasterReader, grids: _Grids, tile: int, good: list[int],
               feedback: Feedback) -> float:
    """Mean spectral angle (degrees) over the good bands between D(U) and V, by tiles of V."""
    total, count = 0.0, 0
    parts = window_grid(Region(0, 0, grids.h, grids.w), max(1, tile // 2))
    for done, part in enumerate(parts):
        feedback.check_cancelled()
        rows, cols = part.rows, part.cols
        u_rows, u_cols = resize.window_rows(grids.down_y, *rows), resize.window_rows(grids.down_x, *cols)
        window, valid = _read(u, u_rows, u_cols)
        down, down_valid = _down(window[good], valid[good], grids, rows, cols, u_rows, u_cols)
        ref, ref_valid = _read(v, rows, cols)
        angles = metrics.sam_map(ref[good], down)
        # An angle needs the whole spectrum: a pixel invalid in any good band of D or V is left out.
        use = (down_valid & ref_valid[good]).all(axis=0) & np.isfinite(angles)
        total += float(angles[use].sum())
        count += int(use.sum())
        feedback.progress((done + 1) / len(parts))
    if count == 0:
        raise InputError("The coarse result and the reference have no valid pixel in common; cannot back-project.")
    return total / count


def correct(u: RasterReader, v: RasterReader, grids: _Grids, c: float, writer: RasterWriter, tile: int,
            good: list[int], feedback: Feedback):
    """Write U + up(c * (V - D(U))) tile by tile (tiles of the U grid); bad bands pass unchanged."""
    tiles = window_grid(Region(0, 0, u.height, u.width), tile)
    for done, part in enumerate(tiles):
        feedback.check_cancelled()
        rows, cols = part.rows, part.cols
        z_rows, z_cols = resize.window_rows(grids.up_y, *rows), resize.window_rows(grids.up_x, *cols)
        need_rows, need_cols = resize.window_rows(grids.down_y, *z_rows), resize.window_rows(grids.down_x, *z_cols)
        u_rows = (min(need_rows[0], rows[0]), max(need_rows[1], rows[1]))
        u_cols = (min(need_cols[0], cols[0]), max(need_cols[1], cols[1]))
        window, valid = _read(u, u_rows, u_cols)
        down, down_valid = _down(window[good], valid[good], grids, z_rows, z_cols, u_rows, u_cols)
        ref, ref_valid = _read(v, z_rows, z_cols)
        # No correction from nodata, band by band: a pixel invalid in one band is nodata in that band only.
        residual = np.where(down_valid & ref_valid[good], ref[good] - down, 0.0)
        update = resize.apply_weights(c * residual, grids.up_y[rows[0]:rows[1], z_rows[0]:z_rows[1]],
                                      grids.up_x[cols[0]:cols[1], z_cols[0]:z_cols[1]])
        inner = (slice(rows[0] - u_rows[0], rows[1] - u_rows[0]), slice(cols[0] - u_cols[0], cols[1] - u_cols[0]))
        corrected = window[(slice(None), *inner)].astype(np.float32)
        corrected[good] += update.astype(np.float32)
        writer.write(corrected, valid[(slice(None), *inner)], rows[0], cols[0])
        feedback.progress((done + 1) / len(tiles))


def _each_warning_once(feedback: Feedback) -> Feedback:
    """`feedback` passing each distinct warning on once: every coarse stage inspects the same input
    (no CRS, an EXTENT beyond it) and would repeat its warnings."""
    given = set()

    def warn(message: str):
        if message not in given:
            given.add(message)
            feedback.warn(message)

    return dataclasses.replace(feedback, warn=warn)


def _check_grid(low: RasterReader, other: RasterReader, factor: int, name: str):
    expected = (low.height * factor, low.width * factor)
    if (other.height, other.width) != expected:
        raise InputError(f"{name} is {other.width} x {other.height} pixels but must be the input grid x{factor}, "
                         f"{expected[1]} x {expected[0]} pixels (same extent, pixel size / {factor}).")
    if other.count != low.count:
        raise InputError(f"{name} has {other.count} bands but INPUT has {low.count}.")
    expected_grid = scaled_transform(low.transform, Region(0, 0, low.height, low.width), factor)
    if not grids_match(expected_grid, other.transform, other.width, other.height):
        raise InputError(f"{name} is not on the input's grid divided by {factor} (origin or pixel size differ).")
    if low.crs != other.crs:
        raise InputError(f"{name} has CRS {other.crs} but INPUT has {low.crs}.")


def refine(input_path: str | os.PathLike, output_path: str | os.PathLike, scale: int,
           coarse_path: str | os.PathLike | None = None, reference_path: str | os.PathLike | None = None,
           weights: str | os.PathLike | None = None, reference_weights: str | os.PathLike | None = None,
           iterations: int = 1, tile_size: int = DEFAULT_TILE, overlap: int | None = None, device: str = "auto",
           precision: str = "auto", schedule: str = "auto", band_chunk: int = 16, output_float: bool = False,
           bands: list[int] | None = None,
           bad_bands: str = "nodata", extent: tuple[float, float, float, float] | None = None,
           extent_crs: str | None = None, driver: str | None = None, feedback: Feedback | None = None) -> dict:
    """DualSR Fine on rasters: back-project the coarse result at `scale` onto a coarser reference.

    Args:
        input_path: the low-resolution raster.
        output_path: the result, on the input grid / scale, in the input's encoding.
        scale: 2, 3, 4 or 8.
        coarse_path: U, the coarse result at `scale`; None runs DualSR Coarse with `weights`.
        reference_path: V for x4 and x8, the coarse result at scale/2; None runs DualSR Coarse at
            scale/2 with `reference_weights` (default: the bundled ones). Ignored for x2 and x3,
            whose reference is the input itself.
        iterations: back-projection iterations (the method uses 1).
        tile_size, overlap, device, precision, schedule, band_chunk, bad_bands: passed to the coarse
            runs; tile_size x
            scale is also the tile side of the back-projection.
        output_float: write float32 reflectance.
        bands, extent, extent_crs: a band subset and an extent, as for coarse.super_resolve; only
            when the coarse results are computed here (given rasters fix their own grid and bands).
        driver: output format, 'GTiff', 'COG' or 'ENVI' (None: from the file extension).
        feedback: progress, cancel and log callbacks.
    Returns:
        dict with OUTPUT, WEIGHTS_C (c of each iteration), SECONDS and PRECISION (of the coarse runs
        made here; None when none was: COARSE given, and at x4 and x8 REFERENCE too).
    """
    feedback = _each_warning_once(feedback or Feedback())
    if iterations < 1:
        raise InputError(f"ITERATIONS must be >= 1, got {iterations}.")
    # V is the coarse result at s/2 where that is a CoarSR scale (x4, x8), else the input (x2, x3).
    ratio = 2 if scale in (4, 8) else scale
    started = time.perf_counter()
    refuse_inputs(output_path, [("INPUT", input_path), ("COARSE", coarse_path), ("REFERENCE", reference_path)],
                  styled=True)
    output_driver(output_path, driver)
    if ratio == scale and reference_path is not None:
        feedback.warn(f"REFERENCE is not used at x{scale}: the reference is the input itself.")
        reference_path = None
    subset = bands is not None or extent is not None
    if subset and (coarse_path is not None or reference_path is not None):
        raise InputError("EXTENT and BANDS apply when Fine computes the coarse results itself; leave COARSE and "
                         "REFERENCE empty, or clip those rasters instead.")
    prepare_folder(output_path, log=feedback.log)
    # Every weights file is checked before the first stage runs, under its own parameter name.
    if coarse_path is None:
        check_weights(weights, scale, "WEIGHTS")
    if ratio != scale and reference_path is None:
        check_weights(reference_weights, scale // 2, "REFERENCE_WEIGHTS", reference_of=scale)
    with open_raster(input_path) as original, work_folder(output_path, "fine") as work:
        # A given raster on the wrong grid is refused before any stage, not after a coarse run.
        if coarse_path is not None:
            with RasterReader(coarse_path, "COARSE") as u:
                _check_grid(original, u, scale, "COARSE")
        if reference_path is not None:
            with open_raster(reference_path, "REFERENCE") as v:
                _check_grid(original, v, scale // ratio, "REFERENCE")
        region = original.region_from_bounds(extent, extent_crs, feedback.warn) if extent is not None else None
        # Each step's share of the bar follows its work: a coarse run its output pixels (scale
        # squared, per input pixel), a back-projection iteration a quarter of the result's (it reads
        # and writes that grid, without a network), the extraction the input's.
        steps = [1] * subset + [scale ** 2] * (coarse_path is None) + \
            [(scale // 2) ** 2] * (ratio != scale and reference_path is None) + [scale ** 2 / 4] * iterations
        bounds = np.cumsum([0.0] + steps) / sum(steps)
        step = 0

        def next_feedback():
            nonlocal step
            step += 1
            return feedback.scaled(bounds[step - 1], bounds[step])

        low_path = Path(input_path)
        if subset:
            # The input window and bands on their own, so the grids of U, V and the input agree.
            low_path = work / "input.tif"
            _extract(original, low_path, region, bands, next_feedback())
        run = dict(tile_size=tile_size, overlap=overlap, device=device, precision=precision, schedule=schedule,
                   band_chunk=band_chunk, output_float=True,
                   output_nodata=math.nan, bands=bands, bad_bands=bad_bands, region=region, default_style=False)
        from .coarse import super_resolve

        precisions = []  # of the coarse runs made here
        if coarse_path is None:
            feedback.log(f"Fine: running DualSR Coarse x{scale} for the coarse x{scale} result.")
            coarse_path = work / "coarse.tif"
            precisions.append(super_resolve(input_path, coarse_path, scale, weights=weights,
                                            feedback=next_feedback(), **run)["PRECISION"])
        if ratio == scale:
            feedback.log(f"Fine: x{scale} has no coarse model at half the scale, so the reference is the "
                         "low-resolution input itself (classic back-projection).")
            reference_path = low_path
        elif reference_path is None:
            feedback.log(f"Fine: running DualSR Coarse x{scale // 2} for the reference (the coarse x{scale // 2} "
                         "result).")
            reference_path = work / "reference.tif"
            precisions.append(super_resolve(input_path, reference_path, scale // 2, weights=reference_weights,
                                            feedback=next_feedback(), **run)["PRECISION"])
        with open_raster(low_path) as low, RasterReader(coarse_path, "COARSE") as u, \
                open_raster(reference_path, "REFERENCE") as v:
            _check_grid(low, u, scale, "COARSE")
            _check_grid(low, v, scale // ratio, "REFERENCE")
            # The same for every iteration: each writes U's grid and passes bad bands through.
            grids = _Grids(u.height, u.width, ratio)
            good = good_bands(u)
        weights_used = []
        tile = max(16, tile_size * scale)
        current = Path(coarse_path)
        for iteration in range(iterations):
            last = iteration == iterations - 1
            target = Path(output_path) if last else work / f"iteration{iteration + 1}.tif"
            with RasterReader(current, "COARSE") as u, open_raster(reference_path, "REFERENCE") as v:
                step_feedback = next_feedback()
                c = min(1.0, mean_angle(u, v, grids, tile, good, step_feedback.scaled(0.0, 0.3)))
                weights_used.append(c)
                feedback.log(f"Fine iteration {iteration + 1}/{iterations}: back-projecting the reference onto the "
                             f"coarse x{scale} result, weighted by the spectral angle between them (c = {c:.4f}).")
                options = dict(output_float=output_float, driver=driver) if last else \
                    dict(output_float=True, nodata=math.nan)
                with RasterWriter(target, original, scale, region=region, bands=bands, **options) as writer:
                    correct(u, v, grids, c, writer, tile, good, step_feedback.scaled(0.3, 1.0))
            current = target
    seconds = time.perf_counter() - started
    feedback.log(f"Wrote {output_path} in {seconds:.1f} s.")
    write_default_style(output_path, feedback)
    return {"OUTPUT": str(output_path), "WEIGHTS_C": weights_used, "SECONDS": seconds,
            "PRECISION": ", ".join(dict.fromkeys(precisions)) or None}


def _extract(reader: RasterReader, path: Path, region: Region | None, bands: list[int] | None, feedback: Feedback):
    """Copy a window and bands of a raster as float32 reflectance (NaN nodata), in square tiles
    (a product in sensor geometry reads the box a tile covers) and groups of bands of at most
    READ_BYTES (a product has hundreds)."""
    region = region or Region(0, 0, reader.height, reader.width)
    bands = list(range(reader.count)) if bands is None else list(bands)
    with RasterWriter(path, reader, 1, region=region, bands=bands, output_float=True, nodata=math.nan) as writer:
        tiles = window_grid(region, 512)
        for done, tile in enumerate(tiles):
            for group in band_groups(len(bands), tile.height * tile.width):
                feedback.check_cancelled()
                cube, valid = reader.read(tile, [bands[k] for k in group])
                writer.write(cube, valid, tile.row0 - region.row0, tile.col0 - region.col0, group)
            feedback.progress((done + 1) / len(tiles))
