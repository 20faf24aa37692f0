"""Fleets whose GPUs wait on their input pipeline: feed them before buying bigger GPUs.

The agent judges every GPU window (agents/hostload.py): low GPU activity while the host's
CPUs are saturated, tasks stall on I/O or the page cache misses is "GPU waiting on data".
When that is at least `Settings.input_bound_share` of a target's diagnosed GPU time:

- CPU saturated, or page cache missing: a **larger host**, the same accelerators with at
  least `Settings.larger_host_factor` x the vCPUs (CPU) and/or host memory (page cache) per
  accelerator, priced by the preview like every other change and offered on request (it
  costs more), first of the target's on-request changes, with the rise in work per hour
  that pays for it;
- I/O stalled, on AWS: **faster storage** for the fleet's gp3 volumes (provisioned to
  16,000 IOPS and 1,000 MB/s, gp3's maximum), priced per node from the catalog's EBS prices:
  advice, since no stack key sets a volume's IOPS;
- a larger GPU is not offered (`larger-type` for speed): a faster GPU would wait as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aifinops.catalog import InstanceInfo
from aifinops.catalog import storage as storage_prices
from aifinops.rightsizing.model import NAMED_TYPES, Kind

if TYPE_CHECKING:
    from aifinops.rightsizing.choose import Candidate, Evaluation
    from aifinops.rightsizing.rules import Rules

CPU, IO, PAGE_CACHE = "cpu", "io", "page-cache"
GP3_MAX_IOPS = 16000
GP3_MAX_THROUGHPUT_MBPS = 1000
ROOT_VOLUME_GIB = 200
"""The AWS training fleet's gp3 root volume (components/aws/fleet.py `root_volume_size_gib`)."""


def causes(rules: Rules) -> tuple[str, ...]:
    """The causes on in at least `input_cause_share` of the waiting time, in a fixed order."""
    shares = rules.u.waiting_causes
    return tuple(
        c for c in (CPU, IO, PAGE_CACHE) if shares.get(c, 0.0) >= rules.s.input_cause_share
    )


def input_bound(rules: Rules) -> str | None:
    """Why the target waits on its input (None: it does not, or nobody diagnosed it)."""
    share = rules.u.waiting_on_data_share
    if share is None or share < rules.s.input_bound_share:
        return None
    named = ", ".join(
        {CPU: "CPU saturated", IO: "I/O stalled", PAGE_CACHE: "page-cache misses"}[c]
        for c in causes(rules)
    )
    return f"GPU waiting on data in {share:.0%} of the diagnosed GPU time" + (
        f" ({named})" if named else ""
    )


def _per_accelerator(value: float, info: InstanceInfo) -> float:
    return value / max(info.accelerator_count, 1.0)


def _larger(rules: Rules, wanted: tuple[str, ...]) -> tuple[float, float]:
    """(vCPUs, host GiB) per accelerator a larger host must have."""
    now, factor = rules.t.info, rules.s.larger_host_factor
    vcpus = _per_accelerator(now.vcpus, now) * (factor if CPU in wanted else 1.0)
    memory = _per_accelerator(now.memory_gib, now) * (factor if PAGE_CACHE in wanted else 1.0)
    return vcpus, memory


def _fits(info: InstanceInfo, rules: Rules, vcpus: float, memory: float) -> bool:
    now = rules.t.info
    return (
        info.accelerator == now.accelerator
        and info.accelerator_count == now.accelerator_count
        and _per_accelerator(info.vcpus, info) >= vcpus - 1e-9
        and _per_accelerator(info.memory_gib, info) >= memory - 1e-9
    )


