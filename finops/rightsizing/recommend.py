"""Measured usage + stack config -> the change to make to each fleet and endpoint, priced by
the preview.

Per target (a `finops:trainingFleets` or `finops:inferenceEndpoints` entry):

1. **Evidence.** The target's GPUs are folded (`evidence.fold`); below the documented minimum
   of days covered and share of hours observed the target is "insufficient data", with what
   is missing, and no rule runs.
2. **Candidates.** Each rule proposes stack-config edits: `scale-to-zero` (idle in every
   observed hour), a cheaper type (`smaller-accelerator`, `fewer-accelerators`,
   `smaller-host`, `inference-accelerator`), `spot-with-fallback`, `fewer-nodes`, and
   `larger-type` (memory near full, or a throughput-bound fleet: busy most of its hours by
   the time-weighted mean and SM activity, not by 5-minute peaks).
3. **One cost model.** Every candidate is priced by running the program offline and pricing
   the run with `finops.cost` (`pricing.PreviewPricer`): its saving IS the `finops preview`
   delta of applying it.
4. **Safety.** A candidate is checked against the demand for every instance type the preview
   shows it may launch (the fleet component adds interchangeable types): accelerator memory
   >= peak x (1 + headroom), accelerators >= busy GPUs, per-accelerator speed >= the
   sustained demand x (1 + headroom) (never slower than today when that is more), and no
   fewer vCPUs or less host memory without host evidence.
5. **Choice.** The cheaper type and spot are composed step by step (each step must lower
   the previewed cost and pass every check); the kept change is the best saving among that
   composite and scale-to-zero. Every other candidate is listed with why it lost. A change
   that raises the previewed cost (a larger type) or cuts node capacity (fewer nodes) is
   never kept: it is listed under `on_request`, with what it buys or risks, for
   `--accept TARGET:KIND`.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from finops import catalog
from finops.catalog import InstanceInfo
from finops.config import Capacity, InferenceEndpoint, StackConfig, TrainingFleet
from finops.errors import CatalogError, FinopsError
from finops.rightsizing.evidence import TargetUsage, fold, gaps
from finops.rightsizing.pricing import PricedTarget, Pricer
from finops.rightsizing.spot import Checkpointing, expected_wall_hours, hazard_of
from finops.rightsizing.usage import GpuUsage

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


@dataclass(frozen=True)
class _Target:
    key: str
    name: str
    index: int
    cloud: str
    region: str
    info: InstanceInfo
    nodes: int
    nodes_min: int
    capacity: str
    on_demand_base: int
    hours_per_month: float
    model_memory_gib: float | None
    uses_accelerator_form: bool


@functools.cache
def _rows(cloud: str, service: str, region: str) -> tuple[InstanceInfo, ...]:
    rows = []
    for name in catalog.instance_types(cloud, service):
        try:
            rows.append(catalog.lookup(name, region, cloud=cloud))
        except CatalogError:
            continue
    return tuple(rows)


def _lookup(name: str, t: _Target) -> InstanceInfo | None:
    try:
        return catalog.lookup(name, t.region, cloud=t.cloud)
    except CatalogError:
        return None


def spot_overhead(info: InstanceInfo, ckpt: Checkpointing, life_hours: float) -> float:
    """Wall hours on spot per wall hour on-demand for the same work (rework + relaunch)."""
    work = ckpt.interval_hours * 8
    hazard = hazard_of(info, life_hours)
    return expected_wall_hours(work, hazard, ckpt) / expected_wall_hours(work, 0.0, ckpt)


@dataclass(frozen=True)
class _Need:
    """What any type the target may launch must hold; None: not measured."""

    busy_gpus: int
    memory_gib: float | None
    speed_per_accelerator: float
    vcpus: float | None
    host_memory_gib: float | None
    min_vcpus_now: int
    min_host_memory_now: float
    min_memory_now: float
    min_speed_now: float


class _Rules:
    """The rules for one target (with enough evidence)."""

    def __init__(self, t: _Target, usage: TargetUsage, settings: Settings, pricer: Pricer) -> None:
        self.t, self.u, self.s, self.pricer = t, usage, settings, pricer
        self.ckpt = settings.checkpointing or Checkpointing()
        self.now = self.price({})
        now_infos = [i for i in (_lookup(n, t) for n in self.now.instance_types) if i] or [t.info]
        peak = usage.gpu_memory_peak_gib
        if t.model_memory_gib is not None and peak is not None:
            peak = max(peak, t.model_memory_gib / max(usage.busy_gpus_per_node, 1))
        self.memory_peak = peak
        h = settings.headroom
        min_speed_now = min(i.accelerator_info.relative_training_throughput for i in now_infos)
        demand = usage.burst_demand_v100 if t.key == "inferenceEndpoints" else usage.demand_v100
        self.little_work = usage.busy_hours < settings.min_busy_hours
        if self.little_work:
            demand = None  # too few hours of work to size a slower chip on
        self.need = _Need(
            busy_gpus=usage.busy_gpus_per_node,
            memory_gib=None if peak is None else peak * (1 + h),
            # never slower than today where the demand (plus headroom) asks for more
            speed_per_accelerator=min_speed_now
            if demand is None
            else min(demand * (1 + h), min_speed_now),
            vcpus=None if usage.host_cpu_vcpus_p95 is None else usage.host_cpu_vcpus_p95 * (1 + h),
            host_memory_gib=None
            if usage.host_memory_peak_gib is None
            else usage.host_memory_peak_gib * (1 + h),
            min_vcpus_now=min(i.vcpus for i in now_infos),
            min_host_memory_now=min(i.memory_gib for i in now_infos),
            min_memory_now=min(i.accelerator_memory_gib for i in now_infos),
            min_speed_now=min_speed_now,
        )
        self.current_plan = self.plan(self.now, t.nodes, t.capacity)
        self.demand = demand

    # -- pricing -------------------------------------------------------------------------

    def lookup(self, name: str) -> InstanceInfo:
        return _lookup(name, self.t) or self.t.info

    def price(self, changes: dict[str, Any]) -> PricedTarget:
        return self.pricer(self.t.key, self.t.index, changes)

    def plan(self, priced: PricedTarget, nodes: float, capacity: str) -> Plan:
        infos = [i for i in (_lookup(n, self.t) for n in priced.instance_types) if i]
        first = infos[0] if infos else self.t.info
        return Plan(
            instance_types=priced.instance_types or (self.t.info.instance_type,),
            nodes=nodes,
            capacity=capacity,
            accelerator=first.accelerator,
            accelerator_count=first.accelerator_count,
            accelerator_memory_gib=min((i.accelerator_memory_gib for i in infos), default=0.0),
            monthly_usd=priced.monthly_usd,
        )

    # -- checks --------------------------------------------------------------------------

    def misfit(self, info: InstanceInfo) -> str | None:
        """Why `info` cannot carry the measured demand (None: it can)."""
        n, t = self.need, self.t
        chip = info.accelerator_info
        if (info.accelerator in ARM_HOST_ACCELERATORS) != (
            t.info.accelerator in ARM_HOST_ACCELERATORS
        ):
            return f"{info.instance_type} is an arm64 host"
        if info.accelerator_count < n.busy_gpus:
            return (
                f"{info.instance_type} has {info.accelerator_count:g} accelerators, "
                f"{n.busy_gpus} were busy on one node"
            )
        if n.memory_gib is None:
            if info.accelerator_memory_gib < n.min_memory_now:
                return (
                    f"{info.instance_type} has less accelerator memory and the memory peak was "
                    "not measured"
                )
        elif info.accelerator_memory_gib < n.memory_gib - 1e-9:
            return (
                f"{info.instance_type}: {info.accelerator_memory_gib:g} GiB {info.accelerator} < "
                f"memory peak {self.memory_peak:.1f} GiB + {self.s.headroom:.0%}"
            )
        speed = chip.relative_training_throughput
        if speed < n.speed_per_accelerator - 1e-9:
            if self.demand is None and self.little_work:
                return (
                    f"{info.instance_type}: a slower {info.accelerator}, and the demand was seen "
                    f"in only {self.u.busy_hours} hours of work (need {self.s.min_busy_hours:g})"
                )
            if self.demand is None:
                return (
                    f"{info.instance_type}: a slower {info.accelerator} and no time-weighted "
                    "mean to show the demand fits (the source gave only 5-minute peaks)"
                )
            return (
                f"{info.instance_type}: {info.accelerator} at {speed:g} x V100 < sustained demand "
                f"{self.demand:.2f} x V100 + {self.s.headroom:.0%}"
            )
        if info.vcpus < n.min_vcpus_now:
            if n.vcpus is None:
                return (
                    f"{info.instance_type}: {info.vcpus} vCPUs < {n.min_vcpus_now} today and host "
                    "CPU was not measured (the host may be the bottleneck)"
                )
            if info.vcpus < n.vcpus - 1e-9:
                return (
                    f"{info.instance_type}: {info.vcpus} vCPUs < host CPU p95 "
                    f"{n.vcpus / (1 + self.s.headroom):.1f} vCPUs + {self.s.headroom:.0%}"
                )
        if info.memory_gib < n.min_host_memory_now:
            if n.host_memory_gib is None:
                return (
                    f"{info.instance_type}: {info.memory_gib:g} GiB host memory < "
                    f"{n.min_host_memory_now:g} today and host memory was not measured"
                )
            if info.memory_gib < n.host_memory_gib - 1e-9:
                return (
                    f"{info.instance_type}: {info.memory_gib:g} GiB host memory < host peak "
                    f"{n.host_memory_gib / (1 + self.s.headroom):.1f} GiB + {self.s.headroom:.0%}"
                )
        return None

    def check_priced(self, priced: PricedTarget) -> str | None:
        """Why the preview's priced types cannot all carry the demand (None: they can)."""
        if priced.unpriced:
            return f"UNKNOWN cost: the preview could not price {priced.unpriced[0]}"
        for name in priced.instance_types:
            info = _lookup(name, self.t)
            if info is None:
                return f"UNKNOWN: {name} is not in the catalog for {self.t.region}"
            problem = self.misfit(info)
            if problem:
                primary = priced.instance_types[0] if priced.instance_types else name
                if name != primary:
                    return f"{SIBLING} {name}: {problem}"
                return problem
        return None

    # -- candidates ----------------------------------------------------------------------

    def type_changes(self, info: InstanceInfo, names: Sequence[str] = ()) -> dict[str, Any]:
        """The edits that run the target on `info` (a fleet: on `names`, `info` first)."""
        t = self.t
        if t.key == "inferenceEndpoints":
            if t.uses_accelerator_form:
                return {"accelerator": None, "instanceType": info.instance_type}
            return {"instanceType": info.instance_type}
        listed = list(names) or [info.instance_type]
        if t.uses_accelerator_form:
            return {"accelerator": None, "acceleratorsPerNode": None, "instanceTypes": listed}
        return {"instanceTypes": listed}

    def fitting_names(self, info: InstanceInfo) -> list[str]:
        """`info` and the cheapest types with as many accelerators that carry the demand: a
        list the fleet component does not pad with types that do not."""
        siblings = [
            row
            for row in self.catalog_rows()
            if row.accelerator_count == info.accelerator_count
            and row.instance_type != info.instance_type
            and self.misfit(row) is None
        ]
        siblings.sort(key=lambda i: (self.hourly(i), i.instance_type))
        return [info.instance_type] + [i.instance_type for i in siblings[: NAMED_TYPES - 1]]

    def catalog_rows(self) -> list[InstanceInfo]:
        info = self.t.info
        kinds = {info.accelerator_info.kind}
        services = {info.service}
        if self.t.key == "inferenceEndpoints" and info.accelerator_info.kind == "gpu":
            kinds |= {"inferentia", "tpu"}
            if self.t.cloud == "gcp":
                services.add("tpu")
        rows = []
        for service in sorted(services):
            for row in _rows(self.t.cloud, service, self.t.region):
                chip = row.accelerator_info
                if chip.kind not in kinds or row.accelerator_count < 1:
                    continue
                if chip.kind == "gpu" and chip.vendor != info.accelerator_info.vendor:
                    continue
                if row.throughput_per_node <= 0 or row.instance_type == info.instance_type:
                    continue
                if (row.accelerator in ARM_HOST_ACCELERATORS) != (
                    info.accelerator in ARM_HOST_ACCELERATORS
                ):
                    continue  # arm64 hosts need other images
                if row.generation != "current" and row.accelerator != info.accelerator:
                    continue  # an older chip than the one run today: drivers, frameworks
                rows.append(row)
        return rows

    def hourly(self, info: InstanceInfo) -> float:
        spot = self.t.capacity != Capacity.ON_DEMAND.value and info.spot_usd_per_hour is not None
        return info.usd_per_hour(spot)

    def type_kind(self, info: InstanceInfo) -> Kind:
        now = self.t.info
        if info.accelerator_info.kind != now.accelerator_info.kind:
            return Kind.INFERENCE_ACCELERATOR
        if info.accelerator_count < now.accelerator_count:
            return Kind.FEWER_ACCELERATORS
        if info.accelerator == now.accelerator and info.accelerator_count == now.accelerator_count:
            return Kind.SMALLER_HOST
        return Kind.SMALLER_ACCELERATOR

    def type_summary(self, info: InstanceInfo, kind: Kind) -> str:
        now, u = self.t.info, self.u
        head = f"{now.instance_type} -> {info.instance_type}"
        if kind == Kind.FEWER_ACCELERATORS:
            return (
                f"{head}: at most {u.busy_gpus_per_node} of {now.accelerator_count:g} GPUs busy "
                "per node"
            )
        if kind == Kind.SMALLER_HOST:
            return f"{head}: the same {now.accelerator} on a smaller host"
        what = "peak demand" if self.t.key == "inferenceEndpoints" else "sustained demand"
        demand = "" if self.demand is None else f"{what} {self.demand:.2f} x V100, "
        memory = "" if self.memory_peak is None else f"memory peak {self.memory_peak:.1f} GiB "
        return (
            f"{head}: {demand}{memory}(+{self.s.headroom:.0%}) fit "
            f"{info.accelerator_count:g} x {info.accelerator_memory_gib:g} GiB {info.accelerator} "
            f"at {info.accelerator_info.relative_training_throughput:g} x V100"
        )

    def speed_ratio(self, priced: PricedTarget) -> float:
        infos = [i for i in (_lookup(n, self.t) for n in priced.instance_types) if i]
        if not infos or self.need.min_speed_now <= 0:
            return 1.0
        slowest = min(i.accelerator_info.relative_training_throughput for i in infos)
        return slowest / self.need.min_speed_now

    def throughput_bound(self) -> str | None:
        """Why the fleet is throughput-bound (None: not shown to be)."""
        u, s = self.u, self.s
        if u.util_mean_percent is None:
            return None
        busy = max(u.busy_hours_share, u.work_hours_share)
        sm_ok = u.sm_active_mean is None or u.sm_active_mean >= s.throughput_bound_sm_mean
        if (
            u.util_mean_percent >= s.throughput_bound_mean_percent
            and busy >= s.throughput_bound_busy_share
            and sm_ok
        ):
            sm = "" if u.sm_active_mean is None else f", SM activity mean {u.sm_active_mean:.2f}"
            return (
                f"throughput-bound: time-weighted mean {u.util_mean_percent:.0f}%, busy "
                f"{busy:.0%} of hours{sm}"
            )
        return None


