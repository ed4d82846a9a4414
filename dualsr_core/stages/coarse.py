"""DualSR Coarse on a raster file: tiled CoarSR inference written tile by tile.

Peak memory is bounded by the tile size and band count of a few tiles: tiles are read ahead and
written behind in background threads through bounded queues (pipeline.py), super-resolved one at
a time, into a file that is moved into place only when complete.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..feedback import Feedback
from ..io.atomic import prepare_folder, refuse_inputs
from ..io.bands import good_bands, wavelength_order
from ..io.products import open_raster
from ..io.raster import RasterReader, RasterWriter, output_driver
from ..io.style import write_default_style
from ..network import partition
from ..network.allocator import outside_heap, release_free_memory, reuse_large_blocks
from ..network.torch_support import require_torch, select_device
from ..options import BAD_BAND_MODES, DEFAULT_TILE
from ..tools.nodata import fill_invalid
from ..tools.pipeline import BackgroundWriter, prefetch
from ..tools.tiling import Region, plan_network_tiles


@dataclass(frozen=True)
class BandPlan:
    """Which input bands are written (`output`) and which go through the network, in what order."""

    output: list[int]
    order: list[int]
    skipped: list[int]


def plan_bands(reader: RasterReader, bands: list[int] | None, feedback: Feedback,
               bad_bands: str = "nodata") -> BandPlan:
    """Bands to write, and the good ones in wavelength order for the network (docs/method.md#band-partition).

    Bad bands are those flagged bbl = 0 and those without any valid pixel; they are never
    neighbours of good bands and are written as nodata or as their bicubic upsampling.
    """
    if bad_bands not in BAD_BAND_MODES:
        raise InputError(f"BAD_BANDS is '{bad_bands}' but must be one of {', '.join(BAD_BAND_MODES)}.")
    output = list(range(reader.count)) if not bands else [int(b) for b in bands]
    missing = [b for b in output if not 0 <= b < reader.count]
    if missing:
        raise InputError(f"BANDS {', '.join(str(b + 1) for b in missing)} do not exist: "
                         f"INPUT has {reader.count} bands.")
    if len(set(output)) != len(output):
        raise InputError("BANDS lists a band more than once.")
    good = good_bands(reader.bad_band_list(), reader.empty_bands(), output)
    skipped = [b for b in output if b not in good]
    if not good:
        raise InputError("INPUT has no good band to super-resolve: every selected band is flagged bad (bbl = 0) "
                         "or has no valid pixel.")
    order = wavelength_order(good, reader.wavelengths_um())
    if order is not None:
        if order != good:
            feedback.log("Bands are not in increasing wavelength: neighbours follow wavelength, "
                         "the output keeps the file order.")
    else:
        order = good
        feedback.log("No wavelength metadata on every band: neighbours follow the file's band order.")
    if skipped:
        how = "as nodata" if bad_bands == "nodata" else "as their bicubic upsampling"
        feedback.log(f"{len(skipped)} bad band(s) (bbl = 0 or no valid pixel: "
                     f"{', '.join(str(b + 1) for b in skipped)}) are never neighbours and are written {how}.")
    if len(order) < 5:
        feedback.warn(f"Only {len(order)} usable band(s): CoarSR looks at four neighbour bands, so the nearest "
                      "available bands are repeated as neighbours; results are less reliable than on "
                      "hyperspectral input.")
    return BandPlan(output=output, order=order, skipped=skipped)


def super_resolve(input_path: str | os.PathLike, output_path: str | os.PathLike, scale: int,
                  weights: str | os.PathLike | None = None, tile_size: int = DEFAULT_TILE,
                  overlap: int | None = None, device: str = "auto", precision: str = "auto",
                  schedule: str = "auto", band_chunk: int = 16, output_float: bool = False,
                  bands: list[int] | None = None,
                  bad_bands: str = "nodata", region: Region | None = None,
                  extent: tuple[float, float, float, float] | None = None, extent_crs: str | None = None,
                  output_nodata: float | None | str = "input", driver: str | None = None,
                  feedback: Feedback | None = None, default_style: bool = True,
                  job_pixels: int | None = None) -> dict:
    """Run DualSR Coarse on a raster and write the result.

    Args:
        input_path: low-resolution raster (reflectance, any band count >= 1).
        output_path: raster to write; pixel size = input pixel size / scale.
        scale: 2, 3, 4 or 8.
        weights: weights file, or None for the bundled weights of `scale`.
        tile_size: side of the largest window the network reads at once, overlap included, in input
            pixels: it bounds the memory of a run whatever the raster's size.
        overlap: context per side; None uses the network's receptive radius.
        device: 'auto', 'cpu' or 'cuda'.
        precision: 'auto', 'fp32', 'bf16' or 'int8' (CPU, needs OpenVINO).
        schedule: 'auto' (measured on the first tile), 'band' or 'batched' (see network/engine.py).
        band_chunk: bands per pass of the batched schedule.
        output_float: write float32 reflectance instead of the input's encoding.
        bands: 0-based bands to write, in this order (default all).
        bad_bands: 'nodata' or 'bicubic': how bad bands (bbl = 0 or no valid pixel) are written.
        region: input window to process (default the whole raster).
        extent: (xmin, ymin, xmax, ymax) to process instead of `region`, snapped outwards to whole
            input pixels; in `extent_crs` (WKT or EPSG code) or else the raster's CRS.
        output_nodata: nodata value of the output; "input" keeps the input's.
        driver: output format, 'GTiff', 'COG' or 'ENVI' (None: from the file extension).
        feedback: progress, cancel and log callbacks.
        default_style: write the true-colour `<output stem>.qml` beside the output (io/style.py).
        job_pixels: input pixels of the whole job when this run is a part of it (a batch stripe), so
            that PRECISION auto chooses as the whole scene would (default: the region's).
    Returns:
        dict with OUTPUT path, device, precision, tile count and seconds.
    """
    feedback = feedback or Feedback()
    # Before anything long (weights, band survey).
    refuse_inputs(output_path, [("INPUT", input_path)], styled=default_style)
    output_driver(output_path, driver)
    prepare_folder(output_path, log=feedback.log)
    require_torch()
    from ..network.engine import CoarseEngine, choose_precision
    from ..network.weights import load_model

    with open_raster(input_path) as reader:
        torch_device = select_device(device)
        model, header = load_model(weights, scale, torch_device)
        overlap = model.config.receptive_radius if overlap is None else int(overlap)
        if tile_size < 1 or overlap < 0:
            raise InputError(f"TILE_SIZE must be >= 1 and OVERLAP >= 0 (got {tile_size} and {overlap}).")
        if tile_size <= 2 * overlap and max(reader.height, reader.width) > tile_size:
            raise InputError(f"TILE_SIZE {tile_size} leaves no room for output inside the overlap of {overlap} "
                             f"pixels on each side: give TILE_SIZE at least {2 * overlap + 1} (the default "
                             f"{DEFAULT_TILE} is faster), or a smaller OVERLAP.")
        if overlap < model.config.receptive_radius:
            feedback.warn(f"OVERLAP {overlap} is below the network's receptive radius "
                          f"({model.config.receptive_radius} pixels): tile borders may show in the result.")
        choose_precision(precision, torch_device)  # a PRECISION this machine cannot run fails before the band survey
        reader.report_problems(feedback)
        plan = plan_bands(reader, bands, feedback, bad_bands)
        # Work in the index space of the bands read (plan.output), not of the file.
        position = {band: k for k, band in enumerate(plan.output)}
        order = [position[b] for b in plan.order]
        skipped = [position[b] for b in plan.skipped]
        table = partition.neighbour_table(order)
        if extent is not None:
            region = reader.region_from_bounds(extent, extent_crs, feedback.warn)
        region = region or Region(0, 0, reader.height, reader.width)
        # An EXTENT reads no more than it needs; a region given by the caller (a batch stripe) keeps
        # the whole raster's tiles, so that stripes add up to a whole run bit for bit.
        tiles = plan_network_tiles(region, reader.height, reader.width, tile_size, overlap,
                                   fit_region=extent is not None)
        engine = CoarseEngine(model, torch_device, precision, schedule, band_chunk,
                              band_pixels=(job_pixels or region.height * region.width) * len(order))
        feedback.log(f"Input {reader.width} x {reader.height} pixels, {reader.count} bands ({reader.scale_source}); "
                     f"processing {region.width} x {region.height} pixels from ({region.col0}, {region.row0}); "
                     f"output x{scale}: {region.width * scale} x {region.height * scale} pixels, "
                     f"{len(plan.output)} bands.")
        feedback.log(f"Device {torch_device.type}, precision {engine.precision} ({engine.precision_reason}), "
                     f"schedule {engine.schedule}; "
                     f"tile plan: {len(tiles)} tile(s), each read as a window of up to {tile_size} x {tile_size} px "
                     f"with {overlap} px of overlap; weights x{header['scale']} ({header['n_feats']} features, "
                     f"{header['n_blocks']} residual block(s) per branch).")
        units = list(_work_units(tiles, order, skipped, table))
        progress = _Progress(feedback, units, len(tiles))

        def read(unit: _Unit):
            cube, valid = reader.read(unit.tile.read, [plan.output[i] for i in unit.read])
            return unit, fill_invalid(cube, valid), valid

        state = None
        release_free_memory()  # the band survey's reads, before the first tile
        largest = max(tiles, key=lambda t: t.read.height * t.read.width).read
        cache = reader.block_cache(largest.height, largest.width, max(len(unit.read) for unit in units))
        with reuse_large_blocks(), cache, \
                RasterWriter(output_path, reader, scale, region=region, bands=plan.output, log=feedback.log,
                             output_float=output_float, nodata=output_nodata, driver=driver) as writer, \
                BackgroundWriter(writer.write_encoded) as background:
            if engine.needs_calibration:
                # Timed before the reader thread starts: its work would land on one candidate's timings.
                measuring_precision = engine.precision == "auto"
                first = next(unit for unit in units if unit.network)
                engine.calibrate(read(first)[1], *_local_indices(first))
                if measuring_precision:
                    feedback.log(f"Precision {engine.precision} ({engine.precision_reason}).")
                if engine.calibration:
                    feedback.log(engine.calibration.capitalize() + ".")
            for unit, cube, valid in prefetch(read(unit) for unit in units):
                feedback.check_cancelled()
                targets, table = _local_indices(unit)
                if unit.network:
                    state = None if unit.first_of_tile else state
                    result, state = engine.run_from(cube, targets, table, state)
                elif bad_bands == "bicubic":
                    result = engine.bicubic(cube[targets])
                else:
                    result = np.zeros((len(targets), cube.shape[1] * scale, cube.shape[2] * scale), np.float32)
                # Only the tile's core is written: cropped and encoded here, so that the write queue
                # holds compact blocks, not whole float tiles, and outside the heap (allocator.py).
                tile = unit.tile
                r, c = tile.core_offset
                core_valid = valid[targets, r:r + tile.core.height, c:c + tile.core.width]
                out_valid = np.repeat(np.repeat(core_valid, scale, axis=1), scale, axis=2)
                if not unit.network and bad_bands == "nodata":
                    out_valid[:] = False
                rows = slice(r * scale, (r + tile.core.height) * scale)
                cols = slice(c * scale, (c + tile.core.width) * scale)
                block = outside_heap(out_valid.shape, writer.encoded_dtype)
                background.submit(writer.encode(result[:, rows, cols], out_valid, unit.bands, block),
                                  (tile.core.row0 - region.row0) * scale, (tile.core.col0 - region.col0) * scale,
                                  unit.bands)
                progress.unit_done(unit)
                if unit.last_of_tile:
                    release_free_memory()  # what the tile freed: the next one's peak starts from the floor
        seconds = progress.elapsed()
    feedback.log(f"Wrote {output_path} in {seconds:.1f} s.")
    if default_style:
        write_default_style(output_path, feedback)
    return {"OUTPUT": str(output_path), "DEVICE": torch_device.type, "PRECISION": engine.precision,
            "TILES": len(tiles), "SECONDS": seconds}


IO_BANDS = 16  # bands of a tile read, run and written together: memory does not grow with band count


@dataclass(frozen=True)
class _Unit:
    """A run of bands of one tile: the bands written (`bands`), those read for them (`read`, with
    their neighbours), and their rows of the neighbour table; `network` is False for bad bands."""

    tile: object
    bands: list[int]
    read: list[int]
    table: np.ndarray
    network: bool
    first_of_tile: bool
    last_of_tile: bool


def _work_units(tiles, order: list[int], skipped: list[int], table: np.ndarray):
    """Per tile: runs of IO_BANDS bands in processing order (the state carries from run to run),
    then runs of the bad bands."""
    for tile in tiles:
        runs = [(order[k:k + IO_BANDS], table[k:k + IO_BANDS], True) for k in range(0, len(order), IO_BANDS)]
        runs += [(skipped[k:k + IO_BANDS], None, False) for k in range(0, len(skipped), IO_BANDS)]
        for index, (bands, rows, network) in enumerate(runs):
            needed = set(bands) if rows is None else set(bands) | set(rows.ravel().tolist())
            yield _Unit(tile, list(bands), sorted(needed), rows, network, index == 0, index == len(runs) - 1)


def _local_indices(unit: _Unit) -> tuple[list[int], np.ndarray | None]:
    """The unit's bands and its neighbour table as indices into its cube, which holds `unit.read`."""
    local = {band: k for k, band in enumerate(unit.read)}
    table = np.vectorize(local.get)(unit.table) if unit.network else None
    return [local[b] for b in unit.bands], table


class _Progress:
    """Progress per run of bands, and from the second tile on an estimate of the whole run.

    Work is weighted by pixels x bands, so small edge tiles and bad bands do not skew the estimate.
    The first tile carries the warm-up and the calibration (several times a tile's time on a CPU), so
    the rate is measured from its end on: an estimate from it ran three times too long.
    """

    def __init__(self, feedback: Feedback, units: list, tiles: int):
        self.feedback = feedback
        self.total = float(sum(self._weight(u) for u in units))
        self.tiles = tiles
        self.tiles_done = 0
        self.work = 0.0
        self.started = time.perf_counter()
        self.first_tile = (0.0, 0.0)  # (seconds, fraction) when the first tile ended
        self.next_log = 0.0

    @staticmethod
    def _weight(unit) -> float:
        return unit.tile.read.height * unit.tile.read.width * len(unit.bands) * (1.0 if unit.network else 0.05)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def unit_done(self, unit):
        self.work += self._weight(unit)
        fraction = self.work / self.total
        self.feedback.progress(fraction)
        if not unit.last_of_tile:
            return
        self.tiles_done += 1
        elapsed = self.elapsed()
        if self.tiles_done == 1:
            self.first_tile = (elapsed, fraction)
            if self.tiles > 1:
                self.feedback.log(f"First tile done in {elapsed:.1f} s, with the warm-up and the calibration; the "
                                  "time estimate follows the next tile.")
            return
        first_seconds, first_fraction = self.first_tile
        left = (elapsed - first_seconds) / (fraction - first_fraction) * (1.0 - fraction)
        if self.tiles_done == 2 and self.tiles > 2:
            self.feedback.log(f"Estimated run time {elapsed + left:.0f} s for {self.tiles} tiles.")
        elif fraction >= self.next_log or self.tiles_done == self.tiles:
            self.feedback.log(f"Tiles {self.tiles_done}/{self.tiles} done, {elapsed:.0f} s elapsed, "
                              f"about {left:.0f} s left.")
        if fraction >= self.next_log:
            self.next_log = fraction + 0.1
