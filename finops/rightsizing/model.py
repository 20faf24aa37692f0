"""What rightsizing says: the kinds of change, the settings, and the records it hands out.

`recommend` builds them (`rules` measures each candidate against the demand, `choose`
composes and compares the candidates); the CLI, `apply` and the benchmarks read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aifinops.rightsizing.spot import Checkpointing

ARM_HOST_ACCELERATORS = frozenset({"T4G"})
"""Accelerators sold only on arm64 hosts (g5g: Graviton): not a drop-in move for x86 images."""
CENT = 0.005
"""Previewed costs closer than this (USD/month) are equal."""
NAMED_TYPES = 4
"""Types a change names for a fleet when the component would otherwise add types that do not
fit the demand (the AWS fleet pads a list shorter than four with interchangeable types)."""
SIBLING = "the fleet may also launch"


class Kind(StrEnum):
    SMALLER_ACCELERATOR = "smaller-accelerator"
    FEWER_ACCELERATORS = "fewer-accelerators"
    SMALLER_HOST = "smaller-host"
    INFERENCE_ACCELERATOR = "inference-accelerator"
    LARGER_TYPE = "larger-type"
    LARGER_HOST = "larger-host"
    SPOT_WITH_FALLBACK = "spot-with-fallback"
    FEWER_NODES = "fewer-nodes"
    SCALE_TO_ZERO = "scale-to-zero"


TYPE_KINDS = frozenset(
    {
        Kind.SMALLER_ACCELERATOR,
        Kind.FEWER_ACCELERATORS,
        Kind.SMALLER_HOST,
        Kind.INFERENCE_ACCELERATOR,
        Kind.LARGER_TYPE,
    }
)


@dataclass(frozen=True)
class Settings:
    """Thresholds of the rules; percentages 0-100, ratios 0-1 (docs/rightsizing.md)."""

    headroom: float = 0.20
    """Kept free above the observed memory peak, sustained demand, host CPU and memory."""
    min_days_covered: float = 7.0
    """No recommendation from fewer days between the first and the last reading."""
    min_observed_share: float = 0.80
    """...nor when fewer of the clock hours in that span have a reading."""
    throughput_bound_mean_percent: float = 80.0
    """A fleet is throughput-bound (a faster type buys work) when its busy GPUs' time-weighted
    mean utilisation reaches this,"""
    throughput_bound_busy_share: float = 0.80
    """and they are busy in at least this share of their observed hours (or the job reports
    work units in that share of hours),"""
    throughput_bound_sm_mean: float = 0.60
    """and, where SM activity is measured, its time-weighted mean reaches this."""
    memory_full_share: float = 0.90
    """Peak memory at or above this share of the accelerator's memory is near full."""
    max_spot_rework_share: float = 0.05
    """Spot only when the expected rework of interruptions (relaunch and work since the last
    checkpoint) stays under this share of the hours."""
    max_interruption_index: int | None = None
    """A cap on the Spot Advisor range index a user may add (2: at most 10-15% a month);
    None: the expected rework decides."""
    checkpointing: Checkpointing | None = field(default_factory=Checkpointing)
    """How training jobs checkpoint; None: they do not, so no spot recommendation."""
    spot_instance_life_hours: float = 8.0
    """How the Spot Advisor's monthly share is read as a hazard: the share of instances that
    live this long that are interrupted. 8 h is the harshest of the readings
    bench/interruption_sim.py shows (8 h, 24 h, 30 days)."""
    min_busy_hours: float = 24.0
    """A slower accelerator only when the demand was seen over at least this many clock
    hours of work (a few short jobs do not show what the next ones need)."""
    min_saving_share: float = 0.05
    """A type change must save at least this share of the target's previewed cost."""
    type_candidates: int = 3
    """The cheapest catalog fits priced through the preview per rule."""
    input_bound_share: float = 0.25
    """A fleet waits on its input when the agent judged its GPUs "waiting on data" in at
    least this share of their diagnosed time (agents/hostload.py): then a larger host or
    faster storage is proposed, and no larger GPU."""
    input_cause_share: float = 0.25
    """A cause (CPU, I/O, page cache) counts when it was on in this share of the waiting."""
    larger_host_factor: float = 2.0
    """A larger host has at least this many times the vCPUs (CPU cause) or host memory (page
    cache cause) per accelerator."""

    def validate(self) -> None:
        """Raise ValueError naming the setting, the value and the range allowed."""
        if not 0 <= self.headroom <= 1:
            raise ValueError(f"headroom {self.headroom:g}: allowed 0 to 1 (0.2 = 20%)")
        if self.min_days_covered < 0 or not 0 <= self.min_observed_share <= 1:
            raise ValueError("evidence thresholds: days >= 0, observed share 0 to 1")
        if self.checkpointing is not None and self.checkpointing.interval_hours <= 0:
            raise ValueError("checkpoint interval must be > 0 hours (None: no checkpoints)")
        if self.spot_instance_life_hours <= 0 or self.max_spot_rework_share < 0:
            raise ValueError("spot: instance life > 0 hours, rework share >= 0")
        if not 0 < self.input_bound_share <= 1 or self.larger_host_factor <= 1:
            raise ValueError("input-bound: share 0 to 1, larger host factor > 1")


