"""The interruption model: monthly share -> hourly hazard, expected run time, Monte Carlo."""

from __future__ import annotations

import math
import statistics

import pytest

from aifinops import catalog
from aifinops.rightsizing.spot import (
    Checkpointing,
    SpotScenario,
    best_option,
    expected_interruptions,
    expected_wall_hours,
    hazard_of,
    hourly_hazard,
    run_option,
    run_options,
    simulate,
)


def test_monthly_share_is_a_hazard_not_a_per_run_probability() -> None:
    # 20% of instances interrupted in a 730-hour month: survival 0.8 over 730 h
    rate = hourly_hazard(0.20)
    assert rate == pytest.approx(-math.log(0.8) / 730)
    assert math.exp(-rate * 730) == pytest.approx(0.8)
    # an 8-hour run sees about 0.24% chance, not 20%
    assert 1 - math.exp(-rate * 8) == pytest.approx(0.00244, abs=1e-5)
    with pytest.raises(ValueError, match="monthly interruption share"):
        hourly_hazard(1.0)


def test_hazard_of_uses_the_upper_bound_of_the_range() -> None:
    assert catalog.lookup("g4dn.12xlarge").interruption_range == "10-15%"
    assert hazard_of(catalog.lookup("g4dn.12xlarge")) == pytest.approx(hourly_hazard(0.15))
    assert hazard_of(catalog.lookup("p3.2xlarge")) == pytest.approx(hourly_hazard(0.30))  # >20%


def test_expected_wall_time_without_interruptions_is_work_plus_checkpoint_writes() -> None:
    ckpt = Checkpointing(interval_hours=0.5, write_hours=0.05, restart_hours=0.1)
    assert expected_wall_hours(2.0, 0.0, ckpt) == pytest.approx(2.0 + 4 * 0.05)
    assert expected_wall_hours(2.2, 0.0, ckpt) == pytest.approx(2.2 + 5 * 0.05)
    assert expected_interruptions(2.0, 0.0, ckpt) == 0


def test_expected_wall_time_matches_the_segment_formula() -> None:
    ckpt = Checkpointing(interval_hours=1.0, write_hours=0.0, restart_hours=0.25)
    rate = 0.1
    per_segment = (1 / rate + 0.25) * math.expm1(rate * 1.0)
    assert expected_wall_hours(3.0, rate, ckpt) == pytest.approx(3 * per_segment)
    assert expected_interruptions(3.0, rate, ckpt) == pytest.approx(3 * math.expm1(0.1))


def test_monte_carlo_mean_agrees_with_the_expectation() -> None:
    ckpt = Checkpointing()
    scenario = SpotScenario(
        work_hours=20.0,
        spot_usd_per_hour=1.0,
        on_demand_usd_per_hour=3.0,
        hazard_per_hour=0.05,
        checkpointing=ckpt,
        capacity_gap_mean_hours=0.0,
        checkpoint_on_notice=False,
        fallback_after_hours=None,
    )
    runs = simulate(scenario, 4000, seed=3)
    mean = statistics.mean(r.wall_hours for r in runs)
    assert mean == pytest.approx(expected_wall_hours(20.0, 0.05, ckpt), rel=0.01)
    assert simulate(scenario, 50, seed=3) == runs[:50]  # seeded: reproducible


def test_the_hook_and_the_fallback_bound_the_tail() -> None:
    base = SpotScenario(
        work_hours=40.0,
        spot_usd_per_hour=1.0,
        on_demand_usd_per_hour=3.0,
        hazard_per_hour=0.1,
        checkpointing=Checkpointing(),
        capacity_gap_mean_hours=2.0,
        checkpoint_on_notice=False,
        fallback_after_hours=None,
    )
    from dataclasses import replace

    plain = sorted(r.wall_hours for r in simulate(base, 2000, seed=1))
    guarded = simulate(
        replace(base, checkpoint_on_notice=True, fallback_after_hours=1 / 6), 2000, seed=1
    )
    walls = sorted(r.wall_hours for r in guarded)
    assert walls[1899] < plain[1899]  # p95
    assert any(r.on_demand_hours > 0 for r in guarded)


def test_the_cheapest_option_within_the_wall_time_limit_is_chosen() -> None:
    ckpt = Checkpointing()
    baseline = catalog.lookup("p3.2xlarge")
    types = [catalog.lookup(t) for t in ("p3.2xlarge", "g4dn.xlarge", "g6e.xlarge")]
    options = run_options(baseline, 8.0, types, checkpointing=ckpt, min_accelerator_memory_gib=14.4)
    base = run_option(baseline, 8.0, 1.0, spot=False, checkpointing=ckpt)
    best = best_option(options, base.expected_wall_hours * 1.15)
    assert best is not None and best.label == "g6e.xlarge spot"
    # a T4 takes 8 / 0.43 hours: cheapest of all, but too slow
    assert options[0].label == "g4dn.xlarge spot"
    assert options[0].work_hours == pytest.approx(8 / 0.43)
    # memory below the peak plus headroom is never an option
    assert (
        run_options(baseline, 8.0, types, checkpointing=ckpt, min_accelerator_memory_gib=20)[
            0
        ].instance_type
        == "g6e.xlarge"
    )
