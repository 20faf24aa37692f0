"""Chargeback: every dollar of a bill on an owner (a team, by default), to the cent.

Costs tagged with an owner stay with it (direct cost). The pool (untagged cost, plus the
cost of owner values declared shared, e.g. `Team=platform`) is split by one rule, which the
report states:

- `proportional`: in proportion to each owner's positive direct cost;
- `even`: in equal parts among the owners with cost in the period;
- `fixed`: by a map of owner -> percent (summing to 100), read from a YAML or JSON file.

Allocation is exact arithmetic on fractions, then rounded to integer cents with the
largest-remainder rule (floor every owner's exact amount, give the missing cents one by one
to the largest remainders, ties to the larger amount then the name), so the owners' totals
sum to the bill rounded to the cent, and each owner is within one cent of its exact share.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

from aifinops.errors import FinopsError, did_you_mean


class ChargebackError(FinopsError):
    """A chargeback rule that cannot be applied (names the rule, file or owner)."""


class Rule(StrEnum):
    PROPORTIONAL = "proportional"
    EVEN = "even"
    FIXED = "fixed"


@dataclass(frozen=True)
class ChargebackRule:
    """How the pool is split, over which tag key."""

    rule: Rule
    key: str = "Team"
    shared_values: tuple[str, ...] = ()  # owner values whose cost joins the pool
    percent_by_owner: Mapping[str, Decimal] | None = None  # fixed: owner -> percent
    source: str = ""  # the fixed map's file, for messages

    def describe(self) -> str:
        """The rule as the report states it."""
        pool = "untagged cost" + (
            f" and {self.key}={', '.join(self.shared_values)}" if self.shared_values else ""
        )
        if self.rule is Rule.PROPORTIONAL:
            how = f"in proportion to each {self.key}'s tagged cost"
        elif self.rule is Rule.EVEN:
            how = f"in equal parts among the {self.key} values with cost"
        else:
            shares = ", ".join(f"{k} {v}%" for k, v in (self.percent_by_owner or {}).items())
            how = f"by the fixed map {Path(self.source).name} ({shares})"
        return f"{pool} allocated {how}"


@dataclass(frozen=True)
class Allocation:
    owner: str
    direct_cents: int  # the owner's own tagged cost
    shared_cents: int  # its part of the pool
    exact: Fraction  # exact amount in currency units (for audit and tests)

    @property
    def total_cents(self) -> int:
        return self.direct_cents + self.shared_cents


@dataclass(frozen=True)
class Chargeback:
    rule: ChargebackRule
    bill_cents: int  # the whole bill, rounded half-even to the cent
    pool_cents: int
    pool_parts: tuple[tuple[str, Decimal], ...]  # (untagged or shared value, cost)
    allocations: tuple[Allocation, ...]  # largest total first

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule.rule.value,
            "key": self.rule.key,
            "statement": self.rule.describe(),
            "bill": cents_text(self.bill_cents),
            "pool": cents_text(self.pool_cents),
            "allocations": [
                {
                    "owner": a.owner,
                    "direct": cents_text(a.direct_cents),
                    "shared": cents_text(a.shared_cents),
                    "total": cents_text(a.total_cents),
                }
                for a in self.allocations
            ],
        }


def cents_text(cents: int, grouped: bool = False) -> str:
    """Integer cents as a decimal string (`-123456` -> `-1234.56`, grouped `-1,234.56`)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{part:02d}" if grouped else f"{sign}{whole}.{part:02d}"


def to_cents(amount: Decimal | Fraction) -> int:
    """Round half-even to the cent."""
    if isinstance(amount, Fraction):
        return round(amount * 100)
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def largest_remainder(
    exact_cents: Sequence[Fraction], names: Sequence[str], target: int
) -> list[int]:
    """Integer cents summing to `target`, each within one cent of its exact amount."""
    floors = [math.floor(x) for x in exact_cents]
    missing = target - sum(floors)
    if not 0 <= missing <= len(floors):
        raise ValueError(f"target {target} is not the rounded sum of the amounts")
    order = sorted(
        range(len(floors)),
        key=lambda i: (-(exact_cents[i] - floors[i]), -exact_cents[i], names[i]),
    )
    for i in order[:missing]:
        floors[i] += 1
    return floors


