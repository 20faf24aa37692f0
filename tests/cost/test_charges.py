"""Every charge besides instances, each against a figure computed by hand from the public
list prices in finops/catalog/data/fixed_charges.csv and aws_storage.csv (2026-01)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifinops import catalog
from aifinops.catalog import charges as prices
from aifinops.charges import calls_per_month
from aifinops.config import parse
from aifinops.cost import CostReport, estimate
from aifinops.engine import EngineResource, StackRun
from aifinops.engine.stack import run_stack
from aifinops.usage import Usage

ROOT = Path(__file__).resolve().parents[2]
HOURS = 730.0


@pytest.fixture(scope="module")
def dev() -> CostReport:
    _, config, run = run_stack("dev", ROOT)
    return estimate(run, config)


@pytest.fixture(scope="module")
def multicloud() -> CostReport:
    _, config, run = run_stack(str(ROOT / "examples" / "Pulumi.multicloud.yaml"), ROOT)
    return estimate(run, config)


def line(report: CostReport, name: str):
    (found,) = [c for c in report.resources if c.name == name]
    return found


def test_dev_fleet_shows_nodes_volumes_and_telemetry_separately(dev: CostReport) -> None:
    fleet = [c for c in dev.resources if c.component == "vision-train" and c.monthly_usd > 0]
    names = {c.name for c in fleet}
    assert {
        "vision-train-group",
        "vision-train-group/volumes",
        "vision-train-group/telemetry",
    } <= names
    # 2 nodes x one 200 GB gp3 root volume x $0.08/GB-month
    volumes = line(dev, "vision-train-group/volumes")
    assert volumes.monthly_usd == pytest.approx(2 * 200 * 0.08)  # 32.00
    assert volumes.priced and volumes.charge == "volumes"
    assert volumes.tags["Project"] == "vision"


def test_dev_fleet_telemetry_from_the_agents_config(dev: CostReport) -> None:
    # the fleet's agent: [cloudwatch] with tag_dimensions = ["finops:fleet"], the CloudWatch
    # agent's set on (default): per GPU 12 metrics (6 nvidia_smi + memory total/free, 3 finops,
    # idle) + 8 nvidia_smi in the CloudWatch agent's set = 20; the per-fleet copy: 12 per
    # instance type in use (2 nodes over 4 types: at most 2)
    steady = 2 * 1 * 20 + 12 * 2  # 64 metric-months
    types = ["g5.xlarge", "g6.xlarge", "g6.2xlarge", "g5.2xlarge"]
    share = sum(catalog.lookup(t, "us-east-1").monthly_interruption_share for t in types) / 4
    churn = 2 * share * 20 / HOURS  # each replacement: 20 new series for about an hour
    metrics = (steady + churn) * 0.30
    requests = 2 * HOURS * 60 * 0.01 / 1000  # one PutMetricData per node and 60 s window
    telemetry = line(dev, "vision-train-group/telemetry")
    assert telemetry.monthly_usd == pytest.approx(metrics + requests)  # 20.08
    assert "64.0 metric-months" in telemetry.basis
    assert "87,600 requests" in telemetry.basis


def test_dev_controller_schedule_and_the_endpoints_storage_is_unknown(dev: CostReport) -> None:
    invocations = line(dev, "vision-train-fallback/invocations")
    # rate(1 minute): 43,800 calls x $0.20 per million; run time 0 until the usage file says
    assert invocations.monthly_usd == pytest.approx(43_800 * 0.20 / 1e6)
    storage = line(dev, "vision-serve-config/ml-storage")
    assert not storage.priced and "set volumeSizeInGb" in storage.basis
    # the instances' figures are unchanged; the total is the sum of the lines
    assert line(dev, "vision-serve-config").monthly_usd == pytest.approx(0.99 * HOURS)
    assert dev.total_monthly_usd == pytest.approx(sum(c.monthly_usd for c in dev.resources))
    assert "vision-train-checkpoints.storage_gb" in dev.usage_zero_keys


def test_gcp_and_azure_fleets_disks_scheduler_and_functions(multicloud: CostReport) -> None:
    # 4 spot VMs x a 200 GB pd-balanced boot disk x $0.10/GB-month (us-central1)
    assert line(multicloud, "gcp-l4-train-spot/volumes").monthly_usd == pytest.approx(80.0)
    assert line(multicloud, "gcp-l4-train-controller-schedule/job").monthly_usd == 0.10
    # "* * * * *": 60 x 24 x 30.4167 days = 43,800 calls x $0.40 per million
    calls = line(multicloud, "gcp-l4-train-controller/invocations")
    assert calls.monthly_usd == pytest.approx(43_800 * 0.40 / 1e6)
    # 2 VMs x a 128 GiB Standard SSD OS disk: the E10 tier, $9.60 a month
    assert line(multicloud, "azure-t4-train-vmss/volumes").monthly_usd == pytest.approx(19.20)
    # their agents publish no cloud metrics: a $0 line that says so
    for name in ("gcp-l4-train-spot/telemetry", "azure-t4-train-vmss/telemetry"):
        telemetry = line(multicloud, name)
        assert telemetry.monthly_usd == 0 and "no cloud metrics charge" in telemetry.basis


def _run(*resources: EngineResource) -> StackRun:
    component = EngineResource("urn:c", "finops:aws:Net", "net", "", False, {})
    return StackRun("p", "s", [component, *resources], [], {})


def _resource(type_: str, name: str, inputs: dict, outputs: dict | None = None) -> EngineResource:
    return EngineResource(
        f"urn:pulumi:s::p::{type_}::{name}", type_, name, "urn:c", True, inputs, outputs or {}
    )


TAGS = {"Project": "vision", "Team": "ml-platform", "Environment": "dev"}
CONFIG = parse({"aws:region": "us-east-1", "finops:tags": TAGS}, source="<test>")


def test_nat_gateway_interface_endpoint_and_log_group_with_usage() -> None:
    run = _run(
        _resource("aws:ec2/natGateway:NatGateway", "nat", {}),
        _resource(
            "aws:ec2/vpcEndpoint:VpcEndpoint",
            "ssm",
            {"vpcEndpointType": "Interface", "subnetIds": ["a", "b", "c"]},
        ),
        _resource("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", {"vpcEndpointType": "Gateway"}),
        _resource("aws:cloudwatch/logGroup:LogGroup", "logs", {"retentionInDays": 90}),
        _resource("aws:s3/bucket:Bucket", "ckpt", {}),
    )
    usage = Usage(
        {
            "nat": {"data_processed_gb": 1000},
            "logs": {"ingested_gb": 10},
            "ckpt": {"storage_gb": 2000},
        }
    )
    report = estimate(run, CONFIG, usage)
    # the gateway's hours are its own line (aifinops.cost, network_prices.csv); its data is ours
    assert line(report, "nat").monthly_usd == pytest.approx(0.045 * HOURS)  # 32.85
    assert line(report, "nat/data").monthly_usd == pytest.approx(1000 * 0.045)
    # one endpoint in 3 AZs x $0.01/h; the gateway endpoint is free (no line)
    assert line(report, "ssm/hours").monthly_usd == pytest.approx(3 * 0.01 * HOURS)
    assert not [c for c in report.resources if c.name.startswith("s3/")]
    # 10 GB a month kept 90 days: 10 x 0.50 + 10 x 90/30.4167 x 0.03
    assert line(report, "logs/logs").monthly_usd == pytest.approx(
        10 * 0.50 + 10 * 90 / (HOURS / 24) * 0.03
    )
    assert line(report, "ckpt/storage").monthly_usd == pytest.approx(2000 * 0.023)
    assert report.usage_zero_keys == ["ssm.data_processed_gb"]


def test_a_region_without_prices_is_unknown_never_zero() -> None:
    config = parse({"aws:region": "ap-south-1", "finops:tags": TAGS}, source="<test>")
    report = estimate(_run(_resource("aws:ec2/natGateway:NatGateway", "nat", {})), config)
    data = line(report, "nat/data")
    assert not data.priced and "ap-south-1" in data.basis


def test_cloudwatch_metric_tiers_and_azure_disk_tiers() -> None:
    # 300,000 metrics: 10,000 at $0.30, 240,000 at $0.10, 50,000 at $0.05
    assert prices.tiered_usd(
        "aws", "us-east-1", "cloudwatch-custom-metric", 300_000
    ) == pytest.approx(3_000 + 24_000 + 2_500)
    assert prices.tiered_usd("aws", "us-east-1", "cloudwatch-custom-metric", 64) == pytest.approx(
        19.2
    )
    tier = prices.size_tier("azure", "eastus", "managed-disk-StandardSSD_LRS", 100)
    assert tier is not None and (tier.tier_upto, tier.usd) == (128, 9.60)
    assert prices.size_tier("azure", "eastus", "managed-disk-StandardSSD_LRS", 5000) is None


@pytest.mark.parametrize(
    ("schedule", "calls"),
    [
        ("rate(1 minute)", 43_800),
        ("rate(5 minutes)", 8_760),
        ("rate(1 hour)", 730),
        ("*/15 * * * *", 4 * 24 * HOURS / 24),
        ("cron(0 */2 * * ? *)", 12 * HOURS / 24),
        ("0 9 * * 1-5", None),  # weekdays only: not counted, the line says UNKNOWN
    ],
)
def test_schedules_become_calls_a_month(schedule: str, calls: float | None) -> None:
    assert calls_per_month(schedule) == (pytest.approx(calls) if calls is not None else None)


def test_an_agent_whose_config_cannot_be_read_is_unknown_telemetry() -> None:
    from aifinops.charges import NodeGroup, telemetry_charge

    group = NodeGroup(2, 1.0, ("g5.xlarge",), HOURS)
    resource = _resource("aws:autoscaling/group:Group", "g", {})
    script = "#!/bin/bash\npip install finops-agent\necho '[cloudwatch]' > /etc/a.toml\n"
    unknown = telemetry_charge(resource, script, group, "aws", "us-east-1")
    assert unknown is not None and not unknown.priced
    assert "writes no config this model reads" in unknown.basis
    broken = "#!/bin/bash\ncat > /etc/finops-agent.toml <<'X'\n[metadata]\nprovider = 3\nX\n"
    refused = telemetry_charge(resource, broken, group, "aws", "us-east-1")
    assert refused is not None and not refused.priced and "agent config unreadable" in refused.basis
    # no agent at all: no telemetry line
    assert telemetry_charge(resource, "#!/bin/bash\ntrue\n", group, "aws", "us-east-1") is None


def test_cloud_nat_data_and_pd_disks() -> None:
    template = _resource(
        "gcp:compute/instanceTemplate:InstanceTemplate",
        "tmpl",
        {
            "machineType": "g2-standard-8",
            "region": "us-central1",
            "disks": [{"boot": True, "diskSizeGb": 100, "diskType": "pd-ssd"}, {"diskSizeGb": 50}],
        },
    )
    group = _resource(
        "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager",
        "mig",
        {"targetSize": 3, "region": "us-central1", "versions": [{"instanceTemplate": "tmpl"}]},
    )
    nat = _resource("gcp:compute/routerNat:RouterNat", "nat", {"region": "us-central1"})
    config = parse(
        {"gcp:region": "us-central1", "gcp:project": "p", "finops:tags": TAGS}, source="<test>"
    )
    report = estimate(
        _run(template, group, nat), config, Usage({"nat": {"data_processed_gb": 200}})
    )
    # 3 VMs x (100 GB pd-ssd at $0.17 + 50 GB pd-standard, the default type, at $0.04)
    assert line(report, "mig/volumes").monthly_usd == pytest.approx(3 * (100 * 0.17 + 50 * 0.04))
    # 200 GB x $0.045 (its VM-hours are the resource's own line, aifinops.cost)
    assert line(report, "nat/data").monthly_usd == pytest.approx(200 * 0.045)
