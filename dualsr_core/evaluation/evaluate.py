"""Evaluate a super-resolved raster against its high-resolution reference (docs/method.md#evaluation).

Both rasters must lie on the same grid. They are compared as reflectance (RasterReader applies
the scale factors). Two kinds of data are left out:

* pixels that are nodata in either raster, in any band that is used;
* bad bands: those flagged bbl = 0 in either raster, and those with no pixel that is valid in
  both rasters.

The metrics are those of `metrics`, with the same definitions. They are computed tile by tile
from accumulators, so memory depends on the tile size and not on the raster size.

* PSNR, per-band PSNR, RMSE and ERGAS come from per-band sums of squared differences and of the
  reference.
* CC comes from per-band sums of x, y, xx, yy and xy in float64. The sums are taken about a
  per-band shift (the first tile's mean) to limit cancellation.
* SAM averages `metrics.sam_map` over the valid pixels.
* SSIM reads every tile with a 5-pixel halo, so each window centred in the tile's core is
  complete. The valid-mode map of the tile then equals that part of the whole-image map, and
  windows that contain an excluded pixel are skipped.
"""
from __future__ import annotations

import csv
import html
import math
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import InputError, MissingDependencyError
from ..feedback import Feedback
from ..io.atomic import atomic_path, prepare_folder, refuse_inputs
from ..io.products import open_raster
from ..io.raster import RasterReader, grids_match
from ..options import EVALUATE_TILE
from ..tools.checks import positive_number
from ..tools.tiling import Region, plan_tiles
from . import metrics

# Context each tile is read with: half the SSIM window.
HALO = metrics.SSIM_WINDOW // 2
METRIC_NAMES = ("PSNR", "SSIM", "SAM", "ERGAS", "RMSE", "CC")
_SAME_GRID_HINT = "evaluate a result against the high-resolution raster it should reproduce (same grid)."


