"""DualSR Coarse on a raster file: tiled CoarSR inference written tile by tile.

Peak memory is bounded by the tile size and band count of one tile: tiles are read, super-resolved
and written one at a time into a GeoTIFF that is moved into place only when complete.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from . import partition
from ._torch import require_torch, select_device
from .errors import InputError
from .feedback import Feedback
from .raster import RasterReader, RasterWriter, Region
from .tiling import plan_tiles

DEFAULT_TILE = 128


@dataclass(frozen=True)
class BandPlan:
    """Which input bands are written (`output`) and which go through the network, in what order."""

    output: list[int]
    order: list[int]
    skipped: list[int]


def plan_bands(reader: RasterReader, bands: list[int] | None, feedback: Feedback) -> BandPlan:
    """Bands to write, and the good ones in wavelength order for the network (section 2.2)."""
    output = list(range(reader.count)) if not bands else [int(b) for b in bands]
    bad = [b for b in output if not 0 <= b < reader.count]
    if bad:
        raise InputError(f"BANDS {', '.join(str(b + 1) for b in bad)} do not exist: INPUT has {reader.count} bands.")
    flags = reader.bad_band_list()
    skipped = [b for b in output if flags[b]]
    good = [b for b in output if not flags[b]]
    if not good:
        raise InputError("INPUT has no good bands to super-resolve: every selected band is flagged bad (bbl = 0).")
    wavelengths = reader.wavelengths_um()
    if all(wavelengths[b] is not None for b in good):
        order = sorted(good, key=lambda b: (wavelengths[b], b))
        if order != good:
            feedback.log("Bands are not in increasing wavelength: neighbours follow wavelength, output keeps file order.")
    else:
        order = good
        feedback.log("No wavelength metadata on every band: neighbours follow the file's band order.")
    if skipped:
        feedback.log(f"{len(skipped)} bad bands (bbl = 0) are not used as neighbours and are written as nodata.")
    if len(order) < 5:
        feedback.warn(f"Only {len(order)} usable band(s): CoarSR looks at four neighbour bands, so the nearest "
                      "available bands are repeated as neighbours; results are less reliable than on hyperspectral input.")
    return BandPlan(output=output, order=order, skipped=skipped)


def fill_invalid(cube: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace invalid pixels of each band by the nearest valid pixel of that band, in place.

    The network then never sees a nodata value, so nodata cannot bleed into valid neighbours;
    a band with no valid pixel in the window becomes 0.
    """
    for band in range(cube.shape[0]):
        mask = valid[band]
        if mask.all():
            continue
        if not mask.any():
            cube[band] = 0.0
            continue
        _, (rows, cols) = ndimage.distance_transform_edt(~mask, return_indices=True)
        cube[band] = cube[band][rows, cols]
    return cube


def super_resolve(input_path: str | os.PathLike, output_path: str | os.PathLike, scale: int,
                  weights: str | os.PathLike | None = None, tile_size: int = DEFAULT_TILE,
                  overlap: int | None = None, device: str = "auto", precision: str = "auto",
                  schedule: str = "auto", output_float: bool = False, bands: list[int] | None = None,
                  region: Region | None = None, output_nodata: float | None | str = "input",
                  feedback: Feedback | None = None) -> dict:
    """Run DualSR Coarse on a raster and write the result.

    Args:
        input_path: low-resolution raster (reflectance, any band count >= 1).
        output_path: GeoTIFF to write; pixel size = input pixel size / scale.
        scale: 2, 3, 4 or 8.
        weights: weights file, or None for the bundled weights of `scale`.
        tile_size: core tile side in input pixels.
        overlap: context per side; None uses the network's receptive radius.
        device: 'auto', 'cpu' or 'cuda'.
        precision: 'auto', 'fp32' or 'bf16'.
        schedule: 'auto', 'band' or 'batched' (see inference.py).
        output_float: write float32 reflectance instead of the input's encoding.
        bands: 0-based bands to write (default all).
        region: input window to process (default the whole raster).
        output_nodata: nodata value of the output; "input" keeps the input's.
        feedback: progress, cancel and log callbacks.
    Returns:
        dict with OUTPUT path, device, precision, tile count and seconds.
    """
    feedback = feedback or Feedback()
    require_torch()
    from .inference import CoarseEngine
    from .weights import load_model

    with RasterReader(input_path) as reader:
        torch_device = select_device(device)
        model, header = load_model(weights, scale, torch_device)
        overlap = model.config.receptive_radius if overlap is None else int(overlap)
        if tile_size < 1 or overlap < 0:
            raise InputError(f"TILE_SIZE must be >= 1 and OVERLAP >= 0 (got {tile_size} and {overlap}).")
        engine = CoarseEngine(model, torch_device, precision, schedule)
        plan = plan_bands(reader, bands, feedback)
        table = partition.neighbour_table(plan.order)
        region = region or Region(0, 0, reader.height, reader.width)
        tiles = plan_tiles(region, reader.height, reader.width, tile_size, overlap)
        feedback.log(f"Input {reader.width} x {reader.height} pixels, {reader.count} bands ({reader.scale_source}); "
                     f"output x{scale}: {region.width * scale} x {region.height * scale} pixels, "
                     f"{len(plan.output)} bands.")
        feedback.log(f"Device {torch_device.type}, precision {engine.precision}, schedule {engine.schedule}; "
                     f"{len(tiles)} tiles of {tile_size} px with {overlap} px overlap; "
                     f"weights x{header['scale']} ({header['n_feats']} features, {header['n_blocks']} blocks).")
        position = {band: k for k, band in enumerate(plan.output)}
        started = time.perf_counter()
        with RasterWriter(output_path, reader, scale, region=region, bands=plan.output,
                          output_float=output_float, nodata=output_nodata) as writer:
            for done, tile in enumerate(tiles):
                feedback.check_cancelled()
                cube, valid = reader.read(tile.read)
                fill_invalid(cube, valid)
                result = np.zeros((len(plan.output), tile.read.height * scale, tile.read.width * scale), np.float32)
                result[[position[b] for b in plan.order]] = engine.run(cube, plan.order, table)
                out_valid = np.repeat(np.repeat(valid[plan.output], scale, axis=1), scale, axis=2)
                out_valid[[position[b] for b in plan.skipped]] = False
                r, c = tile.core_offset
                rows = slice(r * scale, (r + tile.core.height) * scale)
                cols = slice(c * scale, (c + tile.core.width) * scale)
                writer.write(result[:, rows, cols], out_valid[:, rows, cols],
                             (tile.core.row0 - region.row0) * scale, (tile.core.col0 - region.col0) * scale)
                _report(feedback, done + 1, len(tiles), started)
        seconds = time.perf_counter() - started
    feedback.log(f"Wrote {output_path} in {seconds:.1f} s.")
    return {"OUTPUT": str(output_path), "DEVICE": torch_device.type, "PRECISION": engine.precision,
            "TILES": len(tiles), "SECONDS": seconds}


def _report(feedback: Feedback, done: int, total: int, started: float):
    elapsed = time.perf_counter() - started
    feedback.progress(done / total)
    if total > 1:
        left = elapsed / done * (total - done)
        feedback.log(f"Tile {done}/{total} done, {elapsed:.1f} s elapsed, about {left:.0f} s left.")
