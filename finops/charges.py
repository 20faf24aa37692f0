"""Charges besides instances: every one that follows from a stack's configuration, and the
usage-based ones priced from the usage file (`finops.usage`).

Each charge is a line of its own under the component that adds it, with its basis:

- a fleet's volumes (AWS launch template block devices, GCP instance template disks, Azure
  scale set OS and data disks) x its nodes, and its telemetry: the agent's config is read
  from the fleet's boot script (what `pulumi up` will install), and the number of metrics
  comes from the agent's own layout (`agents.cloudwatch.series_layout`) x GPUs x nodes, plus
  the per-fleet copies per instance type, plus the new series of spot replacements at the
  catalog's interruption rate; PutMetricData requests from its window and batch size;
- an endpoint's ML storage volumes; functions' invocations (their schedules' calls, plus
  the usage file's) and run time; Cloud Scheduler jobs; NAT gateways and interface
  endpoints by the hour; log groups' ingestion and storage for their retention; buckets'
  storage.

Prices come from `finops.catalog.charges` and `finops.catalog.storage` (list prices, no free
tier subtracted). A price or an input the model cannot read makes the line UNKNOWN with the
reason, never a silent $0.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from finops import catalog
from finops.catalog import charges as prices
from finops.catalog import storage
from finops.catalog.object_storage import object_storage_price
from finops.config import HOURS_PER_MONTH
from finops.errors import CatalogError
from finops.usage import Usage

if TYPE_CHECKING:
    from agents.config import AgentConfig
    from finops.engine import EngineResource, StackRun

SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
DAYS_PER_MONTH = HOURS_PER_MONTH / 24


@dataclass(frozen=True)
class Charge:
    """One priced line that a resource adds besides its own price."""

    resource: EngineResource
    """The resource that adds the charge (the line is listed under its component)."""
    what: str
    """Short name of the line: "volumes", "telemetry", "invocations", "storage"..."""
    type: str
    """A type token for the line (`aws:charge:EbsVolumes`), its cloud first."""
    monthly_usd: float
    basis: str
    priced: bool = True

    @property
    def name(self) -> str:
        return f"{self.resource.name}/{self.what}"


def _unknown(resource: EngineResource, what: str, type_: str, reason: str) -> Charge:
    return Charge(resource, what, type_, 0.0, f"not priced: {reason}", priced=False)


def _get(data: Any, *path: str | int) -> Any:
    for key in path:
        if isinstance(data, Mapping):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return data


def _num(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


@dataclass(frozen=True)
class NodeGroup:
    """What the instance pricer found about a group of nodes (PricedResource's fields)."""

    nodes: float
    spot_share: float
    instance_types: tuple[str, ...]
    hours: float


class ChargeContext:
    """What every charge reads: the run, related inputs, regions, hours and usage."""

    def __init__(
        self,
        run: StackRun,
        related: Mapping[str, tuple[str, Mapping[str, Any]]],
        region_of: Callable[[EngineResource], str],
        hours_of: Callable[[EngineResource], float],
        usage: Usage,
        groups: Mapping[str, NodeGroup],
    ) -> None:
        self.run = run
        self.related = related
        self.region_of = region_of
        self.hours_of = hours_of
        self.usage = usage
        self.groups = groups

    def related_inputs(self, reference: Any, type_token: str) -> Mapping[str, Any] | None:
        found = self.related.get(str(reference)) if reference is not None else None
        return found[1] if found and found[0] == type_token else None

    def usage_note(self, resource: EngineResource, key: str) -> tuple[float, str]:
        value = self.usage.get(resource.name, key)
        return value, ("" if value else f" (usage key {key} still 0)")


# --- the agent's telemetry ----------------------------------------------------------------

AGENT_PROGRAM = "finops-agent"
_HEREDOC = re.compile(r"cat > (\S+) <<'([A-Za-z_][A-Za-z0-9_]*)'\n(.*?)\n\2\n", re.S)


def agent_config_of(boot_script: str) -> AgentConfig | None:
    """The finops agent's config written by a fleet's boot script, or None when the script
    installs no agent. Raises ValueError when it writes one that the agent would refuse."""
    from agents.config import ConfigError as AgentConfigError
    from agents.config import parse_config

    for path, _, body in _HEREDOC.findall(boot_script):
        if not path.endswith(".toml"):
            continue
        try:
            raw = tomllib.loads(body)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"the agent config {path} in the boot script: {exc}") from exc
        if "metadata" not in raw:
            continue
        try:
            return parse_config(raw, source=path)
        except AgentConfigError as exc:
            raise ValueError(str(exc)) from exc
    return None


