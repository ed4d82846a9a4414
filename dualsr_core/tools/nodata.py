"""Invalid pixels (nodata, NaN, infinite) before a network or a resampling kernel sees them."""
from __future__ import annotations

import numpy as np
from scipy import ndimage


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
