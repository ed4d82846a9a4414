"""Independent reference computations the tests compare the project's code with: written from the
published definitions (MATLAB's imresize documentation, the method's back-projection), sharing no
code with dualsr_core."""
import math

import numpy as np


def cubic(x):
    x = np.abs(x)
    return np.where(x <= 1, 1.5 * x**3 - 2.5 * x**2 + 1, np.where(x < 2, -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2, 0.0))


def matlab_resize_axis(a, out_len, axis):
    """MATLAB imresize bicubic along one axis, written from MATLAB's documentation (antialiased when
    shrinking, indices mirrored with the edge repeated); independent of dualsr_core.tools.resize."""
    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1)
    n = a.shape[-1]
    scale = out_len / n
    width = 4.0 / scale if scale < 1 else 4.0
    out = np.zeros(a.shape[:-1] + (out_len,))
    padded = np.concatenate([a[..., ::-1], a, a[..., ::-1]], axis=-1)  # symmetric: edge repeated
    for j in range(out_len):
        u = (j + 1) / scale + 0.5 * (1 - 1 / scale)  # 1-based centre
        left = math.floor(u - width / 2)
        taps = np.arange(left, left + math.ceil(width) + 2)
        dist = u - taps
        w = scale * cubic(scale * dist) if scale < 1 else cubic(dist)
        w = w / w.sum()
        idx = taps - 1 + n  # into the padded array
        out[..., j] = (padded[..., idx] * w).sum(axis=-1)
    return np.moveaxis(out, -1, axis)


def matlab_resize(cube, shape):
    return matlab_resize_axis(matlab_resize_axis(cube, shape[0], 1), shape[1], 2)


def mean_angle_degrees(a, b):
    dot = (a * b).sum(0)
    norms = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    ok = norms > 0
    return np.degrees(np.arccos(np.clip(dot[ok] / norms[ok], -1, 1))).mean()


def independent_back_projection(u, v):
    down = matlab_resize(u, v.shape[1:])
    c = min(1.0, mean_angle_degrees(down, v))
    return u + matlab_resize(c * (v - down), u.shape[1:]), c
