"""Commitment sizing against an independent brute force over every commitment level.

The brute force prices each whole number of committed instances hour by hour with its own
loop (no code shared with `aifinops.commitments`), so a wrong quantile rank, a wrong tie rule
or a wrong floor/ceiling choice in the closed form fails here.
"""

from __future__ import annotations

import random

import pytest

from aifinops import catalog
from aifinops.catalog.commitments import offers
from aifinops.commitments import HourlySeries, recommend
from aifinops.commitments.advise import advise, optimal_instances


def brute_force(demand: list[float], rate: float, on_demand: float) -> tuple[int, float]:
    """(instances, total USD) of the cheapest commitment; lowest count on ties."""
    best_count, best_cost = 0, float("inf")
    for count in range(0, int(max(demand)) + 2):
        total = 0.0
        for hour_demand in demand:
            total += count * rate
            if hour_demand > count:
                total += (hour_demand - count) * on_demand
        if total < best_cost - 1e-9:
            best_count, best_cost = count, total
    return best_count, best_cost


def _random_demand(rng: random.Random, hours: int) -> list[float]:
    floor = rng.randint(0, 6)
    daily = rng.randint(0, 8)
    return [
        floor
        + (daily if 8 <= hour % 24 < 8 + rng.randint(6, 16) else 0)
        + rng.choice([0, 0, 0, 1, 2, 5])
        - (floor if rng.random() < 0.02 else 0)  # an outage hour now and then
        for hour in range(hours)
    ]


@pytest.mark.parametrize("seed", range(40))
def test_optimal_instances_matches_brute_force_on_random_series(seed: int) -> None:
    rng = random.Random(seed)
    demand = _random_demand(rng, rng.choice([24 * 7, 24 * 30, 24 * 45 + 7]))
    on_demand = rng.uniform(0.5, 40)
    rate = on_demand * rng.choice([0.3, 0.45, 0.5, 0.63, 0.7, 0.9])
    expected, _ = brute_force(demand, rate, on_demand)
    assert optimal_instances(demand, rate, on_demand) == expected


@pytest.mark.parametrize("seed", range(20))
def test_fractional_instance_hours_match_brute_force(seed: int) -> None:
    """Hosts up for part of an hour give fractional demand; whole instances are committed."""
    rng = random.Random(1000 + seed)
    demand = [round(rng.uniform(0, 9) * rng.random(), 3) for _ in range(24 * 10)]
    expected, _ = brute_force(demand, 0.63, 1.0)
    assert optimal_instances(demand, 0.63, 1.0) == expected


def test_floor_is_committed_and_bursts_are_not() -> None:
    """2 instances always on, 3 more for half of the hours: at a 63 % break-even only the 2
    always-on instances pay; at 40 % the burst instances pay too."""
    demand = [2.0 + (3.0 if h % 2 else 0.0) for h in range(24 * 14)]
    assert optimal_instances(demand, 0.63, 1.0) == 2
    assert optimal_instances(demand, 0.40, 1.0) == 5
    assert optimal_instances(demand, 1.0, 1.0) == 0
    assert optimal_instances([0.0] * 100, 0.5, 1.0) == 0


def test_ties_commit_to_the_lower_level() -> None:
    """At exactly the break-even share the second instance saves nothing: do not buy it."""
    demand = [2.0] * 50 + [1.0] * 50
    assert brute_force(demand, 0.5, 1.0)[0] == 1
    assert optimal_instances(demand, 0.5, 1.0) == 1


def _series(demand: list[float], instance_type: str = "g5.xlarge", region: str = "us-east-1"):
    return HourlySeries("aws", region, instance_type, tuple(demand), window_start=0.0)


