"""Catalog figures against the raw public data they come from (tests/fixtures/catalog)."""

from __future__ import annotations

import pytest
from catalog_raw_data import raw_ec2_rows, raw_spot_advisor

from aifinops import catalog
from aifinops.errors import CatalogError

CHECKED_FAMILIES = {"g4dn", "g5", "g6", "g6e", "p3", "p4d", "p5", "inf2", "trn1"}
CHECKED_REGIONS = {"us-east-1", "us-west-2", "eu-central-1"}
# Per-accelerator memory from the vendors' datasheets (AWS lists some per node).
DATASHEET_GIB = {
    "g4dn": 16,
    "g5": 24,
    "g6": 24,
    "g6e": 48,
    "p3": 16,
    "p4d": 40,
    "p5": 80,
    "inf2": 32,
    "trn1": 32,
}


def _checked_rows() -> list[dict[str, str]]:
    return [
        row
        for row in raw_ec2_rows()
        if row["instance_type"].split(".")[0] in CHECKED_FAMILIES
        and row["region"] in CHECKED_REGIONS
        and row["on_demand_usd_hr"]
    ]


RAW_ROWS = _checked_rows()


def test_enough_raw_rows_are_cross_checked() -> None:
    assert len(RAW_ROWS) >= 20
    assert {row["instance_type"].split(".")[0] for row in RAW_ROWS} == CHECKED_FAMILIES


@pytest.mark.parametrize("row", RAW_ROWS, ids=lambda r: f"{r['instance_type']}@{r['region']}")
def test_price_and_specs_match_the_raw_csv(row: dict[str, str]) -> None:
    info = catalog.lookup(row["instance_type"], row["region"])
    family = row["instance_type"].split(".")[0]
    assert info.on_demand_usd_per_hour == pytest.approx(float(row["on_demand_usd_hr"]))
    assert info.vcpus == int(row["vcpu"])
    assert info.memory_gib == pytest.approx(float(row["memory"].split()[0]))
    assert info.accelerator_count == pytest.approx(float(row["gpu_count"]))
    assert info.accelerator_memory_gib == DATASHEET_GIB[family]
    assert info.family == family
    assert (info.cloud, info.service) == ("aws", "ec2")


@pytest.mark.parametrize("row", RAW_ROWS, ids=lambda r: f"{r['instance_type']}@{r['region']}")
def test_spot_matches_the_raw_spot_advisor(row: dict[str, str]) -> None:
    feed = raw_spot_advisor()
    labels = {item["index"]: item["label"] for item in feed["ranges"]}
    tip = feed["spot_advisor"][row["region"]]["Linux"].get(row["instance_type"])
    info = catalog.lookup(row["instance_type"], row["region"])
    if tip is None:
        assert info.spot_usd_per_hour is None
        assert info.interruption_range is None
        return
    on_demand = float(row["on_demand_usd_hr"])
    assert info.spot_savings_percent == tip["s"]
    assert info.spot_usd_per_hour == pytest.approx(on_demand * (1 - tip["s"] / 100), abs=1e-4)
    assert info.interruption_index == tip["r"]
    assert info.interruption_range == labels[tip["r"]]


def test_rows_without_a_price_are_left_out_not_fatal() -> None:
    unpriced = {row["instance_type"] for row in raw_ec2_rows() if not row["on_demand_usd_hr"]}
    priced = {row["instance_type"] for row in raw_ec2_rows() if row["on_demand_usd_hr"]}
    only_unpriced = unpriced - priced
    assert only_unpriced
    listed = set(catalog.instance_types("aws"))
    assert not only_unpriced & listed
    with pytest.raises(CatalogError, match="unknown instance type"):
        catalog.lookup(sorted(only_unpriced)[0])


def test_unknown_gpu_memory_takes_the_chip_figure() -> None:
    unknown = {row["instance_type"] for row in raw_ec2_rows() if row["gpu_memory"] == "Unknown"}
    assert "trn1n.32xlarge" in unknown
    info = catalog.lookup("trn1n.32xlarge", catalog.regions("trn1n.32xlarge")[0])
    assert info.accelerator_memory_gib == catalog.accelerator("Trainium1").memory_gib


def test_node_total_memory_in_the_source_is_split_per_accelerator() -> None:
    p4d = catalog.lookup("p4d.24xlarge")
    assert p4d.accelerator_memory_gib == 40
    assert p4d.node_accelerator_memory_gib == 320
    assert catalog.lookup("p5.48xlarge").accelerator_memory_gib == 80


def test_chips_the_source_misnames_are_corrected() -> None:
    g5g = catalog.lookup("g5g.xlarge")
    assert (g5g.accelerator, g5g.accelerator_memory_gib) == ("T4G", 16)
    g6f = catalog.lookup("g6f.large")
    assert g6f.accelerator == "L4"
    assert g6f.accelerator_count == pytest.approx(0.125)
    assert g6f.accelerator_memory_gib == pytest.approx(3.0)
    assert catalog.lookup("p4de.24xlarge", catalog.regions("p4de.24xlarge")[0]).accelerator == (
        "A100-80GB"
    )