@dataclass
class _Candidate:
    kinds: tuple[Kind, ...]
    summary: str
    changes: dict[str, Any]
    priced: PricedTarget | None = None
    refused: str | None = None
    steps: list[Step] = field(default_factory=list)
    nodes: float = 0.0
    capacity: str = ""
    why: str = ""
    retry: dict[str, Any] | None = None
    """Changes to price instead when the preview shows a padded type that does not fit."""


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class _Evaluation:
    """Builds, prices, checks and chooses among one target's candidates."""

    def __init__(self, rules: _Rules) -> None:
        self.r = rules
        self.alternatives: list[Alternative] = []
        self.on_request: list[_Candidate] = []

    def refuse(self, kinds: tuple[Kind, ...], summary: str, reason: str) -> None:
        self.alternatives.append(Alternative(kinds, summary, None, reason))

    def priced(self, candidate: _Candidate) -> _Candidate:
        try:
            candidate.priced = self.r.price(candidate.changes)
        except FinopsError as exc:
            # the program or the schema rejects the change: not a candidate
            candidate.priced = PricedTarget(float("inf"), ())
            candidate.refused = f"the preview rejects it: {exc}"
            return candidate
        candidate.refused = self.r.check_priced(candidate.priced)
        if candidate.refused and candidate.refused.startswith(SIBLING) and candidate.retry:
            priced = self.r.price(candidate.retry)
            refused = self.r.check_priced(priced)
            if not refused:
                candidate.changes, candidate.priced, candidate.refused = (
                    candidate.retry,
                    priced,
                    None,
                )
        return candidate

    def saving(self, candidate: _Candidate) -> float:
        assert candidate.priced is not None
        return self.r.now.monthly_usd - candidate.priced.monthly_usd

    def shown(self, candidate: _Candidate) -> float | None:
        """The saving to list, None when the change could not be priced."""
        if candidate.priced is None or math.isinf(candidate.priced.monthly_usd):
            return None
        return self.saving(candidate)

    # -- the rules -----------------------------------------------------------------------

    def cheaper_types(self) -> list[_Candidate]:
        r = self.r
        fits = []
        blind: list[tuple[float, str, str]] = []
        for row in r.catalog_rows():
            if r.hourly(row) >= r.hourly(r.t.info) * (1 - r.s.min_saving_share):
                continue
            problem = r.misfit(row)
            if problem is None:
                fits.append(row)
            elif "was not measured" in problem or "hours of work" in problem:
                blind.append((r.hourly(row), row.instance_type, problem))
        if blind:
            _, name, problem = min(blind)
            self.refuse(
                (r.type_kind(r.lookup(name)),),
                f"{r.t.info.instance_type} -> {name} (and {len(blind) - 1} other cheaper types)",
                f"not priced: {problem}",
            )
        fits.sort(key=lambda i: (r.hourly(i), i.instance_type))
        out = []
        for info in fits[: r.s.type_candidates]:
            kind = r.type_kind(info)
            candidate = _Candidate((kind,), r.type_summary(info, kind), r.type_changes(info))
            candidate.retry = r.type_changes(info, r.fitting_names(info))
            out.append(self.priced(candidate))
        if not fits:
            self.refuse(
                (Kind.SMALLER_ACCELERATOR,),
                "a cheaper type",
                self.no_cheaper_type_reason(),
            )
        return out

    def no_cheaper_type_reason(self) -> str:
        r = self.r
        cheaper = [
            row
            for row in r.catalog_rows()
            if r.hourly(row) < r.hourly(r.t.info) * (1 - r.s.min_saving_share)
        ]
        if not cheaper:
            return "no cheaper type in the catalog"
        cheapest = min(cheaper, key=lambda i: (r.hourly(i), i.instance_type))
        return f"no cheaper type carries the demand; the cheapest, {r.misfit(cheapest)}"

    def larger_types(self) -> list[_Candidate]:
        r, u, s = self.r, self.r.u, self.r.s
        info = r.t.info
        peak = r.memory_peak
        memory_full = peak is not None and peak >= s.memory_full_share * r.need.min_memory_now
        bound = r.throughput_bound()
        if not (memory_full or bound):
            if u.util_p95_percent >= 90 and u.util_mean_percent is not None:
                self.refuse(
                    (Kind.LARGER_TYPE,),
                    f"a faster type than {info.instance_type}",
                    f"5-minute peaks reach {u.util_p95_percent:.0f}% (p95 of peaks) but the "
                    f"time-weighted mean is {u.util_mean_percent:.1f}%: bursts, not a "
                    "throughput-bound fleet; a faster type would not be priced per unit of work",
                )
            return []
        need_speed = r.need.min_speed_now * ((1 + s.headroom) if bound else 1.0)
        options = [
            row
            for row in r.catalog_rows()
            # the same world size: a job's parallel layout is not the rule's to change
            if row.accelerator_count == info.accelerator_count
            and row.accelerator_info.kind == info.accelerator_info.kind
            and row.accelerator_info.relative_training_throughput >= need_speed - 1e-9
            and (not memory_full or row.accelerator_memory_gib > r.need.min_memory_now)
            and r.misfit(row) is None
        ]
        if not options:
            self.refuse(
                (Kind.LARGER_TYPE,), "a larger type", "no larger type in the catalog carries it"
            )
            return []
        best = min(
            options,
            key=lambda i: (
                r.hourly(i) / i.throughput_per_node if bound else r.hourly(i),
                i.instance_type,
            ),
        )
        why = []
        if memory_full and peak is not None:
            why.append(f"memory peak {peak:.1f} of {r.need.min_memory_now:g} GiB")
        if bound:
            why.append(bound)
        candidate = self.priced(
            _Candidate(
                (Kind.LARGER_TYPE,),
                f"{info.instance_type} -> {best.instance_type}: {'; '.join(why)}",
                r.type_changes(best),
            )
        )
        candidate.why = "; ".join(why)
        return [candidate]

    def spot(self, base: _Candidate) -> _Candidate | None:
        r, t, s = self.r, self.r.t, self.r.s
        if t.key != "trainingFleets":
            return None
        if t.capacity != Capacity.ON_DEMAND.value and t.on_demand_base == 0:
            return None
        summary = "on spot with on-demand fallback"
        if s.checkpointing is None:
            self.refuse((Kind.SPOT_WITH_FALLBACK,), summary, "jobs do not checkpoint")
            return None
        primary = (
            base.priced.instance_types[0] if base.priced and base.priced.instance_types else ""
        )
        info = _lookup(primary, t) or t.info
        index = info.interruption_index
        band = info.interruption_range or "at an unknown rate (taken as the worst range, >20%)"
        if info.spot_usd_per_hour is None:
            self.refuse(
                (Kind.SPOT_WITH_FALLBACK,),
                f"{info.instance_type} {summary}",
                f"no spot price for {info.instance_type} in {t.region}",
            )
            return None
        if s.max_interruption_index is not None and (
            index is None or index > s.max_interruption_index
        ):
            self.refuse(
                (Kind.SPOT_WITH_FALLBACK,),
                f"{info.instance_type} {summary}",
                f"{info.instance_type} is interrupted {band} a month (accepted: Spot Advisor "
                f"range <= {s.max_interruption_index})",
            )
            return None
        overhead = spot_overhead(info, r.ckpt, s.spot_instance_life_hours)
        if overhead - 1 > s.max_spot_rework_share:
            self.refuse(
                (Kind.SPOT_WITH_FALLBACK,),
                f"{info.instance_type} {summary}",
                f"interrupted {band} a month, checkpoints every {r.ckpt.interval_hours * 60:.0f} "
                f"min: expected rework +{overhead - 1:.1%} of the hours (accepted: "
                f"{s.max_spot_rework_share:.0%})",
            )
            return None
        changes = _merge(
            base.changes, {"capacity": Capacity.SPOT_WITH_FALLBACK.value, "onDemandBase": 0}
        )
        candidate = _Candidate(
            (*base.kinds, Kind.SPOT_WITH_FALLBACK),
            f"{info.instance_type} on spot with on-demand fallback: interrupted "
            f"{band} a month, checkpoints every "
            f"{r.ckpt.interval_hours * 60:.0f} min (expected rework +{overhead - 1:.2%})",
            changes,
            steps=list(base.steps),
            nodes=base.nodes,
            capacity=Capacity.SPOT_WITH_FALLBACK.value,
        )
        if "instanceTypes" not in changes or len(changes["instanceTypes"]) < NAMED_TYPES:
            candidate.retry = _merge(changes, {"instanceTypes": r.fitting_names(info)})
            if r.t.uses_accelerator_form:
                candidate.retry = _merge(
                    candidate.retry, {"accelerator": None, "acceleratorsPerNode": None}
                )
        return self.priced(candidate)

    def fewer_nodes(self, base: _Candidate) -> _Candidate | None:
        r, t, u = self.r, self.r.t, self.r.u
        if u.peak_busy_hosts == 0:
            return None
        wanted = max(1, math.ceil(u.peak_busy_hosts * (1 + r.s.headroom) - 1e-9))
        if wanted >= t.nodes:
            return None
        first, second = u.peak_busy_hosts_halves
        if second > first:
            self.refuse(
                (Kind.FEWER_NODES,),
                f"{t.nodes} -> {wanted} nodes",
                f"demand is rising: at most {first} hosts busy at once in the first half of the "
                f"window, {second} in the second",
            )
            return None
        if t.key == "trainingFleets":
            extra: dict[str, Any] = {"nodes": {"desired": wanted, "min": min(t.nodes_min, wanted)}}
            what = "nodes"
        else:
            extra = {"replicas": {"min": wanted}}
            what = "replicas"
        candidate = _Candidate(
            (*base.kinds, Kind.FEWER_NODES),
            f"{t.nodes} -> {wanted} {what}: at most {u.peak_busy_hosts} busy in the same hour "
            f"(+{r.s.headroom:.0%})",
            _merge(base.changes, extra),
            steps=list(base.steps),
            nodes=wanted,
            capacity=base.capacity,
        )
        return self.priced(candidate)

    def scale_to_zero(self) -> _Candidate | None:
        t, u = self.r.t, self.r.u
        if not u.idle_all_window:
            return None
        if t.key == "trainingFleets":
            changes: dict[str, Any] = {"nodes": {"min": 0, "desired": 0}}
        else:
            changes = {"replicas": {"min": 0}}
        days = u.days_covered
        candidate = _Candidate(
            (Kind.SCALE_TO_ZERO,),
            f"idle in every one of {u.observed_hours} observed hours over {days:.1f} days: "
            "scale to zero (min 0), scale up when work comes",
            changes,
            nodes=0,
            capacity=t.capacity,
        )
        return self.priced(candidate)

    # -- composing and choosing ------------------------------------------------------------

    def rank(self, candidate: _Candidate) -> tuple[float, float, float, float, str]:
        """Cheapest previewed first; on a tie the faster, then the larger accelerator, then
        the cheaper named type (the preview prices a group at its cheapest override)."""
        assert candidate.priced is not None
        infos = [i for i in (_lookup(n, self.r.t) for n in candidate.priced.instance_types) if i]
        speed = min((i.accelerator_info.relative_training_throughput for i in infos), default=0.0)
        memory = min((i.accelerator_memory_gib for i in infos), default=0.0)
        named = self.r.hourly(infos[0]) if infos else 0.0
        return (round(candidate.priced.monthly_usd, 2), -speed, -memory, named, candidate.summary)

    def step(
        self, current: _Candidate, nxt: _Candidate | None, kind: Kind, label: str
    ) -> _Candidate:
        """`nxt` when it passes and lowers the previewed cost below `current`'s, else
        `current` (and `nxt` listed with why)."""
        if nxt is None or nxt.priced is None:
            return current
        assert current.priced is not None
        if nxt.refused:
            self.alternatives.append(
                Alternative(nxt.kinds, nxt.summary, self.shown(nxt), nxt.refused)
            )
            return current
        if nxt.priced.monthly_usd >= current.priced.monthly_usd - CENT:
            self.alternatives.append(
                Alternative(
                    nxt.kinds,
                    nxt.summary,
                    self.saving(nxt),
                    f"{label} does not lower the previewed cost "
                    f"({current.priced.monthly_usd:,.2f} -> {nxt.priced.monthly_usd:,.2f} USD/month)",
                )
            )
            return current
        nxt.steps = [*current.steps, Step(kind, nxt.summary, nxt.priced.monthly_usd)]
        return nxt

    def capacity_cut(self, composite: _Candidate) -> None:
        """Fewer nodes on top of the kept change, offered on request only: a window bounds
        the concurrency that was, not the next peak (bench/fleet_replay.py --dev: every
        such cut on the development split queued work in the following week)."""
        cut = self.fewer_nodes(composite)
        if cut is None or cut.priced is None:
            return
        if cut.refused:
            self.alternatives.append(
                Alternative(cut.kinds, cut.summary, self.shown(cut), cut.refused)
            )
            return
        if self.saving(cut) <= self.saving(composite) + CENT:
            return
        cut.steps = [*composite.steps, Step(Kind.FEWER_NODES, cut.summary, cut.priced.monthly_usd)]
        cut.why = (
            "cuts capacity: fewer nodes than the fleet has, sized on the hosts busy at once in "
            "the window; a later peak would queue"
        )
        self.on_request.append(cut)

    def run(self) -> tuple[_Candidate | None, list[_Candidate]]:
        r = self.r
        base = _Candidate((), "", {}, priced=r.now, nodes=r.t.nodes, capacity=r.t.capacity)
        composite = base
        types = [c for c in self.cheaper_types()]
        larger = self.larger_types()
        passing = [c for c in types if not c.refused]
        for c in types:
            if c.refused:
                self.alternatives.append(Alternative(c.kinds, c.summary, self.shown(c), c.refused))
        if passing:
            best = min(passing, key=self.rank)
            enough = r.s.min_saving_share * r.now.monthly_usd
            if self.saving(best) >= enough:
                best.nodes, best.capacity = r.t.nodes, r.t.capacity
                composite = self.step(base, best, best.kinds[0], "the type change")
            for c in passing:
                if self.saving(c) < enough:
                    reason = f"saves less than {r.s.min_saving_share:.0%} of the previewed cost"
                elif c is best:
                    continue
                else:
                    reason = (
                        f"the kept type saves {self.saving(best) - self.saving(c):,.2f} "
                        "USD/month more"
                    )
                self.alternatives.append(Alternative(c.kinds, c.summary, self.saving(c), reason))
        for c in larger:
            if c.refused:
                self.alternatives.append(Alternative(c.kinds, c.summary, self.shown(c), c.refused))
            elif self.saving(c) > CENT and self.saving(c) > self.saving(composite):
                c.steps = [
                    Step(Kind.LARGER_TYPE, c.summary, c.priced.monthly_usd if c.priced else 0.0)
                ]
                composite = c
            elif self.saving(c) <= CENT:
                self.on_request.append(c)
        composite = self.step(
            composite, self.spot(composite), Kind.SPOT_WITH_FALLBACK, "spot-with-fallback"
        )
        chosen: _Candidate | None = composite if composite.steps else None
        self.capacity_cut(composite)
        zero = self.scale_to_zero()
        if zero is not None and zero.priced is not None:
            if zero.refused:
                self.alternatives.append(
                    Alternative(zero.kinds, zero.summary, self.shown(zero), zero.refused)
                )
            elif chosen is None or self.saving(zero) > self.saving(chosen) + CENT:
                if chosen is not None:
                    self.alternatives.append(
                        Alternative(
                            chosen.kinds,
                            _joined(chosen),
                            self.saving(chosen),
                            f"scale-to-zero saves {self.saving(zero) - self.saving(chosen):,.2f} "
                            "USD/month more",
                        )
                    )
                zero.steps = [Step(Kind.SCALE_TO_ZERO, zero.summary, zero.priced.monthly_usd)]
                chosen = zero
            else:
                self.alternatives.append(
                    Alternative(zero.kinds, zero.summary, self.saving(zero), "saves less")
                )
        return chosen, self.on_request


