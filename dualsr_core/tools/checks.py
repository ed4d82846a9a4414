"""Checks of numeric arguments, with one sentence that names the argument.

Each check has a default sentence; a caller whose parameter reads better another way (a QGIS
parameter with an example value, a command-line option) passes its own as `message`, a
`str.format` template with the fields {name} and {value} (the argument as given).
"""
from __future__ import annotations

import math

import numpy as np

# The sentence of a QGIS parameter that takes a whole number of at least 1 (EPOCHS, BAND_CHUNK).
WHOLE = "{name} is {value} but must be a whole number of at least 1."


def positive_number(value, name: str, meaning: str = "", error: type[Exception] = ValueError, *,
                    message: str | None = None, zero_allowed: bool = False) -> float:
    """`value` as a float when it is a finite real number above 0 (or 0 itself with `zero_allowed`).

    Args:
        value: the argument (a Python or numpy number).
        name: its name in the message: a parameter (DATA_RANGE) or an argument (data_range).
        meaning: what the number is, shown in brackets after the name (default sentence only).
        error: the exception raised: ValueError for library calls, InputError for user parameters.
        message: the sentence instead of the default, e.g.
            "{name} is {value} but must be a positive number such as 1e-4.".
        zero_allowed: accept 0 as well (a weight that switches something off).
    """
    number = float(value) if isinstance(value, (int, float, np.integer, np.floating)) else math.nan
    if not (math.isfinite(number) and (number > 0 or (zero_allowed and number == 0))):
        if message is not None:
            raise error(message.format(name=name, value=value))
        detail = f" ({meaning})" if meaning else ""
        kind = "number of at least 0" if zero_allowed else "positive number"
        raise error(f"{name} must be a finite {kind}{detail}, got {value!r}.")
    return number


def positive_integer(value, name: str, error: type[Exception] = ValueError, *, message: str | None = None) -> int:
    """`value` as an int when it is an integer (not a bool) of at least 1.

    Args:
        value: the argument (a Python or numpy integer; floats, even whole ones, are refused).
        name: its name in the message.
        error: the exception raised.
        message: the sentence instead of the default, e.g. "{name} must be a whole number of at
            least 1 (got {value}).".
    """
    is_integer = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not is_integer or value < 1:
        if message is not None:
            raise error(message.format(name=name, value=value))
        raise error(f"{name} must be a positive integer, got {value!r}.")
    return int(value)
