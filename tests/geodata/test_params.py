"""Whole numbers from request text: ASCII digits only, of a sane length."""

import pytest

from geodata.errors import BadRequest, PreconditionFailed
from geodata.params import MAX_DIGITS, version_number, whole_number


@pytest.mark.parametrize("raw, expected", [("0", 0), ("42", 42), (" 7 ", 7), ("-3", -3), ("0012", 12)])
def test_ascii_digits_are_numbers(raw, expected):
    assert whole_number(raw, "n") == expected


@pytest.mark.parametrize("raw", ["²", "٣", "١٢", "３", "1²", "", "+1", "1.0", "1e3", "0x10", "1_000", "½",
                                 "1\n2"])
def test_anything_but_ascii_digits_is_a_400_naming_the_parameter(raw):
    with pytest.raises(BadRequest, match="'limit'"):
        whole_number(raw, "limit")


def test_a_long_number_is_refused_before_int_sees_it():
    with pytest.raises(BadRequest, match=f"at most {MAX_DIGITS} digits") as caught:
        whole_number("9" * 5000, "offset")
    assert len(caught.value.message) < 200  # the value is not echoed whole


def test_bounds_and_the_error_class():
    assert version_number("1") == 1
    with pytest.raises(BadRequest, match="at least 1"):
        version_number("0")
    with pytest.raises(BadRequest, match="at most 5"):
        whole_number("6", "k", maximum=5)
    with pytest.raises(PreconditionFailed):
        whole_number("²", "If-Match", error=PreconditionFailed)
