"""The argument readers the GCP and Azure components share: exact messages, defaults, and
the floats the component provider host sends for integers."""

import re

import pytest

from components._args import enum_arg, int_arg, required_int, required_str
from finops.config import Capacity

WHERE = "finops:gcp:GpuTrainingFleet 'train'"


def test_int_arg_defaults_only_when_absent_and_takes_whole_floats() -> None:
    assert int_arg(WHERE, {}, "n", 7) == 7
    assert int_arg(WHERE, {"n": None}, "n", 7) == 7
    assert int_arg(WHERE, {"n": 0}, "n", 7) == 0
    assert int_arg(WHERE, {"n": 3.0}, "n", 7) == 3
    assert int_arg(WHERE, {"n": "4"}, "n", 7) == 4
    with pytest.raises(ValueError, match=re.escape(f"{WHERE}: n must be a whole number (got 0.5)")):
        int_arg(WHERE, {"n": 0.5}, "n", 7)


def test_required_int_and_str_name_the_field() -> None:
    assert required_int(WHERE, {"n": 2.0}, "n") == 2
    with pytest.raises(ValueError, match=re.escape(f"{WHERE}: n is required")):
        required_int(WHERE, {"n": None}, "n")
    assert required_str(WHERE, {"s": "v1"}, "s") == "v1"
    for args in ({}, {"s": None}, {"s": ""}):
        with pytest.raises(ValueError, match=re.escape(f"{WHERE}: s is required (got '')")):
            required_str(WHERE, args, "s")


def test_enum_arg_lists_the_allowed_values_with_a_close_match() -> None:
    assert enum_arg(WHERE, "capacity", None, Capacity, Capacity.ON_DEMAND) is Capacity.ON_DEMAND
    assert enum_arg(WHERE, "capacity", "spot-only", Capacity, Capacity.ON_DEMAND) is (
        Capacity.SPOT_ONLY
    )
    allowed = ", ".join(c.value for c in Capacity)
    with pytest.raises(
        ValueError, match=re.escape(f"{WHERE}: capacity 'spot' is not one of {allowed}")
    ):
        enum_arg(WHERE, "capacity", "spot", Capacity, Capacity.ON_DEMAND)
