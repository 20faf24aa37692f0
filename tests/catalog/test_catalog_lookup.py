"""lookup / regions / instance_types / accelerator(s): hits, misses and the record's properties."""

from __future__ import annotations

import pytest

from aifinops import catalog
from aifinops.errors import CatalogError


@pytest.mark.parametrize(
    ("instance_type", "cloud"),
    [("g5.xlarge", "aws"), ("a2-highgpu-1g", "gcp"), ("Standard_NC4as_T4_v3", "azure")],
)
def test_region_defaults_to_the_clouds_default(instance_type: str, cloud: str) -> None:
    info = catalog.lookup(instance_type)
    assert info.cloud == cloud
    assert info.region == catalog.default_region(cloud)


def test_default_regions() -> None:
    assert catalog.default_region("aws") == "us-east-1"
    assert catalog.default_region("gcp") == "us-central1"
    assert catalog.default_region("azure") == "eastus"
    with pytest.raises(CatalogError, match="did you mean aws"):
        catalog.default_region("aws2")


def test_explicit_region_and_cloud() -> None:
    info = catalog.lookup("g5.xlarge", "eu-central-1", cloud="aws")
    assert info.region == "eu-central-1"
    assert info.instance_type == "g5.xlarge"


def test_names_match_case_insensitively_and_azure_without_prefix() -> None:
    assert catalog.lookup("G5.XLARGE").instance_type == "g5.xlarge"
    assert catalog.lookup("nc4as_t4_v3").instance_type == "Standard_NC4as_T4_v3"


def test_unknown_type_suggests_close_names() -> None:
    with pytest.raises(CatalogError) as error:
        catalog.lookup("g5.2xlarg")
    message = str(error.value)
    assert "unknown instance type 'g5.2xlarg'" in message
    assert "did you mean g5.2xlarge" in message


def test_a_region_missing_from_the_catalog_is_said_to_be_missing_from_it() -> None:
    with pytest.raises(CatalogError) as error:
        catalog.lookup("g5.xlarge", "us-east-9")
    message = str(error.value)
    assert message.startswith(
        "region 'us-east-9' is not in the catalog (did you mean us-east-2, us-east-1, "
        "us-west-2?); aws regions in the catalog: "
    )
    with pytest.raises(CatalogError, match="region 'us-central1' is in gcp, not aws"):
        catalog.lookup("g5.xlarge", "us-central1", cloud="aws")


def test_a_type_without_a_price_in_a_known_region_lists_where_it_is_priced() -> None:
    with pytest.raises(CatalogError) as error:
        catalog.lookup("g5.xlarge", "ap-south-2")
    message = str(error.value)
    assert message.startswith(
        "the catalog has no price for g5.xlarge in ap-south-2 (snapshot 2026-01; the type may "
        "not be sold there); priced in: "
    )
    for region in catalog.regions("g5.xlarge"):
        assert region in message


def test_cloud_that_does_not_own_the_type_is_an_error() -> None:
    with pytest.raises(CatalogError, match="belongs to aws, not gcp"):
        catalog.lookup("g5.xlarge", cloud="gcp")
    with pytest.raises(CatalogError, match="unknown cloud"):
        catalog.lookup("g5.xlarge", cloud="oracle")


def test_regions_are_sorted_and_each_resolves() -> None:
    found = catalog.regions("p4d.24xlarge")
    assert found == sorted(found)
    assert {"us-east-1", "us-west-2"} <= set(found)
    for region in found:
        assert catalog.lookup("p4d.24xlarge", region).region == region
    with pytest.raises(CatalogError):
        catalog.regions("p4d.24xlarg")


def test_instance_types_filter_by_cloud_and_service() -> None:
    everything = catalog.instance_types()
    assert everything == sorted(everything)
    by_cloud = [catalog.instance_types(cloud) for cloud in ("aws", "gcp", "azure")]
    assert sorted(name for names in by_cloud for name in names) == everything
    sagemaker = catalog.instance_types("aws", "sagemaker")
    assert sagemaker and all(name.startswith("ml.") for name in sagemaker)
    assert all(catalog.lookup(name, "us-east-1").service == "sagemaker" for name in sagemaker)
    for family in ("g4dn", "g5", "g6", "g6e", "p3", "p4d", "p5", "inf2", "trn1"):
        assert any(name.startswith(family + ".") for name in catalog.instance_types("aws", "ec2"))