def _joined(candidate: _Candidate) -> str:
    return "; ".join(s.summary for s in candidate.steps) or candidate.summary


def _evidence(rules: _Rules) -> Evidence:
    u, t = rules.u, rules.t
    return Evidence(
        source=u.source,
        window_start=u.window_start,
        window_end=u.window_end,
        hosts=u.hosts,
        gpus=u.gpus,
        days_covered=round(u.days_covered, 2),
        observed_share=round(u.observed_share, 3),
        metrics={
            "gpu_util_time_weighted_mean_percent": None
            if u.util_mean_percent is None
            else round(u.util_mean_percent, 2),
            "gpu_util_p95_of_5min_peaks_percent": round(u.util_p95_percent, 2),
            "gpu_util_p95_of_5min_means_percent": None
            if u.util_mean_p95_percent is None
            else round(u.util_mean_p95_percent, 2),
            "sustained_demand_v100": None if rules.demand is None else round(rules.demand, 3),
            "sm_active_time_weighted_mean": None
            if u.sm_active_mean is None
            else round(u.sm_active_mean, 3),
            "sm_active_p95_of_5min_peaks": None
            if u.sm_active_p95 is None
            else round(u.sm_active_p95, 3),
            "gpu_memory_peak_gib": None
            if rules.memory_peak is None
            else round(rules.memory_peak, 2),
            "gpu_memory_gib": t.info.accelerator_memory_gib,
            "busy_gpus_per_node": float(u.busy_gpus_per_node),
            "gpus_per_node": t.info.accelerator_count,
            "busy_hours_share": round(u.busy_hours_share, 3),
            "peak_busy_hosts_in_an_hour": float(u.peak_busy_hosts),
            "host_cpu_p95_of_5min_peaks_vcpus": None
            if u.host_cpu_vcpus_p95 is None
            else round(u.host_cpu_vcpus_p95, 2),
            "host_memory_peak_gib": None
            if u.host_memory_peak_gib is None
            else round(u.host_memory_peak_gib, 2),
            **{f"work_{k}_per_hour": round(v, 3) for k, v in u.work_per_hour.items()},
        },
    )


