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
   the run with `aifinops.cost` (`pricing.PreviewPricer`): its saving IS the `finops preview`
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

from collections import defaultdict
from collections.abc import Sequence

from aifinops import catalog
from aifinops.config import Capacity, Hosting, InferenceEndpoint, StackConfig, TrainingFleet
from aifinops.errors import CatalogError, FinopsError
from aifinops.rightsizing.choose import Candidate, Evaluation, joined
from aifinops.rightsizing.evidence import fold, gaps
from aifinops.rightsizing.model import (
    ARM_HOST_ACCELERATORS,
    CENT,
    NAMED_TYPES,
    TYPE_KINDS,
    Alternative,
    Evidence,
    Kind,
    Plan,
    Recommendation,
    Settings,
    Step,
    TargetReport,
)
from aifinops.rightsizing.pricing import Pricer
from aifinops.rightsizing.rules import Rules, Target, lookup_type, spot_overhead
from aifinops.rightsizing.usage import GpuUsage

__all__ = [
    "ARM_HOST_ACCELERATORS",
    "CENT",
    "NAMED_TYPES",
    "TYPE_KINDS",
    "Alternative",
    "Evidence",
    "Kind",
    "Plan",
    "Recommendation",
    "Settings",
    "Step",
    "TargetReport",
    "recommend",
    "recommend_target",
    "spot_overhead",
]


def _evidence(rules: Rules) -> Evidence:
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
            "waiting_on_data_share": None
            if u.waiting_on_data_share is None
            else round(u.waiting_on_data_share, 3),
            **{f"waiting_cause_{k}_share": round(v, 3) for k, v in u.waiting_causes.items()},
            **{f"work_{k}_per_hour": round(v, 3) for k, v in u.work_per_hour.items()},
        },
    )


def _work(rules: Rules) -> tuple[str, float]:
    """(unit, units per month) the target does now."""
    u, t = rules.u, rules.t
    if u.work_per_hour:
        unit = sorted(u.work_per_hour)[0]
        return unit, u.work_per_hour[unit] * t.nodes * t.hours_per_month
    per_gpu = t.info.accelerator_info.relative_training_throughput
    mean = (u.util_mean_percent or 0.0) / 100.0
    return "V100-hour used", per_gpu * mean * u.busy_gpus_per_node * t.nodes * t.hours_per_month


def _recommendation(rules: Rules, candidate: Candidate, evidence: Evidence) -> Recommendation:
    assert candidate.priced is not None
    t, s = rules.t, rules.s
    proposed = rules.plan(candidate.priced, candidate.nodes, candidate.capacity or t.capacity)
    speed = rules.speed_ratio(candidate.priced)
    rework = 0.0
    if Kind.SPOT_WITH_FALLBACK in candidate.kinds:
        info = lookup_type(proposed.instance_type, t) or t.info
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
        summary=joined(candidate),
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


def _fleet_target(config: StackConfig, index: int, fleet: TrainingFleet) -> Target:
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
    return Target(
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


def _endpoint_target(config: StackConfig, index: int, endpoint: InferenceEndpoint) -> Target:
    assert endpoint.replicas is not None  # serverless endpoints are skipped
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
    return Target(
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
    t: Target, usages: Sequence[GpuUsage], settings: Settings, pricer: Pricer
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
        rules = Rules(t, usage, settings, pricer)
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
    evaluation = Evaluation(rules)
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
        advice=tuple(evaluation.advice),
    )


def recommend(
    config: StackConfig,
    usages: Sequence[GpuUsage],
    pricer: Pricer,
    settings: Settings | None = None,
) -> list[TargetReport]:
    """A report for every fleet and endpoint of `config`, in stack order."""
    settings = settings or Settings()
    settings.validate()
    grouped = _group(config, usages)
    reports = []
    for index, fleet in enumerate(config.training_fleets):
        target = _fleet_target(config, index, fleet)
        reports.append(
            recommend_target(target, grouped.get(("trainingFleets", index), []), settings, pricer)
        )
    for index, endpoint in enumerate(config.inference_endpoints):
        if endpoint.hosting == Hosting.SERVERLESS or endpoint.replicas is None:
            continue  # serverless: no instance type to rightsize, billed per request
        target = _endpoint_target(config, index, endpoint)
        reports.append(
            recommend_target(
                target, grouped.get(("inferenceEndpoints", index), []), settings, pricer
            )
        )
    return reports
