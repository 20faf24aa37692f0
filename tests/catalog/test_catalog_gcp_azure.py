"""GCP N1 + attached GPUs, TPU VMs and Azure partial GPUs, priced from their component rows."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

from aifinops import catalog
from aifinops.errors import CatalogError


def _data(name: str) -> list[dict[str, str]]:
    text = (resources.files("aifinops.catalog") / "data" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))


def _row(name: str, **match: str) -> dict[str, str]:
    return next(r for r in _data(name) if all(r[k] == v for k, v in match.items()))


def test_attached_type_name() -> None:
    assert catalog.gcp_attached_type("n1-standard-8", "nvidia-tesla-t4", 1) == (
        "n1-standard-8+nvidia-tesla-t4:1"
    )


@pytest.mark.parametrize(
    ("machine", "gpu", "count", "region"),
    [
        ("n1-standard-8", "nvidia-tesla-t4", 1, "us-central1"),
        ("n1-standard-16", "nvidia-tesla-t4", 4, "europe-west4"),
        ("n1-highmem-8", "nvidia-tesla-t4", 2, "us-central1"),  # not pre-listed: built on demand
        ("n1-standard-8", "nvidia-tesla-v100", 1, "us-central1"),
        ("n1-highmem-16", "nvidia-tesla-v100", 4, "europe-west4"),
    ],
)
def test_attached_gpus_are_priced_as_machine_plus_gpus(
    machine: str, gpu: str, count: int, region: str
) -> None:
    name = catalog.gcp_attached_type(machine, gpu, count)
    info = catalog.lookup(name, region)
    host = _row("gcp_n1_machines.csv", machine_type=machine, region=region)
    card = _row("gcp_attached_gpus.csv", accelerator_type=gpu, region=region)
    expected = float(host["on_demand_usd_per_hour"]) + count * float(
        card["on_demand_usd_per_gpu_hour"]
    )
    expected_spot = float(host["spot_usd_per_hour"]) + count * float(card["spot_usd_per_gpu_hour"])
    assert info.on_demand_usd_per_hour == pytest.approx(expected, abs=1e-6)
    assert info.spot_usd_per_hour == pytest.approx(expected_spot, abs=1e-6)
    assert (info.cloud, info.service, info.family) == ("gcp", "gce", "n1")
    assert info.accelerator == card["accelerator"]
    assert info.accelerator_count == count
    assert info.vcpus == int(host["vcpus"])
    assert name in catalog.instance_types("gcp")


def test_attached_combinations_gcp_refuses_are_errors() -> None:
    with pytest.raises(CatalogError, match="up to 12 vCPUs"):
        catalog.lookup("n1-standard-16+nvidia-tesla-v100:1")
    with pytest.raises(CatalogError, match="did you mean nvidia-tesla-t4"):
        catalog.lookup("n1-standard-8+nvidia-tesla-t5:1")
    with pytest.raises(CatalogError, match="unknown N1 machine type"):
        catalog.lookup("n1-standard-7+nvidia-tesla-t4:1")


@pytest.mark.parametrize(
    ("tpu", "region"),
    [
        ("v5litepod-1", "us-central1"),
        ("v5litepod-8", "europe-west4"),
        ("v5p-8", "us-east5"),
        ("v6e-4", "europe-west4"),
        ("v6e-8", "us-east1"),
    ],
)
def test_tpu_price_is_chip_price_times_chips(tpu: str, region: str) -> None:
    row = _row("gcp_tpu.csv", accelerator_type=tpu, region=region)
    info = catalog.lookup(tpu, region)
    chips = int(row["chips"])
    assert (info.service, info.accelerator_count) == ("tpu", chips)
    assert info.on_demand_usd_per_hour == pytest.approx(
        chips * float(row["on_demand_usd_per_chip_hour"])
    )
    assert info.spot_usd_per_hour == pytest.approx(chips * float(row["spot_usd_per_chip_hour"]))
    assert info.accelerator_info.kind == "tpu"
    assert info.node_accelerator_memory_gib == chips * info.accelerator_info.memory_gib


def test_tpu_not_sold_in_the_default_region_says_where_it_is() -> None:
    with pytest.raises(
        CatalogError, match=r"no price for v5p-8 in us-central1.*priced in: .*us-east5"
    ):
        catalog.lookup("v5p-8")
    assert set(catalog.instance_types("gcp", "tpu")) >= {
        "v5litepod-1",
        "v5litepod-4",
        "v5litepod-8",
        "v5p-8",
        "v6e-1",
        "v6e-4",
        "v6e-8",
    }


@pytest.mark.parametrize(
    ("size", "fraction", "gib"),
    [
        ("Standard_NV6ads_A10_v5", 1 / 6, 4),
        ("Standard_NV12ads_A10_v5", 1 / 3, 8),
        ("Standard_NV18ads_A10_v5", 1 / 2, 12),
        ("Standard_NV36ads_A10_v5", 1, 24),
    ],
)
def test_azure_partial_gpus(size: str, fraction: float, gib: float) -> None:
    info = catalog.lookup(size)
    assert info.accelerator == "A10"
    assert info.accelerator_count == pytest.approx(fraction, abs=1e-3)
    assert info.accelerator_memory_gib == gib
    assert info.node_accelerator_memory_gib == gib
    assert info.throughput_per_node == pytest.approx(
        fraction * info.accelerator_info.relative_training_throughput, abs=1e-3
    )


def test_azure_rows_match_their_data_and_spot_discount() -> None:
    for row in _data("azure_vms.csv"):
        info = catalog.lookup(row["vm_size"], row["region"])
        on_demand = float(row["on_demand_usd_per_hour"])
        assert info.on_demand_usd_per_hour == on_demand
        assert info.spot_usd_per_hour == pytest.approx(
            on_demand * (1 - float(row["spot_discount_percent"]) / 100), abs=1e-4
        )
        assert info.interruption_index is None
    assert set(catalog.regions("Standard_ND96isr_H100_v5")) >= {"eastus", "westeurope"}


def test_gcp_machines_cover_two_regions_with_spot() -> None:
    for name in ("a2-highgpu-1g", "a2-ultragpu-8g", "a3-highgpu-8g", "g2-standard-4"):
        assert set(catalog.regions(name)) >= {"us-central1", "europe-west4"}
        info = catalog.lookup(name)
        assert info.spot_usd_per_hour is not None
        assert info.spot_usd_per_hour < info.on_demand_usd_per_hour
    assert catalog.lookup("a2-ultragpu-1g").accelerator == "A100-80GB"
    assert catalog.lookup("a3-highgpu-8g").node_accelerator_memory_gib == 640


def test_azure_families_are_priced_in_the_us_regions_where_they_are_sold() -> None:
    """From the SkyPilot catalog (Azure Retail Prices API): NCasT4_v3 is sold in westus2,
    which the catalog used to call 'not offered'."""
    t4 = catalog.lookup("Standard_NC4as_T4_v3", "westus2")
    assert t4.on_demand_usd_per_hour == 0.526
    assert t4.spot_usd_per_hour == pytest.approx(0.061595, abs=1e-4)
    us = {
        "centralus",
        "eastus",
        "eastus2",
        "northcentralus",
        "southcentralus",
        "westus",
        "westus2",
        "westus3",
    }
    for name in ("Standard_NC4as_T4_v3", "Standard_NC64as_T4_v3"):
        assert set(catalog.regions(name)) == us | {"westeurope"}
    for name in ("Standard_NC24ads_A100_v4", "Standard_NV36ads_A10_v5"):
        assert len(set(catalog.regions(name)) & us) >= 7
    h100 = catalog.lookup("Standard_ND96isr_H100_v5", "westus")
    assert (h100.accelerator_count, h100.on_demand_usd_per_hour) == (8.0, 127.816)
    # the source's eastus prices equal the transcribed ones, which dates the copy
    assert catalog.lookup("Standard_NC24ads_A100_v4", "eastus").on_demand_usd_per_hour == 3.673


def test_tpu_v6e_is_priced_in_its_regions_per_chip() -> None:
    assert set(catalog.regions("v6e-8")) >= {"us-central1", "us-east5", "asia-southeast1"}
    one, eight = (
        catalog.lookup("v6e-1", "asia-northeast1"),
        catalog.lookup("v6e-8", "asia-northeast1"),
    )
    assert eight.on_demand_usd_per_hour == pytest.approx(8 * one.on_demand_usd_per_hour)
    assert one.on_demand_usd_per_hour == 3.24
