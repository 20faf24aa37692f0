"""Chargeback: hand-computed splits, and on the FOCUS sample every cent of the bill lands on
a team (checked against an exact split computed here with csv + Fraction)."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from focus_oracle import SAMPLE, UNTAGGED, costs_by

from aifinops.reporting import build_report
from aifinops.reporting.chargeback import (
    ChargebackError,
    ChargebackRule,
    Rule,
    allocate,
    largest_remainder,
    parse_rule,
    read_fixed_map,
)

HEADER = "ChargePeriodStart,ProviderName,ServiceName,Tags,EffectiveCost,BilledCost"


def mini_export(tmp_path: Path) -> Path:
    path = tmp_path / "teams.csv"
    lines = [
        '2026-10-01,AWS,EC2,"{""Team"": ""ml""}",60.00,60.00',
        '2026-10-01,AWS,EC2,"{""Team"": ""search""}",30.00,30.00',
        '2026-10-01,AWS,EKS,"{""Team"": ""platform""}",6.00,6.00',
        "2026-10-01,AWS,S3,NULL,4.00,4.00",
    ]
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def totals(report) -> dict[str, str]:
    return {a.owner: f"{a.total_cents / 100:.2f}" for a in report.chargeback.allocations}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # pool = platform 6 + untagged 4 = 10; ml 60/90 of it = 6.666.. -> largest remainder
        ("proportional", {"ml": "66.67", "search": "33.33"}),
        ("even", {"ml": "65.00", "search": "35.00"}),
        ("fixed", {"ml": "67.00", "search": "33.00"}),
    ],
)
def test_hand_computed_splits(tmp_path, spec, expected):
    path = mini_export(tmp_path)
    if spec == "fixed":
        (tmp_path / "map.yaml").write_text("ml: 70\nsearch: 30\n")
        spec = f"fixed:{tmp_path / 'map.yaml'}"
    rule = parse_rule(spec, "Team", ["platform"])
    report = build_report([path], keys=["Team"], chargeback=rule)
    assert totals(report) == expected
    assert report.chargeback.bill_cents == 10000
    assert report.chargeback.pool_cents == 1000
    assert sum(a.total_cents for a in report.chargeback.allocations) == 10000
    assert "untagged cost and Team=platform allocated" in rule.describe()


def test_largest_remainder_gives_the_missing_cents_to_the_largest_remainders():
    # three owners of 1.003333... each: 300 whole cents, 1 missing, ties broken by name
    thirds = [Fraction(301, 3)] * 3
    assert largest_remainder(thirds, ["b", "a", "c"], 301) == [100, 101, 100]
    assert largest_remainder([Fraction(1049, 10), Fraction(951, 10)], ["x", "y"], 200) == [105, 95]
    with pytest.raises(ValueError):
        largest_remainder([Fraction(1, 2)], ["x"], 5)


def test_negative_pool_and_owner_without_tagged_cost():
    rule = ChargebackRule(Rule.EVEN, "Team")
    result = allocate({"a": Decimal("1.00"), "b": Decimal("1.00"), None: Decimal("-0.01")}, rule)
    assert sum(a.total_cents for a in result.allocations) == 199
    assert sorted(a.total_cents for a in result.allocations) == [99, 100]


def _exact_split(costs: dict[str, Decimal], rule: str) -> dict[str, Fraction]:
    direct = {k: Fraction(v) for k, v in costs.items() if k != UNTAGGED}
    pool = Fraction(costs.get(UNTAGGED, Decimal(0)))
    if rule == "even":
        weights = {k: Fraction(1, len(direct)) for k in direct}
    else:
        positive = {k: v for k, v in direct.items() if v > 0}
        weights = {k: v / sum(positive.values()) for k, v in positive.items()}
    return {k: direct[k] + pool * weights.get(k, Fraction(0)) for k in direct}


@pytest.mark.parametrize("rule", ["proportional", "even"])
def test_sample_chargeback_totals_equal_the_bill_to_the_cent(rule):
    report = build_report(
        [SAMPLE],
        keys=["Team"],
        aliases={"Team": ["business_unit"]},
        cost_column="BilledCost",
        chargeback=parse_rule(rule, "Team", []),
    )
    costs = costs_by("Team", ["business_unit"], column="BilledCost")
    bill = sum(costs.values(), Decimal(0))
    bill_cents = int((bill * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    allocations = {a.owner: a for a in report.chargeback.allocations}
    assert report.chargeback.bill_cents == bill_cents
    assert sum(a.total_cents for a in allocations.values()) == bill_cents
    exact = _exact_split(costs, rule)
    assert allocations.keys() == exact.keys()
    for owner, amount in exact.items():
        assert allocations[owner].exact == amount
        assert abs(allocations[owner].total_cents - amount * 100) < 1, owner
        assert allocations[owner].total_cents in (math.floor(amount * 100), math.ceil(amount * 100))
    assert report.chargeback.pool_cents == int(
        (costs[UNTAGGED] * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    )


def test_fixed_map_errors_name_the_file(tmp_path):
    bad_sum = tmp_path / "sum.yaml"
    bad_sum.write_text("ml: 70\nsearch: 20\n")
    with pytest.raises(ChargebackError, match=r"sum.yaml: percents sum to 90, not 100"):
        read_fixed_map(bad_sum)
    (tmp_path / "neg.json").write_text('{"ml": 110, "search": -10}')
    with pytest.raises(ChargebackError, match=r"neg.json: search: percent must be 0 or more"):
        read_fixed_map(tmp_path / "neg.json")
    typo = tmp_path / "typo.yaml"
    typo.write_text("ml: 50\nsearhc: 50\n")
    with pytest.raises(
        ChargebackError, match=r"Team 'searhc' has no tagged cost.*did you mean search"
    ):
        build_report(
            [mini_export(tmp_path)],
            keys=["Team"],
            chargeback=parse_rule(f"fixed:{typo}", "Team", []),
        )
    with pytest.raises(
        ChargebackError, match=r"--chargeback 'proportionnal'.*did you mean proportional"
    ):
        parse_rule("proportionnal", "Team", [])
