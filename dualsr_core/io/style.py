"""True-colour default style written beside a raster output, as `<output stem>.qml`.

QGIS loads `<stem>.qml` beside a file as the layer's default style when it opens the file (and
EnMAP-Box, which opens rasters as QGIS layers, does the same), so a hyperspectral result opens as
true colour instead of bands 1, 2, 3: the good bands nearest 640, 550 and 470 nm, each stretched
from its 2 % to its 98 % cumulative count (QGIS's "cumulative count cut"), in the values QGIS
shows (raw value x GDAL band scale + offset), computed on at most SAMPLE_PIXELS pixels per band
(QGIS's own estimate uses the same sample size) with nodata and NaN left out.

No style is written when the raster has no wavelength metadata, when a colour has no good band
within MAX_DISTANCE_NM of its target, or when two colours would share a band: QGIS's default stays.
A .qml that another program or the user wrote is never replaced; one this module wrote earlier is
replaced, or removed when the new raster gets no style (its bands would not describe the new file).
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DualSRError
from ..feedback import Feedback
from .atomic import atomic_path, remove_quietly, style_path
from .raster import RasterReader

TARGETS_NM = (640.0, 550.0, 470.0)  # red, green, blue
MAX_DISTANCE_NM = 50.0
CUMULATIVE_CUT = (2.0, 98.0)  # percent
SAMPLE_PIXELS = 250_000
MARK = "<!-- dualsr: true-colour default style -->"


@dataclass(frozen=True)
class TrueColour:
    """1-based red, green and blue band numbers and their stretch (in the values QGIS shows)."""

    bands: tuple[int, int, int]
    minimum: tuple[float, float, float]
    maximum: tuple[float, float, float]


def nearest_good_bands(wavelengths_nm: Sequence[float | None], good: Sequence[bool],
                       targets_nm: Sequence[float] = TARGETS_NM,
                       max_distance_nm: float = MAX_DISTANCE_NM) -> list[list[int]]:
    """For each target, the 0-based good bands with a wavelength within `max_distance_nm`, nearest
    first (ties: lower band number first). An empty list where no good band is close enough."""
    candidates = [(b, float(w)) for b, (w, ok) in enumerate(zip(wavelengths_nm, good))
                  if ok and w is not None and math.isfinite(w)]
    ranked = []
    for target in targets_nm:
        close = sorted((abs(w - target), b) for b, w in candidates if abs(w - target) <= max_distance_nm)
        ranked.append([b for _, b in close])
    return ranked


def cumulative_cut(values: np.ndarray, cut: tuple[float, float] = CUMULATIVE_CUT) -> tuple[float, float] | None:
    """(lower, upper) percentiles of the finite values; None when there are none."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    low, high = np.percentile(values, cut)
    return float(low), float(high)


def _sample(dataset, band: int) -> np.ndarray:
    """A band's pixels as QGIS shows them (scale and offset applied), decimated to at most
    SAMPLE_PIXELS pixels, nodata and NaN removed; `band` is 0-based."""
    from rasterio.enums import Resampling

    step = max(1, math.ceil(math.sqrt(dataset.width * dataset.height / SAMPLE_PIXELS)))
    shape = (math.ceil(dataset.height / step), math.ceil(dataset.width / step))
    raw = dataset.read(band + 1, out_shape=shape, resampling=Resampling.nearest).astype(np.float64)
    valid = np.isfinite(raw)
    nodata = dataset.nodatavals[band]
    if nodata is not None and not math.isnan(nodata):
        valid &= raw != nodata
    scale = dataset.scales[band] if dataset.scales[band] not in (None, 0) else 1.0
    offset = dataset.offsets[band] or 0.0
    return raw[valid] * scale + offset


