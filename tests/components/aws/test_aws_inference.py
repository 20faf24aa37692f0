"""`finops:aws:InferenceEndpoint` under the offline engine: SageMaker resources, scaling,
scale to zero, execution-role document, tags, cheaper-Inferentia advice, argument errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_helpers import STACK_TAGS, only, policy_statements, run_components, untagged

from aifinops import catalog
from aifinops.components.aws import (
    InferenceEndpoint,
    InferenceEndpointArgs,
    cheaper_inferentia_option,
)
from aifinops.components.aws.inference import plan_endpoint
from aifinops.engine import StackRun

CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
IC = "aws-native:sagemaker:InferenceComponent"


def endpoint_args(**overrides: Any) -> InferenceEndpointArgs:
    args: dict[str, Any] = {
        "model_version": "llama-8b-v2",
        "tags": STACK_TAGS,
        "serving": "llm",  # a TGI server on the weights in the archive
        "model_data_url": "s3://models-bucket/llama/model.tar.gz",
        "replicas_min": 1,
        "replicas_max": 3,
        "target_invocations_per_instance": 70,
    }
    args.update(overrides)
    return args  # type: ignore[return-value]


@pytest.fixture(scope="module")
def run() -> StackRun:
    return run_components(lambda: InferenceEndpoint("chat", endpoint_args()))


@pytest.fixture(scope="module")
def zero() -> StackRun:
    return run_components(
        lambda: InferenceEndpoint("zero", endpoint_args(replicas_min=0, model_memory_gib=16))
    )


def test_sagemaker_model_config_endpoint_on_inf2_by_default(run: StackRun) -> None:
    model = only(run, "aws:sagemaker/model:Model")
    role = only(run, "aws:iam/role:Role")
    assert model.inputs["executionRoleArn"] == role.outputs["arn"]
    assert model.inputs["enableNetworkIsolation"] is True
    container = model.inputs["primaryContainer"]
    assert container["modelDataUrl"] == "s3://models-bucket/llama/model.tar.gz"
    assert "neuronx" in container["image"]  # the Neuron build of the serving container
    (variant,) = only(run, CONFIG).inputs["productionVariants"]
    assert variant["instanceType"] == "ml.inf2.xlarge"
    assert variant["initialInstanceCount"] == 1
    assert variant["modelName"] == model.outputs["name"]
    endpoint = only(run, "aws:sagemaker/endpoint:Endpoint")
    assert endpoint.inputs["endpointConfigName"] == only(run, CONFIG).outputs["name"]


def test_target_tracking_on_invocations_per_instance(run: StackRun) -> None:
    endpoint_name = only(run, "aws:sagemaker/endpoint:Endpoint").outputs["name"]
    target = only(run, TARGET).inputs
    assert target["resourceId"] == f"endpoint/{endpoint_name}/variant/primary"
    assert target["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["minCapacity"], target["maxCapacity"]) == (1, 3)
    policy = only(run, POLICY).inputs
    assert policy["policyType"] == "TargetTrackingScaling"
    tracking = policy["targetTrackingScalingPolicyConfiguration"]
    assert tracking["targetValue"] == 70
    assert (
        tracking["predefinedMetricSpecification"]["predefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )
    assert policy["resourceId"] == target["resourceId"]


def test_execution_role_least_privilege(run: StackRun) -> None:
    statements = policy_statements(only(run, "aws:iam/rolePolicy:RolePolicy"))
    assert statements["ReadModel"] == {
        "Sid": "ReadModel",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::models-bucket/llama/model.tar.gz",
    }
    assert statements["PullServingImage"]["Action"] == [
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert statements["PullServingImage"]["Resource"] == (
        "arn:aws:ecr:us-east-1:763104351884:repository/huggingface-pytorch-tgi-inference"
    )
    assert statements["EndpointLogs"]["Resource"] == (
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/*"
    )
    assert set(statements) == {"PullServingImage", "EcrLogin", "ReadModel", "EndpointLogs"}
    trust = json.loads(only(run, "aws:iam/role:Role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}


def test_tags_everywhere(run: StackRun, zero: StackRun) -> None:
    assert untagged(run, workload=True) == []
    assert untagged(zero, workload=True) == []
    tags = {t["key"]: t["value"] for t in only(zero, IC).inputs["tags"]}
    assert {k: tags[k] for k in STACK_TAGS} == STACK_TAGS
    assert tags["ModelVersion"] == "llama-8b-v2"


def test_scale_to_zero_uses_an_inference_component(zero: StackRun) -> None:
    (variant,) = only(zero, CONFIG).inputs["productionVariants"]
    assert variant["managedInstanceScaling"] == {
        "status": "ENABLED",
        "minInstanceCount": 0,
        "maxInstanceCount": 3,
    }
    assert "modelName" not in variant
    assert only(zero, CONFIG).inputs["executionRoleArn"]
    component = only(zero, IC).inputs
    assert (
        component["specification"]["modelName"]
        == only(zero, "aws:sagemaker/model:Model").outputs["name"]
    )
    assert component["specification"]["computeResourceRequirements"]["minMemoryRequiredInMb"] == (
        8 * 1024  # half the host's 16 GiB: what the model's 16 GiB of accelerator memory allows
    )
    target = only(zero, TARGET).inputs
    assert target["scalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert target["resourceId"] == f"inference-component/{component['inferenceComponentName']}"
    assert (target["minCapacity"], target["maxCapacity"]) == (0, 3)
    policies = {p.name: p.inputs for p in zero.of_type(POLICY)}
    tracking = policies["zero-invocations-policy"]["targetTrackingScalingPolicyConfiguration"]
    assert (
        tracking["predefinedMetricSpecification"]["predefinedMetricType"]
        == "SageMakerInferenceComponentInvocationsPerCopy"
    )
    wake = policies["zero-wake-from-zero"]
    assert wake["policyType"] == "StepScaling"
    alarm = only(zero, "aws:cloudwatch/metricAlarm:MetricAlarm").inputs
    assert alarm["metricName"] == "NoCapacityInvocationFailures"
    assert alarm["dimensions"] == {"InferenceComponentName": component["inferenceComponentName"]}
    assert any("scale to zero" in m and "first request fails" in m for _, m in zero.messages)


def test_model_prefix_gets_list_on_that_prefix_only(zero: StackRun) -> None:
    statements = policy_statements(only(zero, "aws:iam/rolePolicy:RolePolicy"))
    assert statements["ReadModel"]["Resource"] == "arn:aws:s3:::models-bucket/llama/model.tar.gz"
    run = run_components(
        lambda: InferenceEndpoint("prefix", endpoint_args(model_data_url="s3://b-1/models/x/"))
    )
    statements = policy_statements(only(run, "aws:iam/rolePolicy:RolePolicy"))
    assert statements["ReadModel"]["Resource"] == "arn:aws:s3:::b-1/models/x/*"
    assert statements["ListModelPrefix"]["Condition"] == {
        "StringLike": {"s3:prefix": ["models/x/*"]}
    }


def test_gpu_type_shows_the_cheaper_inferentia_option() -> None:
    g5 = catalog.lookup("ml.g5.xlarge", "us-east-1")
    inf2 = catalog.lookup("ml.inf2.xlarge", "us-east-1")
    option = cheaper_inferentia_option("ml.g5.xlarge", "us-east-1", 16, 730)
    assert option is not None
    assert option["instance_type"] == "ml.inf2.xlarge"
    assert option["monthly_savings_usd"] == pytest.approx(
        (g5.on_demand_usd_per_hour - inf2.on_demand_usd_per_hour) * 730, abs=0.01
    )
    built: list[InferenceEndpoint] = []
    run = run_components(
        lambda: built.append(InferenceEndpoint("gpu", endpoint_args(instance_type="ml.g5.xlarge")))
    )
    (message,) = [m for level, m in run.messages if level == "info" and "ml.inf2.xlarge" in m]
    assert f"${option['monthly_savings_usd']:,.2f} less" in message
    assert built[0].cheaper_option == cheaper_inferentia_option(
        "ml.g5.xlarge", "us-east-1", None, 730
    )


def test_no_cheaper_option_when_memory_does_not_fit_or_already_inferentia() -> None:
    assert cheaper_inferentia_option("ml.inf2.xlarge", "us-east-1", None) is None
    assert cheaper_inferentia_option("ml.g5.xlarge", "us-east-1", 40) is None  # > 32 GiB inf2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"instance_type": "g5.xlarge"},
            r"instance_type: 'g5.xlarge' is not allowed; a SageMaker type such as ml.g5.xlarge",
        ),
        (
            {"instance_type": "ml.inf2.xlarg"},
            r"instance_type: 'ml.inf2.xlarg' is not allowed \(did you mean ml.inf2.xlarge",
        ),
        (
            {"accelerator": "Inferentia3"},
            r"accelerator: 'Inferentia3' is not allowed \(did you mean Inferentia2",
        ),
        (
            {"accelerator": "A10G", "instance_type": "ml.g5.xlarge"},
            r"give one of instance_type or accelerator",
        ),
        ({"replicas_min": 4}, r"replicas_min: 4 is not allowed; allowed: an integer 0\.\.3"),
        ({"replicas_max": 101}, r"replicas_max: 101 is not allowed; allowed: an integer 1\.\.100"),
        (
            {"model_data_url": "https://x/model.tar.gz"},
            r"model_data_url: .* allowed: s3://<bucket>/<key>",
        ),
        (
            {"model_memory_gib": 64},
            r"model_memory_gib: 64 .*32 GiB of accelerator memory of ml.inf2.xlarge",
        ),
        ({"image": "docker.io/library/tgi:latest"}, r"image: .*an ECR image URI"),
        ({"replica_max": 2}, r"args: 'replica_max' is not allowed \(did you mean replicas_max"),
    ],
)
def test_bad_arguments_name_the_field_and_the_allowed_values(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plan_endpoint(endpoint_args(**overrides))


def test_accelerator_picks_the_cheapest_sagemaker_type() -> None:
    plan = plan_endpoint(endpoint_args(accelerator="L4"))
    assert plan.instance.instance_type.startswith("ml.g6.")
    assert plan.instance.service == "sagemaker"