def _work(rules: _Rules) -> tuple[str, float]:
    """(unit, units per month) the target does now."""
    u, t = rules.u, rules.t
    if u.work_per_hour:
        unit = sorted(u.work_per_hour)[0]
        return unit, u.work_per_hour[unit] * t.nodes * t.hours_per_month
    per_gpu = t.info.accelerator_info.relative_training_throughput
    mean = (u.util_mean_percent or 0.0) / 100.0
    return "V100-hour used", per_gpu * mean * u.busy_gpus_per_node * t.nodes * t.hours_per_month


def _recommendation(rules: _Rules, candidate: _Candidate, evidence: Evidence) -> Recommendation:
    assert candidate.priced is not None
    t, s = rules.t, rules.s
    proposed = rules.plan(candidate.priced, candidate.nodes, candidate.capacity or t.capacity)
    speed = rules.speed_ratio(candidate.priced)
    rework = 0.0
    if Kind.SPOT_WITH_FALLBACK in candidate.kinds:
        info = _lookup(proposed.instance_type, t) or t.info
        rework = proposed.monthly_usd * (
            spot_overhead(info, rules.ckpt, s.spot_instance_life_hours) - 1
        )
    unit, work = _work(rules)
    work_after = work * (speed if rules.throughput_bound() else 1.0)
    kinds = tuple(step.kind for step in candidate.steps) or candidate.kinds
    return Recommendation(
        target_kind=t.key,
        target=t.name,
        index=t.index,
        kinds=kinds,
        summary=_joined(candidate),
        current=rules.current_plan,
        proposed=proposed,
        monthly_saving_usd=rules.now.monthly_usd - candidate.priced.monthly_usd,
        steps=tuple(candidate.steps),
        speed_ratio=speed,
        expected_rework_usd=rework,
        work_unit=unit,
        usd_per_work_before=rules.now.monthly_usd / work if work > 0 else None,
        usd_per_work_after=candidate.priced.monthly_usd / work_after if work_after > 0 else None,
        memory_needed_gib=rules.need.memory_gib,
        headroom=s.headroom,
        evidence=evidence,
        why=candidate.why,
        changes=candidate.changes,
    )


