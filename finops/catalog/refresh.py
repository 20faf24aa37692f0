"""Fresh AWS EC2 prices: Pricing API `GetProducts` (on-demand) and `DescribeSpotPriceHistory`.

The result is an overlay document (see `aifinops.catalog.overlay`) that the loader merges over
the shipped snapshot. boto3 is imported only here, and only when a refresh runs.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aifinops.catalog.accelerators import load_accelerators
from aifinops.catalog.aws import load_ec2
from aifinops.catalog.overlay import OVERLAY_FORMAT
from aifinops.errors import CatalogError

PRICING_REGION = "us-east-1"  # the Pricing API endpoint for every AWS region's prices
SPOT_PRODUCT = "Linux/UNIX"
SOURCE = "AWS Pricing API GetProducts (AmazonEC2) + EC2 DescribeSpotPriceHistory (Linux/UNIX)"

Step = Callable[[str], None]
"""Called once per finished request with a short description (progress display)."""


def pricing_filters(instance_type: str, region: str) -> list[dict[str, str]]:
    """GetProducts filters for the Linux, shared-tenancy, no-preinstalled-software on-demand
    price of `instance_type` in `region`."""
    wanted = {
        "instanceType": instance_type,
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
    }
    return [
        {"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in wanted.items()
    ]


def on_demand_price(price_list: Iterable[str]) -> float | None:
    """Lowest non-zero on-demand USD/h among GetProducts `PriceList` items (JSON strings).

    Items for other operations (`RunInstances:xxxx`, licence variants) are ignored when a
    plain `RunInstances` item is present.
    """
    products = [json.loads(item) for item in price_list]
    plain = [
        p
        for p in products
        if p.get("product", {}).get("attributes", {}).get("operation") == "RunInstances"
    ]
    prices = []
    for product in plain or products:
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = float(dimension.get("pricePerUnit", {}).get("USD", "0") or 0)
                if usd > 0:
                    prices.append(usd)
    return min(prices) if prices else None


def fetch_on_demand(client: Any, instance_type: str, region: str) -> float | None:
    """On-demand Linux USD/h of `instance_type` in `region`, or None if AWS lists none."""
    items: list[str] = []
    kwargs: dict[str, Any] = {
        "ServiceCode": "AmazonEC2",
        "Filters": pricing_filters(instance_type, region),
        "FormatVersion": "aws_v1",
    }
    while True:
        page = client.get_products(**kwargs)
        items.extend(page.get("PriceList", []))
        token = page.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    return on_demand_price(items)


def fetch_spot(client: Any, instance_types: list[str]) -> dict[str, float]:
    """Current Linux/UNIX spot USD/h per type: the latest price of each AZ, then the cheapest
    AZ (what a capacity-optimised fleet spread over the region's AZs pays at best)."""
    latest: dict[tuple[str, str], tuple[datetime, float]] = {}
    kwargs: dict[str, Any] = {
        "InstanceTypes": instance_types,
        "ProductDescriptions": [SPOT_PRODUCT],
        "StartTime": datetime.now(UTC),
    }
    while True:
        page = client.describe_spot_price_history(**kwargs)
        for item in page.get("SpotPriceHistory", []):
            key = (item["InstanceType"], item["AvailabilityZone"])
            seen = latest.get(key)
            if seen is None or item["Timestamp"] > seen[0]:
                latest[key] = (item["Timestamp"], float(item["SpotPrice"]))
        token = page.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    cheapest: dict[str, float] = {}
    for (instance_type, _zone), (_when, price) in latest.items():
        cheapest[instance_type] = min(price, cheapest.get(instance_type, price))
    return cheapest


def ec2_types(only: Iterable[str] | None = None) -> list[str]:
    """EC2 types of the shipped snapshot (optionally only those in `only`), sorted."""
    known = sorted({info.instance_type for info in load_ec2(load_accelerators())})
    if only is None:
        return known
    wanted = list(only)
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise CatalogError(f"not EC2 types of the catalog: {', '.join(unknown)}")
    return sorted(wanted)


def _require_credentials() -> None:
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        credentials = boto3.Session().get_credentials()
    except BotoCoreError as exc:
        raise CatalogError(f"cannot load AWS credentials for the catalog refresh: {exc}") from exc
    if credentials is None:
        raise CatalogError(
            "no AWS credentials found for the catalog refresh: configure a profile "
            "(aws configure, AWS_PROFILE) or environment credentials; the shipped snapshot "
            "stays in use meanwhile"
        )


def refresh(
    regions: list[str],
    instance_types: list[str] | None = None,
    *,
    pricing_client: Any = None,
    ec2_client_for: Callable[[str], Any] | None = None,
    on_step: Step | None = None,
) -> dict[str, Any]:
    """Query AWS for current EC2 prices of the catalog's types in `regions`; returns the
    overlay document. Clients are created with boto3 unless given (tests pass stubbed ones)."""
    from botocore.exceptions import BotoCoreError, ClientError

    types = ec2_types(instance_types)
    if pricing_client is None or ec2_client_for is None:
        _require_credentials()
        import boto3

        pricing_client = pricing_client or boto3.client("pricing", region_name=PRICING_REGION)
        ec2_client_for = ec2_client_for or (lambda r: boto3.client("ec2", region_name=r))
    prices: list[dict[str, Any]] = []
    try:
        for region in regions:
            spot = fetch_spot(ec2_client_for(region), types)
            if on_step:
                on_step(f"{region} spot prices")
            for instance_type in types:
                on_demand = fetch_on_demand(pricing_client, instance_type, region)
                if on_step:
                    on_step(f"{region} {instance_type}")
                if on_demand is None and instance_type not in spot:
                    continue
                prices.append(
                    {
                        "cloud": "aws",
                        "service": "ec2",
                        "instance_type": instance_type,
                        "region": region,
                        "on_demand_usd_per_hour": on_demand,
                        "spot_usd_per_hour": spot.get(instance_type),
                    }
                )
    except (BotoCoreError, ClientError) as exc:
        raise CatalogError(f"AWS refused the catalog refresh: {exc}") from exc
    return {
        "format": OVERLAY_FORMAT,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": SOURCE,
        "regions": list(regions),
        "prices": prices,
    }


def write_overlay(document: dict[str, Any], path: Path) -> None:
    """Write `document` to `path` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".overlay-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=1)
        out.write("\n")
    os.replace(temporary, path)
