"""Checks of numeric arguments, with one sentence that names the argument."""
from __future__ import annotations

import math

import numpy as np


def positive_number(value, name: str, meaning: str = "", error: type[Exception] = ValueError) -> float:
    """`value` as a float when it is a finite real number above 0.

    Args:
        value: the argument (a Python or numpy number).
        name: its name in the message: a parameter (DATA_RANGE) or an argument (data_range).
        meaning: what the number is, shown in brackets after the name.
        error: the exception raised: ValueError for library calls, InputError for user parameters.
    """
    number = float(value) if isinstance(value, (int, float, np.integer, np.floating)) else math.nan
    if not (math.isfinite(number) and number > 0):
        detail = f" ({meaning})" if meaning else ""
        raise error(f"{name} must be a finite positive number{detail}, got {value!r}.")
    return number


def positive_integer(value, name: str, error: type[Exception] = ValueError) -> int:
    """`value` as an int when it is an integer (not a bool) of at least 1."""
    is_integer = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not is_integer or value < 1:
        raise error(f"{name} must be a positive integer, got {value!r}.")
    return int(value)