def evaluate(reference_path: str | os.PathLike, result_path: str | os.PathLike, *, data_range: float = 1.0,
             scale: float | None = None, tile_size: int = EVALUATE_TILE, output_csv: str | os.PathLike | None = None,
             output_html: str | os.PathLike | None = None, output_plot: str | os.PathLike | None = None,
             feedback: Feedback | None = None) -> dict:
    """Compare a result raster with a reference raster on the same grid, tile by tile.

    Args:
        reference_path: the high-resolution reference (ground truth).
        result_path: the super-resolved raster, on the reference's grid.
        data_range: peak reflectance for PSNR and SSIM (1.0 for reflectance in 0..1).
        scale: the super-resolution factor for ERGAS; None leaves ERGAS out (reported as None).
        tile_size: side of the square block of pixels read at once (plus a 5-pixel halo).
        output_csv: where to write the metrics table, or None.
        output_html: where to write an HTML report, or None.
        output_plot: where to write a PNG plot of per-band PSNR, or None (needs matplotlib).
        feedback: progress, cancel and log callbacks.

    Returns:
        Dict with PSNR, SSIM, SAM, ERGAS, RMSE and CC (float, or None where undefined).
        PSNR_PER_BAND has one entry per raster band, None for excluded bands. Also DATA_RANGE,
        SCALE, VALID_PIXELS, BANDS_USED (a count), EXCLUDED_BANDS (1-based band numbers), and
        OUTPUT_CSV, OUTPUT_HTML and OUTPUT_PLOT (the written paths, or None).
    """
    feedback = feedback or Feedback()
    data_range = positive_number(data_range, "DATA_RANGE", "the reflectance span, 1.0 for reflectance in 0..1",
                                 InputError)
    if scale is not None:
        scale = positive_number(scale, "SCALE", "the super-resolution factor, e.g. 4", InputError)
    if int(tile_size) < 1:
        raise InputError(f"TILE_SIZE must be at least 1 pixel, got {tile_size}.")
    if output_plot:
        _require_matplotlib()
    writers = [(output_csv, "OUTPUT_CSV", _write_csv), (output_html, "OUTPUT_HTML", _write_html),
               (output_plot, "OUTPUT_PLOT", _write_plot)]
    inputs = [("REFERENCE", reference_path), ("RESULT", result_path)]
    for path, key, _ in writers:
        if path:  # before the long part: a refused destination should not cost a whole evaluation
            refuse_inputs(path, inputs, key)
            prepare_folder(path, key)
    with open_raster(reference_path, "REFERENCE") as reference, open_raster(result_path, "RESULT") as result:
        check_same_grid(reference, result)
        flags = [a or b for a, b in zip(reference.bad_band_list(), result.bad_band_list())]
        bands = [b for b in range(reference.count) if not flags[b]]
        if not bands:
            raise InputError("Every band is flagged bad (bbl = 0) in REFERENCE or RESULT: there is nothing to "
                             "evaluate. Check the band metadata.")
        if len(bands) < reference.count:
            flagged = _band_list(set(range(reference.count)) - set(bands))
            feedback.log(f"Bands flagged bad (bbl = 0) are excluded: {flagged}.")
        stats = _accumulate(reference, result, bands, data_range, int(tile_size), feedback)
        if stats.empty_bands:
            # A band without any valid pixel would exclude every pixel: drop it and read again.
            feedback.warn(f"Bands with no pixel valid in both rasters are excluded: {_band_list(stats.empty_bands)}.")
            bands = [b for b in bands if b not in stats.empty_bands]
            if not bands:
                raise InputError("No band has a pixel that is valid (not nodata) in both REFERENCE and RESULT: "
                                 "check the nodata values of both rasters.")
            stats = _accumulate(reference, result, bands, data_range, int(tile_size), feedback)
        if stats.pixels == 0:
            raise InputError("No pixel is valid (not nodata) in every used band of both REFERENCE and RESULT: "
                             "check the nodata values, or mark all-nodata bands as bad (bbl = 0).")
        report = stats.finish(data_range, scale, reference.count, feedback)
        report["EXCLUDED_BANDS"] = [b + 1 for b in range(reference.count) if b not in bands]
        descriptions = [d or (e or "") for d, e in zip(reference.descriptions, result.descriptions)]
        wavelengths = [w if w is not None else v for w, v in zip(reference.wavelengths_um(), result.wavelengths_um())]
    feedback.log("  ".join(f"{name} {_fmt(report[name])}" for name in METRIC_NAMES))
    feedback.check_cancelled()
    info = dict(reference=str(reference_path), result=str(result_path), descriptions=descriptions,
                wavelengths=wavelengths, plot=str(output_plot) if output_plot else None)
    _write_all([(Path(p), key, w) for p, key, w in writers if p], report, info, inputs, feedback)
    for path, key, _ in writers:
        report[key] = str(path) if path else None
    return report


def check_same_grid(reference: RasterReader, result: RasterReader) -> None:
    """Raise InputError naming the first difference between the two rasters' grids."""
    if (result.width, result.height) != (reference.width, reference.height):
        raise InputError(f"RESULT is {result.width} x {result.height} pixels but REFERENCE is {reference.width} x "
                         f"{reference.height}: {_SAME_GRID_HINT}")
    if result.count != reference.count:
        raise InputError(f"RESULT has {result.count} bands but REFERENCE has {reference.count}: evaluate a result "
                         "against the reference with the same bands (super-resolution keeps every band).")
    if result.crs != reference.crs:
        raise InputError(f"RESULT is in {_crs_name(result.crs)} but REFERENCE is in {_crs_name(reference.crs)}: "
                         f"{_SAME_GRID_HINT}")
    a, b = reference.transform[:6], result.transform[:6]
    if not grids_match(reference.transform, result.transform, reference.width, reference.height):
        raise InputError(f"RESULT's grid ({_grid_text(b)}) differs from REFERENCE's ({_grid_text(a)}): both must cover "
                         f"the same extent with the same pixel size; {_SAME_GRID_HINT}")


