"""Fleet replay on held-out time: rightsizing against a strong rival rule, scored on a window
neither saw.

Demand with real temporal structure: the Alibaba 2023 GPU cluster's pod list (creation and
deletion times, GPUs, CPU and memory requests, QoS). Pods of one workload (same GPU count,
GPU share, CPU, memory and QoS: replicas of one deployment) run on one fleet, one pod per
host, each new pod on the lowest-numbered free host. A fleet has as many hosts as its
workload ever ran at once in the 28 days (what carried the work; no padding), on the AWS type
a careful engineer picks for it: the cheapest current-generation EC2 type with the pod's GPU
count whose GPUs are at least as fast and as large as the Alibaba node's and whose host holds
the pod's CPU and memory requests, on-demand.

While a pod runs, its GPUs' utilisation, SM activity and memory come from AcmeTrace's Seren
cluster CDFs (the part where the GPU does work): one quantile per workload, each pod near it,
each 5-minute interval near the pod's; memory scaled by the pod's GPU share of the Alibaba
node's GPU memory. Host CPU and memory are the pod's requests (the agent's host fields, or
EC2 CPUUtilization and the CloudWatch agent's mem_used_percent).

The first 14 days go through the code a user runs (`summarise`, `recommend`, every candidate
priced by the offline program and `aifinops.cost`); the rival rule sees the same summaries. Both
are scored on the next 14 days, which neither saw: a change is unsafe when the held-out
demand would not fit (GPU memory peak, busy GPUs per host, hosts busy at once, the p95 of
5-minute demand on the slowest type the fleet may launch) or when a fleet scaled to zero was
needed. The bill is `finops preview`'s monthly cost of each fleet (730 h), plus for spot the
expected rework of interruptions, plus for a fleet stopped but needed the host-hours it ran.

Rival (the issue's strong rule): hosts idle the whole window off; otherwise the cheapest type
with at least the busy GPUs, memory >= 1.2 x the peak and per-GPU speed >= the current type's.
Printed beside the project: the project without its spot step, the project with the
capacity cuts it offers only on request, and each policy's saving counting only safe changes
(an unsafe one saves nothing real: the work queues, fails or is scaled back up).

Only fleets whose workload ran in the recommending window take part (a workload that starts
later is a new deployment). Rules were developed on `--dev` (days 115-122 to recommend,
122-129 to score), inside the recommending window; the held-out days 129-143 are not tuned on.

    .venv/bin/python bench/fleet_replay.py          # held out: 14 days, then 14
    .venv/bin/python bench/fleet_replay.py --dev    # the development split
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aifinops import catalog
from aifinops import config as stack_config
from aifinops.catalog import InstanceInfo
from aifinops.rightsizing import (
    GpuUsage,
    HostInterval,
    IntervalPeak,
    Kind,
    PreviewPricer,
    PricedTarget,
    Recommendation,
    Settings,
    recommend,
    summarise,
)
from aifinops.rightsizing.recommend import ARM_HOST_ACCELERATORS, spot_overhead
from aifinops.rightsizing.spot import Checkpointing

COMMAND = ".venv/bin/python bench/fleet_replay.py"
DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
DAY = 86400
STEP = 300
HOURS_PER_MONTH = 730.0
TAGS = {"Project": "replay", "Team": "ml-platform", "Environment": "prod"}
SOURCE_GPU = {
    # Alibaba node model -> (GPU memory GiB, V100-relative speed): what the pod ran on
    "P100": (16.0, 0.37),  # no tensor cores: sqrt(21/125 TF x 732/900 GB/s)
    "T4": (16.0, 0.43),
    "V100M16": (16.0, 1.0),
    "V100M32": (32.0, 1.0),
    "A10": (24.0, 0.82),
    "G2": (40.0, 2.08),  # anonymised at the source; taken as A100 40 GB
    "G3": (40.0, 2.08),
}
CHECKPOINTING_QOS = frozenset({"BE"})
"""Best-effort pods are batch work that checkpoints (spot allowed); LS, Burstable and
Guaranteed pods serve or hold state (no spot)."""
IDLE_GPU_MEMORY_GIB = 0.3
"""What a GPU with no pod shows (driver context)."""


class Cdf:
    """Inverse of one AcmeTrace CDF column restricted to values above `floor`."""

    def __init__(self, rows: list[dict[str, str]], column: str, floor: float = 0.0) -> None:
        self.values = sorted(v for v in (float(r[column]) for r in rows) if v > floor)

    def at(self, quantile: float) -> float:
        q = min(1.0, max(0.0, quantile))
        return self.values[min(len(self.values) - 1, int(q * (len(self.values) - 1) + 0.5))]


@dataclass(frozen=True)
class Pod:
    name: str
    start: float
    end: float
    gpus: int
    gpu_share: float
    vcpus: float
    memory_gib: float
    qos: str


@dataclass
class Fleet:
    name: str
    workload: tuple[Any, ...]
    pods: list[Pod]
    source_model: str
    info: InstanceInfo
    hosts: int
    checkpoints: bool
    placement: dict[int, list[Pod]] = field(default_factory=dict)
    levels: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Pod -> (utilisation %, SM ratio, memory GiB) while it runs."""


