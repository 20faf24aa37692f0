"""The GCP and Azure components can be hosted for other languages: the component provider
host's analyzer infers a schema from their args and outputs without error."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from pulumi.provider.experimental.analyzer import Analyzer
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.experimental.schema import generate_schema

from aifinops.components import azure, gcp
from aifinops.engine import run_program

MINE = [*gcp.COMPONENTS, *azure.COMPONENTS]
HOST = Path(__file__).resolve().parents[3] / "components" / "__main__.py"


@pytest.fixture(scope="module")
def schema() -> dict:
    result = Analyzer("finops").analyze(MINE)
    package = generate_schema(
        "finops",
        "0.0.1",
        None,
        result["component_definitions"],
        result["type_definitions"],
        sorted(result["dependencies"], key=lambda d: f"{d.name}{d.version}"),
    )
    return package.to_json()


def test_every_component_gets_a_resource_with_its_class_name(schema):
    assert sorted(schema["resources"]) == [
        "finops:index:AzureGpuTrainingFleet",
        "finops:index:AzureProjectBudget",
        "finops:index:GcpGkeTpuInferenceEndpoint",
        "finops:index:GcpGpuTrainingFleet",
        "finops:index:GcpProjectBudget",
        "finops:index:GcpServerlessInferenceEndpoint",
        "finops:index:GcpTpuBatchInference",
        "finops:index:GcpTpuInferenceEndpoint",
    ]


def test_required_inputs_enums_and_outputs(schema):
    fleet = schema["resources"]["finops:index:GcpGpuTrainingFleet"]
    assert sorted(fleet["requiredInputs"]) == ["modelVersion", "nodeCount"]
    assert fleet["inputProperties"]["capacity"]["$ref"] == "#/types/finops:index:Capacity"
    assert "checkpointBucket" in fleet["properties"]
    azure = schema["resources"]["finops:index:AzureGpuTrainingFleet"]
    assert sorted(azure["requiredInputs"]) == ["adminSshPublicKey", "modelVersion", "nodeCount"]
    budget = schema["resources"]["finops:index:GcpProjectBudget"]
    assert budget["inputProperties"]["notifyEmails"]["type"] == "array"
    enum = schema["types"]["finops:index:GcpTerminationAction"]
    assert sorted(v["value"] for v in enum["enum"]) == ["DELETE", "STOP"]


def test_field_docstrings_become_descriptions(schema):
    inputs = schema["resources"]["finops:index:GcpTpuInferenceEndpoint"]["inputProperties"]
    assert "Vertex dedicated resources keep at least 1" in inputs["replicasMin"]["description"]


@pytest.mark.skipif(not HOST.exists(), reason="components/__main__.py not written yet")
def test_the_provider_host_lists_them_and_analyses_every_cloud_together():
    spec = importlib.util.spec_from_file_location("finops_component_host", HOST)
    assert spec and spec.loader
    host = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(host)
    hosted = host.hosted_components()
    assert all(component in hosted for component in MINE)
    names = Analyzer("finops").analyze(hosted)["component_definitions"]
    assert {c.__name__ for c in MINE} <= set(names)


def test_inputs_as_the_host_maps_them_build_the_components():
    """The host hands a component a dict with integers as floats and enums as members."""
    host = ComponentProvider(MINE, "finops")

    def mapped(component: str, inputs: dict[str, Any]) -> Any:
        return host.map_inputs(inputs, host._component_defs[component])

    fleet_args = mapped(
        "GcpGpuTrainingFleet",
        {
            "modelVersion": "v1",
            "nodeCount": 4.0,
            "onDemandBase": 1.0,
            "nodeCountMax": 6.0,
            "accelerator": "L4",
            "capacity": "spot-with-fallback",
            "terminationAction": "STOP",
            "region": "us-central1",
        },
    )
    assert fleet_args["node_count"] == 4.0 and isinstance(fleet_args["node_count"], float)
    azure_args = mapped(
        "AzureGpuTrainingFleet",
        {
            "modelVersion": "v1",
            "nodeCount": 2.0,
            "adminSshPublicKey": "ssh-ed25519 AAAA key",
            "vmSize": "Standard_NC4as_T4_v3",
            "onDemandBase": 1.0,
            "evictionPolicy": "Deallocate",
            "location": "eastus",
        },
    )

    def program() -> None:
        gcp.GcpGpuTrainingFleet("hosted", fleet_args)
        azure.AzureGpuTrainingFleet("hosted-az", azure_args)

    run = run_program(program, "test", {}, {"gcp": "us-central1", "azure": "eastus"})
    sizes = {
        r.name: r.inputs["targetSize"]
        for r in run.of_type("gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager")
    }
    assert sizes == {"hosted-spot": 3, "hosted-on-demand": 1}
    (template,) = [r for r in run.resources if r.name == "hosted-spot-template"]
    assert template.inputs["scheduling"]["instanceTerminationAction"] == "STOP"
    (scale_set,) = run.of_type("azure-native:compute:VirtualMachineScaleSet")
    assert scale_set.inputs["priorityMixPolicy"]["baseRegularPriorityCount"] == 1
    assert scale_set.inputs["virtualMachineProfile"]["evictionPolicy"] == "Deallocate"