def larger_host(evaluation: Evaluation, reason: str) -> Candidate | None:
    """The cheapest larger host for the causes on, priced by the preview (None: no CPU or
    page-cache cause)."""
    from aifinops.rightsizing.choose import Candidate

    r = evaluation.r
    wanted = tuple(c for c in causes(r) if c in (CPU, PAGE_CACHE))
    if not wanted:
        return None
    now = r.t.info
    vcpus, memory = _larger(r, wanted)
    summary = (
        f"{now.instance_type} -> a host with {vcpus:g} vCPUs and {memory:g} GiB per "
        f"{now.accelerator}"
    )
    options = [
        row for row in r.catalog_rows() if _fits(row, r, vcpus, memory) and r.misfit(row) is None
    ]
    if not options:
        evaluation.refuse(
            (Kind.LARGER_HOST,),
            summary,
            f"{reason}, but no larger {now.accelerator} host in the catalog",
        )
        return None
    options.sort(key=lambda i: (r.hourly(i), i.instance_type))
    best = options[0]
    names = [i.instance_type for i in options[:NAMED_TYPES]]  # no padding with smaller hosts
    per = now.accelerator_count
    candidate = evaluation.priced(
        Candidate(
            (Kind.LARGER_HOST,),
            f"{now.instance_type} -> {best.instance_type}: {now.vcpus / per:g} -> "
            f"{best.vcpus / per:g} vCPUs and {now.memory_gib / per:g} -> "
            f"{best.memory_gib / per:g} GiB host memory per {now.accelerator}",
            r.type_changes(best, names),
        )
    )
    if candidate.refused or candidate.priced is None:
        return candidate
    smaller = [
        n
        for n in candidate.priced.instance_types
        if (info := r.lookup(n)) is not None and not _fits(info, r, vcpus, memory)
    ]
    if smaller:
        candidate.refused = (
            f"the fleet may also launch {', '.join(smaller)}, no larger than what waits today"
        )
        return candidate
    now_usd, after_usd = r.now.monthly_usd, candidate.priced.monthly_usd
    util = r.u.util_mean_percent
    ceilings = [100.0 / util] if util else []
    if CPU in wanted:
        ceilings.append(best.vcpus / now.vcpus)
    rise = (
        f"pays for itself if work per hour rises {after_usd / now_usd - 1:.0%}" if now_usd else ""
    )
    if ceilings and min(ceilings) > 1:
        rise += f" (at most +{min(ceilings) - 1:.0%}: GPU busy all the time"
        rise += " or the vCPUs' share)" if CPU in wanted else ")"
    candidate.why = f"{reason}: feed the GPUs before buying more; {rise}".rstrip("; ")
    return candidate


def storage_advice(rules: Rules, reason: str) -> str | None:
    """Faster gp3 volumes for a fleet stalled on I/O, priced per node (None: no I/O cause,
    not an AWS fleet, or no EBS price for the region)."""
    if IO not in causes(rules) or rules.t.cloud != "aws" or rules.t.key != "trainingFleets":
        return None
    region = rules.t.region
    base = storage_prices.ebs_volume_usd_per_month(region, "gp3", ROOT_VOLUME_GIB)
    fast = storage_prices.ebs_volume_usd_per_month(
        region, "gp3", ROOT_VOLUME_GIB, GP3_MAX_IOPS, GP3_MAX_THROUGHPUT_MBPS
    )
    nodes = rules.t.nodes
    if base is None or fast is None:
        return (
            f"{reason}: faster storage (gp3 at {GP3_MAX_IOPS:,} IOPS and "
            f"{GP3_MAX_THROUGHPUT_MBPS:,} MB/s, or instance-store NVMe) - UNKNOWN price: no EBS "
            f"price for {region} in the catalog"
        )
    extra = (fast - base) * nodes
    share = extra / rules.now.monthly_usd if rules.now.monthly_usd else 0.0
    return (
        f"{reason}: faster storage, the {ROOT_VOLUME_GIB} GiB gp3 volumes provisioned to "
        f"{GP3_MAX_IOPS:,} IOPS and {GP3_MAX_THROUGHPUT_MBPS:,} MB/s (from 3,000 and 125): "
        f"+{extra:,.2f} USD/month for {nodes} node(s) ({share:.1%} of the previewed cost; EBS "
        "list prices), or stage the dataset on instance-store NVMe; no stack key sets it, so "
        "--apply leaves it to you"
    )