@pytest.mark.parametrize(
    ("cloud", "region", "services"),
    [
        ("aws", "us-east-1", ("sagemaker",)),
        ("aws", "eu-west-1", ("ec2", "sagemaker")),
        ("gcp", "us-central1", ("tpu",)),
        ("azure", "eastus", ("azure-vm",)),
    ],
)
def test_offered_is_every_type_of_the_services_priced_in_the_region(
    cloud: str, region: str, services: tuple[str, ...]
) -> None:
    expected = []
    for service in services:
        for name in catalog.instance_types(cloud, service):
            if region in catalog.regions(name):
                expected.append(catalog.lookup(name, region, cloud=cloud))
    assert expected, "the region sells some of these types"
    assert catalog.offered(cloud, region, services) == expected
    assert catalog.offered(cloud, "nowhere-1", services) == []


def test_lookups_come_from_one_cached_index() -> None:
    assert catalog.lookup("g5.xlarge") is catalog.lookup("g5.xlarge")


def test_accelerator_table() -> None:
    table = catalog.accelerators()
    models = {chip.model for chip in table}
    assert catalog.accelerator("V100").relative_training_throughput == 1.0
    assert catalog.accelerator("h100").model == "H100"
    for chip in table:
        assert chip.kind in {"gpu", "inferentia", "trainium", "tpu", "other"}
        assert chip.generation in {"current", "previous"}
        assert chip.memory_gib > 0 and chip.dense_bf16_tflops > 0
        assert chip.relative_training_throughput > 0
        assert chip.basis
    for name in catalog.instance_types():
        assert catalog.lookup(name, catalog.regions(name)[0]).accelerator in models


def test_throughput_follows_compute_within_a_vendor_generation() -> None:
    ladder = ["T4", "A10G", "A100", "H100", "H200"]
    scores = [catalog.accelerator(m).relative_training_throughput for m in ladder]
    assert scores == sorted(scores)


def test_accelerator_aliases() -> None:
    assert catalog.accelerator("nvidia-tesla-t4").model == "T4"
    assert catalog.accelerator("A100-40GB").model == "A100"
    assert catalog.accelerator("nvidia-a100-80gb").model == "A100-80GB"
    assert catalog.cheapest("nvidia-l4", 1, cloud="gcp")[0].accelerator == "L4"


def test_unknown_accelerator_suggests_close_models() -> None:
    with pytest.raises(CatalogError, match=r"unknown accelerator 'H10O' \(did you mean H100"):
        catalog.accelerator("H10O")


def test_record_properties() -> None:
    info = catalog.lookup("p4d.24xlarge")
    chip = info.accelerator_info
    assert chip.model == "A100"
    assert info.node_accelerator_memory_gib == info.accelerator_memory_gib * 8
    assert info.throughput_per_node == pytest.approx(chip.relative_training_throughput * 8)
    assert info.usd_per_hour() == info.on_demand_usd_per_hour
    assert info.spot_usd_per_hour is not None
    assert info.usd_per_hour(spot=True) == info.spot_usd_per_hour
    assert info.usd_per_throughput_hour(spot=True) == pytest.approx(
        info.spot_usd_per_hour / info.throughput_per_node
    )


def test_sagemaker_hosting_has_no_spot_and_ec2_specs() -> None:
    for region in ("us-east-1", "us-west-2"):
        for size in ("xlarge", "8xlarge", "24xlarge", "48xlarge"):
            hosted = catalog.lookup(f"ml.inf2.{size}", region)
            plain = catalog.lookup(f"inf2.{size}", region)
            assert hosted.service == "sagemaker"
            assert hosted.family == plain.family == "inf2"
            assert hosted.spot_usd_per_hour is None
            assert (hosted.accelerator, hosted.accelerator_count, hosted.vcpus) == (
                plain.accelerator,
                plain.accelerator_count,
                plain.vcpus,
            )
            assert hosted.on_demand_usd_per_hour > plain.on_demand_usd_per_hour
    for name in (
        "ml.g5.xlarge",
        "ml.g4dn.xlarge",
        "ml.g6.xlarge",
        "ml.p4d.24xlarge",
        "ml.p5.48xlarge",
    ):
        assert catalog.lookup(name).on_demand_usd_per_hour > 0
    with pytest.raises(CatalogError, match=r"no spot price for ml\.g5\.xlarge"):
        catalog.lookup("ml.g5.xlarge").usd_per_hour(spot=True)


def test_sources_name_every_data_file() -> None:
    assert catalog.SNAPSHOT_DATE
    from importlib import resources

    data = resources.files("aifinops.catalog") / "data"
    files = {entry.name for entry in data.iterdir() if entry.name.endswith((".csv", ".json"))}
    assert files == set(catalog.SOURCES)
    sources_md = (data / "SOURCES.md").read_text(encoding="utf-8")
    for name in files:
        assert f"`{name}`" in sources_md
