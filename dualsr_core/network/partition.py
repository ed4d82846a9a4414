"""Neighbouring band partition (NBP), docs/method.md#band-partition.

For every band the network sees three groups: G1 = the band itself, G2 = the band between its two
nearest neighbours, G3 = the band between the next two. Neighbours are counted along a processing
order (bands sorted by wavelength, bad bands left out), so a band's neighbours are its spectral
neighbours whatever the file order is, and a bad band is never the neighbour of a good one.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _window_slots(p: int, n: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(G2 left, G2 right), (G3 left, G3 right) as positions, for n >= 5 (the table in docs/method.md#band-partition).

    The five-band window is shifted inwards at the cube's edges, so every band keeps four
    distinct neighbours; the slot order is the one the reference code's branches give.
    """
    if p == 0:
        return (1, 2), (3, 4)
    if p == 1:
        return (0, 2), (3, 4)
    if p == n - 2:
        return (n - 3, n - 1), (n - 5, n - 4)
    if p == n - 1:
        return (n - 2, n - 3), (n - 4, n - 5)
    return (p - 1, p + 1), (p - 2, p + 2)


def _repeated_slots(p: int, n: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Slots for cubes of fewer than five bands: the nearest available bands, repeated."""
    others = sorted((q for q in range(n) if q != p), key=lambda q: (abs(q - p), q)) or [p]
    four = [others[k % len(others)] for k in range(4)]
    return (four[0], four[1]), (four[2], four[3])


def neighbour_table(order: Sequence[int]) -> np.ndarray:
    """Band indices of G2 and G3 for every band in `order`.

    Args:
        order: band indices (0-based, file order) in the order the network walks them, normally
            ascending wavelength with bad bands removed. Its length may be anything >= 1.

    Returns:
        int array of shape (len(order), 2, 3): [k, 0] is G2 = [left, target, right] and [k, 1] is
        G3 for the k-th band of `order`, as file band indices.
    """
    order = [int(b) for b in order]
    n = len(order)
    if n == 0:
        raise ValueError("neighbour_table needs at least one band")
    slots = _window_slots if n >= 5 else _repeated_slots
    table = np.empty((n, 2, 3), dtype=np.int64)
    for p, band in enumerate(order):
        (a, b), (c, d) = slots(p, n)
        table[p, 0] = (order[a], band, order[b])
        table[p, 1] = (order[c], band, order[d])
    return table
