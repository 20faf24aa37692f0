"""A fleet's volumes (AWS, GCP, Azure) x its nodes, and its telemetry; an endpoint's ML storage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from aifinops.catalog import charges as prices
from aifinops.catalog import storage
from aifinops.charges.base import (
    Charge,
    ChargeContext,
    NodeGroup,
    get,
    group_template,
    money,
    num,
    unknown,
)
from aifinops.charges.telemetry import decoded, telemetry_charge
from aifinops.config import HOURS_PER_MONTH

if TYPE_CHECKING:
    from aifinops.engine import EngineResource


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
            return unknown(
                resource, "volumes", type_, f"{label}: no size set (the image's size applies)"
            )
        usd = price_of(size)
        if usd is None:
            return unknown(resource, "volumes", type_, f"{label}: no price in the catalog")
        per_node += usd
        parts.append(f"{size:g} GB {label} {unit}")
    monthly = per_node * group.nodes * group.hours / HOURS_PER_MONTH
    basis = (
        f"{group.nodes:g} nodes x ({' + '.join(parts)}) = {money(per_node)}/node-month"
        f" x {group.hours:g}/{HOURS_PER_MONTH:g} h"
    )
    return Charge(resource, "volumes", type_, monthly, basis)


def aws_group(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    group = ctx.groups.get(resource.urn)
    if group is None or group.nodes <= 0:
        return
    inputs = resource.inputs
    spec = get(inputs, "mixedInstancesPolicy", "launchTemplate", "launchTemplateSpecification")
    reference = None
    if spec:
        reference = spec.get("launchTemplateId") or spec.get("launchTemplateName")
    else:
        reference = get(inputs, "launchTemplate", "id") or get(inputs, "launchTemplate", "name")
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
            yield unknown(resource, "volumes", "aws:charge:Volumes", "EBS volume type from the AMI")
            return
        iops, throughput = num(ebs.get("iops")), num(ebs.get("throughput"))

        def one(size: float, kind: str = str(kind), i: Any = iops, t: Any = throughput) -> Any:
            return storage.ebs_volume_usd_per_month(region, kind, size, i, t)

        unit = storage.usd_per_month(region, f"ebs-{kind}-gb")
        disks.append(
            (
                f"{kind}" + (" encrypted" if str(ebs.get("encrypted")).lower() == "true" else ""),
                num(ebs.get("volumeSize")),
                one,
                f"at ${unit:.3f}/GB-month" if unit is not None else "",
            )
        )
    if disks:
        yield _volume_line(resource, "aws", disks, group)
    telemetry = telemetry_charge(resource, decoded(template.get("userData")), group, "aws", region)
    if telemetry:
        yield telemetry


_GCP_DEFAULT_DISK = "pd-standard"  # the API's default diskType for instance template disks


def gcp_group(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    group = ctx.groups.get(resource.urn)
    if group is None or group.nodes <= 0:
        return
    template = group_template(ctx.related, resource.inputs)
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
        disks.append((label, num(disk.get("diskSizeGb")), one, unit))
    if disks:
        yield _volume_line(resource, "gcp", disks, group)
    script = template.get("metadataStartupScript") or get(template, "metadata", "startup-script")
    telemetry = telemetry_charge(resource, decoded(script), group, "gcp", region)
    if telemetry:
        yield telemetry


def azure_vmss(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
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
        account = str(get(disk, "managedDisk", "storageAccountType") or "Standard_LRS")

        def one(size: float, a: str = account) -> float | None:
            tier = prices.size_tier("azure", region, f"managed-disk-{a}", size)
            return None if tier is None else tier.usd

        tier = prices.size_tier(
            "azure", region, f"managed-disk-{account}", num(disk.get("diskSizeGB")) or 0
        )
        unit = f"billed as the {tier.tier_upto:g} GiB tier" if tier else ""
        disks.append((f"{account} {role}", num(disk.get("diskSizeGB")), one, unit))
    if disks:
        yield _volume_line(resource, "azure", disks, group)
    script = get(profile, "osProfile", "customData")
    telemetry = telemetry_charge(resource, decoded(script), group, "azure", region)
    if telemetry:
        yield telemetry


def sagemaker_storage(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    region = ctx.region_of(resource)
    hours = ctx.hours_of(resource)
    type_ = "aws:charge:MlStorage"
    price = prices.unit_price("aws", region, "sagemaker-ml-storage-gb")
    total, parts = 0.0, []
    for variant in resource.inputs.get("productionVariants") or []:
        if not variant.get("instanceType"):
            continue
        count = num(variant.get("initialInstanceCount")) or 1.0
        scaling = variant.get("managedInstanceScaling") or {}
        if scaling.get("status") == "ENABLED" and scaling.get("minInstanceCount") is not None:
            count = num(scaling.get("minInstanceCount")) or 0.0
        size = num(variant.get("volumeSizeInGb"))
        if size is None:
            yield unknown(
                resource,
                "ml-storage",
                type_,
                f"variant {variant.get('variantName')}: no volumeSizeInGb, so SageMaker picks "
                "the ML storage volume's size by instance type (a table the catalog lacks); "
                "set volumeSizeInGb to price it",
            )
            return
        if price is None:
            yield unknown(resource, "ml-storage", type_, f"no ML storage price for {region}")
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
