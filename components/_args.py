"""The one argument reader of every component on every cloud: integers, numbers, required
values and enums, each refused with a `ValueError` that names the field, the bad value and what
is allowed.

Components hosted for other languages (`components/__main__.py`) get their inputs from the
engine as protobuf `Struct` values, where every number is a float: `nodes_max: 4` arrives as
`4.0`. A whole float is therefore an integer here; a fraction, a bool or a string is not.

`where` names the component instance (`finops:gcp:GpuTrainingFleet 'train'`); messages read
`<where>: <field>: <value> is not allowed; allowed: <what>` (without `where` when the caller
has none).
"""

import math
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

from aifinops.errors import did_you_mean

E = TypeVar("E", bound=StrEnum)
MAX_SHOWN = 12


def invalid(
    field: str, value: object, allowed: Iterable[object] | str, *, where: str = ""
) -> ValueError:
    """`ValueError` naming the field, the bad value and what is allowed (with close matches
    when `allowed` is a list of choices)."""
    prefix = f"{where}: " if where else ""
    if isinstance(allowed, str):
        return ValueError(f"{prefix}{field}: {value!r} is not allowed; {allowed}")
    choices = [str(a) for a in allowed]
    hint = did_you_mean(str(value), choices)
    shown = ", ".join(choices[:MAX_SHOWN]) + (", ..." if len(choices) > MAX_SHOWN else "")
    return ValueError(f"{prefix}{field}: {value!r} is not allowed{hint}; allowed: {shown}")


def _range(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" {low:g} or more"
    if low is None:
        return f" up to {high:g}"
    return f" {low:g}..{high:g}"


def whole_number(
    field: str, value: object, low: int | None = None, high: int | None = None, *, where: str = ""
) -> int:
    """`value` as an int within `low..high` (inclusive); a whole float (`4.0`, as the provider
    host sends integers) counts, a fraction, bool, string or None does not."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    if number is None or (low is not None and number < low) or (high is not None and number > high):
        raise invalid(field, value, f"allowed: an integer{_range(low, high)}", where=where)
    return number


def number(
    field: str,
    value: object,
    allowed: str,
    *,
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    where: str = "",
) -> float:
    """`value` as a float, `> above`, `>= at_least` and `<= at_most` when given; `allowed`
    says so in the field's unit ("USD above 0")."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or (above is not None and value <= above)
        or (at_least is not None and value < at_least)
        or (at_most is not None and value > at_most)
    ):
        raise invalid(field, value, f"allowed: {allowed}", where=where)
    return float(value)


def require(args: Mapping[str, Any], field: str, *, where: str = "") -> Any:
    """`args[field]`; ValueError naming the field when it is missing, None or empty."""
    value = args.get(field)
    if value is None or value == "":
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}{field}: required (got {value!r})")
    return value


def known_keys(args: Mapping[str, Any], known: Iterable[str], *, where: str = "") -> None:
    """Every key of `args` is an argument of the component (did-you-mean on a typo)."""
    allowed = sorted(known)
    for key in args:
        if key not in allowed:
            raise invalid("args", key, allowed, where=where)


def int_arg(
    where: str,
    args: Mapping[str, object],
    key: str,
    default: int,
    low: int | None = None,
    high: int | None = None,
) -> int:
    """`args[key]` as an int in `low..high`; `default` only when absent or None (0 stays 0)."""
    value = args.get(key)
    if value is None:
        return default
    return whole_number(key, value, low, high, where=where)


def required_int(
    where: str,
    args: Mapping[str, object],
    key: str,
    low: int | None = None,
    high: int | None = None,
) -> int:
    """`args[key]` as an int in `low..high`; ValueError naming the field when it is missing."""
    require(args, key, where=where)
    return whole_number(key, args[key], low, high, where=where)


def required_str(where: str, args: Mapping[str, object], key: str) -> str:
    """`args[key]` as a non-empty str; ValueError naming the field otherwise."""
    value = require(args, key, where=where)
    if not isinstance(value, str):
        raise invalid(key, value, "allowed: a string", where=where)
    return value


def enum_arg(where: str, field: str, value: object, enum: type[E], default: E) -> E:
    """`value` as a member of `enum` (its string value accepted), `default` when None."""
    if value is None:
        return default
    try:
        return enum(str(value))  # a StrEnum member's str() is its value
    except ValueError:
        raise invalid(field, value, [member.value for member in enum], where=where) from None
