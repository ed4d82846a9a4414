"""Nodata through a resampling kernel: spread_invalid against a pixel-by-pixel definition."""
import numpy as np
import pytest

from dualsr_core.tools import resize
from dualsr_core.tools.nodata import spread_invalid


def by_definition(invalid, wy, wx):
    """Output (i, j) is invalid when an input pixel with a nonzero weight in both its row and column is."""
    wy, wx = wy.toarray(), wx.toarray()
    out = np.zeros((wy.shape[0], wx.shape[0]), bool)
    for i in range(wy.shape[0]):
        for j in range(wx.shape[0]):
            out[i, j] = invalid[np.ix_(wy[i] != 0, wx[j] != 0)].any()
    return out


@pytest.mark.parametrize("shape, out_shape", [((24, 17), (6, 5)), ((9, 9), (18, 18)), ((1, 30), (1, 10))])
def test_an_output_pixel_is_nodata_when_its_kernel_reaches_an_invalid_pixel(shape, out_shape):
    invalid = np.zeros(shape, bool)
    invalid[0, -1] = True  # a corner, where the mirrored taps land
    invalid[-1, shape[1] // 3] = True
    wy = resize.matlab_weights(shape[0], out_shape[0])
    wx = resize.matlab_weights(shape[1], out_shape[1])
    expected = by_definition(invalid, wy, wx)
    assert expected.any() and not expected.all()
    assert (spread_invalid(invalid, wy, wx) == expected).all()
    cube = np.stack([invalid, np.zeros(shape, bool)])
    result = spread_invalid(cube, wy, wx)
    assert (result[0] == expected).all() and not result[1].any()


def test_a_window_with_sliced_weights_gives_that_part_of_the_whole_answer():
    invalid = np.zeros((40, 40), bool)
    invalid[13, 22] = True
    wy = wx = resize.matlab_weights(40, 10)
    whole = spread_invalid(invalid, wy, wx)
    rows = resize.window_rows(wy, 2, 6)
    part = spread_invalid(invalid[rows[0]:rows[1], rows[0]:rows[1]], wy[2:6, rows[0]:rows[1]],
                          wx[2:6, rows[0]:rows[1]])
    assert whole.sum() > 1 and (part == whole[2:6, 2:6]).all()