def stable_seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def load_pods(start: float, end: float) -> list[Pod]:
    pods = []
    with (DATA / "alibaba_v2023_openb_pod_list_default.csv").open() as f:
        for r in csv.DictReader(f):
            if int(r["num_gpu"]) < 1 or not r["deletion_time"]:
                continue
            created, deleted = float(r["creation_time"]), float(r["deletion_time"])
            if deleted <= start or created >= end:
                continue
            pods.append(
                Pod(
                    name=r["name"],
                    start=max(created, start),
                    end=min(deleted, end),
                    gpus=int(r["num_gpu"]),
                    gpu_share=int(r["gpu_milli"]) / 1000,
                    vcpus=int(r["cpu_milli"]) / 1000,
                    memory_gib=int(r["memory_mib"]) / 1024,
                    qos=r["qos"],
                )
            )
    return pods


def place(pods: list[Pod]) -> tuple[int, dict[int, list[Pod]]]:
    """One pod per host, each on the lowest-numbered free host: (hosts needed, placement)."""
    free_at: list[float] = []
    placement: dict[int, list[Pod]] = defaultdict(list)
    for pod in sorted(pods, key=lambda p: (p.start, p.name)):
        for host, until in enumerate(free_at):
            if until <= pod.start:
                free_at[host] = pod.end
                placement[host].append(pod)
                break
        else:
            free_at.append(pod.end)
            placement[len(free_at) - 1].append(pod)
    return len(free_at), placement


def _ec2_rows() -> list[InstanceInfo]:
    return [
        catalog.lookup(name, REGION)
        for name in catalog.instance_types("aws", "ec2")
        if REGION in catalog.regions(name)
    ]


def careful_type(rows: Sequence[InstanceInfo], model: str, pod: Pod) -> InstanceInfo:
    """The cheapest current-generation NVIDIA type that holds the pod as it ran."""
    memory, speed = SOURCE_GPU[model]
    fits = [
        i
        for i in rows
        if i.generation == "current"
        and i.accelerator_info.vendor == "nvidia"
        and i.accelerator_info.kind == "gpu"
        and i.accelerator not in ARM_HOST_ACCELERATORS
        and i.accelerator_count >= pod.gpus
        and i.accelerator_memory_gib >= memory
        and i.accelerator_info.relative_training_throughput >= speed
        and i.vcpus >= pod.vcpus
        and i.memory_gib >= pod.memory_gib
    ]
    return min(fits, key=lambda i: (i.accelerator_count, i.on_demand_usd_per_hour, i.instance_type))


