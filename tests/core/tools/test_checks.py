"""The numeric argument checks shared by resampling, metrics and evaluation."""
import numpy as np
import pytest

from dualsr_core.errors import InputError
from dualsr_core.tools.checks import positive_integer, positive_number


@pytest.mark.parametrize("value", [1, 0.25, np.float32(2.5), np.int64(3), 1e300])
def test_positive_numbers_come_back_as_floats(value):
    assert positive_number(value, "x") == float(value) and type(positive_number(value, "x")) is float


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "2", None, [1.0]])
def test_anything_else_is_refused_in_one_sentence_naming_the_argument(value):
    with pytest.raises(ValueError, match=r"^data_range must be a finite positive number, got .*\.$"):
        positive_number(value, "data_range")
    with pytest.raises(InputError, match=r"^DATA_RANGE must be a finite positive number \(the span\), got"):
        positive_number(value, "DATA_RANGE", "the span", InputError)


def test_positive_integers_refuse_floats_bools_and_zero():
    assert positive_integer(np.int32(4), "n") == 4 and type(positive_integer(np.int32(4), "n")) is int
    for value in (0, -3, 2.0, True, np.bool_(True), "5"):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            positive_integer(value, "n")


def test_a_caller_may_word_the_sentence_itself():
    with pytest.raises(InputError, match=r"^LEARNING_RATE is 0 but must be a positive number such as 1e-4\.$"):
        positive_number(0, "LEARNING_RATE", error=InputError,
                        message="{name} is {value} but must be a positive number such as 1e-4.")
    with pytest.raises(ValueError, match=r"^--tile-size must be a whole number of at least 1 \(got 0\)\.$"):
        positive_integer(0, "--tile-size", message="{name} must be a whole number of at least 1 (got {value}).")
    assert positive_number(2, "x", message="{name} {value}") == 2.0
    assert positive_integer(3, "n", message="{name} {value}") == 3
    with pytest.raises(ValueError, match=r"^x must be a finite positive number \(a \{brace\}\), got -1\.$"):
        positive_number(-1, "x", "a {brace}")  # the default sentence is not a template


def test_zero_may_be_allowed():
    assert positive_number(0, "w", zero_allowed=True) == 0.0
    assert positive_number(np.float32(0.5), "w", zero_allowed=True) == 0.5
    for value in (-1e-9, float("nan"), float("inf"), "0"):
        with pytest.raises(ValueError, match=r"^w must be a finite number of at least 0, got .*\.$"):
            positive_number(value, "w", zero_allowed=True)
