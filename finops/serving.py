"""What serving a model costs a month for a stated traffic: provisioned instances, instances
that scale to zero, and serverless (SageMaker Serverless Inference, Cloud Run).

Every figure is a `Quote` whose `basis` says how it was computed. Traffic is what the stack
config states (`requestsPerMonth`, `meanDurationMs`); nothing here measures it. Assumptions:

- Serverless bills the stated busy time: requests x mean duration x configured memory
  (SageMaker: per GB-second; Cloud Run request-based billing: per vCPU-second and GiB-second,
  plus per request). Free tiers, payload data and cold-start time are not counted.
- Instances that scale to zero (SageMaker inference components, Cloud Run with a GPU, which
  needs instance-based billing) are billed from start until they scale in after
  `SCALE_IN_IDLE_SECONDS` idle. With requests spread evenly over the month each request keeps
  one instance up for its duration plus that idle tail, at most the whole month: bursty
  traffic costs less than this figure, never more.
- Provisioned instances run every hour of the month at their on-demand price.

`cheapest_option` names the cheapest option that fits the model's memory and the traffic at
which it stops being the cheapest (the break-even), found by bisection on requests a month.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aifinops import catalog
from aifinops.catalog import serverless as prices
from aifinops.config import HOURS_PER_MONTH
from aifinops.errors import CatalogError

SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
SCALE_IN_IDLE_SECONDS = 900.0
"""Idle time before an instance-billed replica scales in: Cloud Run keeps an idle instance up
to 15 minutes; a SageMaker target-tracking scale-in alarm needs 15 one-minute datapoints."""

# SageMaker Serverless Inference limits (botocore sagemaker ProductionVariantServerlessConfig:
# ServerlessMemorySizeInMB 1024-6144 in 1 GB steps, ServerlessMaxConcurrency 1-200,
# ServerlessProvisionedConcurrency 1-200 and at most MaxConcurrency).
SAGEMAKER_MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SAGEMAKER_MAX_CONCURRENCY = 200

# Cloud Run services (cloud.google.com/run/docs/configuring/services/gpu and .../memory-limits):
# one NVIDIA L4 (24 GB) per instance with at least 4 vCPU and 16 GiB; vCPU 1, 2, 4, 6 or 8;
# memory up to 32 GiB; GPU services use instance-based billing.
CLOUD_RUN_CPUS = (1, 2, 4, 6, 8)
CLOUD_RUN_MAX_MEMORY_GIB = 32.0


@dataclass(frozen=True)
class CloudRunGpu:
    accelerator: str
    """`node_selector.accelerator` of the service template."""
    memory_gib: float
    min_cpu: int
    min_memory_gib: float
    regions: tuple[str, ...]
    """Regions offering it on Cloud Run services (asia-south1 by invitation only: left out)."""


CLOUD_RUN_GPUS = {
    "L4": CloudRunGpu(
        "nvidia-l4",
        24.0,
        4,
        16.0,
        ("asia-southeast1", "europe-west1", "europe-west4", "us-central1", "us-east4"),
    )
}
CLOUD_RUN_MAX_CONCURRENCY = 1000
CLOUD_RUN_MAX_INSTANCES = 1000

PROVISIONED = "provisioned"
SCALE_TO_ZERO = "scale-to-zero"
SERVERLESS = "serverless"


@dataclass(frozen=True)
class Traffic:
    """The traffic a stack states for an endpoint."""

    requests_per_month: float
    mean_duration_ms: float

    @property
    def busy_seconds(self) -> float:
        return self.requests_per_month * self.mean_duration_ms / 1000.0

    def with_requests(self, requests_per_month: float) -> Traffic:
        return Traffic(requests_per_month, self.mean_duration_ms)

    def describe(self) -> str:
        return f"{self.requests_per_month:,.0f} requests/month of {self.mean_duration_ms:g} ms"


@dataclass(frozen=True)
class Quote:
    """One way of serving, priced for one traffic."""

    option: str
    """"provisioned", "scale-to-zero" or "serverless"."""
    what: str
    """What is bought, e.g. `1 x ml.g5.xlarge`, `SageMaker serverless 4096 MB`."""
    monthly_usd: float
    basis: str
    memory_gib: float
    """Memory the model may use: accelerator memory, else the configured memory."""
    note: str = ""
    """A trade-off to weigh (cold start, no accelerator)."""


def sagemaker_serverless_memory_mb(model_memory_gib: float | None) -> int | None:
    """The smallest SageMaker serverless memory size holding `model_memory_gib` (1024 when
    unknown), or None when no size does."""
    need_mb = (model_memory_gib or 0.0) * 1024
    return next((size for size in SAGEMAKER_MEMORY_SIZES_MB if size >= need_mb), None)


def sagemaker_serverless(
    memory_mb: int, traffic: Traffic, region: str, provisioned_concurrency: int = 0
) -> Quote:
    """SageMaker Serverless Inference: busy seconds x GB of memory x USD per GB-second.
    CatalogError when the region is not priced or provisioned concurrency is asked for (its
    rate is not in the catalog snapshot: the preview says unknown instead of a figure)."""
    if provisioned_concurrency:
        raise CatalogError(
            f"provisioned concurrency ({provisioned_concurrency}) of a SageMaker serverless "
            "endpoint: its per-second rate is not in the catalog snapshot, so the estimate "
            "would be low; the on-demand part alone is in the basis"
        )
    per_gb_second = prices.rate(prices.SAGEMAKER_SERVERLESS, region, "gb-second")
    gb = memory_mb / 1024
    monthly = traffic.busy_seconds * gb * per_gb_second
    return Quote(
        SERVERLESS,
        f"SageMaker serverless {memory_mb} MB",
        monthly,
        f"{traffic.describe()} = {traffic.busy_seconds:,.0f} s x {gb:g} GB x "
        f"${per_gb_second:.7f}/GB-s ({region}; data processed, free tier and cold starts "
        "not counted)",
        gb,
        "CPU only (no GPU or Inferentia): benchmark the model there, the stated duration is "
        "the current hardware's; cold start of seconds up to a minute after idle",
    )


def cloud_run(
    cpu: float,
    memory_gib: float,
    traffic: Traffic,
    region: str,
    *,
    gpu: str | None = None,
    min_instances: int = 0,
    zonal_redundancy: bool = False,
) -> Quote:
    """Cloud Run service. Without a GPU, request-based billing: busy seconds x (vCPU x rate +
    GiB x rate) + requests x rate; idle minimum instances at the instance-based rates (an
    upper bound). With a GPU, instance-based billing of the instances' lifetime (see the
    module doc). CatalogError when the region or GPU is not priced."""
    if gpu:
        billing = prices.INSTANCE_BILLING
        unit = f"gpu-second:{gpu}" + (":zonal-redundancy" if zonal_redundancy else "")
        gpu_rate = prices.rate(prices.CLOUD_RUN, region, unit, billing)
        cpu_rate = prices.rate(prices.CLOUD_RUN, region, "vcpu-second", billing)
        mem_rate = prices.rate(prices.CLOUD_RUN, region, "gib-second", billing)
        per_second = cpu * cpu_rate + memory_gib * mem_rate + gpu_rate
        seconds = _instance_seconds(traffic, min_instances)
        return Quote(
            SCALE_TO_ZERO if min_instances == 0 else PROVISIONED,
            f"Cloud Run {cpu:g} vCPU {memory_gib:g} GiB + 1 x {gpu}",
            seconds * per_second,
            f"{seconds / 3600:,.1f} instance-hours x (${gpu_rate * 3600:.4f}/h {gpu} + "
            f"{cpu:g} vCPU + {memory_gib:g} GiB = ${per_second * 3600:.4f}/h), instance-based "
            f"billing ({region}; {_lifetime_rule(traffic, min_instances)})",
            CLOUD_RUN_GPUS[gpu].memory_gib if gpu in CLOUD_RUN_GPUS else memory_gib,
            "GPU ready about 5 s after start, plus the model load; scales to zero",
        )
    billing = prices.REQUEST_BILLING
    cpu_rate = prices.rate(prices.CLOUD_RUN, region, "vcpu-second", billing)
    mem_rate = prices.rate(prices.CLOUD_RUN, region, "gib-second", billing)
    request_rate = prices.rate(prices.CLOUD_RUN, region, "million-requests", billing)
    busy = traffic.busy_seconds * (cpu * cpu_rate + memory_gib * mem_rate)
    requests = traffic.requests_per_month / 1e6 * request_rate
    idle = 0.0
    idle_basis = ""
    if min_instances:
        idle_cpu = prices.rate(prices.CLOUD_RUN, region, "vcpu-second", prices.INSTANCE_BILLING)
        idle_mem = prices.rate(prices.CLOUD_RUN, region, "gib-second", prices.INSTANCE_BILLING)
        idle = min_instances * SECONDS_PER_MONTH * (cpu * idle_cpu + memory_gib * idle_mem)
        idle_basis = f" + {min_instances} minimum instance(s) all month ${idle:,.2f}"
    return Quote(
        SERVERLESS,
        f"Cloud Run {cpu:g} vCPU {memory_gib:g} GiB",
        busy + requests + idle,
        f"{traffic.describe()} = {traffic.busy_seconds:,.0f} s x ({cpu:g} vCPU x "
        f"${cpu_rate:.7f} + {memory_gib:g} GiB x ${mem_rate:.7f}) + "
        f"{traffic.requests_per_month / 1e6:g} M requests x ${request_rate:.2f}{idle_basis}, "
        f"request-based billing ({region}; free tier not counted)",
        memory_gib,
        "CPU only: benchmark the model there, the stated duration is the current hardware's; "
        "cold start of seconds after idle",
    )


def provisioned(instance_type: str, region: str, replicas: int = 1,
                hours: float = HOURS_PER_MONTH) -> Quote:  # fmt: skip
    """`replicas` instances of `instance_type` running `hours` a month, on demand."""
    info = catalog.lookup(instance_type, region)
    monthly = replicas * info.on_demand_usd_per_hour * hours
    return Quote(
        PROVISIONED,
        f"{replicas} x {info.instance_type}",
        monthly,
        f"{replicas} x ${info.on_demand_usd_per_hour:.4f}/h x {hours:g} h ({region})",
        info.node_accelerator_memory_gib,
        "always warm",
    )


def scale_to_zero(instance_type: str, region: str, traffic: Traffic) -> Quote:
    """One instance of `instance_type` that starts on traffic and scales in when idle."""
    info = catalog.lookup(instance_type, region)
    seconds = _instance_seconds(traffic, 0)
    return Quote(
        SCALE_TO_ZERO,
        f"{info.instance_type} from zero",
        seconds / 3600 * info.on_demand_usd_per_hour,
        f"{seconds / 3600:,.1f} instance-hours x ${info.on_demand_usd_per_hour:.4f}/h "
        f"({region}; {_lifetime_rule(traffic, 0)})",
        info.node_accelerator_memory_gib,
        "cold start of minutes (instance launch + image pull + model load); clients retry",
    )


def _instance_seconds(traffic: Traffic, min_instances: int) -> float:
    woken = traffic.requests_per_month * (traffic.mean_duration_ms / 1000 + SCALE_IN_IDLE_SECONDS)
    return max(min_instances * SECONDS_PER_MONTH, min(SECONDS_PER_MONTH, woken))


def _lifetime_rule(traffic: Traffic, min_instances: int) -> str:
    if min_instances:
        return f"{min_instances} instance(s) always up"
    return (
        f"each request keeps an instance up {traffic.mean_duration_ms:g} ms + "
        f"{SCALE_IN_IDLE_SECONDS / 60:g} min idle, at most the month"
    )


@dataclass(frozen=True)
class Choice:
    """The cheapest option for a traffic, and where it stops being the cheapest."""

    cheapest: Quote
    quotes: tuple[Quote, ...]
    """Every option that fits, cheapest first."""
    unfit: tuple[str, ...]
    """Options that do not fit the model, each with why."""
    break_even_requests: float | None
    """Requests a month at which the runner-up costs as much as the cheapest (None: it stays
    the cheapest up to 10^12 requests, or there is no runner-up)."""
    runner_up: Quote | None


Pricer = Callable[[Traffic], Quote]


def cheapest_option(
    pricers: Sequence[Pricer], traffic: Traffic, model_memory_gib: float | None
) -> Choice | None:
    """Price every option for `traffic`, keep those whose memory holds the model, and find
    the requests a month at which the cheapest and the runner-up cost the same. Options the
    catalog cannot price are left out (listed in `unfit` with the reason)."""
    quotes: list[tuple[Quote, Pricer]] = []
    unfit: list[str] = []
    for pricer in pricers:
        try:
            quote = pricer(traffic)
        except CatalogError as exc:
            unfit.append(f"not priced: {exc}")
            continue
        if model_memory_gib and quote.memory_gib < model_memory_gib:
            unfit.append(
                f"{quote.option} ({quote.what}) has {quote.memory_gib:g} GiB < "
                f"{model_memory_gib:g} GiB the model needs"
            )
            continue
        quotes.append((quote, pricer))
    if not quotes:
        return None
    quotes.sort(key=lambda q: (q[0].monthly_usd, q[0].option))
    best, best_pricer = quotes[0]
    runner = quotes[1] if len(quotes) > 1 else None
    break_even = None
    if runner is not None:
        break_even = _break_even(best_pricer, runner[1], traffic)
    return Choice(
        best, tuple(q for q, _ in quotes), tuple(unfit), break_even, runner[0] if runner else None
    )


def _break_even(cheap: Pricer, other: Pricer, traffic: Traffic) -> float | None:
    """Requests a month where `other` stops costing more than `cheap`, searching up from the
    stated traffic, else down to zero (bisection: both costs are monotone in requests)."""

    def gap(requests: float) -> float:
        t = traffic.with_requests(requests)
        return other(t).monthly_usd - cheap(t).monthly_usd

    here = traffic.requests_per_month
    if gap(here) <= 0:
        return here
    for far in (1e12, 0.0):
        if gap(far) > 0:
            continue
        upward = far > here
        low, high = (here, far) if upward else (far, here)
        while high - low > max(1.0, 1e-7 * high):
            mid = math.sqrt(max(low, 1.0) * high) if upward else (low + high) / 2
            if (gap(mid) <= 0) == upward:
                high = mid
            else:
                low = mid
        return float(round(high if upward else low))
    return None


@dataclass(frozen=True)
class Endpoint:
    """What the comparison needs to know of one endpoint of a stack."""

    cloud: str
    region: str
    traffic: Traffic
    current: str
    """The option the stack uses: "provisioned", "scale-to-zero" or "serverless"."""
    model_memory_gib: float | None = None
    instance_type: str | None = None
    replicas: int = 1
    memory_mb: int | None = None
    cpu: int | None = None


def _cheapest_instance(cloud: str, region: str, need_gib: float | None) -> str | None:
    """The cheapest hosting type in `region` with the accelerator memory the model needs, of
    those a finops endpoint can run on (SageMaker on AWS; TPU VMs on GCP)."""
    services = ("sagemaker",) if cloud == "aws" else ("tpu",)
    rows = [
        info
        for info in catalog.offered(cloud, region, services)
        if info.node_accelerator_memory_gib >= (need_gib or 0.0)
    ]
    rows.sort(key=lambda i: (i.on_demand_usd_per_hour, i.instance_type))
    return rows[0].instance_type if rows else None


def options(endpoint: Endpoint) -> list[Pricer]:
    """Provisioned, scale-to-zero and serverless ways to serve `endpoint`'s model in its
    region. AWS: the endpoint's SageMaker type (else the cheapest that holds the model) always
    on and from zero, and SageMaker serverless; GCP: the cheapest TPU VM that holds the
    model, Cloud Run with an L4 from zero, and Cloud Run on CPU."""
    region = endpoint.region
    need = endpoint.model_memory_gib
    pricers: list[Pricer] = []
    if endpoint.cloud == "aws":
        found = endpoint.instance_type or _cheapest_instance("aws", region, need)
        if found:
            instance: str = found
            replicas = endpoint.replicas if endpoint.current == PROVISIONED else 1
            pricers.append(lambda t: provisioned(instance, region, max(1, replicas)))
            pricers.append(lambda t: scale_to_zero(instance, region, t))
        # the largest size when none holds the model: the memory check names why it is out
        memory = (
            endpoint.memory_mb
            or sagemaker_serverless_memory_mb(need)
            or SAGEMAKER_MEMORY_SIZES_MB[-1]
        )
        pricers.append(lambda t: sagemaker_serverless(memory, t, region))
        return pricers
    vm = endpoint.instance_type or _cheapest_instance("gcp", region, need)
    if vm:
        vm_type: str = vm
        vms = max(1, endpoint.replicas) if endpoint.current != SERVERLESS else 1
        pricers.append(lambda t: provisioned(vm_type, region, vms))
    l4 = CLOUD_RUN_GPUS["L4"]
    if region in l4.regions:
        cpu = max(endpoint.cpu or l4.min_cpu, l4.min_cpu)
        gib = max((endpoint.memory_mb or 0) / 1024, l4.min_memory_gib)
        pricers.append(lambda t: cloud_run(cpu, gib, t, region, gpu="L4"))
    cpu_memory = min(
        float(math.ceil(max((endpoint.memory_mb or 0) / 1024, need or 0.0, 2.0))),
        CLOUD_RUN_MAX_MEMORY_GIB,
    )
    pricers.append(lambda t: cloud_run(max(endpoint.cpu or 2, 2), cpu_memory, t, region))
    return pricers


def advise(endpoint: Endpoint, min_saving_percent: float = 10.0) -> str | None:
    """A sentence naming the cheapest option that fits the model for the stated traffic,
    every option's price and the break-even traffic, when the endpoint's current option costs
    at least `min_saving_percent` more; else None. Raises nothing: an option the catalog
    cannot price is named as such."""
    choice = cheapest_option(options(endpoint), endpoint.traffic, endpoint.model_memory_gib)
    if choice is None:
        return None
    current = [q for q in choice.quotes if q.option == endpoint.current]
    best = choice.cheapest
    if best.option == endpoint.current or not current:
        return None
    now = current[0].monthly_usd
    if now <= 0 or best.monthly_usd > now * (1 - min_saving_percent / 100):
        return None
    need = f"{endpoint.model_memory_gib:g} GiB" if endpoint.model_memory_gib else "the model"
    priced = "; ".join(f"{q.option} ({q.what}) ${q.monthly_usd:,.2f}" for q in choice.quotes)
    text = (
        f"for {endpoint.traffic.describe()}, {best.option} ({best.what}) is the cheapest that "
        f"fits {need}: ${best.monthly_usd:,.2f}/month against ${now:,.2f} for "
        f"{endpoint.current} now; all: {priced}"
    )
    if choice.break_even_requests is not None and choice.runner_up is not None:
        side = (
            "below" if choice.break_even_requests > endpoint.traffic.requests_per_month else "above"
        )
        text += (
            f"; it stays cheapest {side} {choice.break_even_requests:,.0f} requests/month "
            f"(break-even with {choice.runner_up.option})"
        )
    text += f"; trade-off: {best.note}; assumes {endpoint.traffic.mean_duration_ms:g} ms per request on every option"
    if choice.unfit:
        text += f"; left out: {'; '.join(choice.unfit)}"
    return text
