"""Fleet replay: rightsizing a simulated GPU fleet drawn from real cluster traces.

Hosts: a seeded sample of the Alibaba 2023 GPU cluster's nodes (model and GPU count), each
mapped to the AWS type with the same (or the nearest) GPU and count, on-demand, 730 h/month.
Every GPU of a host runs a job drawn from the Alibaba pod mix (GPUs per pod, QoS); the job's
GPU utilisation, SM activity and memory share are drawn from AcmeTrace's per-job CDFs (Seren
cluster): one quantile for utilisation and SM activity, memory's quantile correlated with it.
Fourteen days of hourly peaks per GPU (with seeded noise) go through the same code as real
telemetry: `finops.rightsizing.summarise` and `recommend_host`; the first recommendation of
each host is taken, as `finops rightsize --apply` does. Latency-sensitive (LS) pods are taken
not to checkpoint, so their hosts get no spot advice.

Side by side, on the same hosts: a naive rule that moves every host whose average GPU
utilisation is under 30% to the cheapest NVIDIA type with the same GPU count, ignoring memory.
A recommendation is unsafe when it leaves less accelerator memory per GPU than the observed
peak. Goal: at least 35% saving and zero unsafe.

    .venv/bin/python bench/fleet_replay.py
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from finops import catalog
from finops.catalog import InstanceInfo
from finops.rightsizing import (
    GpuUsage,
    IntervalPeak,
    Kind,
    Recommendation,
    Settings,
    recommend_host,
    summarise,
)
from finops.rightsizing.recommend import ARM_HOST_ACCELERATORS

COMMAND = ".venv/bin/python bench/fleet_replay.py"
DATA = Path(__file__).parent / "data"
REGION = "us-east-1"
HOURS = 14 * 24
HOURS_PER_MONTH = 730.0
NAIVE_THRESHOLD_PERCENT = 30.0
# Alibaba node model -> the AWS accelerator (and family) a lift-and-shift would pick
AWS_FAMILY = {
    "G2": ("A100", "p4d"),  # anonymised at the source; taken as A100 40 GB
    "G3": ("A100", "p4d"),
    "T4": ("T4", "g4dn"),
    "P100": ("V100", "p3"),  # no P100 on AWS: the V100 family
    "V100M16": ("V100", "p3"),
    "V100M32": ("V100-32GB", "p3dn"),
    "A10": ("A10G", "g5"),
}
IDLE_GPU_MEMORY_SHARE = 0.02
"""Memory a GPU no job uses still shows (driver context), share of the GPU's memory."""


class Cdf:
    """Inverse of one AcmeTrace 1000-point CDF column."""

    def __init__(self, rows: list[dict[str, str]], column: str) -> None:
        self.values = sorted(float(r[column]) for r in rows)

    def at(self, quantile: float) -> float:
        index = min(len(self.values) - 1, max(0, round(quantile * (len(self.values) - 1))))
        return self.values[index]


@dataclass(frozen=True)
class Host:
    name: str
    info: InstanceInfo
    usages: tuple[GpuUsage, ...]
    requested_gpus: int
    checkpoints: bool


def aws_type(model: str, gpus: int) -> InstanceInfo:
    """The smallest type of the model's AWS family with at least `gpus` GPUs; a one-GPU job
    on the A100-class nodes gets AWS's one-GPU H100 (p5.4xlarge) rather than a padded p4d."""
    if AWS_FAMILY[model][0] == "A100" and gpus == 1:
        return catalog.lookup("p5.4xlarge", REGION)
    accelerator, family = AWS_FAMILY[model]
    found = [
        i
        for i in catalog.cheapest(accelerator, gpus, cloud="aws", region=REGION, service="ec2")
        if i.family == family
    ]
    return min(found, key=lambda i: (i.accelerator_count, i.on_demand_usd_per_hour))