def allocate(costs_by_value: Mapping[str | None, Decimal], rule: ChargebackRule) -> Chargeback:
    """Split the bill over owners: `costs_by_value` maps each value of the rule's key (None:
    untagged) to its exact cost over the period."""
    bill = sum(costs_by_value.values(), Decimal(0))
    shared = set(rule.shared_values)
    direct = {v: c for v, c in costs_by_value.items() if v is not None and v not in shared}
    pool_parts = tuple(
        ("(untagged)" if v is None else v, c)
        for v, c in sorted(costs_by_value.items(), key=lambda item: str(item[0]))
        if v is None or v in shared
    )
    pool = sum((c for _, c in pool_parts), Decimal(0))
    weights = _weights(direct, rule, pool)
    owners = sorted(set(direct) | set(weights))
    exact = {
        o: Fraction(direct.get(o, Decimal(0))) + Fraction(pool) * weights.get(o, Fraction(0))
        for o in owners
    }
    bill_cents = to_cents(bill)
    if not owners:
        raise ChargebackError(
            f"chargeback by {rule.key}: no cost is tagged with {rule.key}, so there is no "
            "owner to charge; check --chargeback-by or the tags (--alias)"
        )
    totals = largest_remainder([exact[o] * 100 for o in owners], owners, bill_cents)
    direct_cents = _direct_cents(direct, owners)
    allocations = [
        Allocation(o, direct_cents[o], total - direct_cents[o], exact[o])
        for o, total in zip(owners, totals, strict=True)
    ]
    allocations.sort(key=lambda a: (-a.total_cents, a.owner))
    return Chargeback(rule, bill_cents, to_cents(pool), pool_parts, tuple(allocations))


def _direct_cents(direct: Mapping[str, Decimal], owners: Sequence[str]) -> dict[str, int]:
    """Each owner's direct cost in cents, rounded so they sum to the rounded direct total."""
    amounts = [Fraction(direct.get(o, Decimal(0))) * 100 for o in owners]
    target = round(sum(amounts, Fraction(0)))
    return dict(zip(owners, largest_remainder(amounts, owners, target), strict=True))


def _weights(
    direct: Mapping[str, Decimal], rule: ChargebackRule, pool: Decimal
) -> dict[str, Fraction]:
    if rule.rule is Rule.FIXED:
        percents = rule.percent_by_owner or {}
        for owner in percents:
            if owner not in direct:
                raise ChargebackError(
                    f"{rule.source}: {rule.key} {owner!r} has no tagged cost in the period"
                    f"{did_you_mean(owner, direct)}; every owner in the map must appear in "
                    "the billing data"
                )
        return {o: Fraction(p) / 100 for o, p in percents.items()}
    if rule.rule is Rule.EVEN:
        return {o: Fraction(1, len(direct)) for o in direct} if direct else {}
    positive = {o: Fraction(c) for o, c in direct.items() if c > 0}
    total = sum(positive.values(), Fraction(0))
    if total == 0:
        if pool == 0:
            return {}
        raise ChargebackError(
            f"--chargeback proportional: no {rule.key} has positive tagged cost to weigh "
            "the shared cost by; use --chargeback even or fixed:FILE"
        )
    return {o: c / total for o, c in positive.items()}


def parse_rule(spec: str, key: str, shared_values: Sequence[str]) -> ChargebackRule:
    """`proportional`, `even` or `fixed:PATH` (YAML or JSON map of owner -> percent)."""
    name, _, path = spec.partition(":")
    choices = [r.value for r in Rule]
    if name not in choices:
        raise ChargebackError(
            f"--chargeback {spec!r}: choose proportional, even or fixed:FILE"
            f"{did_you_mean(name, choices)}"
        )
    rule = Rule(name)
    if rule is not Rule.FIXED:
        if path:
            raise ChargebackError(f"--chargeback {spec!r}: only fixed takes a file (fixed:FILE)")
        return ChargebackRule(rule, key, tuple(shared_values))
    if not path:
        raise ChargebackError("--chargeback fixed: give the map, e.g. fixed:chargeback.yaml")
    return ChargebackRule(rule, key, tuple(shared_values), read_fixed_map(Path(path)), path)


def read_fixed_map(path: Path) -> dict[str, Decimal]:
    """Owner -> percent from YAML or JSON; percents are non-negative and sum to 100."""
    from ruamel.yaml import YAML, YAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ChargebackError(f"{path}: cannot read the chargeback map: {exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else YAML(typ="safe").load(text)
    except (ValueError, YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ChargebackError(f"{path}: not a YAML/JSON map of owner: percent ({first})") from None
    if not isinstance(data, dict) or not data:
        raise ChargebackError(f"{path}: expected a map of owner: percent, e.g. 'ml-research: 60'")
    percents: dict[str, Decimal] = {}
    for owner, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ChargebackError(f"{path}: {owner}: percent must be a number (got {value!r})")
        try:
            percent = Decimal(str(value))
        except ArithmeticError:
            raise ChargebackError(
                f"{path}: {owner}: percent must be a number (got {value!r})"
            ) from None
        if not percent.is_finite() or percent < 0:
            raise ChargebackError(f"{path}: {owner}: percent must be 0 or more (got {value})")
        percents[str(owner)] = percent
    total = sum(percents.values(), Decimal(0))
    if total != 100:
        raise ChargebackError(f"{path}: percents sum to {total}, not 100")
    return percents
