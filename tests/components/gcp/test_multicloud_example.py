"""examples/Pulumi.multicloud.yaml runs through the real program (infra/) offline, and the GCP
and Azure builders compose what the stack config asks for."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from aifinops import config as stack_config
from aifinops import tags as tag_schema
from aifinops.engine import EngineError, StackRun, run_program
from aifinops.engine.stack import run_stack
from aifinops.taggability import tag_property

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "Pulumi.multicloud.yaml"
VERTEX = "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment"
POOL = "gcp:container/nodePool:NodePool"
STACK_TAGS = {"Project": "vision", "Team": "ml-platform", "Environment": "staging"}


def infra_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "infra" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run() -> StackRun:
    _, _, run = run_stack(str(EXAMPLE), ROOT)
    return run


def test_the_example_composes_one_of_each_component(run):
    components = sorted((r.type, r.name) for r in run.resources if not r.custom)
    assert components == [
        ("finops:azure:GpuTrainingFleet", "azure-t4-train"),
        ("finops:gcp:FleetNetwork", "network-us-central1"),
        ("finops:gcp:GkeTpuInferenceEndpoint", "gcp-tpu-serve"),
        ("finops:gcp:GpuTrainingFleet", "gcp-l4-train"),
        ("finops:gcp:ProjectBudget", "vision-budget"),
    ]


def test_fleet_and_endpoint_sizes_follow_the_config(run):
    groups = {
        r.name: r.inputs["targetSize"]
        for r in run.of_type("gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager")
    }
    assert groups == {"gcp-l4-train-spot": 4, "gcp-l4-train-on-demand": 0}
    pools = {r.name: r.inputs for r in run.of_type(POOL)}
    assert pools["gcp-tpu-serve-tpu"]["nodeCount"] == 1  # replicas.min, on demand
    assert pools["gcp-tpu-serve-tpu-spot"]["autoscaling"] == {"minNodeCount": 0, "maxNodeCount": 2}
    assert pools["gcp-tpu-serve-tpu-spot"]["nodeConfig"]["spot"] is True
    assert pools["gcp-tpu-serve-tpu"]["nodeConfig"]["machineType"] == "ct5lp-hightpu-4t"
    (hpa,) = run.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    assert (hpa.inputs["spec"]["minReplicas"], hpa.inputs["spec"]["maxReplicas"]) == (1, 3)
    (server,) = run.of_type("kubernetes:apps/v1:Deployment")
    container = server.inputs["spec"]["template"]["spec"]["containers"][0]
    assert "--model=Qwen/Qwen2.5-7B-Instruct" in container["args"]
    assert {"gcp-tpu-serve-url", "gcp-tpu-serve-cluster"} <= set(run.exports)
    # the nodes live on the region's shared network (Cloud NAT, Private Google Access)
    (cluster,) = run.of_type("gcp:container/cluster:Cluster")
    (subnet,) = run.of_type("gcp:compute/subnetwork:Subnetwork")
    assert cluster.inputs["subnetwork"] == subnet.outputs.get("selfLink")
    (scale_set,) = run.of_type("azure-native:compute:VirtualMachineScaleSet")
    assert scale_set.inputs["sku"] == {
        "name": "Standard_NC4as_T4_v3",
        "tier": "Standard",
        "capacity": 2,
    }
    assert scale_set.inputs["priorityMixPolicy"]["baseRegularPriorityCount"] == 1


def test_every_taggable_resource_has_the_stack_tags_in_its_clouds_spelling(run):
    checked = 0
    for resource in run.custom_resources():
        where = tag_property(resource.type)
        cloud = tag_schema.cloud_of(resource.type)
        if where is None or cloud is None:
            continue
        tags = resource.inputs
        for key in where.property.split("."):
            tags = tags[key]
        assert tag_schema.missing_keys(tags, cloud, workload=False) == [], resource.name
        assert tags == {**tags, **tag_schema.spell(STACK_TAGS, cloud)}, resource.name
        checked += 1
    assert checked >= 10


def test_workloads_carry_the_model_version(run):
    (template,) = [r for r in run.resources if r.name == "gcp-l4-train-spot-template"]
    assert template.inputs["labels"]["model-version"] == "vit-b16-v3"
    # the GKE endpoint's cluster and node pools carry it (the Vertex deployment cannot)
    for resource in [*run.of_type(POOL), *run.of_type("gcp:container/cluster:Cluster")]:
        labels = (
            resource.inputs.get("resourceLabels") or resource.inputs["nodeConfig"]["resourceLabels"]
        )
        assert labels["model-version"] == "qwen2-5-7b-instruct-v1", resource.name
    assert tag_property(VERTEX) is None
    (scale_set,) = run.of_type("azure-native:compute:VirtualMachineScaleSet")
    assert scale_set.inputs["tags"]["ModelVersion"] == "vit-b16-v3"


def test_missing_billing_account_and_ssh_key_are_placeholders_with_warnings(run):
    (budget,) = run.of_type("gcp:billing/budget:Budget")
    assert budget.inputs["billingAccount"] == "000000-000000-000000"
    assert budget.inputs["budgetFilter"]["labels"] == {"project": "vision"}
    warnings = [text for level, text in run.messages if level == "warning"]
    assert any("finops:gcpBillingAccount is not set" in text for text in warnings)
    assert any("finops:azureSshPublicKey is not set" in text for text in warnings)


def _config(**finops: object) -> stack_config.StackConfig:
    raw = {f"finops:{key}": value for key, value in finops.items()}
    raw["finops:tags"] = STACK_TAGS
    return stack_config.parse(raw, source="test")


FLEET = {
    "name": "train",
    "cloud": "gcp",
    "nodes": {"min": 0, "max": 4, "desired": 2},
    "modelVersion": "v1",
}


def test_configured_billing_account_is_used_and_enforce_warns():
    build_gcp = infra_module("build_gcp")
    config = _config(
        budgets=[
            {
                "project": "vision",
                "cloud": "gcp",
                "monthlyLimitUsd": 100,
                "notify": ["a@example.com"],
                "enforce": True,
            }
        ]
    )
    run = run_program(
        lambda: build_gcp.build(config),
        "test",
        {"finops:gcpBillingAccount": "0A1B2C-3D4E5F-6A7B8C"},
        {"gcp": "us-central1"},
    )
    (budget,) = run.of_type("gcp:billing/budget:Budget")
    assert budget.inputs["billingAccount"] == "0A1B2C-3D4E5F-6A7B8C"
    assert any("enforce is not built on GCP" in text for _, text in run.messages)


def test_a_gcp_fleet_with_two_instance_types_is_refused():
    build_gcp = infra_module("build_gcp")
    config = _config(
        trainingFleets=[{**FLEET, "instanceTypes": ["g2-standard-8", "g2-standard-12"]}]
    )
    with pytest.raises(EngineError, match="a GCP fleet takes one instance type"):
        run_program(lambda: build_gcp.build(config), "test", {}, {"gcp": "us-central1"})


def test_accelerator_fleets_and_tpu_generations_are_resolved_from_the_catalog():
    build_gcp = infra_module("build_gcp")
    build_azure = infra_module("build_azure")
    config = _config(
        trainingFleets=[
            {**FLEET, "accelerator": "L4", "acceleratorsPerNode": 2},
            {**FLEET, "name": "az", "cloud": "azure", "accelerator": "A10"},
        ],
        inferenceEndpoints=[
            {
                "name": "serve",
                "cloud": "gcp",
                "accelerator": "TPU-v5e",
                "modelMemoryGib": 100,
                "replicas": {"min": 1, "max": 1},
                "modelVersion": "v1",
                "serving": "llm",
                "modelId": "Qwen/Qwen2.5-72B-Instruct",
            }
        ],
    )

    def program() -> None:
        build_gcp.build(config)
        build_azure.build(config)

    run = run_program(program, "test", {}, {"gcp": "us-central1", "azure": "eastus"})
    (template,) = [r for r in run.resources if r.name == "train-spot-template"]
    assert template.inputs["machineType"] == "g2-standard-24"  # the 2 x L4 G2 shape
    (deployment,) = run.of_type(VERTEX)
    machine = deployment.inputs["deployConfig"]["dedicatedResources"]["machineSpec"]
    assert machine["machineType"] == "ct5lp-hightpu-8t"  # 128 GiB of HBM >= 100 GiB
    (scale_set,) = run.of_type("azure-native:compute:VirtualMachineScaleSet")
    assert scale_set.inputs["sku"]["name"] == "Standard_NV36ads_A10_v5"


def test_finops_preview_prices_the_example_and_every_policy_passes(capsys):
    from aifinops.cli import main

    rc = main(["preview", "--stack", str(EXAMPLE), "--format", "json", "--project-dir", str(ROOT)])
    out = json.loads(capsys.readouterr().out)
    assert out["violations"] == [] and rc == 0
    monthly = {r["name"]: r["monthlyUsd"] for r in out["resources"]}
    assert monthly["gcp-l4-train-spot"] > 0  # 4 spot g2-standard-8
    assert monthly["gcp-l4-train-on-demand"] == 0  # the fallback waits at zero
    assert monthly["gcp-tpu-serve-tpu"] > 0 and monthly["azure-t4-train-vmss"] > 0
    assert monthly["gcp-tpu-serve-tpu-spot"] == 0  # Spot burst: $0 until the HPA scales out
    assert monthly["gcp-tpu-serve-cluster"] > 0 and monthly["gcp-tpu-serve-system"] > 0
    # tagged: the endpoint's whole price carries its model version (the Vertex option's
    # landed in (untagged), $3,511.84); what stays untagged takes no labels (Cloud NAT $7.74,
    # a Cloud Scheduler job $0.10)
    endpoint = sum(r["monthlyUsd"] for r in out["resources"] if r["component"] == "gcp-tpu-serve")
    by_version = out["totals"]["byTag"]["ModelVersion"]
    assert by_version["qwen2-5-7b-instruct-v1"] == pytest.approx(endpoint, abs=0.01)
    assert out["totals"]["byTag"]["Project"]["(untagged)"] < 10
