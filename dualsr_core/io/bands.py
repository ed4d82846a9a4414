"""Good bands and the order the network walks them (docs/method.md#band-partition); no I/O, no torch.

A band is bad when it is flagged `bbl` = 0 or holds no valid pixel; bad bands are never anyone's
neighbour. The good ones are walked in increasing wavelength when every one of them has a
wavelength (ties by band index), else in the given order. Coarse, Fine and the training scenes
all decide this here.
"""
from __future__ import annotations

from collections.abc import Sequence


def good_bands(flagged: Sequence[bool], empty: Sequence[bool], bands: Sequence[int] | None = None) -> list[int]:
    """The bands of `bands` (default: all, in file order) that are neither flagged bad nor empty.

    Args:
        flagged: per file band, True where `bbl` = 0 (`RasterReader.bad_band_list`).
        empty: per file band, True where the band has no valid pixel.
        bands: 0-based file bands to consider, in the order to keep.
    """
    bands = range(len(flagged)) if bands is None else bands
    return [b for b in bands if not (flagged[b] or empty[b])]


def wavelength_order(good: Sequence[int], wavelengths: Sequence[float | None]) -> list[int] | None:
    """`good` in increasing wavelength (ties by band index), or None when one of them has none.

    Args:
        good: 0-based file bands.
        wavelengths: per file band, its centre wavelength (any unit) or None.
    """
    if not all(wavelengths[b] is not None for b in good):
        return None
    return sorted(good, key=lambda b: (wavelengths[b], b))