def _decoded(text: Any) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    if text.startswith("#!"):
        return text
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def telemetry_charge(
    resource: EngineResource, boot_script: str | None, group: NodeGroup, cloud: str, region: str
) -> Charge | None:
    """The monthly cost of the agent's cloud metrics on a fleet group, from its real config."""
    type_ = f"{cloud}:charge:AgentTelemetry"
    if boot_script is None:
        return None
    try:
        config = agent_config_of(boot_script)
    except ValueError as exc:
        return _unknown(resource, "telemetry", type_, f"agent config unreadable: {exc}")
    if config is None:
        if AGENT_PROGRAM in boot_script:
            return _unknown(
                resource,
                "telemetry",
                type_,
                f"the boot script installs {AGENT_PROGRAM} but writes no config this model "
                "reads (a TOML heredoc with [metadata])",
            )
        return None
    cw = config.cloudwatch
    if not cw.enabled:
        return Charge(
            resource,
            "telemetry",
            type_,
            0.0,
            "agent metrics on the host only (Prometheus, export file): no cloud metrics charge",
        )
    from agents.cloudwatch import series_layout

    layout = series_layout(cw)
    try:
        infos = [catalog.lookup(t, region, cloud=cloud) for t in group.instance_types]
    except CatalogError as exc:
        return _unknown(resource, "telemetry", type_, str(exc))
    if not infos:
        return _unknown(resource, "telemetry", type_, "no instance type to count GPUs on")
    gpus = max(1, math.ceil(infos[0].accelerator_count))
    nodes, hours = group.nodes, group.hours
    per_instance = layout.per_gpu * gpus
    types_in_use = min(math.ceil(nodes), len(infos))
    tag_metrics = layout.per_tag_set * types_in_use
    steady = (per_instance * nodes + tag_metrics) * hours / HOURS_PER_MONTH
    # Spot replacements start new InstanceId series. CloudWatch prorates custom metrics by
    # the hour, so a replaced instance's series and its successor's overlap by about one hour.
    share = sum(i.monthly_interruption_share for i in infos) / len(infos)
    replacements = nodes * group.spot_share * share * hours / HOURS_PER_MONTH
    churn = replacements * per_instance / HOURS_PER_MONTH
    metric_months = steady + churn
    metrics_usd = prices.tiered_usd("aws", region, "cloudwatch-custom-metric", metric_months)
    request_price = prices.unit_price("aws", region, "cloudwatch-api-requests")
    if metrics_usd is None or request_price is None:
        return _unknown(
            resource, "telemetry", type_, f"no CloudWatch prices for {region} in the catalog"
        )
    per_ship_windows = max(1.0, cw.ship_interval_seconds / config.agent.window_seconds)
    ships = hours * 3600 / max(cw.ship_interval_seconds, config.agent.window_seconds)
    datums = gpus * layout.datums_per_record * per_ship_windows
    requests = nodes * ships * math.ceil(datums / cw.max_metrics_per_request)
    requests_usd = requests / 1000 * request_price.usd
    first = prices.tiers("aws", region, "cloudwatch-custom-metric")[0]
    cwagent = " + the CloudWatch agent's set" if cw.cwagent_dimensions else ""
    basis = (
        f"{nodes:g} nodes x {gpus} GPU x {layout.per_gpu} metrics (InstanceId, index{cwagent})"
        + (
            f" + {layout.per_tag_set} per-fleet copies x {types_in_use} instance type(s)"
            if tag_metrics
            else ""
        )
        + f" x {hours:g}/{HOURS_PER_MONTH:g} h = {steady:,.1f} metric-months; "
        f"spot churn {replacements:.2f} replacements/month (interruptions {share:.0%}/month) "
        f"add {churn:.3f} (hourly proration); at ${first.usd:.2f}/metric-month "
        f"(first tier; resolution {cw.storage_resolution_seconds} s costs the same) = "
        f"{_usd(metrics_usd)}; PutMetricData {requests:,.0f} requests at "
        f"${request_price.usd:.2f}/1,000 = {_usd(requests_usd)}"
    )
    return Charge(resource, "telemetry", type_, metrics_usd + requests_usd, basis)