def _fleet_target(config: StackConfig, index: int, fleet: TrainingFleet) -> _Target:
    region = config.region(fleet.cloud, fleet.region)
    cloud = fleet.cloud.value
    if fleet.instance_types:
        info = catalog.lookup(fleet.instance_types[0], region, cloud=cloud)
    else:
        assert fleet.accelerator is not None
        service = {"aws": "ec2", "gcp": "gce", "azure": "azure-vm"}[cloud]
        count = fleet.accelerators_per_node or 1
        found = catalog.cheapest(
            fleet.accelerator, count, cloud=cloud, region=region, service=service
        )
        if not found:
            raise CatalogError(
                f"trainingFleets[{index}] {fleet.name}: no {fleet.accelerator} type in {region}"
            )
        info = found[0]
    return _Target(
        key="trainingFleets",
        name=fleet.name,
        index=index,
        cloud=cloud,
        region=region,
        info=info,
        nodes=fleet.nodes.desired,
        nodes_min=fleet.nodes.min,
        capacity=fleet.capacity.value,
        on_demand_base=fleet.on_demand_base,
        hours_per_month=fleet.hours_per_month,
        model_memory_gib=None,
        uses_accelerator_form=fleet.accelerator is not None,
    )


def _endpoint_target(config: StackConfig, index: int, endpoint: InferenceEndpoint) -> _Target:
    region = config.region(endpoint.cloud, endpoint.region)
    cloud = endpoint.cloud.value
    if endpoint.instance_type:
        info = catalog.lookup(endpoint.instance_type, region, cloud=cloud)
    else:
        assert endpoint.accelerator is not None
        service = "sagemaker" if cloud == "aws" else "gce"
        found = catalog.cheapest(
            endpoint.accelerator, 1, cloud=cloud, region=region, service=service
        )
        if not found:
            raise CatalogError(
                f"inferenceEndpoints[{index}] {endpoint.name}: no {endpoint.accelerator} type in {region}"
            )
        info = found[0]
    return _Target(
        key="inferenceEndpoints",
        name=endpoint.name,
        index=index,
        cloud=cloud,
        region=region,
        info=info,
        nodes=max(endpoint.replicas.min, 1),
        nodes_min=endpoint.replicas.min,
        capacity=Capacity.ON_DEMAND.value,
        on_demand_base=0,
        hours_per_month=endpoint.hours_per_month,
        model_memory_gib=endpoint.model_memory_gib,
        uses_accelerator_form=endpoint.accelerator is not None,
    )


