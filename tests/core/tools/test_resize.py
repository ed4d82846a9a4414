"""Tests for dualsr_core.tools.resize against independent implementations and PIL itself."""

import math

import numpy as np
import pytest
from PIL import Image

from dualsr_core.tools import resize as rs


def _matlab_cubic(x: float) -> float:
    """MATLAB's ``cubic`` kernel, written as in imresize.m (a = -0.5)."""
    ax = abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((1 < ax) and (ax <= 2)))


def _matlab_contributions(in_len, out_len, scale, antialias=True):
    """Per-output (index, weight) lists: MATLAB's ``contributions`` transcribed, 1-based."""
    stretched = scale < 1 and antialias
    width = 4.0 / scale if stretched else 4.0

    def kernel(d):
        return scale * _matlab_cubic(scale * d) if stretched else _matlab_cubic(d)

    aux = list(range(1, in_len + 1)) + list(range(in_len, 0, -1))
    taps = math.ceil(width) + 2
    result = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        idx = [left + p for p in range(taps)]
        w = [kernel(u - i) for i in idx]
        total = sum(w)
        # Mirror after normalisation, as MATLAB does; convert to 0-based at the end.
        pairs = [(aux[(i - 1) % len(aux)] - 1, wi / total) for i, wi in zip(idx, w)]
        result.append(pairs)
    return result


def _matlab_imresize_reference(image, scale, out_shape=None, antialias=True):
    """Slow per-pixel MATLAB imresize (bicubic) of a 2-D image."""
    h, w = image.shape
    out_h, out_w = out_shape or (math.ceil(h * scale), math.ceil(w * scale))
    rows = _matlab_contributions(h, out_h, scale, antialias)
    cols = _matlab_contributions(w, out_w, scale, antialias)
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            acc = 0.0
            for ri, rw in rows[i]:
                for cj, cw in cols[j]:
                    acc += rw * cw * image[ri, cj]
            out[i, j] = acc
    return out


def _pil_resize(image, out_shape):
    """PIL float bicubic resize of a 2-D image to (height, width)."""
    pil = Image.fromarray(image.astype(np.float32), mode="F")
    return np.asarray(pil.resize((out_shape[1], out_shape[0]), Image.BICUBIC), dtype=np.float64)


@pytest.mark.parametrize(
    "shape, scale",
    [((9, 13), 2), ((7, 10), 3), ((5, 8), 4), ((23, 18), 0.5), ((31, 25), 1 / 3),
     ((16, 11), 1 / 3), ((15, 20), 0.25), ((12, 9), 1.5)],
)
def test_matlab_imresize_matches_reference(shape, scale):
    image = np.random.default_rng(1).random(shape)
    expected = _matlab_imresize_reference(image, scale)
    result = rs.imresize(image, scale, method="matlab")
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [0.5, 1 / 3])
def test_matlab_without_antialias_matches_reference(scale):
    image = np.random.default_rng(2).random((19, 14))
    out_shape = (math.ceil(19 * scale), math.ceil(14 * scale))
    expected = _matlab_imresize_reference(image, scale, antialias=False)
    wy = rs.matlab_weights(19, out_shape[0], scale, antialias=False)
    wx = rs.matlab_weights(14, out_shape[1], scale, antialias=False)
    np.testing.assert_allclose(rs.apply_weights(image, wy, wx), expected, rtol=0, atol=1e-12)


def test_imresize_uses_scale_not_size_ratio():
    # 16 * 1/3 -> ceil(5.33) = 6 samples; MATLAB's weights use scale 1/3, not 6/16.
    image = np.random.default_rng(3).random((16, 16))
    result = rs.imresize(image, 1 / 3)
    assert result.shape == (6, 6)
    np.testing.assert_allclose(result, _matlab_imresize_reference(image, 1 / 3), atol=1e-12)
    by_ratio = rs.resize(image, (6, 6), method="matlab")
    assert np.abs(by_ratio - result).max() > 1e-3


def test_matlab_weights_mirror_repeats_edge_sample():
    # Upsampling a 3-sample signal by 4: the first output (u = -0.375) reaches index -2 and -1,
    # which mirror onto samples 1 and 0 (the edge sample repeated), never onto sample 2.
    weights = rs.matlab_weights(3, 12).toarray()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-15)
    taps = [(-2, 1), (-1, 0), (0, 0), (1, 1)]
    expected = np.zeros(3)
    for index, target in taps:
        expected[target] += _matlab_cubic(-0.375 - index)
    np.testing.assert_allclose(weights[0], expected / expected.sum(), atol=1e-15)


@pytest.mark.parametrize(
    "shape, out_shape",
    [((17, 23), (51, 46)), ((64, 48), (16, 12)), ((31, 29), (10, 11)), ((9, 13), (20, 4)),
     ((8, 8), (32, 32)), ((30, 30), (10, 10)), ((7, 5), (7, 5)), ((1, 6), (3, 12))],
)
def test_pil_resize_matches_pillow(shape, out_shape):
    image = np.random.default_rng(4).random(shape) * 3.0 - 1.0
    result = rs.resize(image.astype(np.float32), out_shape, method="pil")
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, _pil_resize(image, out_shape), rtol=0, atol=1e-5)


