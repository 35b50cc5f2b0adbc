"""Parameter kinds: what each accepts, what it refuses, and the message it refuses with."""

from __future__ import annotations

import pytest

from engine.errors import ParamError
from engine.layers.base import ParamSpec

KERNEL = ParamSpec("kernel_size", "ints", (3, 3), "Kernel height and width.", length=2, max=(64, 32),
                   labels=("height", "width"))
PADDING = ParamSpec("padding", "choice_or_ints", "valid", "Zero padding.", choices=("valid", "same"),
                    length=2, min=0)
SHAPE = ParamSpec("shape", "ints", (2,), "Any-length shape.")


@pytest.mark.parametrize("given, expected", [([3, 5], (3, 5)), ((1, 1), (1, 1)), (4, (4, 4)), ([64, 32], (64, 32))])
def test_fixed_length_ints_accept_lists_tuples_and_a_repeated_scalar(given, expected):
    assert KERNEL.coerce(given) == expected


@pytest.mark.parametrize("given", [[3], [3, 3, 3], [0, 3], [65, 3], [3, 33], [3.0, 3], [True, 3], "3", None, []])
def test_fixed_length_ints_refuse_wrong_length_bounds_and_types(given):
    with pytest.raises(ParamError, match="kernel_size"):
        KERNEL.coerce(given, where="node 'c1'")


def test_per_element_bounds_are_described_per_element():
    text = KERNEL.describe_range()
    assert "height in [1, 64]" in text and "width in [1, 32]" in text
    with pytest.raises(ParamError, match=r"node 'c1': parameter 'kernel_size' = \[3, 40\].*width in \[1, 32\]"):
        KERNEL.coerce([3, 40], where="node 'c1'")


@pytest.mark.parametrize("given, expected", [("valid", "valid"), ("same", "same"), ([0, 2], (0, 2)), (1, (1, 1))])
def test_choice_or_ints_takes_a_choice_or_a_list(given, expected):
    assert PADDING.coerce(given) == expected


@pytest.mark.parametrize("given", ["full", [1, 2, 3], [-1, 0], [0.5, 1], False, {}])
def test_choice_or_ints_refuses_anything_else_naming_both_forms(given):
    with pytest.raises(ParamError) as err:
        PADDING.coerce(given)
    assert '"valid", "same"' in str(err.value) and "2 integers" in str(err.value)


def test_lists_round_trip_through_json_form():
    assert PADDING.to_json(PADDING.coerce([1, 2])) == [1, 2]
    assert PADDING.to_json(PADDING.coerce("same")) == "same"
    assert SHAPE.to_json(SHAPE.coerce([1, 28, 28])) == [1, 28, 28]


def test_variable_length_ints_keep_their_length_and_refuse_a_scalar():
    assert SHAPE.coerce([1, 28, 28]) == (1, 28, 28)
    with pytest.raises(ParamError, match="positive integers"):
        SHAPE.coerce(3)


def test_declarations_that_cannot_work_are_refused_at_definition():
    with pytest.raises(ValueError):
        ParamSpec("padding", "choice_or_ints", "valid", "no choices", length=2)
    with pytest.raises(ValueError):
        ParamSpec("k", "ints", (1, 1), "labels do not fit", length=2, labels=("h",))
    with pytest.raises(ValueError):
        ParamSpec("k", "tuple", (1, 1), "unknown kind")