@dataclass
class _Sums:
    """Running per-band sums over the valid pixels (float64), and the SAM and SSIM totals."""

    bands: list[int]
    pixels: int = 0
    empty_bands: list[int] = field(default_factory=list)

    def __post_init__(self):
        n = len(self.bands)
        self.band_valid = np.zeros(n, bool)
        self.sse = np.zeros(n)
        self.sum_ref = np.zeros(n)
        self.shift = None  # (shift_x, shift_y) per band, set from the first tile with valid pixels
        self.sx, self.sy, self.sxx, self.syy, self.sxy = (np.zeros(n) for _ in range(5))
        self.min_x, self.min_y = np.full(n, np.inf), np.full(n, np.inf)
        self.max_x, self.max_y = np.full(n, -np.inf), np.full(n, -np.inf)
        self.sam_sum, self.sam_count = 0.0, 0
        self.ssim_sum, self.ssim_count = np.zeros(n), 0
        self.ssim_possible = True

    def add_pixels(self, ref: np.ndarray, res: np.ndarray, mask: np.ndarray):
        """Accumulate the valid pixels of a tile core: ref and res (B,h,w), mask (h,w)."""
        count = int(mask.sum())
        if count == 0:
            return
        self.pixels += count
        if self.shift is None:
            self.shift = (np.array([ref[i][mask].mean(dtype=np.float64) for i in range(len(self.bands))]),
                          np.array([res[i][mask].mean(dtype=np.float64) for i in range(len(self.bands))]))
        for i in range(len(self.bands)):
            x = ref[i][mask].astype(np.float64)
            y = res[i][mask].astype(np.float64)
            diff = x - y
            self.sse[i] += np.dot(diff, diff)
            self.sum_ref[i] += x.sum()
            self.min_x[i], self.max_x[i] = min(self.min_x[i], x.min()), max(self.max_x[i], x.max())
            self.min_y[i], self.max_y[i] = min(self.min_y[i], y.min()), max(self.max_y[i], y.max())
            xs, ys = x - self.shift[0][i], y - self.shift[1][i]
            self.sx[i] += xs.sum()
            self.sy[i] += ys.sum()
            self.sxx[i] += np.dot(xs, xs)
            self.syy[i] += np.dot(ys, ys)
            self.sxy[i] += np.dot(xs, ys)
        angles = metrics.sam_map(ref, res)
        defined = mask & ~np.isnan(angles)
        self.sam_sum += float(angles[defined].sum())
        self.sam_count += int(defined.sum())

    def add_ssim(self, ref: np.ndarray, res: np.ndarray, mask: np.ndarray, data_range: float):
        """Accumulate the SSIM map of a tile read with its halo: ref and res (B,h,w), mask (h,w)."""
        size = metrics.SSIM_WINDOW
        if mask.shape[0] < size or mask.shape[1] < size:
            return  # no window is centred in this tile's core
        eroded = ndimage.binary_erosion(mask, structure=np.ones((size, size), bool))
        usable = eroded[HALO:-HALO, HALO:-HALO]
        count = int(usable.sum())
        if count == 0:
            return
        self.ssim_count += count
        window = metrics.gaussian_window_1d()
        c1 = (metrics.SSIM_K1 * data_range) ** 2
        c2 = (metrics.SSIM_K2 * data_range) ** 2
        for i in range(len(self.bands)):
            x = np.where(mask, ref[i], 0.0).astype(np.float64)
            y = np.where(mask, res[i], 0.0).astype(np.float64)
            self.ssim_sum[i] += metrics._ssim_map(x, y, window, c1, c2)[usable].sum()

    def finish(self, data_range: float, scale: float | None, count: int, feedback: Feedback) -> dict:
        """The metrics from the sums, as metrics.py defines them; None (with a warning) where undefined."""
        n = self.pixels
        mse = self.sse / n
        cube_mse = float(np.mean(mse))
        psnr_bands = metrics._psnr_from_mse(mse, data_range)
        per_band = [None] * count
        for i, band in enumerate(self.bands):
            per_band[band] = float(psnr_bands[i])
        report = {
            "PSNR": float(metrics._psnr_from_mse(np.asarray(cube_mse), data_range)),
            "SSIM": self._ssim(feedback),
            "SAM": self._sam(feedback),
            "ERGAS": self._ergas(mse, scale, feedback),
            "RMSE": math.sqrt(cube_mse),
            "CC": self._cc(feedback),
            "PSNR_PER_BAND": per_band,
            "DATA_RANGE": data_range,
            "SCALE": int(scale) if scale is not None and scale.is_integer() else scale,
            "VALID_PIXELS": n,
            "BANDS_USED": len(self.bands),
        }
        return report

    def _ssim(self, feedback: Feedback) -> float | None:
        if not self.ssim_possible or self.ssim_count == 0:
            feedback.warn(f"SSIM is not computed: no {metrics.SSIM_WINDOW} x {metrics.SSIM_WINDOW} window of pixels "
                          "valid in every used band fits in the rasters.")
            return None
        return float(np.mean(self.ssim_sum / self.ssim_count))

    def _sam(self, feedback: Feedback) -> float | None:
        if self.sam_count:
            return self.sam_sum / self.sam_count
        if not self.sse.any():
            return 0.0  # identical all-zero spectra, as metrics.sam
        feedback.warn("SAM is not computed: no valid pixel has a non-zero spectrum in both rasters.")
        return None

    def _ergas(self, mse: np.ndarray, scale: float | None, feedback: Feedback) -> float | None:
        if scale is None:
            return None
        means = self.sum_ref / self.pixels
        usable = means != 0
        if not usable.any():
            feedback.warn("ERGAS is not computed: every used band of REFERENCE has a zero mean.")
            return None
        return float(100.0 / scale * np.sqrt(np.mean(mse[usable] / means[usable] ** 2)))

    def _cc(self, feedback: Feedback) -> float | None:
        n = self.pixels
        values = []
        for i in range(len(self.bands)):
            if self.max_x[i] == self.min_x[i] or self.max_y[i] == self.min_y[i]:
                continue  # constant band: correlation undefined, as metrics.cc
            cov = self.sxy[i] - self.sx[i] * self.sy[i] / n
            var_x = self.sxx[i] - self.sx[i] ** 2 / n
            var_y = self.syy[i] - self.sy[i] ** 2 / n
            if var_x <= 0 or var_y <= 0:
                continue  # variance lost to rounding: treat as constant
            values.append(np.clip(cov / math.sqrt(var_x * var_y), -1.0, 1.0))
        if not values:
            feedback.warn("CC is not computed: every used band is constant in REFERENCE or RESULT.")
            return None
        return float(np.mean(values))