def load_hosts(count: int, seed: int) -> list[Host]:
    """One job per host, as a cloud training fleet runs: the job's GPU count and QoS from the
    Alibaba pod mix, its hardware from the Alibaba nodes that could hold it, its activity from
    AcmeTrace."""
    rng = random.Random(seed)
    with (DATA / "acmetrace_gpu_util_cdfs.csv").open() as f:
        rows = list(csv.DictReader(f))
    util = Cdf(rows, "seren_gpu_util")
    sm = Cdf(rows, "seren_sm_active")
    memory = Cdf(rows, "seren_gpu_mem_pct")
    with (DATA / "alibaba_v2023_openb_gpu_nodes.csv").open() as f:
        nodes = [(r["model"], int(r["gpu"])) for r in csv.DictReader(f)]
    with (DATA / "alibaba_v2023_openb_pods_gpu_qos.csv").open() as f:
        pods = [(int(r["num_gpu"]), r["qos"]) for r in csv.DictReader(f) if int(r["num_gpu"]) >= 1]
    hosts = []
    for n in range(count):
        width, qos = rng.choice(pods)
        model, _ = rng.choice([node for node in nodes if node[1] >= width])
        info = aws_type(model, width)
        q = rng.random()
        q_memory = min(1.0, max(0.0, q + rng.gauss(0, 0.1)))
        job = (util.at(q), sm.at(q) / 100, memory.at(q_memory) / 100)
        idle = (0.0, 0.0, IDLE_GPU_MEMORY_SHARE)
        levels = [job] * width + [idle] * (int(info.accelerator_count) - width)
        usages = []
        for index, (mean_util, mean_sm, memory_share) in enumerate(levels):
            peak_memory = info.accelerator_memory_gib * memory_share
            peaks = []
            for hour in range(HOURS):
                burst = 1 + 0.3 * abs(rng.gauss(0, 1))
                peaks.append(
                    IntervalPeak(
                        start=hour * 3600.0,
                        gpu_util_percent=min(100.0, mean_util * burst),
                        memory_used_gib=peak_memory * rng.uniform(0.85, 1.0),
                        sm_active_ratio=min(1.0, mean_sm * burst),
                    )
                )
            # the job reaches its peak memory at least once in the window
            at = rng.randrange(HOURS)
            peaks[at] = IntervalPeak(
                peaks[at].start, peaks[at].gpu_util_percent, peak_memory, peaks[at].sm_active_ratio
            )
            usages.append(
                summarise(
                    peaks,
                    host=f"host-{n:04d}",
                    gpu_index=index,
                    instance_type=info.instance_type,
                    region=REGION,
                )
            )
        hosts.append(Host(f"host-{n:04d}", info, tuple(usages), width, checkpoints=qos != "LS"))
    return hosts


def memory_unsafe(info: InstanceInfo, usages: tuple[GpuUsage, ...]) -> bool:
    """Less accelerator memory per GPU than the observed peak of some busy GPU."""
    peak = max(u.memory_peak_gib or 0.0 for u in usages)
    return info.accelerator_memory_gib < peak


def naive(host: Host) -> tuple[float, InstanceInfo]:
    """Average-utilisation threshold: under 30% -> the cheapest NVIDIA type with as many GPUs."""
    mean = sum(u.util_mean_percent for u in host.usages) / len(host.usages)
    if mean >= NAIVE_THRESHOLD_PERCENT:
        return host.info.on_demand_usd_per_hour * HOURS_PER_MONTH, host.info
    best = min(_same_count(host.info), key=lambda i: (i.on_demand_usd_per_hour, i.instance_type))
    return best.on_demand_usd_per_hour * HOURS_PER_MONTH, best


_SAME_COUNT: dict[float, list[InstanceInfo]] = {}