def build_fleets(start: float, fit_days: int, score_days: int, seed: int) -> list[Fleet]:
    end = start + (fit_days + score_days) * DAY
    pods = load_pods(start, end)
    with (DATA / "alibaba_v2023_openb_node_list_gpu_node.csv").open() as f:
        nodes = [(r["model"], int(r["gpu"])) for r in csv.DictReader(f)]
    rows = _ec2_rows()
    groups: dict[tuple[Any, ...], list[Pod]] = defaultdict(list)
    for pod in pods:
        groups[(pod.gpus, pod.gpu_share, pod.vcpus, pod.memory_gib, pod.qos)].append(pod)
    # a fleet is rightsized when it has run: a workload that starts in the held-out window is
    # a new deployment, and counting its fleet idle before would be padding of our making
    fit_end = start + fit_days * DAY
    groups = {k: v for k, v in groups.items() if any(p.start < fit_end for p in v)}
    fleets = []
    for n, (workload, members) in enumerate(sorted(groups.items())):
        rng = random.Random(stable_seed(seed, "hardware", workload))
        model = rng.choice(sorted({m for m, g in nodes if g >= workload[0]}))
        info = careful_type(rows, model, members[0])
        hosts, placement = place(members)
        fleets.append(
            Fleet(
                name=f"w{n:03d}",
                workload=workload,
                pods=members,
                source_model=model,
                info=info,
                hosts=hosts,
                checkpoints=workload[4] in CHECKPOINTING_QOS,
                placement=placement,
            )
        )
    return fleets


def draw_levels(fleets: list[Fleet], seed: int) -> None:
    """Each pod's utilisation, SM activity and memory: a workload quantile, pods near it."""
    with (DATA / "acmetrace_gpu_util_cdfs.csv").open() as f:
        rows = list(csv.DictReader(f))
    util, sm, memory = (
        Cdf(rows, "seren_gpu_util"),
        Cdf(rows, "seren_sm_active"),
        Cdf(rows, "seren_gpu_mem_pct"),
    )
    for fleet in fleets:
        rng = random.Random(stable_seed(seed, "levels", fleet.workload))
        q_workload, q_memory = rng.random(), rng.random()
        source_memory = SOURCE_GPU[fleet.source_model][0]
        for pod in fleet.pods:
            q = q_workload + rng.gauss(0, 0.1)
            qm = q_memory + rng.gauss(0, 0.1)
            fleet.levels[pod.name] = (
                util.at(q) * pod.gpu_share,
                sm.at(q) / 100 * pod.gpu_share,
                max(0.5, memory.at(qm) / 100 * source_memory * pod.gpu_share),
            )


@dataclass
class HostSeries:
    """One host's GPUs over the 28 days, interval by interval (index: interval number)."""

    gpus: list[list[IntervalPeak]]
    host: list[HostInterval]
    busy_pods: list[int]
    """Pods running in each interval (0 or 1)."""