def _accumulate(reference: RasterReader, result: RasterReader, bands: list[int], data_range: float,
                tile_size: int, feedback: Feedback) -> _Sums:
    """One pass over the rasters: every tile read once (with its SSIM halo) and added to the sums."""
    sums = _Sums(bands)
    height, width = reference.height, reference.width
    sums.ssim_possible = height >= metrics.SSIM_WINDOW and width >= metrics.SSIM_WINDOW
    tiles = plan_tiles(Region(0, 0, height, width), height, width, tile_size, HALO)
    for done, tile in enumerate(tiles):
        feedback.check_cancelled()
        ref, ref_valid = reference.read(tile.read, bands)
        res, res_valid = result.read(tile.read, bands)
        valid = ref_valid & res_valid
        mask = valid.all(axis=0)
        row, col = tile.core_offset
        core = np.s_[row:row + tile.core.height, col:col + tile.core.width]
        sums.band_valid |= valid[:, core[0], core[1]].any(axis=(1, 2))
        sums.add_pixels(ref[:, core[0], core[1]], res[:, core[0], core[1]], mask[core])
        if sums.ssim_possible:
            sums.add_ssim(ref, res, mask, data_range)
        feedback.progress((done + 1) / len(tiles))
    sums.empty_bands = [band for band, ok in zip(bands, sums.band_valid) if not ok]
    return sums


# -- outputs -------------------------------------------------------------------------------------

def _write_all(outputs: list, report: dict, info: dict, inputs: list, feedback: Feedback) -> None:
    """Write every output under a temporary name, then move them all into place; nothing partial is left."""
    with ExitStack() as stack:
        for path, key, writer in outputs:
            writer(stack.enter_context(atomic_path(path, inputs, key, log=feedback.log)), report, info)
            feedback.check_cancelled()
    for path, _key, _writer in outputs:
        feedback.log(f"Wrote {path}")


def _metric_rows(report: dict) -> list[tuple[str, object]]:
    return [(name, report[name]) for name in METRIC_NAMES] + [
        (key, report[key]) for key in ("DATA_RANGE", "SCALE", "VALID_PIXELS", "BANDS_USED")]


def _band_rows(report: dict, info: dict) -> list[tuple[int, str, float | None, float | None]]:
    return [(b + 1, info["descriptions"][b], info["wavelengths"][b], psnr)
            for b, psnr in enumerate(report["PSNR_PER_BAND"])]


