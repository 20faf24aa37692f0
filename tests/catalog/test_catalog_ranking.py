"""equivalents and cheapest: who qualifies, and in what order."""

from __future__ import annotations

import pytest

from aifinops import catalog
from aifinops.catalog.models import InstanceInfo
from aifinops.errors import CatalogError


def _vendor_kind(info: InstanceInfo) -> tuple[str, str]:
    chip = info.accelerator_info
    return chip.vendor, chip.kind


@pytest.mark.parametrize(
    ("instance_type", "region"),
    [
        ("g5.xlarge", None),
        ("g4dn.12xlarge", "us-west-2"),
        ("p4d.24xlarge", None),
        ("inf2.xlarge", None),
        ("a2-highgpu-1g", None),
        ("n1-standard-8+nvidia-tesla-t4:1", "europe-west4"),
        ("Standard_NC24ads_A100_v4", "westeurope"),
        ("ml.g5.xlarge", "us-west-2"),
    ],
)
@pytest.mark.parametrize("spot", [False, True])
def test_equivalents_invariants(instance_type: str, region: str | None, spot: bool) -> None:
    base = catalog.lookup(instance_type, region)
    found = catalog.equivalents(instance_type, region, spot=spot)
    if spot and base.spot_usd_per_hour is None:
        assert base not in found
    else:
        assert base in found
    costs = [info.usd_per_throughput_hour(spot) for info in found]
    assert costs == sorted(costs)
    for info in found:
        assert (info.cloud, info.service, info.region) == (base.cloud, base.service, base.region)
        assert _vendor_kind(info) == _vendor_kind(base)
        assert info.node_accelerator_memory_gib >= base.node_accelerator_memory_gib
        assert info.accelerator_count >= 1
        if spot:
            assert info.spot_usd_per_hour is not None


def test_equivalents_leave_out_smaller_and_other_kinds() -> None:
    names = {info.instance_type for info in catalog.equivalents("g5.12xlarge")}
    assert "g5.xlarge" not in names  # 24 GiB < 96 GiB
    assert "g6e.12xlarge" in names  # 4 x 48 GiB
    assert not any(name.startswith(("inf", "trn")) for name in names)


def test_equivalents_of_a_gpu_slice_include_larger_slices() -> None:
    names = {info.instance_type for info in catalog.equivalents("Standard_NV6ads_A10_v5")}
    assert {"Standard_NV6ads_A10_v5", "Standard_NV12ads_A10_v5", "Standard_NV36ads_A10_v5"} <= names
    bigger_only = {info.instance_type for info in catalog.equivalents("Standard_NV12ads_A10_v5")}
    assert "Standard_NV6ads_A10_v5" not in bigger_only


@pytest.mark.parametrize(
    ("model", "count", "spot", "cloud"),
    [
        ("A100", 8, False, None),
        ("A100", 8, True, "aws"),
        ("T4", 1, False, "gcp"),
        ("H100", 8, False, "azure"),
        ("L4", 2, True, None),
        ("TPU-v5e", 4, False, None),
    ],
)
def test_cheapest_is_ascending_and_qualifies(
    model: str, count: int, spot: bool, cloud: str | None
) -> None:
    found = catalog.cheapest(model, count, spot=spot, cloud=cloud)
    assert found
    prices = [info.usd_per_hour(spot) for info in found]
    assert prices == sorted(prices)
    family = {chip.model for chip in catalog.accelerator_family(model)}
    for info in found:
        assert info.accelerator in family
        assert info.accelerator_count >= count
        assert cloud is None or info.cloud == cloud


def test_cheapest_covers_every_qualifying_row() -> None:
    found = catalog.cheapest("A10G", 4, region="us-east-1", service="ec2")
    expected = set()
    for name in catalog.instance_types("aws", "ec2"):
        if "us-east-1" in catalog.regions(name):
            info = catalog.lookup(name, "us-east-1")
            if info.accelerator == "A10G" and info.accelerator_count >= 4:
                expected.add(name)
    assert {info.instance_type for info in found} == expected
    assert expected >= {"g5.12xlarge", "g5.24xlarge", "g5.48xlarge"}


def test_cheapest_edges() -> None:
    assert catalog.cheapest("T4", 64) == []
    assert catalog.cheapest("t4", 1, cloud="azure")[0].accelerator == "T4"
    assert all(i.spot_usd_per_hour is not None for i in catalog.cheapest("H100", 1, spot=True))
    assert catalog.cheapest("A10G", 1, service="sagemaker", region="us-west-2")
    with pytest.raises(CatalogError, match="unknown accelerator"):
        catalog.cheapest("B9000", 1)


def test_a_bare_model_name_covers_its_memory_variants() -> None:
    """ "A100" as people write it: the 40 GB and the 80 GB models (an Azure fleet asking for
    A100 found no VM, NC A100 v4 being 80 GB); a specific name stays specific."""
    assert [c.model for c in catalog.accelerator_family("A100")] == ["A100", "A100-80GB"]
    assert [c.model for c in catalog.accelerator_family("a100")] == ["A100", "A100-80GB"]
    assert [c.model for c in catalog.accelerator_family("A100-40GB")] == ["A100"]
    assert [c.model for c in catalog.accelerator_family("nvidia-tesla-a100")] == ["A100"]
    assert [c.model for c in catalog.accelerator_family("A100-80GB")] == ["A100-80GB"]
    assert [c.model for c in catalog.accelerator_family("V100")] == ["V100", "V100-32GB"]
    assert [c.model for c in catalog.accelerator_family("L4")] == ["L4"]  # not L40
    azure = catalog.cheapest("A100", 1, cloud="azure", region="eastus")
    assert azure[0].instance_type == "Standard_NC24ads_A100_v4"
    aws = {i.accelerator for i in catalog.cheapest("A100", 8, cloud="aws", region="us-east-1")}
    assert aws == {"A100", "A100-80GB"}  # p4d and p4de
