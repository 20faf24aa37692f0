"""Storage prices in the catalog: object storage per cloud and EBS gp3, as the sources state."""

from __future__ import annotations

import pytest

from aifinops.catalog import storage
from aifinops.catalog.object_storage import object_storage_price


def test_object_storage_per_cloud() -> None:
    s3 = object_storage_price("aws", "us-east-1")
    assert s3 is not None and s3.usd_per_gb_month == 0.023 and s3.service == "S3 Standard"
    gcs = object_storage_price("gcp", "europe-west4")
    assert gcs is not None and gcs.usd_per_gb_month == 0.020
    blob = object_storage_price("azure", "eastus")
    assert blob is not None and blob.usd_per_gb_month == 0.0184


def test_no_row_is_no_price_never_a_guess() -> None:
    assert object_storage_price("azure", "westeurope") is None
    assert object_storage_price("aws", "ap-south-1") is None


def test_gp3_provisioned_iops_and_throughput() -> None:
    # 200 GiB x $0.08 + (16,000 - 3,000) IOPS x $0.005 + (1,000 - 125) MB/s x $0.04
    assert storage.ebs_volume_usd_per_month("us-east-1", "gp3", 200, 16000, 1000) == pytest.approx(
        16.0 + 65.0 + 35.0
    )
    assert storage.ebs_volume_usd_per_month("us-east-1", "gp3", 200) == pytest.approx(16.0)
