"""Invalid pixels (nodata, NaN, infinite) before a network sees them, and through a resampling kernel."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import resize


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


def spread_invalid(invalid: np.ndarray, row_weights, col_weights) -> np.ndarray:
    """Pixels of a resize (``row_weights @ X @ col_weights.T`` per plane) whose kernel reaches an invalid pixel.

    A resized pixel is nodata when any input pixel under its kernel is, whatever the weight's sign
    (bicubic taps are negative at the kernel's tails). Slices of the matrices give the same answer
    on a window as on the whole raster, like `resize.apply_weights`.

    Args:
        invalid: (..., H, W) bool, True where the input is nodata.
        row_weights, col_weights: (out_H, H) and (out_W, W) resampling matrices.
    Returns:
        (..., out_H, out_W) bool.
    """
    return resize.apply_weights(invalid.astype(np.float32), abs(row_weights), abs(col_weights)) > 0