def _group(
    config: StackConfig, usages: Sequence[GpuUsage]
) -> dict[tuple[str, int], list[GpuUsage]]:
    """Usage per target: by fleet tag, else by the instance type the target is configured with."""
    names = {("trainingFleets", f.name): i for i, f in enumerate(config.training_fleets)}
    names.update(
        {("inferenceEndpoints", e.name): i for i, e in enumerate(config.inference_endpoints)}
    )
    by_type: dict[str, tuple[str, int]] = {}
    for i, fleet in enumerate(config.training_fleets):
        for name in fleet.instance_types or ():
            by_type.setdefault(name, ("trainingFleets", i))
    for i, endpoint in enumerate(config.inference_endpoints):
        if endpoint.instance_type:
            by_type.setdefault(endpoint.instance_type, ("inferenceEndpoints", i))
    grouped: dict[tuple[str, int], list[GpuUsage]] = defaultdict(list)
    for usage in usages:
        key = None
        if usage.fleet is not None:
            for kind in ("trainingFleets", "inferenceEndpoints"):
                if (kind, usage.fleet) in names:
                    key = (kind, names[(kind, usage.fleet)])
        if key is None:
            key = by_type.get(usage.instance_type)
        if key is not None:
            grouped[key].append(usage)
    return grouped


