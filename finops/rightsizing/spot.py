"""Spot interruptions as a hazard rate: expected rework, run time and cost, and a Monte Carlo.

The AWS Spot Advisor range is the share of a type's spot instances interrupted in a month.
It is turned into a constant per-hour hazard, `lambda = -ln(1 - share) / L`, where `L` is how
long the instances behind the share lived: 730 h reads the share as "an instance that runs
the whole month is interrupted with this probability" (the mildest reading); instances that
live 8 h or 24 h and are interrupted as often give a hazard 91 or 30 times higher.
`bench/interruption_sim.py` prints all three; rightsizing's expected rework uses
`Settings.spot_instance_life_hours` (24 h). With checkpoints every `tau` hours of work (each
costing `c` hours) and `d` hours lost to relaunch after an interruption, the expected wall
time of one segment is `(1/lambda + d) * (exp(lambda * (tau + c)) - 1)` (the exponential
failure model behind Young/Daly checkpointing); a run is its segments in turn.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from aifinops.catalog import InstanceInfo
from aifinops.catalog.models import (  # the catalog owns them; re-exported for old callers
    MONTHLY_INTERRUPTION_SHARE as MONTHLY_INTERRUPTION_SHARE,
)
from aifinops.catalog.models import UNKNOWN_RANGE_INDEX as UNKNOWN_RANGE_INDEX
from aifinops.config import HOURS_PER_MONTH


def hourly_hazard(monthly_share: float, life_hours: float = HOURS_PER_MONTH) -> float:
    """Per-hour interruption rate when `monthly_share` of instances living `life_hours` are
    interrupted (730: the share is a whole month's chance for one instance)."""
    if not 0 <= monthly_share < 1:
        raise ValueError(f"monthly interruption share must be in [0, 1), got {monthly_share}")
    if life_hours <= 0:
        raise ValueError(f"instance life must be > 0 hours, got {life_hours}")
    return -math.log1p(-monthly_share) / life_hours


def monthly_share_of(info: InstanceInfo) -> float:
    """The share interrupted a month taken for `info` (the range's upper bound)."""
    return info.monthly_interruption_share


def hazard_of(info: InstanceInfo, life_hours: float = HOURS_PER_MONTH) -> float:
    """Per-hour interruption rate of `info` on spot, from its Spot Advisor range."""
    return hourly_hazard(monthly_share_of(info), life_hours)


@dataclass(frozen=True)
class Checkpointing:
    """How a job survives interruptions; hours throughout."""

    interval_hours: float = 0.5
    """Work between periodic checkpoints."""
    write_hours: float = 1 / 60
    """Wall time to write one checkpoint."""
    restart_hours: float = 10 / 60
    """Wall time from interruption to running again (relaunch, reload the checkpoint)."""


def expected_wall_hours(work_hours: float, hazard: float, ckpt: Checkpointing) -> float:
    """Expected wall time to finish `work_hours` of work at interruption rate `hazard`/h."""
    if work_hours <= 0:
        return 0.0
    full, rest = divmod(work_hours, ckpt.interval_hours)
    segments = [ckpt.interval_hours] * int(full) + ([rest] if rest > 1e-12 else [])
    total = 0.0
    for segment in segments:
        span = segment + ckpt.write_hours
        if hazard == 0:
            total += span
        else:
            total += (1 / hazard + ckpt.restart_hours) * math.expm1(hazard * span)
    return total


def expected_interruptions(work_hours: float, hazard: float, ckpt: Checkpointing) -> float:
    """Expected number of interruptions while finishing `work_hours` of work."""
    full, rest = divmod(work_hours, ckpt.interval_hours)
    spans = [ckpt.interval_hours] * int(full) + ([rest] if rest > 1e-12 else [])
    return sum(math.expm1(hazard * (s + ckpt.write_hours)) for s in spans)


@dataclass(frozen=True)
class RunOption:
    """One way to run a job: an instance type bought on-demand or on spot."""

    instance_type: str
    spot: bool
    usd_per_hour: float
    work_hours: float
    """Hours of uninterrupted compute the run needs on this type (throughput-adjusted)."""
    expected_wall_hours: float
    expected_interruptions: float
    expected_usd_per_run: float
    interruption_range: str | None
    monthly_interruption_share: float | None

    @property
    def label(self) -> str:
        return f"{self.instance_type} {'spot' if self.spot else 'on-demand'}"


def run_option(
    info: InstanceInfo,
    baseline_work_hours: float,
    baseline_throughput: float,
    *,
    spot: bool,
    checkpointing: Checkpointing,
    life_hours: float = HOURS_PER_MONTH,
    spot_usd_per_hour: float | None = None,
    throughput: float | None = None,
) -> RunOption:
    """Price one run of a job that takes `baseline_work_hours` at `baseline_throughput`
    (relative V100 throughput of the node it was measured on) on `info`.

    Spot pays for the relaunch time and the rework after each interruption, at the hazard
    of the Spot Advisor share read over `life_hours`. `spot_usd_per_hour` and `throughput`
    override the catalog's figures (the benchmarks' sensitivity tables).
    """
    speed = info.throughput_per_node if throughput is None else throughput
    work_hours = baseline_work_hours * baseline_throughput / speed
    price = info.usd_per_hour(spot) if not spot or spot_usd_per_hour is None else spot_usd_per_hour
    if spot:
        share = monthly_share_of(info)
        hazard = hourly_hazard(share, life_hours)
        wall = expected_wall_hours(work_hours, hazard, checkpointing)
        interruptions = expected_interruptions(work_hours, hazard, checkpointing)
    else:
        share = None
        # on-demand still writes its checkpoints; it is never interrupted
        wall = expected_wall_hours(work_hours, 0.0, checkpointing)
        interruptions = 0.0
    return RunOption(
        instance_type=info.instance_type,
        spot=spot,
        usd_per_hour=price,
        work_hours=work_hours,
        expected_wall_hours=wall,
        expected_interruptions=interruptions,
        expected_usd_per_run=price * wall,
        interruption_range=info.interruption_range if spot else None,
        monthly_interruption_share=share,
    )


def run_options(
    baseline: InstanceInfo,
    run_hours: float,
    candidates: Iterable[InstanceInfo],
    *,
    checkpointing: Checkpointing,
    min_accelerator_memory_gib: float,
    life_hours: float = HOURS_PER_MONTH,
) -> list[RunOption]:
    """Every candidate on-demand and (where sold) on spot, for a job that runs `run_hours` on
    on-demand `baseline`; candidates whose accelerator memory is below
    `min_accelerator_memory_gib` (observed peak plus headroom) are left out. Cheapest first."""
    options = []
    for info in candidates:
        if info.accelerator_memory_gib < min_accelerator_memory_gib:
            continue
        for spot in (False, True):
            if spot and info.spot_usd_per_hour is None:
                continue
            options.append(
                run_option(
                    info,
                    run_hours,
                    baseline.throughput_per_node,
                    spot=spot,
                    checkpointing=checkpointing,
                    life_hours=life_hours,
                )
            )
    return sorted(options, key=lambda o: (o.expected_usd_per_run, o.expected_wall_hours))


@dataclass(frozen=True)
class SimulatedRun:
    wall_hours: float
    usd: float
    interruptions: int
    on_demand_hours: float


@dataclass(frozen=True)
class SpotScenario:
    """What one simulated run of a checkpointing job on spot does; hours and USD per hour."""

    work_hours: float
    spot_usd_per_hour: float
    on_demand_usd_per_hour: float
    hazard_per_hour: float
    checkpointing: Checkpointing
    capacity_gap_mean_hours: float = 0.75
    """After an interruption, spot capacity of the type comes back after an exponential time
    with this mean (the pool was reclaimed because it ran short)."""
    checkpoint_on_notice: bool = True
    """The agent's hook checkpoints in the 2-minute notice: no work is lost."""
    fallback_after_hours: float | None = 10 / 60
    """The fallback controller moves to on-demand when spot has not come back within this
    time, and finishes there; None: wait for spot."""


def _wall_for(work: float, ckpt: Checkpointing) -> float:
    """Uninterrupted wall hours for `work` hours, a checkpoint written after every interval."""
    full, rest = divmod(work, ckpt.interval_hours)
    return full * (ckpt.interval_hours + ckpt.write_hours) + (
        rest + ckpt.write_hours if rest > 1e-12 else 0.0
    )


def simulate_run(scenario: SpotScenario, rng: random.Random) -> SimulatedRun:
    """One Monte Carlo run: interruptions arrive as a Poisson process at the hazard rate.

    Between interruptions the job works in checkpoint intervals; at an interruption it keeps
    the work up to its last checkpoint, or everything when the hook checkpoints in the
    notice. It then waits for spot capacity (exponential gap) and relaunches, or, with the
    fallback controller, moves to on-demand once the gap passes `fallback_after_hours` and
    finishes there. Instances are not held (nor paid) while waiting.
    """
    s = scenario
    ckpt = s.checkpointing
    segment_wall = ckpt.interval_hours + ckpt.write_hours
    done = wall = spot_hours = od_hours = 0.0
    interruptions = 0
    while True:
        remaining = s.work_hours - done
        needed = _wall_for(remaining, ckpt)
        until = rng.expovariate(s.hazard_per_hour) if s.hazard_per_hour > 0 else math.inf
        if until >= needed:
            wall += needed
            spot_hours += needed
            break
        wall += until
        spot_hours += until
        interruptions += 1
        segments = math.floor(until / segment_wall)
        saved = min(segments * ckpt.interval_hours, remaining)
        if s.checkpoint_on_notice:
            partial = until - segments * segment_wall
            saved = min(remaining, saved + min(partial, ckpt.interval_hours))
        done += saved
        gap = (
            rng.expovariate(1 / s.capacity_gap_mean_hours) if s.capacity_gap_mean_hours > 0 else 0.0
        )
        if s.fallback_after_hours is not None and gap > s.fallback_after_hours:
            od = ckpt.restart_hours + _wall_for(s.work_hours - done, ckpt)
            wall += s.fallback_after_hours + od
            od_hours += od
            break
        wall += gap + ckpt.restart_hours
        spot_hours += ckpt.restart_hours
    usd = spot_hours * s.spot_usd_per_hour + od_hours * s.on_demand_usd_per_hour
    return SimulatedRun(wall, usd, interruptions, od_hours)


def simulate(scenario: SpotScenario, runs: int, seed: int) -> list[SimulatedRun]:
    """`runs` independent runs of `scenario`, reproducible for a given seed."""
    rng = random.Random(seed)
    return [simulate_run(scenario, rng) for _ in range(runs)]


def best_option(options: Iterable[RunOption], max_wall_hours: float) -> RunOption | None:
    """The cheapest option per completed run whose expected wall time is within the limit."""
    fitting = [o for o in options if o.expected_wall_hours <= max_wall_hours]
    return min(fitting, key=lambda o: (o.expected_usd_per_run, o.expected_wall_hours), default=None)
