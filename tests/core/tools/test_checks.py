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