def _same_count(info: InstanceInfo) -> list[InstanceInfo]:
    if info.accelerator_count not in _SAME_COUNT:
        found = []
        for name in catalog.instance_types("aws", "ec2"):
            if REGION not in catalog.regions(name):
                continue
            row = catalog.lookup(name, REGION)
            chip = row.accelerator_info
            if (
                chip.vendor == "nvidia"
                and chip.kind == "gpu"
                and row.accelerator_count == info.accelerator_count
                and row.accelerator not in ARM_HOST_ACCELERATORS
            ):
                found.append(row)
        _SAME_COUNT[info.accelerator_count] = found
    return _SAME_COUNT[info.accelerator_count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=600)
    parser.add_argument("--seed", type=int, default=20261128)
    args = parser.parse_args()

    hosts = load_hosts(args.hosts, args.seed)
    by_type: dict[str, Counter[str]] = defaultdict(Counter)
    money: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    kinds: Counter[str] = Counter()
    kind_saving: dict[str, float] = defaultdict(float)
    unsafe = naive_unsafe = naive_changed = 0
    for host in hosts:
        settings = Settings() if host.checkpoints else Settings(checkpointing=None)
        recs: list[Recommendation] = recommend_host(
            host.info.instance_type, host.usages, settings, region=REGION, name=host.name
        )
        before = host.info.on_demand_usd_per_hour * HOURS_PER_MONTH
        after = before
        if recs:
            rec = recs[0]
            after = rec.proposed.monthly_usd
            kinds[rec.kind.value] += 1
            kind_saving[rec.kind.value] += before - after
            if rec.kind != Kind.SCALE_TO_ZERO and memory_unsafe(
                catalog.lookup(rec.proposed.instance_type, REGION), host.usages
            ):
                unsafe += 1
        else:
            kinds["none"] += 1
        naive_after, naive_info = naive(host)
        if naive_info.instance_type != host.info.instance_type:
            naive_changed += 1
            naive_unsafe += memory_unsafe(naive_info, host.usages)
        t = host.info.instance_type
        by_type[t]["hosts"] += 1
        by_type[t]["gpus"] += len(host.usages)
        money[t]["before"] += before
        money[t]["after"] += after
        money[t]["naive"] += naive_after

    print(
        f"Fleet replay: {len(hosts)} hosts, {sum(len(h.usages) for h in hosts)} GPUs, 14 days of hourly peaks, seed {args.seed}"
    )
    print(
        "hardware mix: Alibaba 2023 GPU nodes; job mix: Alibaba 2023 pods; utilisation/SM/memory: AcmeTrace Seren CDFs"
    )
    requested = sum(h.requested_gpus for h in hosts)
    provisioned = sum(len(h.usages) for h in hosts)
    print(
        f"GPUs the jobs asked for: {requested} of {provisioned} provisioned (AWS sells the family "
        f"only in larger sizes); {sum(not h.checkpoints for h in hosts)} hosts run "
        "latency-sensitive pods (no spot advice)"
    )
    print()
    header = f"{'current type':<16}{'hosts':>6}{'GPUs':>6}{'USD/mo now':>13}{'rightsized':>13}{'saving':>8}{'naive rule':>13}{'saving':>8}"
    print(header)
    print("-" * len(header))
    totals: dict[str, float] = defaultdict(float)
    for t in sorted(by_type, key=lambda k: -money[k]["before"]):
        m = money[t]
        for k in ("before", "after", "naive"):
            totals[k] += m[k]
        print(
            f"{t:<16}{by_type[t]['hosts']:>6}{by_type[t]['gpus']:>6}{m['before']:>13,.0f}{m['after']:>13,.0f}"
            f"{1 - m['after'] / m['before']:>8.1%}{m['naive']:>13,.0f}{1 - m['naive'] / m['before']:>8.1%}"
        )
    print("-" * len(header))
    saving = 1 - totals["after"] / totals["before"]
    naive_saving = 1 - totals["naive"] / totals["before"]
    print(
        f"{'total':<16}{len(hosts):>6}{sum(len(h.usages) for h in hosts):>6}{totals['before']:>13,.0f}"
        f"{totals['after']:>13,.0f}{saving:>8.1%}{totals['naive']:>13,.0f}{naive_saving:>8.1%}"
    )
    print()
    print("first recommendation per host:")
    for kind, n in kinds.most_common():
        print(f"  {kind:<24}{n:>5} hosts  {kind_saving.get(kind, 0.0):>12,.0f} USD/month")
    print()
    print(
        f"rightsizing: {totals['before'] - totals['after']:,.0f} USD/month saved ({saving:.1%}; goal >= 35%), "
        f"unsafe recommendations (memory below observed peak): {unsafe} (goal 0)"
    )
    print(
        f"naive average-utilisation rule (< {NAIVE_THRESHOLD_PERCENT:g}%): {totals['before'] - totals['naive']:,.0f} "
        f"USD/month ({naive_saving:.1%}), {naive_changed} hosts changed, unsafe: {naive_unsafe}"
    )
    print(f"goal {'met' if saving >= 0.35 and unsafe == 0 else 'NOT met'}")
    print(f"reproduce: {COMMAND}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
