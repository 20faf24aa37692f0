"""The anomaly rule (docs/reporting.md) against hand-computed cases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from aifinops.reporting import build_report
from aifinops.reporting.anomalies import AnomalySettings, find, judge

MONDAY = dt.date(2026, 1, 5)
SETTINGS = AnomalySettings(min_usd=50, min_ratio=0.25, k=3, weeks=4, min_points=3, dod_ratio=1.0)


def days(n: int, start: dt.date = MONDAY) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(n)]


def weekly(n: int) -> dict[dt.date, float]:
    """100 a weekday, 20 a weekend day."""
    return {d: (20.0 if d.weekday() >= 5 else 100.0) for d in days(n)}


def test_weekly_rhythm_is_not_an_anomaly():
    series = weekly(42)
    judged = judge(series, MONDAY, MONDAY + dt.timedelta(days=41), SETTINGS)
    # the first 21 days have under 3 same-weekday days behind them: the recent-peak fallback
    assert {j.method for j in judged[:21]} == {"recent-peak"}
    assert {j.method for j in judged[21:]} == {"baseline"}
    # a Monday after a weekend is +80 and 5x day over day, yet no anomaly: the previous
    # week's peak (100) is the fallback's reference, the same weekday's median the baseline's
    second_monday = judged[7]
    assert (second_monday.previous_day, second_monday.expected) == (20.0, 100.0)
    assert not any(j.anomalous for j in judged)
    monday = judged[28]
    assert (monday.day.weekday(), monday.expected, monday.spread) == (0, 100.0, 0.0)


def test_mad_spread_decides_with_hand_computed_threshold():
    # same-weekday history 100, 120, 80, 100: median 100, |dev| 0, 20, 20, 0 -> MAD 10,
    # spread 1.4826 x 10 = 14.826; k = 3 -> excess must exceed 44.478 (and be >= 30, >= 25)
    settings = AnomalySettings(min_usd=30, min_ratio=0.25, k=3)
    first = MONDAY
    history = {
        first: 100.0,
        first + dt.timedelta(7): 120.0,
        first + dt.timedelta(14): 80.0,
        first + dt.timedelta(21): 100.0,
    }
    target = first + dt.timedelta(28)
    for cost, anomalous in ((140.0, False), (144.4, False), (144.5, True), (150.0, True)):
        judged = judge({**history, target: cost}, first, target, settings)[-1]
        assert judged.expected == 100.0
        assert judged.spread == pytest.approx(14.826)
        assert judged.anomalous is anomalous, cost


def test_relative_and_absolute_floors():
    first = MONDAY
    big = {first + dt.timedelta(7 * w): 10_000.0 for w in range(4)}
    target = first + dt.timedelta(28)
    # +2,000 on a 10,000 baseline is 20% < 25%: not an anomaly despite MAD 0
    assert not judge({**big, target: 12_000.0}, first, target, SETTINGS)[-1].anomalous
    assert judge({**big, target: 12_500.0}, first, target, SETTINGS)[-1].anomalous
    small = {first + dt.timedelta(7 * w): 10.0 for w in range(4)}
    # 5x a 10 baseline is +40 < 50: too small to page anyone
    assert not judge({**small, target: 50.0}, first, target, SETTINGS)[-1].anomalous


def test_recent_peak_fallback_and_episode_cost_so_far():
    first = MONDAY
    series = {
        first: 10.0,
        first + dt.timedelta(1): 10.0,
        first + dt.timedelta(2): 100.0,
        first + dt.timedelta(3): 100.0,
    }
    last = first + dt.timedelta(3)
    found = find({("new", "EC2"): series}, first, last, SETTINGS)
    # day 2: +90 and 10x the peak of days 0-1; day 3 equals that new peak: not a jump
    assert [(a.first_day, a.last_day, a.method) for a in found] == [
        (first + dt.timedelta(2), first + dt.timedelta(2), "recent-peak")
    ]
    assert (found[0].cost_so_far, found[0].excess_so_far, found[0].open) == (100.0, 90.0, False)


def test_runaway_fleet_episode_is_open_with_its_cost_so_far():
    first = MONDAY
    series = {d: 100.0 for d in days(35)}
    last = first + dt.timedelta(days=34)
    for d in days(3, last - dt.timedelta(days=2)):
        series[d] = 400.0
    found = find({("vision", "EC2"): series, ("search", "EC2"): weekly(35)}, first, last, SETTINGS)
    assert len(found) == 1
    anomaly = found[0]
    assert (anomaly.project, anomaly.first_day, anomaly.last_day) == (
        "vision",
        last - dt.timedelta(2),
        last,
    )
    assert (anomaly.cost_so_far, anomaly.excess_so_far, anomaly.open) == (1200.0, 900.0, True)
    assert anomaly.method == "baseline"


def test_resources_behind_an_anomaly_from_the_export(tmp_path: Path):
    """i-steady costs 100 a day throughout; i-runaway appears for the last 3 days at 300."""
    header = "ChargePeriodStart,ProviderName,ServiceName,ResourceId,Tags,EffectiveCost,BilledCost"
    lines = [header]
    tags = '"{""Project"": ""vision""}"'
    for i, day in enumerate(days(35)):
        lines.append(f"{day}T00:00:00Z,AWS,EC2,i-steady,{tags},100,100")
        if i >= 32:
            lines.append(f"{day}T05:00:00Z,AWS,EC2,i-runaway,{tags},300,300")
    path = tmp_path / "runaway.csv"
    path.write_text("\n".join(lines) + "\n")
    report = build_report([path], anomalies=SETTINGS)
    assert len(report.anomalies) == 1 and report.open_anomalies == report.anomalies
    anomaly = report.anomalies[0]
    assert (anomaly.cost_so_far, anomaly.excess_so_far) == (1200.0, 900.0)
    # reference: the baseline weekdays of the 3 episode days (12 days, 100 each for i-steady)
    # scaled to 3 days = 300, so i-steady did not rise; i-runaway rose by its 900
    assert [(r.resource, r.cost, r.reference, r.increase) for r in anomaly.resources] == [
        ("i-runaway", 900.0, 0.0, 900.0),
        ("i-steady", 300.0, 300.0, 0.0),
    ]