def _csv_value(value) -> str:
    """Full-precision text that parses back to the same number; empty for None."""
    if value is None:
        return ""
    return repr(float(value)) if isinstance(value, float) else str(value)


def _write_csv(path: Path, report: dict, info: dict) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["metric", "value"])
        out.writerows((name, _csv_value(value)) for name, value in _metric_rows(report))
        out.writerow([])
        out.writerow(["band", "description", "wavelength_um", "psnr"])
        out.writerows((band, text, _csv_value(wl), _csv_value(psnr)) for band, text, wl, psnr
                      in _band_rows(report, info))


def _write_html(path: Path, report: dict, info: dict) -> None:
    units = {"PSNR": " dB", "SAM": " degrees"}
    rows = "".join(f"<tr><td>{name}</td><td>{_fmt(value)}{units.get(name, '') if value is not None else ''}</td></tr>"
                   for name, value in _metric_rows(report))
    band_rows = "".join(
        f"<tr><td>{band}</td><td>{html.escape(text)}</td><td>{'' if wl is None else f'{wl:g}'}</td>"
        f"<td>{'excluded' if psnr is None else f'{psnr:.4f}'}</td></tr>"
        for band, text, wl, psnr in _band_rows(report, info))
    image = ""
    if info["plot"]:
        src = os.path.relpath(Path(info["plot"]).resolve(), Path(path).resolve().parent)
        image = f'<p><img src="{html.escape(Path(src).as_posix())}" alt="Per-band PSNR"></p>'
    text = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>DualSR evaluation</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:2px 8px;text-align:right}</style></head><body>\n"
        "<h1>DualSR evaluation</h1>\n"
        f"<p>Reference: {html.escape(info['reference'])}<br>Result: {html.escape(info['result'])}</p>\n"
        f"<table><tr><th>Metric</th><th>Value</th></tr>{rows}</table>\n"
        "<p>PSNR and SSIM use the data range above; SAM is the mean spectral angle; ERGAS uses the scale above. "
        "Nodata pixels of either raster and bad bands are excluded.</p>\n"
        f"<h2>Per-band PSNR</h2>{image}\n"
        f"<table><tr><th>Band</th><th>Description</th><th>Wavelength (um)</th><th>PSNR (dB)</th></tr>{band_rows}"
        "</table>\n</body></html>\n")
    Path(path).write_text(text, encoding="utf-8")


def _write_plot(path: Path, report: dict, info: dict) -> None:
    """Per-band PSNR against wavelength (band number without wavelengths), whole-cube PSNR as a line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # No pyplot: its global state is neither thread-safe nor ours to change inside QGIS.
    used = [(b, p) for b, p in enumerate(report["PSNR_PER_BAND"]) if p is not None]
    wavelengths = info["wavelengths"]
    by_wavelength = all(wavelengths[b] is not None for b, _ in used)
    pairs = sorted((wavelengths[b] if by_wavelength else b + 1, p) for b, p in used)
    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([x for x, _ in pairs], [p for _, p in pairs], marker=".", label="Per-band PSNR")
    axes.axhline(report["PSNR"], color="tab:red", linestyle="--", label=f"Whole-cube PSNR {report['PSNR']:.2f} dB")
    axes.set_xlabel("Wavelength (um)" if by_wavelength else "Band")
    axes.set_ylabel("PSNR (dB)")
    axes.set_title(f"PSNR per band (data range {report['DATA_RANGE']:g})")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")


# -- small helpers -------------------------------------------------------------------------------

def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(f"OUTPUT_PLOT needs matplotlib, which is not importable ({exc}). Install "
                                     "matplotlib into the Python that runs QGIS, or leave OUTPUT_PLOT empty.") from exc


def _crs_name(crs) -> str:
    if crs is None:
        return "no CRS"
    return crs.to_string() or "an unnamed CRS"


def _grid_text(t) -> str:
    return f"origin {t[2]:.10g}, {t[5]:.10g}; pixel size {t[0]:.10g} x {t[4]:.10g}"


def _band_list(bands) -> str:
    return ", ".join(str(b + 1) for b in sorted(bands))


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