@dataclass(frozen=True)
class Plan:
    """How a target is bought, as the preview priced it."""

    instance_types: tuple[str, ...]
    """Every type the preview shows the target may launch, the configured one first."""
    nodes: float
    capacity: str
    accelerator: str
    accelerator_count: float
    accelerator_memory_gib: float
    """The smallest per-accelerator memory over `instance_types`."""
    monthly_usd: float
    """`finops preview`'s monthly cost of the target."""

    @property
    def instance_type(self) -> str:
        return self.instance_types[0] if self.instance_types else ""


@dataclass(frozen=True)
class Evidence:
    """What the recommendation stands on."""

    source: str
    window_start: float
    window_end: float
    hosts: int
    gpus: int
    days_covered: float
    observed_share: float
    metrics: dict[str, float | None]
    """Name -> value; units and the statistic in the names."""


@dataclass(frozen=True)
class Step:
    """One part of a change, in the order composed, with the previewed cost after it."""

    kind: Kind
    summary: str
    monthly_usd_after: float


@dataclass(frozen=True)
class Recommendation:
    target_kind: str
    """"trainingFleets" or "inferenceEndpoints" (the stack-config key)."""
    target: str
    index: int
    """Position of the target in its stack-config list."""
    kinds: tuple[Kind, ...]
    summary: str
    current: Plan
    proposed: Plan
    monthly_saving_usd: float
    """The preview's monthly cost now minus after the change; negative: the change costs."""
    steps: tuple[Step, ...]
    speed_ratio: float
    """Slowest per-accelerator speed the change may launch over today's slowest (catalog
    relative throughput): above 1 buys speed."""
    expected_rework_usd: float
    """Expected monthly cost of spot interruptions (relaunch and lost work), not in the
    preview: the preview prices spot hours, not what interruptions redo."""
    work_unit: str
    usd_per_work_before: float | None
    usd_per_work_after: float | None
    """Previewed cost per unit of work; after a faster type on a throughput-bound fleet the
    work grows by `speed_ratio` (a catalog estimate), otherwise it is the same work."""
    memory_needed_gib: float | None
    headroom: float
    evidence: Evidence
    why: str = ""
    """For a change that costs more: what it buys."""
    changes: dict[str, Any] = field(default_factory=dict)
    """Stack-config keys (camelCase, under the target's entry) -> new value (None removes)."""

    @property
    def kind(self) -> Kind:
        return self.kinds[0]

    @property
    def ref(self) -> str:
        return f"{self.target}:{'+'.join(k.value for k in self.kinds)}"

    def named_by(self, accepted: Sequence[str]) -> bool:
        """True when `accepted` names this change (`TARGET:KIND` or `TARGET:KIND+KIND`)."""
        return any(
            name == self.ref
            or (name.partition(":")[0] == self.target and name.partition(":")[2] in self.kinds)
            for name in accepted
        )


@dataclass(frozen=True)
class Alternative:
    """A candidate that was not kept, and why."""

    kinds: tuple[Kind, ...]
    summary: str
    monthly_saving_usd: float | None
    """Previewed saving; None when refused before pricing."""
    reason: str


@dataclass(frozen=True)
class TargetReport:
    """Everything rightsizing says about one target."""

    target_kind: str
    target: str
    index: int
    status: str
    """"recommended", "no-change", "insufficient-data", or "unknown" (the preview cannot
    price today's config; `missing` says why)."""
    current_monthly_usd: float | None
    recommendation: Recommendation | None = None
    on_request: tuple[Recommendation, ...] = ()
    """Changes applied only when named with --accept TARGET:KIND, each with `why`: those
    that raise the previewed cost (more memory, more speed) and those that cut node
    capacity (fewer nodes)."""
    alternatives: tuple[Alternative, ...] = ()
    missing: tuple[str, ...] = ()
    """For "insufficient-data": what is missing."""
    evidence: Evidence | None = None
    advice: tuple[str, ...] = ()
    """Priced advice no stack key can apply (faster storage for a fleet waiting on I/O)."""
