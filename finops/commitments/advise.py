"""How many instances to commit to, from an hourly usage series, and what it saves and risks.

Committing `c` instances at `r_c` per hour, with on-demand `r_od` for the rest, costs over a
window of H hours with demand `d_t` instances in hour t:

    cost(c) = H * c * r_c + sum_t max(d_t - c, 0) * r_od

This is convex in `c`. Its slope between two demand levels is `H * r_c - r_od * #{t: d_t > c}`:
one more committed instance pays off while more than `beta = r_c / r_od` of the hours need it.
So the optimum is the `(floor(H * beta) + 1)`-th largest hourly demand (the lowest optimum
when several tie), and, since whole instances are bought, the cheaper of its floor and
ceiling. `beta` is the break-even utilisation; every committed instance is busy at least that
share of the measured hours, which is what "the steady part only" means here: bursts that
come and go are left to on-demand or spot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from aifinops.catalog.commitments import CommitmentOffer
from aifinops.catalog.models import InstanceInfo
from aifinops.config import HOURS_PER_MONTH

FLOOR_DROPS = (0.25, 0.5, 1.0)
"""Shares of the committed instances whose work goes away, for the risk table."""


@dataclass(frozen=True)
class HourlySeries:
    """Instances of one type in one region running in each clock hour of a window."""

    cloud: str
    region: str
    instance_type: str
    instance_hours: tuple[float, ...]
    """Instance-hours in each clock hour (a host up for half the hour counts 0.5)."""
    window_start: float
    """Unix seconds, the start of the first hour."""
    spot_share: float = 0.0
    """Share of the instance-hours that ran on spot."""
    source: str = ""

    @property
    def hours(self) -> int:
        return len(self.instance_hours)


def cost_usd(
    demand: Sequence[float], committed: float, commit_rate: float, on_demand_rate: float
) -> float:
    """Cost of `demand` (instances per hour) with `committed` instances committed, USD."""
    return sum(committed * commit_rate + max(d - committed, 0.0) * on_demand_rate for d in demand)


def optimal_level(demand: Sequence[float], commit_rate: float, on_demand_rate: float) -> float:
    """The lowest commitment level (instances, may be fractional) that minimises `cost_usd`."""
    if not demand or on_demand_rate <= 0 or commit_rate >= on_demand_rate:
        return 0.0
    beta = commit_rate / on_demand_rate
    rank = math.floor(len(demand) * beta) + 1
    if rank > len(demand):
        return 0.0
    return max(0.0, sorted(demand, reverse=True)[rank - 1])


def optimal_instances(demand: Sequence[float], commit_rate: float, on_demand_rate: float) -> int:
    """The whole number of instances to commit to that minimises `cost_usd` (lowest on ties)."""
    level = optimal_level(demand, commit_rate, on_demand_rate)
    low, high = math.floor(level), math.ceil(level)
    if low == high:
        return low
    low_cost = cost_usd(demand, low, commit_rate, on_demand_rate)
    high_cost = cost_usd(demand, high, commit_rate, on_demand_rate)
    return high if high_cost < low_cost - 1e-9 else low


@dataclass(frozen=True)
class FloorDrop:
    """What the commitment saves (negative: loses) per month if part of the work goes away."""

    drop_share: float
    """Share of the committed instances whose work disappears (1.0: all of it)."""
    saving_usd_per_month: float


@dataclass(frozen=True)
class OfferResult:
    offer: CommitmentOffer
    committed_instances: int
    saving_usd_per_month: float


@dataclass(frozen=True)
class CommitmentAdvice:
    """The recommended commitment for one instance type in one region, with its evidence."""

    cloud: str
    region: str
    instance_type: str
    offer: CommitmentOffer | None
    """None when no commitment pays (or no public commitment price is known: `reason`)."""
    committed_instances: int
    hours_measured: int
    window_start: float
    floor_instances: float
    """Always-on floor: the demand met in 99 % of the measured hours."""
    mean_instances: float
    peak_instances: float
    spot_share: float
    break_even_utilisation: float | None
    commitment_utilisation: float | None
    """Share of the committed instance-hours the measured demand would have used."""
    on_demand_usd_per_month: float
    """All of the measured work at on-demand, per month."""
    with_commitment_usd_per_month: float
    saving_vs_on_demand_usd_per_month: float
    committed_work_on_spot_usd_per_month: float | None
    """The committed part of the work on spot, with expected interruption rework; None when
    the type has no spot price."""
    saving_vs_spot_usd_per_month: float | None
    """Spot cost of the committed work minus the commitment's cost (negative: spot is cheaper
    for work that tolerates interruptions)."""
    risk: tuple[FloorDrop, ...]
    drop_share_before_loss: float | None
    """Share of the committed instances' work that can go away before the commitment costs more
    than on-demand would; None without a commitment."""
    commitment_usd_per_term: float
    """What the commitment costs over its whole term, used or not."""
    reason: str
    alternatives: tuple[OfferResult, ...] = field(default_factory=tuple)
    source: str = ""


def _quantile_low(values: Sequence[float], share: float) -> float:
    """The demand met in at least `share` of the hours (nearest rank from the top)."""
    ordered = sorted(values, reverse=True)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _per_month(total_usd: float, hours: int) -> float:
    return total_usd * HOURS_PER_MONTH / hours


def spot_wall_factor(info: InstanceInfo) -> float:
    """Expected wall hours per hour of work on spot (rework after interruptions, checkpoint
    writes), from the Spot Advisor range, with the default checkpointing of rightsizing."""
    from aifinops.rightsizing.spot import Checkpointing, expected_wall_hours, hazard_of

    work = HOURS_PER_MONTH
    return expected_wall_hours(work, hazard_of(info), Checkpointing()) / work


def advise(
    series: HourlySeries, offers: Sequence[CommitmentOffer], info: InstanceInfo
) -> CommitmentAdvice:
    """The offer and number of instances that save the most over the measured hours."""
    demand = series.instance_hours
    hours = len(demand)
    od = info.on_demand_usd_per_hour
    on_demand_total = cost_usd(demand, 0, 0.0, od)
    results = []
    for offer in offers:
        count = optimal_instances(demand, offer.usd_per_hour, od)
        saving = on_demand_total - cost_usd(demand, count, offer.usd_per_hour, od)
        results.append(OfferResult(offer, count, _per_month(saving, hours)))
    best = max(results, key=lambda r: (r.saving_usd_per_month, -r.offer.term_years), default=None)
    common = {
        "cloud": series.cloud,
        "region": series.region,
        "instance_type": series.instance_type,
        "hours_measured": hours,
        "window_start": series.window_start,
        "floor_instances": _quantile_low(demand, 0.99),
        "mean_instances": sum(demand) / hours,
        "peak_instances": max(demand),
        "spot_share": series.spot_share,
        "on_demand_usd_per_month": _per_month(on_demand_total, hours),
        "alternatives": tuple(sorted(results, key=lambda r: -r.saving_usd_per_month)),
        "source": series.source,
    }
    if best is None or best.committed_instances == 0 or best.saving_usd_per_month <= 0:
        reason = (
            "no public commitment price in the catalog for this type and region"
            if not offers
            else "no commitment pays: no instance ran the break-even share of the measured hours"
        )
        return CommitmentAdvice(
            offer=None,
            committed_instances=0,
            break_even_utilisation=None,
            commitment_utilisation=None,
            with_commitment_usd_per_month=_per_month(on_demand_total, hours),
            saving_vs_on_demand_usd_per_month=0.0,
            committed_work_on_spot_usd_per_month=None,
            saving_vs_spot_usd_per_month=None,
            risk=(),
            drop_share_before_loss=None,
            commitment_usd_per_term=0.0,
            reason=reason,
            **common,  # type: ignore[arg-type]
        )
    offer, count = best.offer, best.committed_instances
    used = sum(min(d, count) for d in demand)
    with_commitment = cost_usd(demand, count, offer.usd_per_hour, od)
    spot_cost = saving_vs_spot = None
    if info.spot_usd_per_hour is not None:
        spot_cost = _per_month(used * info.spot_usd_per_hour * spot_wall_factor(info), hours)
        saving_vs_spot = spot_cost - _per_month(count * offer.usd_per_hour * hours, hours)
    risk = tuple(
        FloorDrop(drop, _drop_saving(demand, count, drop, offer.usd_per_hour, od))
        for drop in FLOOR_DROPS
    )
    return CommitmentAdvice(
        offer=offer,
        committed_instances=count,
        break_even_utilisation=offer.break_even_utilisation,
        commitment_utilisation=used / (count * hours),
        with_commitment_usd_per_month=_per_month(with_commitment, hours),
        saving_vs_on_demand_usd_per_month=best.saving_usd_per_month,
        committed_work_on_spot_usd_per_month=spot_cost,
        saving_vs_spot_usd_per_month=saving_vs_spot,
        risk=risk,
        drop_share_before_loss=_drop_before_loss(demand, count, offer.usd_per_hour, od),
        commitment_usd_per_term=count
        * offer.usd_per_hour
        * HOURS_PER_MONTH
        * 12
        * offer.term_years,
        reason=(
            f"{count} of {max(demand):g} peak instances ran at least "
            f"{offer.break_even_utilisation:.0%} of the {hours} measured hours"
        ),
        **common,  # type: ignore[arg-type]
    )


def _drop_saving(
    demand: Sequence[float], count: int, drop: float, commit_rate: float, od: float
) -> float:
    """Monthly saving of `count` committed instances if demand falls by `drop x count`."""
    shifted = [max(0.0, d - drop * count) for d in demand]
    saving = cost_usd(shifted, 0, 0.0, od) - cost_usd(shifted, count, commit_rate, od)
    return _per_month(saving, len(demand))


def _drop_before_loss(demand: Sequence[float], count: int, commit_rate: float, od: float) -> float:
    """The largest drop (share of `count`) at which the commitment still saves, by bisection
    (the saving falls as the drop grows)."""
    if _drop_saving(demand, count, 1.0, commit_rate, od) >= 0:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(40):
        middle = (low + high) / 2
        if _drop_saving(demand, count, middle, commit_rate, od) >= 0:
            low = middle
        else:
            high = middle
    return low
