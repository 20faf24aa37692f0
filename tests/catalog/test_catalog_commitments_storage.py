"""Commitment and storage prices in the catalog: read as the source states, nothing guessed."""

from __future__ import annotations

import pytest

from aifinops import catalog
from aifinops.catalog import commitments, storage
from aifinops.catalog._data import data_rows


def test_aws_ri_rate_is_the_snapshot_reserved_column() -> None:
    """p4d.24xlarge us-east-1 in tsaol/aws-gpu data/p4d_instances.js: onDemand 21.957642,
    reserved (yrTerm1Standard.noUpfront) 13.921094."""
    (ri,) = [
        o
        for o in commitments.offers("p4d.24xlarge", "us-east-1")
        if o.offering == "aws-standard-ri"
    ]
    assert (ri.usd_per_hour, ri.on_demand_usd_per_hour) == (13.921094, 21.957642)
    assert (ri.term_years, ri.payment, ri.basis) == (1, "no-upfront", "transcribed")
    assert ri.break_even_utilisation == pytest.approx(13.921094 / 21.957642)


def test_types_without_a_reserved_price_have_no_aws_offer() -> None:
    # g6f has no reserved price in the snapshot; SageMaker hosting has no SP data shipped
    assert commitments.offers("g6f.large", "us-east-1") == []
    assert commitments.offers("ml.g5.xlarge", "us-east-1") == []


def test_every_discount_row_names_a_catalog_family_and_is_marked() -> None:
    families: dict[str, set[str]] = {"aws": set(), "gcp": set(), "azure": set()}
    for cloud in families:
        for instance_type in catalog.instance_types(cloud=cloud):
            region = catalog.regions(instance_type)[0]
            families[cloud].add(catalog.lookup(instance_type, region, cloud=cloud).family)
    for row in data_rows(commitments.DISCOUNTS_FILE):
        assert row["family"] == "*" or row["family"] in families[row["cloud"]], row
        assert row["basis"] == "estimated", row
        assert row["note"], row


@pytest.mark.parametrize(
    "instance_type,cloud",
    [
        ("a3-highgpu-8g", "gcp"),
        ("g2-standard-8", "gcp"),
        ("n1-standard-8+nvidia-tesla-t4:1", "gcp"),
        ("Standard_NC24ads_A100_v4", "azure"),
        ("Standard_ND96isr_H100_v5", "azure"),
    ],
)
def test_gcp_and_azure_offers_cover_one_and_three_years(instance_type: str, cloud: str) -> None:
    found = commitments.offers(instance_type, cloud=cloud)
    assert sorted(o.term_years for o in found) == [1, 3]
    for offer in found:
        assert 0.2 < offer.discount < 0.7
    three, one = found  # cheapest rate first
    assert three.usd_per_hour < one.usd_per_hour


def test_ebs_volume_prices() -> None:
    # 500 GiB gp3 with 6,000 IOPS and 250 MB/s in us-east-1: 500*0.08 + 3000*0.005 + 125*0.04
    assert storage.ebs_volume_usd_per_month("us-east-1", "gp3", 500, 6000, 250) == pytest.approx(
        60.0
    )
    assert storage.ebs_volume_usd_per_month("us-east-1", "gp3", 500, 3000, 125) == pytest.approx(
        40.0
    )
    assert storage.ebs_volume_usd_per_month("us-east-1", "io2", 100, 1000) == pytest.approx(77.5)
    assert storage.ebs_volume_usd_per_month("eu-west-1", "gp2", 100) == pytest.approx(11.0)
    # unknown region or type: no price, never a guess
    assert storage.ebs_volume_usd_per_month("ap-south-1", "gp3", 100) is None
    assert storage.ebs_volume_usd_per_month("us-east-1", "gp9", 100) is None
    assert storage.usd_per_month("us-east-1", "ebs-snapshot-gb") == 0.05
    assert storage.usd_per_month("us-east-1", "s3-standard-gb") == 0.023
