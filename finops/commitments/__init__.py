"""Commitment advice: Savings Plans / Reserved Instances (AWS), committed use discounts (GCP)
and reservations (Azure) sized to the measured always-on part of the load.

    series = usage.from_agent_files([Path("/var/lib/finops-agent")], lookback_days=30)
    advices, skipped = recommend(series)

The arithmetic (and why the optimum is a quantile of hourly demand) is in `advise.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from aifinops.commitments.advise import CommitmentAdvice, HourlySeries, advise

__all__ = ["CommitmentAdvice", "HourlySeries", "Skipped", "recommend"]


@dataclass(frozen=True)
class Skipped:
    """A series no advice could be given for, and why (never silently dropped)."""

    cloud: str
    region: str
    instance_type: str
    instance_hours: float
    reason: str


def recommend(
    series: Iterable[HourlySeries], term_years: int | None = None
) -> tuple[list[CommitmentAdvice], list[Skipped]]:
    """Advice per (cloud, region, type), biggest monthly saving first; `term_years` keeps only
    offers of that term. Series whose type or region the catalog does not know are skipped
    with the reason."""
    from aifinops import catalog
    from aifinops.catalog.commitments import offers
    from aifinops.errors import CatalogError

    advices, skipped = [], []
    for one in series:
        try:
            info = catalog.lookup(one.instance_type, one.region or None, cloud=one.cloud)
            found = offers(one.instance_type, info.region, cloud=one.cloud)
        except CatalogError as exc:
            skipped.append(
                Skipped(one.cloud, one.region, one.instance_type, sum(one.instance_hours), str(exc))
            )
            continue
        if not one.region:
            one = dataclasses.replace(one, region=info.region)
        if term_years is not None:
            found = [o for o in found if o.term_years == term_years]
        advices.append(advise(one, found, info))
    advices.sort(key=lambda a: -a.saving_vs_on_demand_usd_per_month)
    return advices, skipped
