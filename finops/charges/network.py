"""NAT gateways, interface endpoints, Cloud NAT, log groups, buckets, endpoints' data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from aifinops import catalog
from aifinops.catalog import charges as prices
from aifinops.catalog.object_storage import object_storage_price
from aifinops.charges.base import (
    DAYS_PER_MONTH,
    Charge,
    ChargeContext,
    num,
    unknown,
)
from aifinops.config import HOURS_PER_MONTH
from aifinops.errors import CatalogError

if TYPE_CHECKING:
    from aifinops.engine import EngineResource


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
        yield unknown(resource, "hours", type_, f"no {label} price for {region} in the catalog")
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


def _nat_data(resource: EngineResource, ctx: ChargeContext, cloud: str, item: str) -> Charge:
    """GB processed by a NAT gateway or Cloud NAT, from the usage file. Its hours are the
    resource's own price (`aifinops.cost`, from the catalog's network prices, the same table)."""
    region = ctx.region_of(resource)
    type_ = f"{cloud}:charge:NatData"
    try:
        per_gb = catalog.network_price(cloud, item, region).usd
    except CatalogError as exc:
        return unknown(resource, "data", type_, str(exc))
    gb, note = ctx.usage_note(resource, "data_processed_gb")
    return Charge(
        resource, "data", type_, gb * per_gb, f"{gb:,.0f} GB processed{note} x ${per_gb}/GB"
    )


def nat_gateway(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    cloud = "azure" if resource.type.startswith("azure") else "aws"
    yield _nat_data(resource, ctx, cloud, "nat-gateway-data")


def vpc_endpoint(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
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


def cloud_nat(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    yield _nat_data(resource, ctx, "gcp", "cloud-nat-data")


_NEVER_EXPIRES_MONTHS = 12.0


def log_group(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    region = ctx.region_of(resource)
    ingest = prices.unit_price("aws", region, "cloudwatch-logs-ingested-gb")
    stored = prices.unit_price("aws", region, "cloudwatch-logs-stored-gb")
    if ingest is None or stored is None:
        yield unknown(resource, "logs", "aws:charge:Logs", f"no CloudWatch Logs price for {region}")
        return
    gb, note = ctx.usage_note(resource, "ingested_gb")
    days = num(resource.inputs.get("retentionInDays"))
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


def bucket(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    cloud = "gcp" if resource.type.startswith("gcp:") else "aws"
    region = ctx.region_of(resource)
    if cloud == "gcp":
        region = str(resource.inputs.get("location") or region).lower()
    price = object_storage_price(cloud, region)
    type_ = f"{cloud}:charge:Storage"
    if price is None:
        yield unknown(resource, "storage", type_, f"no object storage price for {region}")
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


def sagemaker_endpoint(resource: EngineResource, ctx: ChargeContext) -> Iterator[Charge]:
    region = ctx.region_of(resource)
    price = prices.unit_price("aws", region, "sagemaker-data-processed-gb")
    if price is None:
        yield unknown(resource, "data", "aws:charge:DataProcessed", f"no price for {region}")
        return
    gb, note = ctx.usage_note(resource, "data_processed_gb")
    yield Charge(
        resource,
        "data",
        "aws:charge:DataProcessed",
        gb * price.usd,
        f"{gb:,.0f} GB in and out{note} x ${price.usd}/GB",
    )