def recommend_target(
    t: _Target, usages: Sequence[GpuUsage], settings: Settings, pricer: Pricer
) -> TargetReport:
    """Everything rightsizing says about one target."""
    if not usages:
        return TargetReport(
            t.key,
            t.name,
            t.index,
            "insufficient-data",
            None,
            missing=(
                f"no usage matched (agent tag finops:fleet={t.name}, or a host of type "
                f"{t.info.instance_type})",
            ),
        )
    usage = fold(usages, t.region)
    missing = gaps(usage, settings.min_days_covered, settings.min_observed_share)
    if missing:
        return TargetReport(
            t.key, t.name, t.index, "insufficient-data", None, missing=tuple(missing)
        )
    try:
        rules = _Rules(t, usage, settings, pricer)
    except FinopsError as exc:
        return TargetReport(
            t.key,
            t.name,
            t.index,
            "unknown",
            None,
            missing=(f"UNKNOWN: the preview cannot price today's config: {exc}",),
        )
    evidence = _evidence(rules)
    evaluation = _Evaluation(rules)
    chosen, on_request = evaluation.run()
    recommendation = None if chosen is None else _recommendation(rules, chosen, evidence)
    costs = []
    for c in on_request:
        if not c.steps:
            c.steps = [Step(c.kinds[0], c.summary, c.priced.monthly_usd if c.priced else 0.0)]
            c.nodes, c.capacity = t.nodes, t.capacity
        costs.append(_recommendation(rules, c, evidence))
    return TargetReport(
        t.key,
        t.name,
        t.index,
        "recommended" if recommendation else "no-change",
        rules.now.monthly_usd,
        recommendation=recommendation,
        on_request=tuple(costs),
        alternatives=tuple(evaluation.alternatives),
        evidence=evidence,
    )


def recommend(
    config: StackConfig,
    usages: Sequence[GpuUsage],
    pricer: Pricer,
    settings: Settings = Settings(),
) -> list[TargetReport]:
    """A report for every fleet and endpoint of `config`, in stack order."""
    settings.validate()
    grouped = _group(config, usages)
    reports = []
    for index, fleet in enumerate(config.training_fleets):
        target = _fleet_target(config, index, fleet)
        reports.append(
            recommend_target(target, grouped.get(("trainingFleets", index), []), settings, pricer)
        )
    for index, endpoint in enumerate(config.inference_endpoints):
        target = _endpoint_target(config, index, endpoint)
        reports.append(
            recommend_target(
                target, grouped.get(("inferenceEndpoints", index), []), settings, pricer
            )
        )
    return reports