def host_series(fleet: Fleet, host: int, start: float, intervals: int, seed: int) -> HostSeries:
    rng = random.Random(stable_seed(seed, "series", fleet.name, host))
    info = fleet.info
    count = int(info.accelerator_count)
    by_interval: dict[int, list[tuple[Pod, float]]] = defaultdict(list)
    for pod in fleet.placement.get(host, []):
        first = int((pod.start - start) // STEP)
        last = math.ceil((pod.end - start) / STEP)
        for i in range(max(first, 0), min(last, intervals)):
            lo, hi = start + i * STEP, start + (i + 1) * STEP
            covered = max(0.0, min(hi, pod.end) - max(lo, pod.start)) / STEP
            if covered > 0:
                by_interval[i].append((pod, covered))
    gpus: list[list[IntervalPeak]] = [[] for _ in range(count)]
    hosts: list[HostInterval] = []
    busy: list[int] = []
    peaked: set[str] = set()
    for i in range(intervals):
        t = start + i * STEP
        running = by_interval.get(i)
        if not running:
            for g in range(count):
                gpus[g].append(IntervalPeak(t, 0.0, IDLE_GPU_MEMORY_GIB, 0.0, 0.0, 0.0))
            hosts.append(HostInterval(t, 1.0, 1.0))
            busy.append(0)
            continue
        pod, covered = max(running, key=lambda pc: pc[1])
        util, sm, memory = fleet.levels[pod.name]
        level = min(100.0, max(0.0, util * (1 + rng.gauss(0, 0.1))))
        peak = min(100.0, level * (1 + abs(rng.gauss(0, 0.2))))
        used = memory if pod.name not in peaked else memory * rng.uniform(0.85, 1.0)
        peaked.add(pod.name)
        for g in range(count):
            if g < pod.gpus:
                gpus[g].append(
                    IntervalPeak(
                        t,
                        peak,
                        used,
                        min(1.0, sm * peak / max(level, 1e-9)),
                        level * covered,
                        sm * covered,
                        processes=1.0,  # the pod's process, as the agent's process_count
                    )
                )
            else:
                gpus[g].append(IntervalPeak(t, 0.0, IDLE_GPU_MEMORY_GIB, 0.0, 0.0, 0.0))
        hosts.append(
            HostInterval(t, min(100.0, 100.0 * pod.vcpus / info.vcpus + 1.0), pod.memory_gib + 1.0)
        )
        busy.append(1)
    return HostSeries(gpus, hosts, busy)


@dataclass
class Observed:
    """What the held-out window asks of a fleet."""

    memory_peak_gib: float = 0.0
    busy_gpus_per_host: int = 0
    busy_hosts_at_once: int = 0
    demand_p95_v100: float = 0.0
    """p95 over busy GPU-intervals of the 5-minute mean times the type's speed."""
    vcpus_peak: float = 0.0
    host_memory_peak_gib: float = 0.0
    busy_host_hours: float = 0.0
    days: float = 14.0


def observe(fleet: Fleet, series: list[HostSeries], lo: int, hi: int) -> Observed:
    out = Observed(days=(hi - lo) * STEP / DAY)
    speed = fleet.info.accelerator_info.relative_training_throughput
    demand: list[float] = []
    for s in series:
        busy_gpus = 0
        for g in s.gpus:
            window = g[lo:hi]
            if any((p.gpu_util_percent or 0) > 0 for p in window):
                busy_gpus += 1
            for p in window:
                if (p.gpu_util_percent or 0) > 0:
                    out.memory_peak_gib = max(out.memory_peak_gib, p.memory_used_gib or 0.0)
                    demand.append((p.gpu_util_mean_percent or 0.0) / 100 * speed)
        out.busy_gpus_per_host = max(out.busy_gpus_per_host, busy_gpus)
        out.busy_host_hours += sum(s.busy_pods[lo:hi]) * STEP / 3600
        for h, b in zip(s.host[lo:hi], s.busy_pods[lo:hi], strict=True):
            if b:
                out.vcpus_peak = max(
                    out.vcpus_peak, (h.cpu_util_percent or 0) / 100 * fleet.info.vcpus
                )
                out.host_memory_peak_gib = max(out.host_memory_peak_gib, h.memory_used_gib or 0)
    for i in range(lo, hi):
        out.busy_hosts_at_once = max(out.busy_hosts_at_once, sum(s.busy_pods[i] for s in series))
    if demand:
        demand.sort()
        out.demand_p95_v100 = demand[max(0, math.ceil(0.95 * len(demand)) - 1)]
    return out


@dataclass(frozen=True)
class Outcome:
    """One policy's change to one fleet, priced and scored on the held-out window."""

    kinds: tuple[str, ...]
    monthly_usd: float
    """The preview's monthly cost after the change (rework and stopped-but-needed added)."""
    preview_usd: float
    unsafe: tuple[str, ...]
    host_short: bool


def score(
    fleet: Fleet,
    priced: PricedTarget,
    nodes: int,
    spot: bool,
    held: Observed,
    kinds: tuple[str, ...],
) -> Outcome:
    infos = [catalog.lookup(n, REGION) for n in priced.instance_types] or [fleet.info]
    unsafe = []
    if nodes == 0:
        if held.busy_host_hours > 0:
            unsafe.append("stopped but needed")
    else:
        if held.memory_peak_gib > min(i.accelerator_memory_gib for i in infos):
            unsafe.append("memory")
        if held.busy_gpus_per_host > min(i.accelerator_count for i in infos):
            unsafe.append("busy GPUs")
        if held.busy_hosts_at_once > nodes:
            unsafe.append("hosts at once")
        slowest = min(i.accelerator_info.relative_training_throughput for i in infos)
        if held.demand_p95_v100 > slowest + 1e-9:
            unsafe.append("throughput")
    host_short = nodes > 0 and (
        held.vcpus_peak > min(i.vcpus for i in infos)
        or held.host_memory_peak_gib > min(i.memory_gib for i in infos)
    )
    monthly = priced.monthly_usd
    if spot:
        overhead = spot_overhead(infos[0], Checkpointing(), Settings().spot_instance_life_hours)
        monthly *= overhead
    if nodes == 0 and held.busy_host_hours > 0:
        # the work still ran: someone scaled it up for the hours it was needed
        monthly += (
            held.busy_host_hours
            / held.days
            / 24
            * HOURS_PER_MONTH
            * (fleet.info.on_demand_usd_per_hour)
        )
    return Outcome(kinds, monthly, priced.monthly_usd, tuple(unsafe), host_short)


def rival_change(
    fleet: Fleet, usages: list[GpuUsage], rows: Sequence[InstanceInfo]
) -> tuple[dict[str, Any], int, tuple[str, ...]]:
    """The strong rule: idle hosts off; else the cheapest type with >= the busy GPUs,
    memory >= 1.2 x peak and per-GPU speed >= the current type's."""
    by_host: dict[str, list[GpuUsage]] = defaultdict(list)
    for u in usages:
        by_host[u.host].append(u)
    busy_hosts = [h for h, gpus in by_host.items() if any(g.busy_hours for g in gpus)]
    nodes = fleet.hosts - (len(by_host) - len(busy_hosts))
    if nodes <= 0:
        return {"nodes": {"min": 0, "desired": 0}}, 0, ("idle hosts off",)
    changes: dict[str, Any] = {}
    kinds: list[str] = []
    if nodes < fleet.hosts:
        changes["nodes"] = {"desired": nodes, "min": min(1, nodes)}
        kinds.append("idle hosts off")
    busy_gpus = max(sum(1 for g in gpus if g.busy_hours) for gpus in by_host.values())
    peak = max(u.memory_peak_gib or 0.0 for u in usages)
    speed = fleet.info.accelerator_info.relative_training_throughput
    options = [
        i
        for i in rows
        if i.accelerator_info.kind == "gpu"
        and i.accelerator_info.vendor == "nvidia"
        and i.accelerator not in ARM_HOST_ACCELERATORS
        and i.accelerator_count >= max(busy_gpus, 1)
        and i.accelerator_memory_gib >= 1.2 * peak
        and i.accelerator_info.relative_training_throughput >= speed
    ]
    best = min(options, key=lambda i: (i.on_demand_usd_per_hour, i.instance_type))
    if best.instance_type != fleet.info.instance_type:
        changes["instanceTypes"] = [best.instance_type]
        kinds.append("cheapest type")
    return changes, nodes, tuple(kinds)


def project_outcome(
    fleet: Fleet, rec: Recommendation | None, pricer: PreviewPricer, held: Observed
) -> Outcome:
    if rec is None:
        return score(fleet, pricer("trainingFleets", 0, {}), fleet.hosts, False, held, ())
    nodes = int(rec.proposed.nodes)
    spot = rec.proposed.capacity != "on-demand"
    priced = pricer("trainingFleets", 0, rec.changes)
    return score(fleet, priced, nodes, spot, held, tuple(k.value for k in rec.kinds))


def fold_summary(usages: list[GpuUsage]) -> str:
    from aifinops.rightsizing.evidence import fold

    u = fold(usages, REGION)
    return (
        f"demand {u.demand_v100}, memory {u.gpu_memory_peak_gib}, busy hosts "
        f"{u.peak_busy_hosts} {u.peak_busy_hosts_halves}"
    )


def fleet_entry(fleet: Fleet, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "cloud": "aws",
        "instanceTypes": [fleet.info.instance_type],
        "nodes": {"min": 1, "max": max(fleet.hosts, 1) * 2, "desired": fleet.hosts},
        "capacity": "on-demand",
        "modelVersion": "v1",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start-day", type=float, default=115.0, help="trace day the window opens")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--headroom", type=float, default=0.20)
    parser.add_argument(
        "--explain", action="store_true", help="print every unsafe change with its figures"
    )
    parser.add_argument(
        "--dev",
        action="store_true",
        help="the development split: recommend from the first 7 days, score on the next 7 "
        "(both inside the default recommending window; the held-out days stay unseen)",
    )
    args = parser.parse_args()
    began = time.perf_counter()
    start = args.start_day * DAY
    args.fit_days, args.score_days = (7, 7) if args.dev else (14, 14)
    intervals = (args.fit_days + args.score_days) * DAY // STEP
    split = args.fit_days * DAY // STEP

    fleets = build_fleets(start, args.fit_days, args.score_days, args.seed)
    draw_levels(fleets, args.seed)
    rows = _ec2_rows()
    cache: dict[str, PricedTarget] = {}
    held: dict[str, Observed] = {}
    per_fleet: dict[str, list[GpuUsage]] = defaultdict(list)
    for n, fleet in enumerate(fleets):
        series = [host_series(fleet, h, start, intervals, args.seed) for h in range(fleet.hosts)]
        held[fleet.name] = observe(fleet, series, split, intervals)
        for h, s in enumerate(series):
            for g, peaks in enumerate(s.gpus):
                usage = summarise(
                    peaks[:split],
                    host=f"{fleet.name}-h{h}",
                    gpu_index=g,
                    instance_type=fleet.info.instance_type,
                    region=REGION,
                    fleet=fleet.name,
                    source="replay",
                    host_intervals=s.host[:split],
                )
                per_fleet[fleet.name].append(usage)
        print(f"\rseries {n + 1}/{len(fleets)} fleets", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    def pricer_for(fleet: Fleet) -> PreviewPricer:
        # the cost does not depend on the fleet's name: one canonical name shares the cache
        single: dict[str, Any] = {"finops:tags": TAGS, "aws:region": REGION}
        single["finops:trainingFleets"] = [fleet_entry(fleet, "fleet")]
        return PreviewPricer(single, ROOT, cache=cache)

    outcomes: dict[str, dict[str, Outcome]] = defaultdict(dict)
    recommendations: dict[str, Recommendation | None] = {}
    for n, fleet in enumerate(fleets):
        single: dict[str, Any] = {"finops:tags": TAGS, "aws:region": REGION}
        single["finops:trainingFleets"] = [fleet_entry(fleet, fleet.name)]
        settings = Settings(
            headroom=args.headroom,
            checkpointing=Checkpointing() if fleet.checkpoints else None,
        )
        (report,) = recommend(
            stack_config.parse(single), per_fleet[fleet.name], pricer_for(fleet), settings
        )
        pricer = pricer_for(fleet)
        recommendations[fleet.name] = report.recommendation
        held_out = held[fleet.name]
        outcomes["baseline"][fleet.name] = score(
            fleet, pricer("trainingFleets", 0, {}), fleet.hosts, False, held_out, ()
        )
        outcomes["project"][fleet.name] = project_outcome(
            fleet, report.recommendation, pricer, held_out
        )
        rec = report.recommendation
        if args.explain:
            for policy in ("project", "rival"):
                o = outcomes[policy].get(fleet.name)
                if o is not None and o.unsafe:
                    fit = fold_summary(per_fleet[fleet.name])
                    print(
                        f"\n{policy} {fleet.name} {fleet.workload} {fleet.info.instance_type} x "
                        f"{fleet.hosts}: {'+'.join(o.kinds)} unsafe {o.unsafe}; fitted {fit}; "
                        f"held-out {held_out}; change {rec.summary if rec and policy == 'project' else ''}",
                        file=sys.stderr,
                    )
        if rec is not None and Kind.SPOT_WITH_FALLBACK in rec.kinds:
            no_spot = [s for s in rec.steps if s.kind != Kind.SPOT_WITH_FALLBACK]
            changes = {
                k: v for k, v in rec.changes.items() if k not in ("capacity", "onDemandBase")
            }
            priced = pricer("trainingFleets", 0, changes)
            outcomes["project, no spot"][fleet.name] = score(
                fleet,
                priced,
                int(rec.proposed.nodes),
                False,
                held_out,
                tuple(s.kind.value for s in no_spot),
            )
        else:
            outcomes["project, no spot"][fleet.name] = outcomes["project"][fleet.name]
        cuts = [r for r in report.on_request if Kind.FEWER_NODES in r.kinds]
        outcomes["project + cuts on request"][fleet.name] = (
            project_outcome(fleet, cuts[0], pricer, held_out)
            if cuts
            else outcomes["project"][fleet.name]
        )
        changes, nodes, kinds = rival_change(fleet, per_fleet[fleet.name], rows)
        outcomes["rival"][fleet.name] = score(
            fleet, pricer("trainingFleets", 0, changes), nodes, False, held_out, kinds
        )
        print(
            f"\rrecommending {n + 1}/{len(fleets)} fleets ({len(cache)} previews)",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
    report_figures(args, fleets, outcomes, time.perf_counter() - began, len(cache))
    return 0


def report_figures(
    args: argparse.Namespace,
    fleets: list[Fleet],
    outcomes: dict[str, dict[str, Outcome]],
    seconds: float,
    previews: int,
) -> None:
    gpus = sum(f.hosts * int(f.info.accelerator_count) for f in fleets)
    mid, end = args.start_day + args.fit_days, args.start_day + args.fit_days + args.score_days
    print(
        f"Fleet replay on {'the DEVELOPMENT split' if args.dev else 'held-out time'}: "
        f"{len(fleets)} fleets (Alibaba 2023 workloads), {sum(f.hosts for f in fleets)} hosts, "
        f"{gpus} GPUs; trace days {args.start_day:g}-{mid:g} to recommend, {mid:g}-{end:g} "
        f"{'to score' if args.dev else 'held out'}; seed {args.seed}"
    )
    print(
        f"{sum(len(f.pods) for f in fleets)} pods with real creation/deletion times; "
        "utilisation, SM activity, memory: AcmeTrace Seren; prices: `finops preview` of each "
        f"fleet ({previews} offline program runs)"
    )
    base = sum(o.monthly_usd for o in outcomes["baseline"].values())
    print(
        f"baseline bill (careful on-demand types, fleets sized to their peak): {base:,.0f} USD/month"
    )
    print()
    header = (
        f"{'policy':<27}{'USD/month':>12}{'saving':>9}{'unsafe':>8}{'safe-only':>11}  "
        "unsafe by reason; host short"
    )
    print(header)
    print("-" * (len(header) + 20))
    savings: dict[str, float] = {}
    unsafe_counts: dict[str, int] = {}
    for policy in ("baseline", "project", "project, no spot", "project + cuts on request", "rival"):
        results = outcomes[policy]
        bill = sum(o.monthly_usd for o in results.values())
        savings[policy] = 1 - bill / base
        # an unsafe change saves nothing real: the work queues, fails or is scaled back up
        safe_bill = sum(
            outcomes["baseline"][name].monthly_usd if o.unsafe else o.monthly_usd
            for name, o in results.items()
        )
        unsafe = [o for o in results.values() if o.unsafe]
        unsafe_counts[policy] = len(unsafe)
        reasons = Counter(reason for o in unsafe for reason in o.unsafe)
        short = sum(1 for o in results.values() if o.host_short)
        why = ", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "-"
        print(
            f"{policy:<27}{bill:>12,.0f}{savings[policy]:>9.1%}{len(unsafe):>8}"
            f"{1 - safe_bill / base:>11.1%}  {why}; "
            f"{short} fleets short of host CPU or memory"
        )
    for policy in ("project", "rival"):
        print()
        print(f"{policy}: saving by kind (each fleet's saving under its change's kinds)")
        by_kind: dict[str, list[float]] = defaultdict(list)
        for name, o in outcomes[policy].items():
            saving = outcomes["baseline"][name].monthly_usd - o.monthly_usd
            by_kind["+".join(o.kinds) or "no change"].append(saving)
        for kind, values in sorted(by_kind.items(), key=lambda kv: -sum(kv[1])):
            print(f"  {kind:<46}{len(values):>5} fleets {sum(values):>12,.0f} USD/month")
    margin = savings["project"] - savings["rival"]
    met = margin >= 0.05 and unsafe_counts["project"] == 0
    print()
    print(
        f"project {savings['project']:.1%} vs rival {savings['rival']:.1%}: "
        f"{margin * 100:+.1f} points, project unsafe {unsafe_counts['project']}, "
        f"rival unsafe {unsafe_counts['rival']} -> goal (>= +5 points at 0 unsafe) "
        f"{'met' if met else 'NOT met'}"
    )
    print(f"{seconds:.0f} s; reproduce: {COMMAND}")


if __name__ == "__main__":
    raise SystemExit(main())
