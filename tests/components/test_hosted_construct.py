"""Every hosted component, built by the real provider host over gRPC from wire-encoded inputs,
as the engine builds it for a TypeScript, Go or YAML program (`pulumi package add`).

The host serves one `index` module; its schema names each component `finops:index:<Class>`
and the engine records the component under the type it registers with, so both must agree.
Inputs travel as a protobuf `Struct`: `nodesMax: 4` arrives as 4.0.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from provider_host import HostedComponents

from aifinops.engine.contracts import check_resources

pytestmark = pytest.mark.slow

TAGS = {"Project": "vision", "Team": "ml-platform", "Environment": "dev"}
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostedComponentsTestKeyOnly test"
CONFIG = {
    "aws:region": "us-east-1",
    "gcp:project": "finops-demo",
    "gcp:region": "us-central1",
    "azure-native:location": "eastus",
}
# What a program in another language passes: schema (camelCase) names, integers as numbers.
INPUTS: dict[str, dict[str, Any]] = {
    "AwsGpuTrainingFleet": {
        "nodesMin": 0,
        "nodesDesired": 2,
        "nodesMax": 4,
        "modelVersion": "resnet50-v3",
        "tags": TAGS,
        "accelerator": "A10G",
        "acceleratorsPerNode": 1,
        "onDemandBaseNodes": 0,
        "fallbackAfterMinutes": 10,
        "checkpointRetentionDays": 14,
        "rootVolumeSizeGib": 200,
    },
    "AwsInferenceEndpoint": {
        "modelVersion": "resnet50-v3",
        "tags": TAGS,
        "serving": "model-archive",
        "modelDataUrl": "s3://vision-models/resnet50-v3/model.tar.gz",
        "instanceType": "ml.inf2.xlarge",
        "replicasMin": 1,
        "replicasMax": 2,
        "targetInvocationsPerInstance": 100,
        "modelMemoryGib": 8,
        "hoursPerMonth": 730,
    },
    "AwsProjectBudget": {
        "project": "vision",
        "monthlyLimitUsd": 3000,
        "notifyEmails": ["ml-platform@example.com"],
        "tags": TAGS,
        "thresholdsPercent": [80, 100],
        "enforce": True,
    },
    "AwsServerlessInferenceEndpoint": {
        "modelVersion": "distilbert-v1",
        "tags": TAGS,
        "modelDataUrl": "s3://vision-models/distilbert-v1/model.tar.gz",
        "serving": "model-archive",
        "memorySizeMb": 3072,
        "maxConcurrency": 10,
        "requestsPerMonth": 100000,
        "meanDurationMs": 800,
    },
    "GcpServerlessInferenceEndpoint": {
        "modelVersion": "minilm-v2",
        "image": "us-docker.pkg.dev/finops-demo/serve/embedder:1",
        "cpu": 2,
        "memoryMb": 4096,
        "replicasMax": 3,
        "requestsPerMonth": 200000,
        "meanDurationMs": 300,
        "tags": TAGS,
    },
    "GcpGpuTrainingFleet": {
        "modelVersion": "vit-b16-v3",
        "nodeCount": 4,
        "nodeCountMax": 6,
        "onDemandBase": 1,
        "accelerator": "L4",
        "acceleratorsPerNode": 1,
        "fallbackAfterMinutes": 10,
        "checkpointRetentionDays": 7,
        "bootDiskSizeGb": 200,
        "terminationAction": "STOP",
        "tags": TAGS,
    },
    "GcpTpuInferenceEndpoint": {
        "modelVersion": "qwen2-5-7b-instruct-v1",
        "serving": "llm",
        "modelId": "Qwen/Qwen2.5-7B-Instruct",
        "replicasMin": 1,
        "replicasMax": 3,
        "acceleratorType": "v5litepod-4",
        "targetDutyCyclePercent": 60,
        "tags": TAGS,
    },
    "GcpGkeTpuInferenceEndpoint": {
        "modelVersion": "qwen2-5-7b-instruct-v1",
        "serving": "llm",
        "modelId": "Qwen/Qwen2.5-7B-Instruct",
        "image": "us-docker.pkg.dev/finops-demo/serving/vllm-tpu@sha256:" + "0" * 64,
        "zone": "us-central1-a",
        "replicasMin": 1,
        "replicasMax": 3,
        "acceleratorType": "v5litepod-4",
        "targetQueueLength": 10,
        "tags": TAGS,
    },
    "GcpTpuBatchInference": {
        "modelVersion": "vit-b16-v3",
        "replicasMin": 2,
        "acceleratorType": "v5litepod-4",
        "modelDataUrl": "gs://finops-demo-models/vit-b16-v3",
        "tags": TAGS,
    },
    "GcpProjectBudget": {
        "project": "vision",
        "monthlyLimitUsd": 1500,
        "billingAccount": "012345-6789AB-CDEF01",
        "notifyEmails": ["ml-platform@example.com"],
        "thresholdsPercent": [50, 80, 100],
        "forecastThresholdPercent": 100,
        "tags": TAGS,
    },
    "AzureGpuTrainingFleet": {
        "modelVersion": "vit-b16-v3",
        "nodeCount": 2,
        "adminSshPublicKey": SSH_KEY,
        "vmSize": "Standard_NC4as_T4_v3",
        "onDemandBase": 1,
        "regularPercentAboveBase": 0,
        "spotRestoreTimeoutMinutes": 60,
        "osDiskSizeGb": 128,
        "evictionPolicy": "Deallocate",
        "tags": TAGS,
    },
    "AzureProjectBudget": {
        "project": "vision",
        "monthlyLimitUsd": 1500,
        "notifyEmails": ["ml-platform@example.com"],
        "thresholdsPercent": [50, 80, 100],
        "startDate": "2026-01-01",
    },
}


@pytest.fixture(scope="module")
def host() -> Iterator[HostedComponents]:
    hosted = HostedComponents({"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"})
    try:
        yield hosted
    finally:
        hosted.close()


@pytest.fixture(scope="module")
def schema(host: HostedComponents) -> dict[str, Any]:
    return host.schema()


def test_every_hosted_component_has_wire_inputs_here(schema: dict[str, Any]) -> None:
    """A new hosted component must be added to INPUTS, so the contract covers it too."""
    hosted = {token.rsplit(":", 1)[1] for token in schema["resources"]}
    assert hosted == set(INPUTS)
    for class_name, inputs in INPUTS.items():
        resource = schema["resources"][f"finops:index:{class_name}"]
        assert set(resource.get("requiredInputs", [])) <= set(inputs), class_name
        assert set(inputs) <= set(resource["inputProperties"]), class_name


@pytest.mark.parametrize("class_name", sorted(INPUTS))
def test_construct_builds_the_component_from_floats(
    host: HostedComponents, schema: dict[str, Any], class_name: str
) -> None:
    token = f"finops:index:{class_name}"
    reply, registered = host.construct(
        token, f"hosted-{class_name.lower()}", INPUTS[class_name], CONFIG
    )
    (component,) = [r for r in registered if r.urn == reply.urn]
    assert component.type == token  # the type the schema serves, not finops:<cloud>:<Type>
    assert not component.custom
    children = [r for r in registered if r.custom]
    assert children, f"{class_name} registered no resources"
    assert check_resources(registered) == []
    assert set(reply.state) == set(schema["resources"][token].get("properties", {}))


def test_integers_arrive_as_floats_and_are_read_as_integers(host: HostedComponents) -> None:
    _, registered = host.construct(
        "finops:index:GcpGpuTrainingFleet", "floats", INPUTS["GcpGpuTrainingFleet"], CONFIG
    )
    sizes = {
        r.name: r.inputs["targetSize"]
        for r in registered
        if r.type == "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"
    }
    assert sizes == {"floats-spot": 3, "floats-on-demand": 1}
    _, registered = host.construct(
        "finops:index:AwsGpuTrainingFleet", "floats", INPUTS["AwsGpuTrainingFleet"], CONFIG
    )
    groups = {r.name: r for r in registered if r.type == "aws:autoscaling/group:Group"}
    assert groups["floats-group"].inputs["maxSize"] == 4
    assert groups["floats-group"].inputs["desiredCapacity"] == 2


@pytest.mark.parametrize(
    ("class_name", "field", "value", "message"),
    [
        (
            "AwsGpuTrainingFleet",
            "nodesMax",
            4.5,
            "nodes_max: 4.5 is not allowed; allowed: an integer 1..1000",
        ),
        (
            "GcpGpuTrainingFleet",
            "nodeCount",
            2.5,
            "node_count: 2.5 is not allowed; allowed: an integer 0 or more",
        ),
        ("AzureGpuTrainingFleet", "osDiskSizeGb", 127.5, "os_disk_size_gb: 127.5 is not allowed"),
        ("GcpTpuInferenceEndpoint", "replicasMin", 1.5, "replicas_min: 1.5 is not allowed"),
    ],
)
def test_a_fraction_is_refused_naming_the_field(
    host: HostedComponents, class_name: str, field: str, value: float, message: str
) -> None:
    inputs = {**INPUTS[class_name], field: value}
    with pytest.raises(grpc.RpcError) as caught:
        host.construct(f"finops:index:{class_name}", "fraction", inputs, CONFIG)
    assert message in str(caught.value.details())
