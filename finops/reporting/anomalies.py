"""Cost anomalies per project and service: the rule, and the episodes it finds.

A day's cost of one (project, service) series is judged against what that series usually
costs on the same weekday, so a weekly rhythm (quiet weekends, busy Mondays) is not news:

1. **Baseline**: the median of the same weekday's cost in the previous `weeks` weeks
   (D-7, D-14, D-21, D-28 by default; a day inside the data with no charge counts as 0).
   The spread is the median absolute deviation (MAD) of those days, scaled by 1.4826 so
   that it estimates a standard deviation for normal noise.
2. With at least `min_points` such days, D is anomalous when all three hold:
   - excess = cost(D) - baseline >= `min_usd` (absolute floor),
   - excess >= `min_ratio` x baseline (relative floor),
   - excess > `k` x 1.4826 x MAD (outside the usual spread).
3. With fewer (a new series, or less than `min_points` weeks of history), the rule falls
   back to the **recent peak**, the highest cost of the previous 7 days inside the data
   (at least one): excess = cost(D) - peak >= `min_usd` and cost(D) >= (1 + `dod_ratio`)
   x peak. A plain day-over-day jump would flag every Monday after a quiet weekend; the
   peak of the week before does not, and after a single day of history it is day over day.

Every anomaly also shows its **day-over-day** change (cost(D) - cost(D-1)). Only increases
count (a drop saves money). Consecutive anomalous days of one series form an episode; its
**cost so far** is the sum of the excess over the expected cost (the baseline, or the
recent peak before the episode began) from its first to its last day.
An episode still open on the last day of the billing data is what a scheduled job acts on
(`finops report --fail-on-anomaly` exits 1). The last day of an export may be partial;
a partial day can only lower costs, so it hides anomalies rather than inventing them.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

MAD_SCALE = 1.4826


@dataclass(frozen=True)
class AnomalySettings:
    weeks: int = 4  # same-weekday days looked back for the baseline
    min_points: int = 3  # of those, how many must be inside the data
    k: float = 3.0  # MADs above the baseline
    min_usd: float = 50.0  # excess per day, in the billing currency
    min_ratio: float = 0.25  # excess as a share of the baseline
    dod_ratio: float = 1.0  # recent peak: cost(D) >= (1 + dod_ratio) x the last 7 days' peak

    def describe(self) -> str:
        return (
            f"same-weekday median of {self.weeks} weeks (>= {self.min_points} in the data), "
            f"excess >= {self.min_usd:g}, >= {self.min_ratio:.0%} of the baseline and > "
            f"{self.k:g} x 1.4826 x MAD; with less history, against the peak of the previous 7 days: "
            f"excess >= {self.min_usd:g} and cost >= {1 + self.dod_ratio:g} x that peak"
        )


@dataclass(frozen=True)
class Judgement:
    """One day of one series, as the rule sees it."""

    day: dt.date
    cost: float
    expected: float | None  # the baseline, or the recent peak in the fallback
    method: str  # "baseline" | "recent-peak"
    spread: float | None  # 1.4826 x MAD (baseline only)
    previous_day: float | None
    anomalous: bool


@dataclass(frozen=True)
class ResourceCost:
    resource: str
    cost: float  # over the episode
    reference: float  # per day on the reference day(s), times the episode's days
    increase: float


@dataclass
class Anomaly:
    """An episode: consecutive anomalous days of one (project, service) series."""

    project: str
    service: str
    first_day: dt.date
    last_day: dt.date
    method: str
    cost_so_far: float  # cost of the episode's days
    excess_so_far: float  # over the expected cost
    last_cost: float
    last_expected: float
    day_over_day: float | None  # last day minus the day before
    open: bool  # still anomalous on the data's last day
    days: list[Judgement] = field(default_factory=list)
    resources: list[ResourceCost] = field(default_factory=list)
    history: list[tuple[dt.date, float]] = field(default_factory=list)  # for the chart

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "service": self.service,
            "firstDay": self.first_day.isoformat(),
            "lastDay": self.last_day.isoformat(),
            "method": self.method,
            "open": self.open,
            "costSoFar": round(self.cost_so_far, 2),
            "excessSoFar": round(self.excess_so_far, 2),
            "lastCost": round(self.last_cost, 2),
            "expected": round(self.last_expected, 2),
            "dayOverDay": None if self.day_over_day is None else round(self.day_over_day, 2),
            "resources": [
                {
                    "resource": r.resource,
                    "cost": round(r.cost, 2),
                    "reference": round(r.reference, 2),
                    "increase": round(r.increase, 2),
                }
                for r in self.resources
            ],
        }


def judge(
    series: Mapping[dt.date, float],
    first: dt.date,
    last: dt.date,
    settings: AnomalySettings,
) -> list[Judgement]:
    """Judge every day of [first, last] of one series (days without cost count as 0)."""

    def cost(day: dt.date) -> float | None:
        return series.get(day, 0.0) if first <= day <= last else None

    out = []
    day = first
    while day <= last:
        today = series.get(day, 0.0)
        history = [
            c
            for w in range(1, settings.weeks + 1)
            if (c := cost(day - dt.timedelta(days=7 * w))) is not None
        ]
        previous = cost(day - dt.timedelta(days=1))
        if len(history) >= settings.min_points:
            baseline = statistics.median(history)
            spread = MAD_SCALE * statistics.median(abs(c - baseline) for c in history)
            excess = today - baseline
            anomalous = (
                excess >= settings.min_usd
                and excess >= settings.min_ratio * baseline
                and excess > settings.k * spread
            )
            out.append(Judgement(day, today, baseline, "baseline", spread, previous, anomalous))
        else:
            recent = [c for n in range(1, 8) if (c := cost(day - dt.timedelta(days=n))) is not None]
            peak = max(recent) if recent else None
            anomalous = (
                peak is not None
                and today - peak >= settings.min_usd
                and today >= (1 + settings.dod_ratio) * peak
            )
            out.append(Judgement(day, today, peak, "recent-peak", None, previous, anomalous))
        day += dt.timedelta(days=1)
    return out


def episodes(
    project: str,
    service: str,
    judgements: Sequence[Judgement],
    data_last_day: dt.date,
    report_first: dt.date | None = None,
) -> list[Anomaly]:
    """Runs of consecutive anomalous days, as anomalies (those ending before
    `report_first` are left out: they belong to an earlier report)."""
    found: list[Anomaly] = []
    run: list[Judgement] = []
    for judgement in [*judgements, None]:
        if judgement is not None and judgement.anomalous:
            run.append(judgement)
            continue
        if run and (report_first is None or run[-1].day >= report_first):
            found.append(_episode(project, service, run, data_last_day, judgements))
        run = []
    return found


def _episode(
    project: str,
    service: str,
    run: list[Judgement],
    data_last_day: dt.date,
    judgements: Sequence[Judgement],
) -> Anomaly:
    # The recent peak of a later episode day holds the episode's own first days: every
    # fallback day is compared with the peak from before the episode began.
    start_level = run[0].expected if run[0].expected is not None else 0.0

    def expected(j: Judgement) -> float:
        return j.expected if j.method == "baseline" and j.expected is not None else start_level

    last = run[-1]
    return Anomaly(
        project=project,
        service=service,
        first_day=run[0].day,
        last_day=last.day,
        method=last.method,
        cost_so_far=sum(j.cost for j in run),
        excess_so_far=sum(j.cost - expected(j) for j in run),
        last_cost=last.cost,
        last_expected=expected(last),
        day_over_day=None if last.previous_day is None else last.cost - last.previous_day,
        open=last.day == data_last_day,
        days=list(run),
        history=[(j.day, j.cost) for j in judgements],
    )


def find(
    series: Mapping[tuple[str, str], Mapping[dt.date, float]],
    first: dt.date,
    last: dt.date,
    settings: AnomalySettings,
    report_first: dt.date | None = None,
) -> list[Anomaly]:
    """Anomalies of every (project, service) series, open ones and the largest first."""
    found = []
    for (project, service), costs in sorted(series.items()):
        found += episodes(project, service, judge(costs, first, last, settings), last, report_first)
    found.sort(key=lambda a: (not a.open, -a.excess_so_far, a.project, a.service))
    return found


def reference_days(anomaly: Anomaly, settings: AnomalySettings, first: dt.date) -> list[dt.date]:
    """The days an anomaly's resources are compared with: for each episode day, its
    baseline weekdays (or, for the recent-peak fallback, the 7 days before the episode),
    inside the data."""
    if anomaly.method == "recent-peak":
        return [
            day
            for n in range(7, 0, -1)
            if (day := anomaly.first_day - dt.timedelta(days=n)) >= first
        ]
    days = set()
    for judgement in anomaly.days:
        for w in range(1, settings.weeks + 1):
            day = judgement.day - dt.timedelta(days=7 * w)
            if day >= first:
                days.add(day)
    return sorted(days)


def resources_behind(
    anomaly: Anomaly,
    costs: Mapping[tuple[str, dt.date], Decimal | float],
    reference: Sequence[dt.date],
    top: int = 5,
) -> list[ResourceCost]:
    """The resources whose cost rose most over the episode, against the reference days
    (scaled to the episode's length)."""
    episode_days = {j.day for j in anomaly.days}
    per_resource: dict[str, list[float]] = {}
    for (resource, day), cost in costs.items():
        totals = per_resource.setdefault(resource, [0.0, 0.0])
        if day in episode_days:
            totals[0] += float(cost)
        elif day in reference:
            totals[1] += float(cost)
    scale = len(episode_days) / len(reference) if reference else 0.0
    rows = [
        ResourceCost(resource, cost, ref * scale, cost - ref * scale)
        for resource, (cost, ref) in per_resource.items()
    ]
    rows.sort(key=lambda r: (-r.increase, r.resource))
    return [r for r in rows if r.cost > 0][:top]
