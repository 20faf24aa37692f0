"""A proposal becomes priced options across clouds and capacity types, cheapest passing first.

Training work is FLOPs: `6 x modelParams x tokens` (the forward and backward pass of a dense
transformer), or `gpuHours` measured on one accelerator x its dense BF16 peak x `mfu`. On
each candidate accelerator it takes `FLOPs / (peak x mfu)` accelerator-hours (the same MFU on
every chip: an assumption, printed). On-demand nodes bill those hours plus checkpoint writes;
spot nodes bill the expected wall time under interruptions (aifinops.rightsizing.spot: a
per-hour hazard from the Spot Advisor range, every node's interruption stalling the whole job,
checkpoints every `checkpointMinutes`) at the spot price.

Inference is sized on `2 x modelParams` FLOPs per token at `utilisation` of the node's peak,
with the weights (`bytesPerParam`, +20 % for the KV cache and activations) in one node's
accelerator memory; replicas run `hoursPerMonth` on demand (SageMaker on AWS; on GCP TPU
slices, which finops' Vertex AI endpoint serves on for v5e/v6e, and GCE GPU machines, priced
as VMs: finops deploys no GPU serving component on GCP; Azure has no inference component).

Storage is the dataset and checkpoints in the cloud's standard object storage.
Policies are not this module's business: the caller passes `check`, which judges an option's
resources (finops/cli/estimate.py runs the rule functions of `policies/`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aifinops import catalog
from aifinops.catalog.object_storage import object_storage_price
from aifinops.estimate.proposal import (
    TRAINING_BYTES_PER_PARAM,
    CapacityType,
    Inference,
    Proposal,
    Training,
)

GIB = 1024.0**3
HOURS_PER_MONTH = 730.0
INFERENCE_MEMORY_HEADROOM = 0.20
"""Accelerator memory kept above the weights for the KV cache and activations when serving."""
TRAINING_KINDS = ("gpu", "tpu", "trainium")
INFERENCE_KINDS = ("gpu", "tpu", "inferentia")
SERVICES = {
    "training": {"aws": ("ec2",), "gcp": ("gce", "tpu"), "azure": ("azure-vm",)},
    "inference": {"aws": ("sagemaker",), "gcp": ("gce", "tpu"), "azure": ()},
}


@dataclass(frozen=True)
class PolicyVerdict:
    """One policy finding on an option (the caller's checker builds these)."""

    policy: str
    level: str
    """"mandatory", "advisory" or "disabled"."""
    resource: str
    message: str


@dataclass(frozen=True)
class TrainingChoice:
    instance_type: str
    accelerator: str
    accelerator_count: float
    capacity: str
    nodes: int
    runs: float
    usd_per_node_hour: float
    accelerator_hours: float
    """Accelerator-hours of compute for all runs (FLOPs / (peak x MFU))."""
    wall_hours_per_run: float
    """Expected wall time of one run on `nodes` nodes (checkpoint writes, spot rework)."""
    expected_interruptions_per_run: float
    total_usd: float
    """All runs."""


@dataclass(frozen=True)
class InferenceChoice:
    instance_type: str
    accelerator: str
    accelerator_count: float
    replicas: int
    requests_per_second_per_replica: float
    usd_per_node_hour: float
    monthly_usd: float


@dataclass(frozen=True)
class StorageChoice:
    service: str | None
    gib: float
    usd_per_gb_month: float | None
    monthly_usd: float | None
    """None: no price for the region (the option's total leaves it out and says so)."""


@dataclass(frozen=True)
class Option:
    """One complete way to run the proposal on one cloud."""

    cloud: str
    region: str
    training: TrainingChoice | None
    inference: InferenceChoice | None
    storage: StorageChoice
    months: float
    verdicts: tuple[PolicyVerdict, ...] = ()

    @property
    def total_usd(self) -> float:
        """Everything over the proposal's months (storage only where priced)."""
        total = self.training.total_usd if self.training else 0.0
        if self.inference:
            total += self.inference.monthly_usd * self.months
        if self.storage.monthly_usd is not None:
            total += self.storage.monthly_usd * self.months
        return total

    @property
    def monthly_usd(self) -> float:
        """The average month: the total spread over the proposal's months."""
        return self.total_usd / self.months

    @property
    def passes(self) -> bool:
        return not any(v.level == "mandatory" for v in self.verdicts)

    @property
    def fits_schedule(self) -> bool:
        """The training's expected wall time (all runs, one after another) fits the months."""
        if self.training is None:
            return True
        t = self.training
        return t.wall_hours_per_run * t.runs <= self.months * HOURS_PER_MONTH

    @property
    def label(self) -> str:
        parts = []
        if self.training:
            t = self.training
            parts.append(f"train {t.nodes} x {t.instance_type} {t.capacity}")
        if self.inference:
            i = self.inference
            parts.append(f"serve {i.replicas} x {i.instance_type}")
        return f"{self.cloud} {self.region}: " + ", ".join(parts)


@dataclass
class Plan:
    proposal: Proposal
    options: list[Option]
    """Options that pass the policies first, then those whose training fits the proposal's
    months, each group cheapest first."""
    assumptions: list[str]
    dropped: list[str] = field(default_factory=list)
    """Why a cloud or part had no option (no region price, no fitting type...)."""

    @property
    def best(self) -> Option | None:
        """The cheapest option that passes the policies and fits the months, if any."""
        first = self.options[0] if self.options else None
        return first if first is not None and first.passes and first.fits_schedule else None

    def usd_per_unit(self, option: Option) -> dict[str, float]:
        """Cost per unit of work of an option, by unit (USD)."""
        out: dict[str, float] = {}
        p = self.proposal
        if option.training and p.training:
            cost = option.training.total_usd
            if p.training.tokens is not None:
                out["1M training tokens"] = cost / (p.training.tokens * p.training.runs / 1e6)
            if p.training.gpu_hours is not None and p.training.gpu_hours_on is not None:
                out[f"{p.training.gpu_hours_on}-hour of training"] = cost / (
                    p.training.gpu_hours * p.training.runs
                )
        if option.inference and p.inference:
            requests = p.inference.requests_per_second * 3600 * p.inference.hours_per_month
            out["1M requests"] = option.inference.monthly_usd / (requests / 1e6)
            out["1M tokens served"] = option.inference.monthly_usd / (
                requests * p.inference.tokens_per_request / 1e6
            )
        return out


def training_flops(t: Training) -> float:
    """FLOPs of one training run."""
    if t.tokens is not None and t.model_params is not None:
        return 6.0 * t.model_params * t.tokens
    assert t.gpu_hours is not None and t.gpu_hours_on is not None
    peak = catalog.accelerator(t.gpu_hours_on).dense_bf16_tflops * 1e12
    return t.gpu_hours * 3600.0 * peak * t.mfu


def training_choices(p: Proposal, cloud: str, region: str) -> tuple[list[TrainingChoice], str]:
    """Every fitting (type, capacity) for the training on `cloud`; and why none, if none."""
    from aifinops.rightsizing.spot import (
        Checkpointing,
        expected_interruptions,
        expected_wall_hours,
        hazard_of,
    )

    t = p.training
    assert t is not None
    flops = training_flops(t) * t.runs
    ckpt = Checkpointing(interval_hours=t.checkpoint_minutes / 60.0)
    need_gib = None if t.model_params is None else t.model_params * TRAINING_BYTES_PER_PARAM / GIB
    choices = []
    for info in catalog.offered(cloud, region, SERVICES["training"][cloud]):
        chip = info.accelerator_info
        if chip.kind not in TRAINING_KINDS or chip.generation != "current":
            continue
        if t.accelerators is not None and info.accelerator not in t.accelerators:
            continue
        if info.accelerator_count < 1 or chip.dense_bf16_tflops <= 0:
            continue
        if (
            t.accelerators_per_node is not None
            and info.accelerator_count != t.accelerators_per_node
        ):
            continue
        if need_gib is not None and info.node_accelerator_memory_gib * t.nodes < need_gib:
            continue
        accelerator_hours = flops / (chip.dense_bf16_tflops * 1e12 * t.mfu * 3600.0)
        work_per_node = accelerator_hours / info.accelerator_count / t.nodes / t.runs
        for capacity in p.capacity:
            if capacity == CapacityType.SPOT:
                if info.spot_usd_per_hour is None:
                    continue
                price = info.spot_usd_per_hour
                hazard = hazard_of(info, t.spot_instance_life_hours) * t.nodes
            else:
                price, hazard = info.on_demand_usd_per_hour, 0.0
            wall = expected_wall_hours(work_per_node, hazard, ckpt)
            choices.append(
                TrainingChoice(
                    instance_type=info.instance_type,
                    accelerator=info.accelerator,
                    accelerator_count=info.accelerator_count,
                    capacity=capacity.value,
                    nodes=t.nodes,
                    runs=t.runs,
                    usd_per_node_hour=price,
                    accelerator_hours=accelerator_hours,
                    wall_hours_per_run=wall,
                    expected_interruptions_per_run=expected_interruptions(
                        work_per_node, hazard, ckpt
                    ),
                    total_usd=wall * t.nodes * price * t.runs,
                )
            )
    why = ""
    if not choices:
        why = (
            f"{cloud} {region}: no training type fits (accelerators "
            f"{', '.join(t.accelerators or ['any current GPU/TPU/Trainium'])}"
            + (f", {t.accelerators_per_node} per node" if t.accelerators_per_node else "")
            + (f", {need_gib:,.0f} GiB of model states over {t.nodes} node(s)" if need_gib else "")
            + ")"
        )
    return choices, why


def inference_need_gib(i: Inference) -> float:
    """Accelerator memory one replica needs: the weights plus the KV-cache headroom, GiB."""
    return i.model_params * i.bytes_per_param * (1 + INFERENCE_MEMORY_HEADROOM) / GIB


def inference_choices(p: Proposal, cloud: str, region: str) -> tuple[list[InferenceChoice], str]:
    """Every fitting type for the serving on `cloud`, with its replica count; why none."""
    i = p.inference
    assert i is not None
    services = SERVICES["inference"][cloud]
    if not services:
        return [], f"{cloud}: finops has no inference endpoint component on {cloud} (aws, gcp)"
    need_gib = inference_need_gib(i)
    flops_per_second = i.requests_per_second * i.tokens_per_request * 2.0 * i.model_params
    choices = []
    for info in catalog.offered(cloud, region, services):
        chip = info.accelerator_info
        if chip.kind not in INFERENCE_KINDS or chip.generation != "current":
            continue
        if i.accelerators is not None and info.accelerator not in i.accelerators:
            continue
        if info.accelerator_count <= 0 or chip.dense_bf16_tflops <= 0:
            continue
        if info.node_accelerator_memory_gib < need_gib:
            continue
        per_replica = info.accelerator_count * chip.dense_bf16_tflops * 1e12 * i.utilisation
        rps_per_replica = per_replica / (i.tokens_per_request * 2.0 * i.model_params)
        replicas = max(i.min_replicas, math.ceil(flops_per_second / per_replica - 1e-9))
        price = info.on_demand_usd_per_hour
        choices.append(
            InferenceChoice(
                instance_type=info.instance_type,
                accelerator=info.accelerator,
                accelerator_count=info.accelerator_count,
                replicas=replicas,
                requests_per_second_per_replica=rps_per_replica,
                usd_per_node_hour=price,
                monthly_usd=replicas * price * i.hours_per_month,
            )
        )
    why = (
        ""
        if choices
        else (
            f"{cloud} {region}: no inference type holds {need_gib:,.1f} GiB of weights on one node"
            + (f" among {', '.join(i.accelerators)}" if i.accelerators else "")
        )
    )
    return choices, why


def storage_choice(p: Proposal, cloud: str, region: str) -> StorageChoice:
    gib = p.storage.dataset_gib + p.storage.checkpoint_gib
    price = object_storage_price(cloud, region)
    if price is None:
        return StorageChoice(None, gib, None, None if gib else 0.0)
    return StorageChoice(price.service, gib, price.usd_per_gb_month, gib * price.usd_per_gb_month)


Check = Callable[[Option], Sequence[PolicyVerdict]]


def _rank(option: Option) -> tuple[bool, bool, float, str]:
    return (not option.passes, not option.fits_schedule, option.total_usd, option.label)


def plan(proposal: Proposal, check: Check | None = None) -> Plan:
    """Every option of `proposal`, judged by `check` (policy verdicts) and ranked: options
    that pass every mandatory policy first, then those whose training fits the months, each
    group cheapest in total first."""
    options: list[Option] = []
    dropped: list[str] = []
    for cloud_enum in proposal.clouds:
        cloud = cloud_enum.value
        region = proposal.region(cloud)
        training: list[TrainingChoice | None] = [None]
        inference: list[InferenceChoice | None] = [None]
        if proposal.training is not None:
            found_t, why = training_choices(proposal, cloud, region)
            if why:
                dropped.append(why)
                continue
            training = list(found_t)
        if proposal.inference is not None:
            found_i, why = inference_choices(proposal, cloud, region)
            if why:
                dropped.append(why)
                continue
            inference = list(found_i)
        store = storage_choice(proposal, cloud, region)
        if store.monthly_usd is None:
            dropped.append(
                f"{cloud} {region}: no object storage price in the catalog; its options leave "
                f"the {store.gib:,.0f} GiB of storage out"
            )
        for t in training:
            for i in inference:
                option = Option(cloud, region, t, i, store, proposal.months)
                if check is not None:
                    option = Option(
                        cloud, region, t, i, store, proposal.months, tuple(check(option))
                    )
                options.append(option)
    options.sort(key=_rank)
    return Plan(proposal, options, assumptions(proposal), dropped)


def assumptions(p: Proposal) -> list[str]:
    """What the figures stand on, printed with every plan."""
    out = [
        f"catalog prices of {catalog.SNAPSHOT_DATE} (spot prices move; `finops catalog refresh` "
        "for AWS)",
        f"{p.months:g} months; a month is {HOURS_PER_MONTH:g} hours; the monthly figure is the "
        "total spread evenly over the months",
    ]
    if p.training:
        t = p.training
        if t.tokens is not None:
            out.append(
                f"training: 6 x {t.model_params:.3g} params x {t.tokens:.3g} tokens = "
                f"{training_flops(t):.3g} FLOPs per run, {t.runs:g} run(s)"
            )
        else:
            out.append(
                f"training: {t.gpu_hours:g} {t.gpu_hours_on}-hours per run = "
                f"{training_flops(t):.3g} FLOPs at MFU {t.mfu:.0%}, {t.runs:g} run(s)"
            )
        out += [
            f"training runs at MFU {t.mfu:.0%} of each accelerator's dense BF16 peak, the same on "
            "every chip (newer chips often reach less of their peak)",
            f"{t.nodes} node(s) in parallel; checkpoints every {t.checkpoint_minutes:g} min "
            "(1 min to write, 10 min to relaunch after an interruption)",
            "spot: per-node interruption hazard from the AWS Spot Advisor range (upper bound; "
            "GCP and Azure, which publish none, at the worst range) over a "
            f"{t.spot_instance_life_hours:g} h instance life; an interruption of any node "
            "stalls the whole job",
        ]
        if t.model_params is not None:
            out.append(
                f"training memory: {TRAINING_BYTES_PER_PARAM:g} bytes per parameter of model "
                "states (mixed-precision Adam) sharded over every accelerator; activations not "
                "counted"
            )
        else:
            out.append("training memory not checked (no modelParams)")
    if p.inference:
        i = p.inference
        out += [
            f"inference: {i.requests_per_second:g} requests/s x {i.tokens_per_request:g} tokens x "
            f"2 x {i.model_params:.3g} params FLOPs at {i.utilisation:.0%} of peak; weights "
            f"{i.bytes_per_param:g} bytes/param + {INFERENCE_MEMORY_HEADROOM:.0%} in one node; "
            f"on demand {i.hours_per_month:g} h/month, at least {i.min_replicas} replica(s)",
        ]
    out += [
        "storage: dataset + checkpoints in standard object storage for every month; requests, "
        "data transfer and block storage not estimated",
        "policies: the rules of policies/ over each option's fleet, endpoint and a budget for "
        f"the project, in environment {p.environment.value}",
    ]
    return out
