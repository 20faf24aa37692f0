"""`refresh` and `finops catalog refresh` against stubbed AWS clients (botocore Stubber).

moto has no Pricing API, so the GetProducts answers below are shaped like real ones: each
PriceList item is a JSON string with product attributes and OnDemand/Reserved terms.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from aifinops import catalog
from aifinops.catalog.overlay import OVERLAY_ENV, OVERLAY_FORMAT
from aifinops.catalog.refresh import on_demand_price, pricing_filters, refresh
from aifinops.cli import main
from aifinops.errors import CatalogError

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def price_item(instance_type: str, region: str, usd: str, operation: str = "RunInstances") -> str:
    sku = f"SKU{abs(hash((instance_type, region, operation))) % 10**8:08d}"
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {
                    "instanceType": instance_type,
                    "regionCode": region,
                    "location": "US East (N. Virginia)",
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                    "preInstalledSw": "NA",
                    "capacitystatus": "Used",
                    "licenseModel": "No License required",
                    "operation": operation,
                    "usagetype": f"BoxUsage:{instance_type}",
                    "vcpu": "4",
                    "memory": "16 GiB",
                    "gpu": "1",
                    "servicecode": "AmazonEC2",
                },
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "endRange": "Inf",
                                "beginRange": "0",
                                "description": f"${usd} per On Demand Linux {instance_type} Instance Hour",
                                "appliesTo": [],
                                "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7",
                                "pricePerUnit": {"USD": usd},
                            }
                        },
                        "sku": sku,
                        "effectiveDate": "2026-11-01T00:00:00Z",
                        "offerTermCode": "JRTCKXETXF",
                        "termAttributes": {},
                    }
                },
                "Reserved": {
                    f"{sku}.4NA7Y494T4": {
                        "priceDimensions": {
                            f"{sku}.4NA7Y494T4.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "pricePerUnit": {"USD": "0.1234000000"},
                                "description": "Linux reserved",
                                "appliesTo": [],
                                "rateCode": "x",
                                "beginRange": "0",
                                "endRange": "Inf",
                            }
                        },
                        "sku": sku,
                        "effectiveDate": "2026-11-01T00:00:00Z",
                        "offerTermCode": "4NA7Y494T4",
                        "termAttributes": {
                            "LeaseContractLength": "1yr",
                            "PurchaseOption": "No Upfront",
                        },
                    }
                },
            },
            "version": "20261101000000",
            "publicationDate": "2026-11-01T00:00:00Z",
        }
    )


def spot_item(instance_type: str, zone: str, usd: str, age_minutes: int) -> dict[str, Any]:
    return {
        "AvailabilityZone": zone,
        "InstanceType": instance_type,
        "ProductDescription": "Linux/UNIX",
        "SpotPrice": usd,
        "Timestamp": NOW - timedelta(minutes=age_minutes),
    }


def get_products_params(
    instance_type: str, region: str, token: str | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "ServiceCode": "AmazonEC2",
        "Filters": pricing_filters(instance_type, region),
        "FormatVersion": "aws_v1",
    }
    if token:
        params["NextToken"] = token
    return params


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, Stubber, Stubber]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    pricing = boto3.client("pricing", region_name="us-east-1")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    with Stubber(pricing) as pricing_stub, Stubber(ec2) as ec2_stub:
        yield pricing, ec2, pricing_stub, ec2_stub
        pricing_stub.assert_no_pending_responses()
        ec2_stub.assert_no_pending_responses()


def stub_g5_and_p4d(pricing_stub: Stubber, ec2_stub: Stubber) -> None:
    types = ["g5.xlarge", "p4d.24xlarge"]
    ec2_stub.add_response(
        "describe_spot_price_history",
        {
            "SpotPriceHistory": [
                spot_item("g5.xlarge", "us-east-1a", "0.4500", 5),
                spot_item("g5.xlarge", "us-east-1a", "0.3000", 90),  # older: superseded
                spot_item("g5.xlarge", "us-east-1b", "0.4100", 20),
            ],
            "NextToken": "page2",
        },
        {"InstanceTypes": types, "ProductDescriptions": ["Linux/UNIX"], "StartTime": ANY},
    )
    ec2_stub.add_response(
        "describe_spot_price_history",
        {
            "SpotPriceHistory": [spot_item("p4d.24xlarge", "us-east-1c", "9.8100", 1)],
            "NextToken": "",
        },
        {
            "InstanceTypes": types,
            "ProductDescriptions": ["Linux/UNIX"],
            "StartTime": ANY,
            "NextToken": "page2",
        },
    )
    pricing_stub.add_response(
        "get_products",
        {
            "PriceList": [
                price_item("g5.xlarge", "us-east-1", "1.0060000000"),
                price_item("g5.xlarge", "us-east-1", "0.0000000000", "RunInstances:0g00"),
            ],
            "FormatVersion": "aws_v1",
            "NextToken": "more",
        },
        get_products_params("g5.xlarge", "us-east-1"),
    )
    pricing_stub.add_response(
        "get_products",
        {"PriceList": [], "FormatVersion": "aws_v1"},
        get_products_params("g5.xlarge", "us-east-1", "more"),
    )
    pricing_stub.add_response(
        "get_products",
        {
            "PriceList": [price_item("p4d.24xlarge", "us-east-1", "21.9576420000")],
            "FormatVersion": "aws_v1",
        },
        get_products_params("p4d.24xlarge", "us-east-1"),
    )


def test_refresh_builds_an_overlay(clients: tuple[Any, Any, Stubber, Stubber]) -> None:
    pricing, ec2, pricing_stub, ec2_stub = clients
    stub_g5_and_p4d(pricing_stub, ec2_stub)
    steps: list[str] = []
    document = refresh(
        ["us-east-1"],
        ["g5.xlarge", "p4d.24xlarge"],
        pricing_client=pricing,
        ec2_client_for=lambda region: ec2,
        on_step=steps.append,
    )
    assert document["format"] == OVERLAY_FORMAT
    prices = {p["instance_type"]: p for p in document["prices"]}
    assert prices["g5.xlarge"]["on_demand_usd_per_hour"] == pytest.approx(1.006)
    # latest price of each AZ (1a: 0.45, 1b: 0.41), then the cheapest AZ
    assert prices["g5.xlarge"]["spot_usd_per_hour"] == pytest.approx(0.41)
    assert prices["p4d.24xlarge"]["on_demand_usd_per_hour"] == pytest.approx(21.957642)
    assert prices["p4d.24xlarge"]["spot_usd_per_hour"] == pytest.approx(9.81)
    assert len(steps) == 3


def test_on_demand_price_prefers_plain_run_instances() -> None:
    items = [
        price_item("g5.xlarge", "us-east-1", "1.5", "RunInstances:0010"),
        price_item("g5.xlarge", "us-east-1", "1.006"),
    ]
    assert on_demand_price(items) == pytest.approx(1.006)
    assert on_demand_price([]) is None


def test_aws_errors_become_catalog_errors(clients: tuple[Any, Any, Stubber, Stubber]) -> None:
    pricing, ec2, _pricing_stub, ec2_stub = clients
    ec2_stub.add_client_error(
        "describe_spot_price_history",
        "UnauthorizedOperation",
        "not allowed to DescribeSpotPriceHistory",
    )
    with pytest.raises(CatalogError, match="AWS refused the catalog refresh"):
        refresh(
            ["us-east-1"], ["g5.xlarge"], pricing_client=pricing, ec2_client_for=lambda region: ec2
        )


def test_refresh_without_credentials_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CatalogError, match="no AWS credentials"):
        refresh(["us-east-1"], ["g5.xlarge"])
    assert (
        main(["catalog", "refresh", "--type", "g5.xlarge", "--output", str(tmp_path / "o.json")])
        == CatalogError.exit_code
    )


def test_refresh_rejects_types_outside_the_catalog() -> None:
    with pytest.raises(CatalogError, match=r"not EC2 types of the catalog: g5\.xlarg"):
        refresh(
            ["us-east-1"],
            ["g5.xlarg"],
            pricing_client=object(),
            ec2_client_for=lambda region: object(),
        )


def test_cli_refresh_writes_the_overlay_the_catalog_then_reads(
    clients: tuple[Any, Any, Stubber, Stubber],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pricing, ec2, pricing_stub, ec2_stub = clients
    stub_g5_and_p4d(pricing_stub, ec2_stub)
    made = {"pricing": pricing, "ec2": ec2}
    monkeypatch.setattr(boto3, "client", lambda service, region_name=None: made[service])
    output = tmp_path / "overlay.json"
    code = main(
        [
            "catalog",
            "refresh",
            "--region",
            "us-east-1",
            "--type",
            "g5.xlarge",
            "--type",
            "p4d.24xlarge",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    assert "wrote 2 prices" in capsys.readouterr().out
    assert json.loads(output.read_text())["format"] == OVERLAY_FORMAT
    monkeypatch.setenv(OVERLAY_ENV, str(output))
    catalog.reload()
    assert catalog.lookup("g5.xlarge").spot_usd_per_hour == pytest.approx(0.41)
    assert catalog.lookup("p4d.24xlarge").spot_usd_per_hour == pytest.approx(9.81)
