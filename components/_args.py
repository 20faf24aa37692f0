"""Reading a component's arguments: ints, required strings and enums, with a `ValueError` that
names the component, the field and the bad value.

`where` is the component and its name (`finops:gcp:GpuTrainingFleet 'train'`). Used by the
GCP and Azure components; the AWS ones keep their own checks (components/aws/_common.py),
which reject floats outright and word their messages differently.
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from finops.errors import did_you_mean

E = TypeVar("E", bound=StrEnum)


def int_arg(where: str, args: Mapping[str, object], key: str, default: int) -> int:
    """`args[key]` as an int, `default` only when absent or None (0 stays 0). Whole floats are
    accepted: the component provider host passes integers as floats."""
    value = args.get(key)
    if value is None:
        return default
    number = float(value) if isinstance(value, int | float) else float(str(value))
    if not number.is_integer():
        raise ValueError(f"{where}: {key} must be a whole number (got {value!r})")
    return int(number)


def required_int(where: str, args: Mapping[str, object], key: str) -> int:
    """`args[key]` as an int; ValueError naming the field when it is missing."""
    if args.get(key) is None:
        raise ValueError(f"{where}: {key} is required")
    return int_arg(where, args, key, 0)


def required_str(where: str, args: Mapping[str, object], key: str) -> str:
    """`args[key]` as a str; ValueError naming the field when it is missing or empty."""
    value = str(args.get(key) or "")
    if not value:
        raise ValueError(f"{where}: {key} is required (got {value!r})")
    return value


def enum_arg(where: str, field: str, value: object, enum: type[E], default: E) -> E:
    """`value` as a member of `enum` (strings accepted), `default` when None; ValueError naming
    the allowed values."""
    if value is None:
        return default
    try:
        return enum(str(value))
    except ValueError:
        allowed = [member.value for member in enum]
        raise ValueError(
            f"{where}: {field} {value!r} is not one of {', '.join(allowed)}"
            f"{did_you_mean(str(value), allowed)}"
        ) from None
