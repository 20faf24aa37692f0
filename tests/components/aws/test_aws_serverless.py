"""`finops:aws:ServerlessInferenceEndpoint` under the offline engine: the resource graph, the
serverless configuration against SageMaker's real limits (botocore's service model), tags,
the role, and argument errors."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path
from typing import Any

import botocore
import pytest
from aws_helpers import STACK_TAGS, only, policy_statements, run_components, untagged

from aifinops import serving
from aifinops.components.aws import ServerlessInferenceEndpoint, ServerlessInferenceEndpointArgs
from aifinops.components.aws.serverless_endpoint import plan_serverless
from aifinops.engine import StackRun

CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"


def serverless_args(**overrides: Any) -> ServerlessInferenceEndpointArgs:
    args: dict[str, Any] = {
        "model_version": "distilbert-v1",
        "tags": STACK_TAGS,
        "model_data_url": "s3://models-bucket/distilbert/model.tar.gz",
        "memory_size_mb": 3072,
        "max_concurrency": 10,
        "requests_per_month": 100_000,
        "mean_duration_ms": 800,
    }
    args.update(overrides)
    return args  # type: ignore[return-value]


@pytest.fixture(scope="module")
def run() -> StackRun:
    return run_components(lambda: ServerlessInferenceEndpoint("faq", serverless_args()))


def _botocore_shape(name: str) -> dict[str, Any]:
    models = Path(botocore.__file__).parent / "data" / "sagemaker"
    (path,) = sorted(models.glob("*/service-2.json*"))[-1:]
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return dict(json.loads(raw)["shapes"][name])


def test_graph_is_model_serverless_config_endpoint_without_autoscaling(run: StackRun) -> None:
    types = sorted(r.type for r in run.custom_resources())
    assert types == sorted(
        [
            "aws:iam/role:Role",
            "aws:iam/rolePolicy:RolePolicy",
            CONFIG,
            "aws:sagemaker/endpoint:Endpoint",
            "aws:sagemaker/model:Model",
        ]
    )
    (variant,) = only(run, CONFIG).inputs["productionVariants"]
    assert variant["serverlessConfig"] == {"memorySizeInMb": 3072, "maxConcurrency": 10}
    assert "instanceType" not in variant and "initialInstanceCount" not in variant
    model = only(run, "aws:sagemaker/model:Model")
    assert variant["modelName"] == model.outputs["name"]
    image = model.inputs["primaryContainer"]["image"]
    # the CPU build of main's model-archive container: no GPU or Neuron on serverless
    assert "/pytorch-inference:" in image and "-cpu-" in image
    assert model.inputs["primaryContainer"]["environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": "us-east-1",
    }
    endpoint = only(run, "aws:sagemaker/endpoint:Endpoint")
    assert endpoint.inputs["endpointConfigName"] == only(run, CONFIG).outputs["name"]


def test_preview_logs_the_price_for_the_stated_traffic(run: StackRun) -> None:
    """100,000 requests x 0.8 s x 3 GB x $0.00002/GB-s = $4.80 a month (by hand)."""
    (line,) = [text for _, text in run.messages if "/month" in text]
    assert "$4.80/month" in line and "100,000 requests/month of 800 ms" in line


def test_every_taggable_child_is_tagged(run: StackRun) -> None:
    assert untagged(run, workload=True) == []


def test_role_reads_only_the_model(run: StackRun) -> None:
    statements = policy_statements(only(run, "aws:iam/rolePolicy:RolePolicy"))
    assert statements["ReadModel"]["Resource"] == (
        "arn:aws:s3:::models-bucket/distilbert/model.tar.gz"
    )


def test_limits_are_botocores() -> None:
    """The sizes and concurrency the component accepts are those SageMaker's API allows."""
    memory = _botocore_shape("ServerlessMemorySizeInMB")
    concurrency = _botocore_shape("ServerlessMaxConcurrency")
    provisioned = _botocore_shape("ServerlessProvisionedConcurrency")
    sizes = serving.SAGEMAKER_MEMORY_SIZES_MB
    assert (sizes[0], sizes[-1]) == (memory["min"], memory["max"])
    assert all(b - a == 1024 for a, b in itertools.pairwise(sizes))  # 1 GB steps
    assert (concurrency["min"], concurrency["max"]) == (1, serving.SAGEMAKER_MAX_CONCURRENCY)
    assert (provisioned["min"], provisioned["max"]) == (1, serving.SAGEMAKER_MAX_CONCURRENCY)
    for size in sizes:
        assert plan_serverless(serverless_args(memory_size_mb=size)).memory_size_mb == size
    assert plan_serverless(serverless_args(max_concurrency=200)).max_concurrency == 200


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"memory_size_mb": 1536}, "memory_size_mb: 1536 is not allowed"),
        ({"memory_size_mb": 8192}, "allowed: 1024, 2048, 3072, 4096, 5120, 6144"),
        ({"max_concurrency": 201}, "max_concurrency: 201 is not allowed"),
        ({"max_concurrency": 0}, "max_concurrency: 0 is not allowed"),
        ({"provisioned_concurrency": 11}, "provisioned_concurrency: 11 is not allowed"),
        ({"model_memory_gib": 7}, "model_memory_gib: 7 is not allowed"),
        ({"model_memory_gib": 4, "memory_size_mb": 3072}, "at least the model's 4 GiB: 4096"),
        ({"mean_duration_ms": 61_000}, "mean_duration_ms: 61000 is not allowed"),
        ({"model_data_url": "gs://x/y"}, "model_data_url"),
        ({"instance_type": "ml.g5.xlarge"}, "args: 'instance_type' is not allowed"),
    ],
)
def test_argument_errors_name_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_serverless(serverless_args(**overrides))


def test_memory_defaults_to_the_smallest_size_holding_the_model() -> None:
    args = serverless_args(model_memory_gib=4.5)
    del args["memory_size_mb"]
    assert plan_serverless(args).memory_size_mb == 5120


def test_provisioned_concurrency_is_set_and_the_price_is_unknown_not_low() -> None:
    run = run_components(
        lambda: ServerlessInferenceEndpoint("warm", serverless_args(provisioned_concurrency=2))
    )
    (variant,) = only(run, CONFIG).inputs["productionVariants"]
    assert variant["serverlessConfig"]["provisionedConcurrency"] == 2
    warnings = [text for level, text in run.messages if "price unknown" in text]
    assert warnings and "provisioned concurrency (2)" in warnings[0]


def test_a_tgi_llm_container_is_refused_it_needs_a_gpu_or_inferentia() -> None:
    with pytest.raises(ValueError, match="serving: 'llm' is not allowed; allowed: model-archive"):
        plan_serverless(serverless_args(serving="llm"))


def test_the_model_archive_entry_point_cannot_be_emptied() -> None:
    with pytest.raises(ValueError, match=r"environment\.SAGEMAKER_PROGRAM"):
        plan_serverless(serverless_args(environment={"SAGEMAKER_PROGRAM": " "}))
    plan = plan_serverless(serverless_args(environment={"LOG_LEVEL": 10}))
    assert plan.environment["LOG_LEVEL"] == "10"
    assert plan.environment["SAGEMAKER_PROGRAM"] == "inference.py"