@pytest.mark.parametrize("method", rs.METHODS)
@pytest.mark.parametrize("out_shape", [(26, 39), (5, 4), (13, 7)])
def test_constant_image_stays_constant(method, out_shape):
    image = np.full((2, 13, 20), 0.7)
    np.testing.assert_allclose(rs.resize(image, out_shape, method=method), 0.7, atol=1e-13)


@pytest.mark.parametrize("method", rs.METHODS)
def test_leading_axes_dtype_and_shape(method):
    cube = np.random.default_rng(5).random((2, 3, 11, 14))
    result = rs.resize(cube, (22, 7), method=method)
    assert result.shape == (2, 3, 22, 7)
    assert result.dtype == np.float64
    for i in range(2):
        for j in range(3):
            np.testing.assert_array_equal(result[i, j], rs.resize(cube[i, j], (22, 7), method))
    assert rs.resize(cube.astype(np.float32), (22, 7), method).dtype == np.float32
    assert rs.resize((cube * 100).astype(np.int16), (22, 7), method).dtype == np.float64


def test_blocked_application_is_exact(monkeypatch):
    cube = np.random.default_rng(6).random((5, 12, 10))
    whole = rs.imresize(cube, 0.5)
    # Force one plane per block: the result must not depend on how planes are grouped.
    monkeypatch.setattr(rs, "_BLOCK_ELEMENTS", 1)
    np.testing.assert_array_equal(rs.imresize(cube, 0.5), whole)


def test_imresize_output_size_is_ceil():
    image = np.zeros((10, 7))
    assert rs.imresize(image, 1 / 3).shape == (4, 3)
    assert rs.imresize(image, 0.5).shape == (5, 4)
    assert rs.imresize(image, 3).shape == (30, 21)


@pytest.mark.parametrize(
    "method, in_len, out_len", [("matlab", 40, 10), ("matlab", 11, 44), ("matlab", 29, 10),
                                ("pil", 40, 10), ("pil", 11, 44), ("pil", 23, 17)],
)
def test_window_rows_gives_exact_tiles(method, in_len, out_len):
    rng = np.random.default_rng(7)
    cube = rng.random((3, in_len, in_len + 3))
    wy = rs.weights_for(method, in_len, out_len)
    wx = rs.weights_for(method, in_len + 3, out_len + 1)
    full = rs.apply_weights(cube, wy, wx)
    for (r0, r1), (c0, c1) in [((0, 3), (0, 1)), ((2, 7), (out_len - 3, out_len + 1)),
                               ((out_len - 1, out_len), (4, 6)), ((0, out_len), (0, out_len + 1))]:
        a0, a1 = rs.window_rows(wy, r0, r1)
        b0, b1 = rs.window_rows(wx, c0, c1)
        tile = rs.apply_weights(cube[:, a0:a1, b0:b1], wy[r0:r1, a0:a1], wx[c0:c1, b0:b1])
        np.testing.assert_array_equal(tile, full[:, r0:r1, c0:c1])
        # The window is the tightest one: its end columns carry weight, nothing outside does.
        dense = wy[r0:r1].toarray()
        assert not dense[:, :a0].any() and not dense[:, a1:].any()
        assert dense[:, a0].any() and dense[:, a1 - 1].any()


def test_window_rows_rejects_bad_range():
    weights = rs.matlab_weights(10, 5)
    for start, stop in [(3, 3), (-1, 2), (0, 6)]:
        with pytest.raises(ValueError, match="output range"):
            rs.window_rows(weights, start, stop)


@pytest.mark.parametrize("s", [2, 3, 4])
def test_matlab_and_pil_agree_in_interior(s):
    rng = np.random.default_rng(8)
    image = rng.random((12 * s, 10 * s))
    # Downsampling by s: an output sample's taps reach 2 output pixels (2s input pixels) out.
    down_m = rs.imresize(image, 1 / s, method="matlab")
    down_p = rs.imresize(image, 1 / s, method="pil")
    np.testing.assert_allclose(down_m[2:-2, 2:-2], down_p[2:-2, 2:-2], rtol=0, atol=1e-6)
    assert np.abs(down_m - down_p).max() > 1e-3  # the borders differ (mirrored vs truncated)
    small = rng.random((12, 10))
    up_m = rs.imresize(small, s, method="matlab")
    up_p = rs.imresize(small, s, method="pil")
    m = 2 * s
    np.testing.assert_allclose(up_m[m:-m, m:-m], up_p[m:-m, m:-m], rtol=0, atol=1e-6)
    assert np.abs(up_m - up_p).max() > 1e-3


def test_invalid_arguments():
    image = np.zeros((4, 4))
    with pytest.raises(ValueError, match="method must be one of"):
        rs.resize(image, (2, 2), method="bilinear")
    with pytest.raises(ValueError, match="out_shape"):
        rs.resize(image, (0, 2))
    with pytest.raises(ValueError, match="scale must be"):
        rs.imresize(image, -2)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        rs.resize(np.zeros(4), (2, 2))
    with pytest.raises(ValueError, match="do not fit"):
        rs.apply_weights(image, rs.matlab_weights(5, 2), rs.matlab_weights(4, 2))
    with pytest.raises(ValueError, match="real-valued"):
        rs.resize(np.zeros((4, 4), dtype=complex), (2, 2))
