"""The one argument reader of every component: exact messages, defaults, and the floats the
component provider host sends for integers."""

import re

import pytest

from aifinops.components._args import (
    enum_arg,
    int_arg,
    invalid,
    known_keys,
    number,
    required_int,
    required_str,
    whole_number,
)
from aifinops.config import Capacity

WHERE = "finops:gcp:GpuTrainingFleet 'train'"


def test_whole_floats_are_integers_and_fractions_name_the_field() -> None:
    assert whole_number("n", 4) == 4
    assert whole_number("n", 4.0, 1, 1000) == 4 and isinstance(whole_number("n", 4.0), int)
    for bad in (4.5, True, "4", None, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"^nodes_max: .* is not allowed; allowed: an integer"):
            whole_number("nodes_max", bad, 1, 1000)
    with pytest.raises(
        ValueError, match=re.escape(f"{WHERE}: n: 0.5 is not allowed; allowed: an integer 0..7")
    ):
        whole_number("n", 0.5, 0, 7, where=WHERE)


def test_bounds_are_inclusive_and_said() -> None:
    assert whole_number("n", 1000.0, 1, 1000) == 1000
    with pytest.raises(
        ValueError, match=re.escape("n: 1001 is not allowed; allowed: an integer 1..1000")
    ):
        whole_number("n", 1001, 1, 1000)
    with pytest.raises(ValueError, match=re.escape("allowed: an integer 1 or more")):
        whole_number("n", 0, 1)


def test_int_arg_defaults_only_when_absent_and_takes_whole_floats() -> None:
    assert int_arg(WHERE, {}, "n", 7) == 7
    assert int_arg(WHERE, {"n": None}, "n", 7) == 7
    assert int_arg(WHERE, {"n": 0}, "n", 7) == 0
    assert int_arg(WHERE, {"n": 3.0}, "n", 7) == 3
    with pytest.raises(ValueError, match=re.escape(f"{WHERE}: n: 0.5 is not allowed")):
        int_arg(WHERE, {"n": 0.5}, "n", 7)


def test_required_int_and_str_name_the_field() -> None:
    assert required_int(WHERE, {"n": 2.0}, "n") == 2
    with pytest.raises(ValueError, match=re.escape(f"{WHERE}: n: required (got None)")):
        required_int(WHERE, {"n": None}, "n")
    assert required_str(WHERE, {"s": "v1"}, "s") == "v1"
    for args in ({}, {"s": None}, {"s": ""}):
        with pytest.raises(ValueError, match=re.escape(f"{WHERE}: s: required (got")):
            required_str(WHERE, args, "s")
    with pytest.raises(
        ValueError, match=re.escape(f"{WHERE}: s: 3 is not allowed; allowed: a string")
    ):
        required_str(WHERE, {"s": 3}, "s")


def test_numbers_take_ints_and_floats_within_their_bounds() -> None:
    assert number("usd", 100, "USD above 0", above=0) == 100.0
    assert number("pct", 0.0, "percent", at_least=0, at_most=1000) == 0.0
    for bad in (0, -1, True, "100", None):
        with pytest.raises(ValueError, match=r"^usd: .* is not allowed; allowed: USD above 0$"):
            number("usd", bad, "USD above 0", above=0)
    with pytest.raises(ValueError, match=r"pct: 1000.5 is not allowed"):
        number("pct", 1000.5, "percent", at_most=1000)


def test_enum_arg_lists_the_allowed_values_with_a_close_match() -> None:
    assert enum_arg(WHERE, "capacity", None, Capacity, Capacity.ON_DEMAND) is Capacity.ON_DEMAND
    assert enum_arg(WHERE, "capacity", "spot-only", Capacity, Capacity.ON_DEMAND) is (
        Capacity.SPOT_ONLY
    )
    assert enum_arg(WHERE, "capacity", Capacity.SPOT_ONLY, Capacity, Capacity.ON_DEMAND) is (
        Capacity.SPOT_ONLY
    )
    allowed = ", ".join(c.value for c in Capacity)
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{WHERE}: capacity: 'spot' is not allowed (did you mean spot-only?); allowed: {allowed}"
        ),
    ):
        enum_arg(WHERE, "capacity", "spot", Capacity, Capacity.ON_DEMAND)


def test_unknown_keys_get_a_did_you_mean() -> None:
    known_keys({"nodes_max": 1}, ["nodes_max", "nodes_min"])
    with pytest.raises(
        ValueError, match=re.escape("args: 'node_max' is not allowed (did you mean nodes_max")
    ):
        known_keys({"node_max": 1}, ["nodes_max", "nodes_min"])
    assert str(invalid("f", 1, "allowed: x", where="w")) == "w: f: 1 is not allowed; allowed: x"