def true_colour(raster: str | os.PathLike) -> TrueColour | None:
    """The true-colour bands and stretch of a raster, or None when it cannot have one (see module)."""
    with RasterReader(raster, "OUTPUT") as reader:
        wavelengths = [None if w is None else w * 1000.0 for w in reader.wavelengths_um()]
        # The rule of io/bands.good_bands (neither flagged bbl = 0 nor empty), with emptiness checked only
        # for the candidates below: surveying every band would read the whole output when bad bands
        # are written as nodata.
        good = [not bad for bad in reader.bad_band_list()]
        ranked = nearest_good_bands(wavelengths, good)
        chosen, stretch = [], []
        for candidates in ranked:
            for band in candidates:
                if band in chosen:
                    continue
                limits = cumulative_cut(_sample(reader.dataset, band))
                if limits is not None:  # a band without a valid pixel is no colour
                    chosen.append(band)
                    stretch.append(limits)
                    break
            else:
                return None
    return TrueColour(tuple(b + 1 for b in chosen), tuple(s[0] for s in stretch), tuple(s[1] for s in stretch))


def _number(value: float) -> str:
    return repr(float(value))


def qml(style: TrueColour) -> str:
    """A QGIS style document (symbology only) with a multiband colour renderer for `style`."""
    red, green, blue = style.bands
    enhancements = "".join(
        f"      <{colour}ContrastEnhancement>\n"
        f"        <minValue>{_number(low)}</minValue>\n"
        f"        <maxValue>{_number(high)}</maxValue>\n"
        f"        <algorithm>StretchToMinimumMaximum</algorithm>\n"
        f"      </{colour}ContrastEnhancement>\n"
        for colour, low, high in zip(("red", "green", "blue"), style.minimum, style.maximum))
    lower, upper = (c / 100.0 for c in CUMULATIVE_CUT)
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        f"{MARK}\n"
        '<qgis version="3.22.0" styleCategories="Symbology">\n'
        "  <pipe>\n"
        f'    <rasterrenderer type="multibandcolor" redBand="{red}" greenBand="{green}" blueBand="{blue}" '
        'alphaBand="-1" opacity="1" nodataColor="">\n'
        "      <rasterTransparency/>\n"
        "      <minMaxOrigin>\n"
        "        <limits>CumulativeCut</limits>\n"
        "        <extent>WholeRaster</extent>\n"
        "        <statAccuracy>Estimated</statAccuracy>\n"
        f"        <cumulativeCutLower>{lower:g}</cumulativeCutLower>\n"
        f"        <cumulativeCutUpper>{upper:g}</cumulativeCutUpper>\n"
        "        <stdDevFactor>2</stdDevFactor>\n"
        "      </minMaxOrigin>\n"
        f"{enhancements}"
        "    </rasterrenderer>\n"
        '    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>\n'
        '    <huesaturation saturation="0" grayscaleMode="0" invertColors="0" colorizeOn="0" colorizeRed="255" '
        'colorizeGreen="128" colorizeBlue="128" colorizeStrength="100"/>\n'
        '    <rasterresampler maxOversampling="2"/>\n'
        "  </pipe>\n"
        "  <blendMode>0</blendMode>\n"
        "</qgis>\n")


def _ours(path: Path) -> bool:
    """True when `path` is a style this module wrote."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return MARK in file.read(4096)
    except OSError:
        return False


def write_default_style(raster: str | os.PathLike, feedback: Feedback | None = None) -> Path | None:
    """Write the true-colour `<stem>.qml` beside a finished raster; returns its path, or None when
    the raster gets no style (a stale style of ours is then removed).

    The raster is complete when this runs, so a style that cannot be written is a warning, not an
    error: the result is there and opens with QGIS's default rendering.
    """
    feedback = feedback or Feedback()
    target = style_path(raster)
    try:
        if target.exists() and not _ours(target):
            feedback.log(f"Kept the existing style {target}: it was not written by DualSR.")
            return None
        style = true_colour(raster)
        if style is None:
            if target.exists():
                remove_quietly(target)
            return None
        with atomic_path(target) as tmp:  # a raster named .qml is kept above: its target exists, not ours
            tmp.write_text(qml(style), encoding="utf-8")
    except (OSError, DualSRError) as exc:
        feedback.warn(f"The true-colour style {target} was not written ({exc}); the result is complete.")
        return None
    feedback.log(f"Wrote {target}: true colour from bands {', '.join(map(str, style.bands))} "
                 f"(2-98 % cumulative count stretch), QGIS's default style for the result.")
    return target


__all__ = ["TrueColour", "cumulative_cut", "nearest_good_bands", "qml", "style_path", "true_colour",
           "write_default_style"]
