"""Neighbour band partition against the table of docs/method.md#band-partition, written out by hand."""
import numpy as np
import pytest

from dualsr_core.network.partition import neighbour_table


def expected_row(i, n):
    """G2 and G3 for band i of n >= 5 bands, transcribed from docs/method.md#band-partition (not the module's code)."""
    if i == 0:
        return [1, 0, 2], [3, 0, 4]
    if i == 1:
        return [0, 1, 2], [3, 1, 4]
    if i == n - 2:
        return [n - 3, n - 2, n - 1], [n - 5, n - 2, n - 4]
    if i == n - 1:
        return [n - 2, n - 1, n - 3], [n - 4, n - 1, n - 5]
    return [i - 1, i, i + 1], [i - 2, i, i + 2]


@pytest.mark.parametrize("n", [5, 6, 31])
def test_every_band_matches_the_method_table(n):
    table = neighbour_table(range(n))
    assert table.shape == (n, 2, 3)
    for i in range(n):
        g2, g3 = expected_row(i, n)
        assert table[i, 0].tolist() == g2, f"band {i} of {n}: G2"
        assert table[i, 1].tolist() == g3, f"band {i} of {n}: G3"


def test_31_band_edges_quoted_in_the_method():
    table = neighbour_table(range(31))
    assert table[29].tolist() == [[28, 29, 30], [26, 29, 27]]
    assert table[30].tolist() == [[29, 30, 28], [27, 30, 26]]


@pytest.mark.parametrize("n", [5, 6, 31])
def test_neighbours_are_distinct_and_within_two_bands_of_the_window(n):
    for i, (g2, g3) in enumerate(neighbour_table(range(n))):
        others = {g2[0], g2[2], g3[0], g3[2]}
        assert len(others) == 4 and i not in others
        assert max(others) - min(others) <= 4


def test_order_maps_positions_to_file_bands():
    # bands 7, 3, 9, 1, 5 in wavelength order: neighbours are positions in that order
    order = [7, 3, 9, 1, 5]
    table = neighbour_table(order)
    assert table[2].tolist() == [[3, 9, 1], [7, 9, 5]]
    assert table[0].tolist() == [[3, 7, 9], [1, 7, 5]]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_fewer_than_five_bands_repeat_the_nearest(n):
    table = neighbour_table(range(n))
    for i in range(n):
        assert table[i, 0, 1] == i and table[i, 1, 1] == i
        slots = [table[i, 0, 0], table[i, 0, 2], table[i, 1, 0], table[i, 1, 2]]
        if n == 1:
            assert slots == [0, 0, 0, 0]
        else:
            assert i not in slots
            nearest = min(abs(j - i) for j in range(n) if j != i)
            assert abs(table[i, 0, 0] - i) == nearest


def test_empty_order_is_an_error():
    with pytest.raises(ValueError):
        neighbour_table([])
    assert np.array_equal(neighbour_table(np.arange(5))[2], [[1, 2, 3], [0, 2, 4]])