# --- volumes --------------------------------------------------------------------------------


Disk = tuple[str, float | None, Callable[[float], float | None], str]
"""(label, size GB or None, USD a month of one such disk by size, unit price text)."""


def _volume_line(
    resource: EngineResource, cloud: str, disks: list[Disk], group: NodeGroup
) -> Charge:
    """disks: (label, size GB, price of one such disk a month, unit price text)."""
    type_ = f"{cloud}:charge:Volumes"
    per_node, parts = 0.0, []
    for label, size, price_of, unit in disks:
        if size is None:
            return _unknown(
                resource, "volumes", type_, f"{label}: no size set (the image's size applies)"
            )
        usd = price_of(size)
        if usd is None:
            return _unknown(resource, "volumes", type_, f"{label}: no price in the catalog")
        per_node += usd
        parts.append(f"{size:g} GB {label} {unit}")
    monthly = per_node * group.nodes * group.hours / HOURS_PER_MONTH
    basis = (
        f"{group.nodes:g} nodes x ({' + '.join(parts)}) = {_usd(per_node)}/node-month"
        f" x {group.hours:g}/{HOURS_PER_MONTH:g} h"
    )
    return Charge(resource, "volumes", type_, monthly, basis)


def _aws_group(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    group = ctx.groups.get(resource.urn)
    if group is None or group.nodes <= 0:
        return
    inputs = resource.inputs
    spec = _get(inputs, "mixedInstancesPolicy", "launchTemplate", "launchTemplateSpecification")
    reference = None
    if spec:
        reference = spec.get("launchTemplateId") or spec.get("launchTemplateName")
    else:
        reference = _get(inputs, "launchTemplate", "id") or _get(inputs, "launchTemplate", "name")
    template = ctx.related_inputs(reference, "aws:ec2/launchTemplate:LaunchTemplate")
    if template is None:
        return
    region = ctx.region_of(resource)
    disks: list[Disk] = []
    for mapping in template.get("blockDeviceMappings") or []:
        ebs = mapping.get("ebs") or {}
        if not ebs:
            continue
        kind = ebs.get("volumeType")
        if not kind:
            yield _unknown(
                resource, "volumes", "aws:charge:Volumes", "EBS volume type from the AMI"
            )
            return
        iops, throughput = _num(ebs.get("iops")), _num(ebs.get("throughput"))

        def one(size: float, kind: str = str(kind), i: Any = iops, t: Any = throughput) -> Any:
            return storage.ebs_volume_usd_per_month(region, kind, size, i, t)

        unit = storage.usd_per_month(region, f"ebs-{kind}-gb")
        disks.append(
            (
                f"{kind}" + (" encrypted" if str(ebs.get("encrypted")).lower() == "true" else ""),
                _num(ebs.get("volumeSize")),
                one,
                f"at ${unit:.3f}/GB-month" if unit is not None else "",
            )
        )
    if disks:
        yield _volume_line(resource, "aws", disks, group)
    telemetry = telemetry_charge(resource, _decoded(template.get("userData")), group, "aws", region)
    if telemetry:
        yield telemetry


_GCP_DEFAULT_DISK = "pd-standard"  # the API's default diskType for instance template disks


def _gcp_group(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    group = ctx.groups.get(resource.urn)
    if group is None or group.nodes <= 0:
        return
    template = None
    for version in resource.inputs.get("versions") or []:
        template = ctx.related_inputs(
            version.get("instanceTemplate"), "gcp:compute/instanceTemplate:InstanceTemplate"
        )
        if template:
            break
    if template is None:
        return
    region = ctx.region_of(resource)
    disks: list[Disk] = []
    for disk in template.get("disks") or []:
        kind = str(disk.get("diskType") or _GCP_DEFAULT_DISK)
        price = prices.unit_price("gcp", region, f"{kind}-gb")

        def one(size: float, p: Any = price) -> float | None:
            return None if p is None else size * p.usd

        label = f"{kind}{' boot' if disk.get('boot') else ''}"
        unit = f"at ${price.usd:.3f}/GB-month" if price else ""
        disks.append((label, _num(disk.get("diskSizeGb")), one, unit))
    if disks:
        yield _volume_line(resource, "gcp", disks, group)
    script = template.get("metadataStartupScript") or _get(template, "metadata", "startup-script")
    telemetry = telemetry_charge(resource, _decoded(script), group, "gcp", region)
    if telemetry:
        yield telemetry


def _azure_vmss(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    group = ctx.groups.get(resource.urn)
    if group is None or group.nodes <= 0:
        return
    profile = resource.inputs.get("virtualMachineProfile") or {}
    region = ctx.region_of(resource)
    storage_profile = profile.get("storageProfile") or {}
    disks: list[Disk] = []
    all_disks = [("OS disk", storage_profile.get("osDisk") or {})] + [
        ("data disk", d) for d in storage_profile.get("dataDisks") or []
    ]
    for role, disk in all_disks:
        if not disk:
            continue
        account = str(_get(disk, "managedDisk", "storageAccountType") or "Standard_LRS")

        def one(size: float, a: str = account) -> float | None:
            tier = prices.size_tier("azure", region, f"managed-disk-{a}", size)
            return None if tier is None else tier.usd

        tier = prices.size_tier(
            "azure", region, f"managed-disk-{account}", _num(disk.get("diskSizeGB")) or 0
        )
        unit = f"billed as the {tier.tier_upto:g} GiB tier" if tier else ""
        disks.append((f"{account} {role}", _num(disk.get("diskSizeGB")), one, unit))
    if disks:
        yield _volume_line(resource, "azure", disks, group)
    script = _get(profile, "osProfile", "customData")
    telemetry = telemetry_charge(resource, _decoded(script), group, "azure", region)
    if telemetry:
        yield telemetry


def _sagemaker_storage(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    region = ctx.region_of(resource)
    hours = ctx.hours_of(resource)
    type_ = "aws:charge:MlStorage"
    price = prices.unit_price("aws", region, "sagemaker-ml-storage-gb")
    total, parts = 0.0, []
    for variant in resource.inputs.get("productionVariants") or []:
        if not variant.get("instanceType"):
            continue
        count = _num(variant.get("initialInstanceCount")) or 1.0
        scaling = variant.get("managedInstanceScaling") or {}
        if scaling.get("status") == "ENABLED" and scaling.get("minInstanceCount") is not None:
            count = _num(scaling.get("minInstanceCount")) or 0.0
        size = _num(variant.get("volumeSizeInGb"))
        if size is None:
            yield _unknown(
                resource,
                "ml-storage",
                type_,
                f"variant {variant.get('variantName')}: no volumeSizeInGb, so SageMaker picks "
                "the ML storage volume's size by instance type (a table the catalog lacks); "
                "set volumeSizeInGb to price it",
            )
            return
        if price is None:
            yield _unknown(resource, "ml-storage", type_, f"no ML storage price for {region}")
            return
        total += count * size * price.usd * hours / HOURS_PER_MONTH
        parts.append(f"{count:g} x {size:g} GB")
    if parts:
        yield Charge(
            resource,
            "ml-storage",
            type_,
            total,
            f"{' + '.join(parts)} ML storage at ${price.usd if price else 0:.2f}/GB-month"
            f" x {hours:g}/{HOURS_PER_MONTH:g} h",
        )


# --- functions and schedules ----------------------------------------------------------------

_RATE = re.compile(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)")
_UNIT_MINUTES = {"minute": 1, "hour": 60, "day": 1440}


def _field_count(text: str, low: int, high: int) -> int | None:
    """How many values a cron field matches ('*', '*/n', 'a-b', 'a,b', numbers)."""
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit():
                return None
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()):
                return None
            start, end = int(a), int(b)
        elif part.isdigit():
            start = end = int(part)
        else:
            return None
        values.update(range(start, end + 1, step))
    return len(values)


def calls_per_month(schedule: str) -> float | None:
    """Runs a month of an EventBridge `rate(...)`/`cron(...)` or a unix cron schedule, or
    None when the schedule restricts days (not counted here)."""
    schedule = schedule.strip()
    match = _RATE.fullmatch(schedule)
    if match:
        minutes = int(match.group(1)) * _UNIT_MINUTES[match.group(2).rstrip("s")]
        return HOURS_PER_MONTH * 60 / minutes
    if schedule.startswith("cron(") and schedule.endswith(")"):
        fields = schedule[5:-1].split()
    else:
        fields = schedule.split()
    if len(fields) < 5 or any(f not in ("*", "?") for f in fields[2:5]):
        return None
    minutes = _field_count(fields[0], 0, 59)
    hours = _field_count(fields[1], 0, 23)
    if minutes is None or hours is None:
        return None
    return minutes * hours * DAYS_PER_MONTH


def _schedules_of(function: EngineResource, ctx: ChargeContext) -> list[tuple[str, float]]:
    """(schedule resource, calls a month) of the schedules that invoke `function`."""
    found: list[tuple[str, float]] = []
    arn = function.outputs.get("arn")
    component = ctx.run.component_of(function)
    for resource in ctx.run.custom_resources():
        if resource.type == "aws:cloudwatch/eventTarget:EventTarget":
            if arn is None or resource.inputs.get("arn") != arn:
                continue
            rule = ctx.related_inputs(
                resource.inputs.get("rule"), "aws:cloudwatch/eventRule:EventRule"
            )
            expression = (rule or {}).get("scheduleExpression")
            if expression:
                calls = calls_per_month(str(expression))
                found.append((str(expression), calls if calls is not None else -1.0))
        elif resource.type == "gcp:cloudscheduler/job:Job":
            # the job's target URI is the function's, unknown until deployed: the job of the
            # same component is the one that calls it
            if component is None or ctx.run.component_of(resource) != component:
                continue
            calls = calls_per_month(str(resource.inputs.get("schedule") or ""))
            found.append((str(resource.inputs.get("schedule")), calls if calls else -1.0))
    return found


_GCF_DEFAULT_CPU = {128: 0.083, 256: 0.167, 512: 0.333, 1024: 0.583, 2048: 1.0, 4096: 2.0}
"""Cloud Run functions: the vCPU a memory size gets when no CPU is set."""


def _memory_mib(text: Any) -> float | None:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(M|Mi|G|Gi)", str(text or "256M"))
    if not match:
        return None
    value = float(match.group(1))
    return value * 1024 if match.group(2).startswith("G") else value


def _function_charge(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    cloud = "gcp" if resource.type.startswith("gcp:") else "aws"
    type_ = f"{cloud}:charge:Invocations"
    region = ctx.region_of(resource)
    schedules = _schedules_of(resource, ctx)
    if any(calls < 0 for _, calls in schedules):
        yield _unknown(
            resource,
            "invocations",
            type_,
            "a schedule restricts days: "
            + ", ".join(s for s, c in schedules if c < 0)
            + " (not counted)",
        )
        return
    scheduled = sum(calls for _, calls in schedules)
    extra, extra_note = ctx.usage_note(resource, "invocations_per_month")
    duration_ms, duration_note = ctx.usage_note(resource, "mean_duration_ms")
    calls = scheduled + extra
    where = (
        f"{scheduled:,.0f} scheduled ({', '.join(s for s, _ in schedules)})"
        if schedules
        else "0 scheduled"
    )
    if cloud == "aws":
        memory_gb = (_num(resource.inputs.get("memorySize")) or 128.0) / 1024
        arch = (resource.inputs.get("architectures") or ["x86_64"])[0]
        request = prices.unit_price("aws", region, "lambda-requests")
        compute = prices.unit_price("aws", region, f"lambda-gb-second-{arch}")
        if request is None or compute is None:
            yield _unknown(resource, "invocations", type_, f"no Lambda prices for {region}")
            return
        compute_usd = calls * duration_ms / 1000 * memory_gb * compute.usd
        basis_compute = (
            f"{duration_ms:g} ms mean{duration_note} x {memory_gb:g} GB x "
            f"${compute.usd:.10f}/GB-s ({arch})"
        )
    else:
        config = resource.inputs.get("serviceConfig") or {}
        mib = _memory_mib(config.get("availableMemory"))
        cpu = _num(config.get("availableCpu")) or _GCF_DEFAULT_CPU.get(int(mib or 0))
        request = prices.unit_price("gcp", region, "cloud-run-requests")
        vcpu = prices.unit_price("gcp", region, "cloud-run-vcpu-second")
        gib = prices.unit_price("gcp", region, "cloud-run-gib-second")
        if mib is None or cpu is None or request is None or vcpu is None or gib is None:
            yield _unknown(
                resource, "invocations", type_, f"no Cloud Run prices or CPU size for {region}"
            )
            return
        seconds = calls * duration_ms / 1000
        compute_usd = seconds * (cpu * vcpu.usd + mib / 1024 * gib.usd)
        basis_compute = (
            f"{duration_ms:g} ms mean{duration_note} x ({cpu:g} vCPU x ${vcpu.usd}/vCPU-s + "
            f"{mib / 1024:g} GiB x ${gib.usd}/GiB-s)"
        )
    requests_usd = calls / 1e6 * request.usd
    basis = (
        f"{calls:,.0f} invocations a month: {where} + {extra:,.0f} more{extra_note}; "
        f"requests at ${request.usd:.2f}/1M = {_usd(requests_usd)}; run time {basis_compute} = "
        f"{_usd(compute_usd)} (free tier not subtracted)"
    )
    yield Charge(resource, "invocations", type_, requests_usd + compute_usd, basis)


def _scheduler_job(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    region = ctx.region_of(resource)
    price = prices.unit_price("gcp", region, "cloud-scheduler-job")
    if price is None:
        yield _unknown(resource, "job", "gcp:charge:SchedulerJob", f"no price for {region}")
        return
    yield Charge(
        resource,
        "job",
        "gcp:charge:SchedulerJob",
        price.usd,
        f"Cloud Scheduler job: ${price.usd:.2f}/month (the 3 free jobs per billing account "
        "not subtracted)",
    )


# --- networking, logs, buckets, endpoints ------------------------------------------------


def _hourly_plus_gb(
    resource: EngineResource,
    ctx: ChargeContext,
    cloud: str,
    hour_item: str,
    gb_item: str,
    units: float,
    label: str,
) -> Iterator[Charge]:
    region = ctx.region_of(resource)
    type_ = f"{cloud}:charge:{label.replace(' ', '')}"
    hourly = prices.unit_price(cloud, region, hour_item)
    per_gb = prices.unit_price(cloud, region, gb_item)
    if hourly is None or per_gb is None:
        yield _unknown(resource, "hours", type_, f"no {label} price for {region} in the catalog")
        return
    gb, note = ctx.usage_note(resource, "data_processed_gb")
    fixed = units * hourly.usd * HOURS_PER_MONTH
    yield Charge(
        resource,
        "hours",
        type_,
        fixed,
        f"{label}: {units:g} x ${hourly.usd}/h x {HOURS_PER_MONTH:g} h",
    )
    yield Charge(
        resource,
        "data",
        type_,
        gb * per_gb.usd,
        f"{gb:,.0f} GB processed{note} x ${per_gb.usd}/GB",
    )


def _nat_gateway(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    cloud = "azure" if resource.type.startswith("azure") else "aws"
    yield from _hourly_plus_gb(
        resource, ctx, cloud, "nat-gateway-hour", "nat-gateway-gb", 1, "NAT gateway"
    )


def _vpc_endpoint(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    if resource.inputs.get("vpcEndpointType") != "Interface":
        return  # gateway endpoints (S3, DynamoDB) are free
    zones = len(resource.inputs.get("subnetIds") or []) or 1
    yield from _hourly_plus_gb(
        resource,
        ctx,
        "aws",
        "vpc-interface-endpoint-hour",
        "vpc-interface-endpoint-gb",
        zones,
        "interface endpoint AZs",
    )


def _cloud_nat(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    region = ctx.region_of(resource)
    vms = sum(
        g.nodes
        for urn, g in ctx.groups.items()
        if urn.split("::")[2].startswith("gcp:") and ctx.region_of(ctx.run.by_urn()[urn]) == region
    )
    per_vm = prices.unit_price("gcp", region, "cloud-nat-vm-hour")
    per_gb = prices.unit_price("gcp", region, "cloud-nat-gb")
    if per_vm is None or per_gb is None:
        yield _unknown(resource, "hours", "gcp:charge:CloudNat", f"no Cloud NAT price for {region}")
        return
    billed = min(vms, per_vm.tier_upto or vms)
    yield Charge(
        resource,
        "hours",
        "gcp:charge:CloudNat",
        billed * per_vm.usd * HOURS_PER_MONTH,
        f"Cloud NAT: {billed:g} VMs of this stack in {region} (at most "
        f"{per_vm.tier_upto or 0:g} billed) x ${per_vm.usd}/VM-hour x {HOURS_PER_MONTH:g} h",
    )
    gb, note = ctx.usage_note(resource, "data_processed_gb")
    yield Charge(
        resource,
        "data",
        "gcp:charge:CloudNat",
        gb * per_gb.usd,
        f"{gb:,.0f} GB processed{note} x ${per_gb.usd}/GB",
    )


_NEVER_EXPIRES_MONTHS = 12.0


def _log_group(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    region = ctx.region_of(resource)
    ingest = prices.unit_price("aws", region, "cloudwatch-logs-ingested-gb")
    stored = prices.unit_price("aws", region, "cloudwatch-logs-stored-gb")
    if ingest is None or stored is None:
        yield _unknown(
            resource, "logs", "aws:charge:Logs", f"no CloudWatch Logs price for {region}"
        )
        return
    gb, note = ctx.usage_note(resource, "ingested_gb")
    days = _num(resource.inputs.get("retentionInDays"))
    months_kept = days / DAYS_PER_MONTH if days else _NEVER_EXPIRES_MONTHS
    kept = "retention " + (f"{days:g} days" if days else "never expires: a year's worth")
    usd = gb * ingest.usd + gb * months_kept * stored.usd
    yield Charge(
        resource,
        "logs",
        "aws:charge:Logs",
        usd,
        f"{gb:,.1f} GB ingested a month{note} x ${ingest.usd}/GB + {gb * months_kept:,.1f} GB "
        f"stored ({kept}) x ${stored.usd}/GB-month (uncompressed: an upper bound)",
    )


def _bucket(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    cloud = "gcp" if resource.type.startswith("gcp:") else "aws"
    region = ctx.region_of(resource)
    if cloud == "gcp":
        region = str(resource.inputs.get("location") or region).lower()
    price = object_storage_price(cloud, region)
    type_ = f"{cloud}:charge:Storage"
    if price is None:
        yield _unknown(resource, "storage", type_, f"no object storage price for {region}")
        return
    gb, note = ctx.usage_note(resource, "storage_gb")
    yield Charge(
        resource,
        "storage",
        type_,
        gb * price.usd_per_gb_month,
        f"{gb:,.0f} GB stored{note} x ${price.usd_per_gb_month}/GB-month ({price.service}; "
        "requests not priced)",
    )


def _sagemaker_endpoint(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    region = ctx.region_of(resource)
    price = prices.unit_price("aws", region, "sagemaker-data-processed-gb")
    if price is None:
        yield _unknown(resource, "data", "aws:charge:DataProcessed", f"no price for {region}")
        return
    gb, note = ctx.usage_note(resource, "data_processed_gb")
    yield Charge(
        resource,
        "data",
        "aws:charge:DataProcessed",
        gb * price.usd,
        f"{gb:,.0f} GB in and out{note} x ${price.usd}/GB",
    )


CHARGERS: dict[str, Callable[[EngineResource, ChargeContext], Iterator[Charge]]] = {
    "aws:autoscaling/group:Group": _aws_group,
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": _gcp_group,
    "gcp:compute/instanceGroupManager:InstanceGroupManager": _gcp_group,
    "azure-native:compute:VirtualMachineScaleSet": _azure_vmss,
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": _sagemaker_storage,
    "aws:sagemaker/endpoint:Endpoint": _sagemaker_endpoint,
    "aws:lambda/function:Function": _function_charge,
    "gcp:cloudfunctionsv2/function:Function": _function_charge,
    "gcp:cloudscheduler/job:Job": _scheduler_job,
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "azure-native:network:NatGateway": _nat_gateway,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _vpc_endpoint,
    "gcp:compute/routerNat:RouterNat": _cloud_nat,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketV2:BucketV2": _bucket,
    "gcp:storage/bucket:Bucket": _bucket,
}
"""Resource type -> the charges it adds besides its own price."""


def charges(ctx: ChargeContext) -> list[Charge]:
    """Every charge of the run's resources, in the run's order."""
    found: list[Charge] = []
    for resource in ctx.run.custom_resources():
        charger = CHARGERS.get(resource.type)
        if charger is not None:
            found.extend(charger(resource, ctx))
    return found