def test_advice_picks_the_offer_saving_most_and_prices_it() -> None:
    rng = random.Random(7)
    demand = _random_demand(rng, 24 * 30)
    info = catalog.lookup("p4d.24xlarge", "us-east-1")
    found = offers("p4d.24xlarge", "us-east-1")
    advice = advise(_series(demand, "p4d.24xlarge"), found, info)
    od = info.on_demand_usd_per_hour
    best = max(
        ((o, *brute_force(demand, o.usd_per_hour, od)) for o in found),
        key=lambda item: -item[2],
    )
    offer, count, total = best
    assert advice.committed_instances == count
    assert advice.offer is not None and advice.offer.usd_per_hour == offer.usd_per_hour
    assert advice.offer.basis == "transcribed"  # the RI, not the estimated SP at the same rate
    on_demand_total = sum(demand) * od
    assert advice.saving_vs_on_demand_usd_per_month == pytest.approx(
        (on_demand_total - total) * 730 / len(demand)
    )
    assert advice.break_even_utilisation == pytest.approx(offer.usd_per_hour / od)


def test_risk_if_the_floor_drops() -> None:
    """4 instances always on, committed at 63 %: losing all of their work loses the whole
    commitment; losing a quarter still saves; the loss threshold sits where the arithmetic
    says (1 - 0.63 of the committed hours still used, i.e. a 37 % drop)."""
    info = catalog.lookup("g5.xlarge", "us-east-1")
    found = [o for o in offers("g5.xlarge", "us-east-1") if o.offering == "aws-standard-ri"]
    advice = advise(_series([4.0] * (24 * 30)), found, info)
    rate = found[0].usd_per_hour
    assert advice.committed_instances == 4
    drops = {d.drop_share: d.saving_usd_per_month for d in advice.risk}
    assert drops[1.0] == pytest.approx(-4 * rate * 730)
    assert drops[0.25] == pytest.approx(3 * (info.on_demand_usd_per_hour - rate) * 730 - rate * 730)
    assert advice.drop_share_before_loss == pytest.approx(
        1 - rate / info.on_demand_usd_per_hour, abs=1e-6
    )
    assert advice.commitment_usd_per_term == pytest.approx(4 * rate * 730 * 12)


def test_spot_comparison_for_the_same_work() -> None:
    info = catalog.lookup("g5.xlarge", "us-east-1")
    assert info.spot_usd_per_hour is not None
    found = offers("g5.xlarge", "us-east-1")
    advice = advise(_series([3.0] * (24 * 30)), found, info)
    spot = advice.committed_work_on_spot_usd_per_month
    assert spot is not None
    # same instance-hours on spot, plus rework: never cheaper than the bare spot price
    assert spot >= 3 * info.spot_usd_per_hour * 730
    assert advice.saving_vs_spot_usd_per_month == pytest.approx(
        spot - 3 * advice.offer.usd_per_hour * 730  # type: ignore[union-attr]
    )


def test_no_price_no_advice_and_unknown_types_are_skipped_loudly() -> None:
    advices, skipped = recommend(
        [
            _series([2.0] * 48, "ml.g5.xlarge"),  # SageMaker: no Savings Plans data
            _series([2.0] * 48, "g5.xlarg"),  # typo
            _series([1.0] * 48, "g5.xlarge"),
        ]
    )
    by_type = {a.instance_type: a for a in advices}
    assert by_type["ml.g5.xlarge"].offer is None
    assert "no public commitment price" in by_type["ml.g5.xlarge"].reason
    assert by_type["g5.xlarge"].committed_instances == 1
    assert [s.instance_type for s in skipped] == ["g5.xlarg"]
    assert "did you mean" in skipped[0].reason


def test_term_filter_and_gcp_azure_offers() -> None:
    advices, _ = recommend(
        [
            HourlySeries("gcp", "", "a3-highgpu-8g", (2.0,) * 200, 0.0),
            HourlySeries("azure", "", "Standard_NC24ads_A100_v4", (1.0,) * 200, 0.0),
        ],
        term_years=3,
    )
    assert {a.offer.term_years for a in advices if a.offer} == {3}
    assert {a.region for a in advices} == {"us-central1", "eastus"}
    assert all(a.offer and a.offer.basis == "estimated" for a in advices)
