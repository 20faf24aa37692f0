"""Interruption simulation: Monte Carlo of spot interruptions under three readings of the
Spot Advisor's band.

The Spot Advisor gives, per type, the share of spot instances interrupted in a month. What
hazard that is depends on how long those instances lived: read as instances living 8 hours,
24 hours or 30 days (720 h), the per-hour hazard `-ln(1 - share) / life` differs 90-fold.
Each job is simulated under each reading.

For each job and reading, seeded runs per strategy: on-demand; spot with periodic
checkpoints only (no hook, no fallback: wait for spot capacity); spot with the agent's
checkpoint hook (work up to the notice is kept); spot with the hook and the fallback
controller (on-demand after `fallbackAfterMinutes` without spot capacity); and spot with no
checkpoints at all. A job on N nodes stops when any node is interrupted (hazard x N). Prices
per node from the catalog. Cost and completion time: mean, p50, p95.

    .venv/bin/python bench/interruption_sim.py
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, replace

from aifinops import catalog
from aifinops.rightsizing.spot import (
    Checkpointing,
    SimulatedRun,
    SpotScenario,
    expected_wall_hours,
    hazard_of,
    simulate,
)

MAX_INTERRUPTIONS_PER_SEGMENT = 8.0
"""Above this, a strategy without the notice hook is not simulated (it would not end)."""
LIVES = (8.0, 24.0, 720.0)
"""Instance lives (hours) under which the monthly share is read."""

COMMAND = ".venv/bin/python bench/interruption_sim.py"
REGION = "us-east-1"


@dataclass(frozen=True)
class Job:
    name: str
    instance_type: str
    nodes: int
    work_hours: float


JOBS = (
    Job("vision run (the audit's pick)", "g6e.xlarge", 1, 8 * 1.0 / 1.67),
    Job("vision run on the classic type", "p3.2xlarge", 1, 8.0),
    Job("8-node A100 run, 3 days", "p4d.24xlarge", 8, 72.0),
    Job("32-node V100 run, 1 week", "p3.16xlarge", 32, 168.0),
)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4_000)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--capacity-gap-minutes", type=float, default=45.0)
    parser.add_argument("--fallback-after-minutes", type=float, default=10.0)
    parser.add_argument("--checkpoint-minutes", type=float, default=30.0)
    args = parser.parse_args()

    ckpt = Checkpointing(interval_hours=args.checkpoint_minutes / 60)
    print(
        f"Interruption simulation: {args.runs} runs per strategy, seed {args.seed}; checkpoint every "
        f"{args.checkpoint_minutes:g} min ({ckpt.write_hours * 60:.0f} min to write), relaunch "
        f"{ckpt.restart_hours * 60:.0f} min, spot capacity back after an exponential gap of mean "
        f"{args.capacity_gap_minutes:g} min, fallback after {args.fallback_after_minutes:g} min"
    )
    print(
        "hazard per node-hour = -ln(1 - monthly share) / instance life (share: the range's upper "
        f"bound, >20% as 30%), lives {', '.join(f'{life:g} h' for life in LIVES)}"
    )
    summary: list[str] = []
    for job in JOBS:
        for life in LIVES:
            summary.append(simulate_job(job, life, args))
    print()
    print("spot + hook + fallback against on-demand, by reading of the band (cost; p95 wall):")
    for line in summary:
        print(f"  {line}")
    print()
    print(f"reproduce: {COMMAND}")
    return 0


def simulate_job(job: Job, life: float, args: argparse.Namespace) -> str:
    """Print one job's table under one reading; return its one-line summary."""
    ckpt = Checkpointing(interval_hours=args.checkpoint_minutes / 60)
    info = catalog.lookup(job.instance_type, REGION)
    hazard = hazard_of(info, life) * job.nodes
    spot_price = info.usd_per_hour(spot=True) * job.nodes
    od_price = info.on_demand_usd_per_hour * job.nodes
    base = SpotScenario(
        work_hours=job.work_hours,
        spot_usd_per_hour=spot_price,
        on_demand_usd_per_hour=od_price,
        hazard_per_hour=hazard,
        checkpointing=ckpt,
        capacity_gap_mean_hours=args.capacity_gap_minutes / 60,
        checkpoint_on_notice=False,
        fallback_after_hours=None,
    )
    no_ckpt = Checkpointing(
        interval_hours=job.work_hours, write_hours=0.0, restart_hours=ckpt.restart_hours
    )
    fallback = args.fallback_after_minutes / 60
    strategies: list[tuple[str, SpotScenario | None]] = [
        ("on-demand", None),
        ("spot, no checkpoints", replace(base, checkpointing=no_ckpt)),
        ("spot, periodic checkpoints", base),
        ("spot + checkpoint hook", replace(base, checkpoint_on_notice=True)),
        (
            "spot + hook + fallback",
            replace(base, checkpoint_on_notice=True, fallback_after_hours=fallback),
        ),
    ]
    od_wall = expected_wall_hours(job.work_hours, 0.0, ckpt)
    od_cost = od_price * od_wall
    print()
    print(
        f"{job.name}: {job.nodes} x {info.instance_type} ({info.interruption_range} a month, "
        f"read over {life:g} h lives), {job.work_hours:.2f} h of work; job hazard "
        f"{hazard:.5f}/h = {hazard * job.work_hours:.3f} expected interruptions per "
        "uninterrupted run"
    )
    header = (
        f"  {'strategy':<28}{'USD mean':>12}{'p50':>12}{'p95':>12}{'wall h p50':>11}{'p95':>8}"
        f"{'E[intr]':>9}{'runs >=1':>9}{'on OD':>7}{'vs OD cost':>11}{'p95 wall':>9}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    line = ""
    for label, scenario in strategies:
        if scenario is not None:
            # a segment that expects this many interruptions is redone ~e^k times: no end
            attempts = scenario.hazard_per_hour * (
                scenario.checkpointing.interval_hours + scenario.checkpointing.write_hours
            )
            if attempts > MAX_INTERRUPTIONS_PER_SEGMENT and not scenario.checkpoint_on_notice:
                print(
                    f"  {label:<28}never finishes in practice: {attempts:.1f} interruptions "
                    f"expected per {scenario.checkpointing.interval_hours:g} h segment, each "
                    "segment redone about e^that times"
                )
                continue
        if scenario is None:
            runs = [SimulatedRun(od_wall, od_cost, 0, od_wall)] * args.runs
        else:
            runs = simulate(scenario, args.runs, args.seed)
        costs = [r.usd for r in runs]
        walls = [r.wall_hours for r in runs]
        mean_cost = statistics.fmean(costs)
        touched = sum(1 for r in runs if r.interruptions) / len(runs)
        on_od = sum(1 for r in runs if r.on_demand_hours > 0) / len(runs) if scenario else 1.0
        print(
            f"  {label:<28}{mean_cost:>12,.2f}{quantile(costs, 0.5):>12,.2f}{quantile(costs, 0.95):>12,.2f}"
            f"{quantile(walls, 0.5):>11.2f}{quantile(walls, 0.95):>8.2f}"
            f"{statistics.fmean(r.interruptions for r in runs):>9.3f}{touched:>9.1%}{on_od:>7.1%}"
            f"{mean_cost / od_cost - 1:>+11.1%}{quantile(walls, 0.95) / od_wall - 1:>+9.1%}"
        )
        if label == "spot + hook + fallback":
            line = (
                f"{job.name}, {life:g} h lives: {mean_cost / od_cost - 1:+.1%} cost, "
                f"p95 wall {quantile(walls, 0.95) / od_wall - 1:+.1%}"
            )
    check = replace(base, capacity_gap_mean_hours=0.0)
    mc = statistics.fmean(r.wall_hours for r in simulate(check, args.runs, args.seed))
    print(
        f"  check: periodic checkpoints, no capacity gap: Monte Carlo mean wall {mc:.3f} h, "
        f"closed form {expected_wall_hours(job.work_hours, hazard, ckpt):.3f} h"
    )
    return line


if __name__ == "__main__":
    raise SystemExit(main())
