"""The dev stack's AWS part, run through infra/ exactly as `pulumi preview` would (offline):
one fleet, one ml.inf2 endpoint, one budget, every resource tagged, every one priced."""

from __future__ import annotations

import copy
import json

import pytest

from aifinops import cost
from aifinops import tags as tag_schema
from aifinops.config import StackConfig, parse, read_stack_file
from aifinops.engine import EngineResource, StackRun, run_program
from aifinops.engine.stack import find_project_dir, program_dir, run_stack
from aifinops.taggability import tag_property

STACK_TAGS = {
    "Project": "vision",
    "Team": "ml-platform",
    "Environment": "dev",
    "CostCenter": "cc-1234",
}


@pytest.fixture(scope="module")
def dev() -> tuple[StackConfig, StackRun]:
    _path, config, run = run_stack("dev")
    return config, run


def components(run: StackRun, token: str) -> list[EngineResource]:
    return run.of_type(token)


def children_of(run: StackRun, component: EngineResource) -> list[EngineResource]:
    return [r for r in run.custom_resources() if run.component_of(r) == component]


def test_one_fleet_one_inf2_endpoint_one_budget(dev: tuple[StackConfig, StackRun]) -> None:
    _config, run = dev
    assert [c.name for c in components(run, "finops:aws:GpuTrainingFleet")] == ["vision-train"]
    assert [c.name for c in components(run, "finops:aws:InferenceEndpoint")] == ["vision-serve"]
    assert [c.name for c in components(run, "finops:aws:ProjectBudget")] == ["vision-budget"]
    (endpoint_config,) = run.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    (variant,) = endpoint_config.inputs["productionVariants"]
    assert variant["instanceType"].startswith("ml.inf2.")
    (budget,) = run.of_type("aws:budgets/budget:Budget")
    assert budget.inputs["costFilters"] == [
        {"name": "TagKeyValue", "values": ["user:Project$vision"]}
    ]
    kinds = {n["notificationType"] for n in budget.inputs["notifications"]}
    assert kinds == {"ACTUAL", "FORECASTED"}


def test_every_aws_resource_tagged_in_its_inputs(dev: tuple[StackConfig, StackRun]) -> None:
    _config, run = dev
    workload = {
        r.urn
        for token in ("finops:aws:GpuTrainingFleet", "finops:aws:InferenceEndpoint")
        for c in components(run, token)
        for r in children_of(run, c)
    }
    problems = []
    checked = 0
    for resource in run.custom_resources():
        where = tag_property(resource.type)
        if where is None or tag_schema.cloud_of(resource.type) != "aws":
            continue
        checked += 1
        value = resource.inputs.get(where.property) or {}
        if where.shape == "list":
            value = {t["key"]: t["value"] for t in value if t.get("propagateAtLaunch")}
        missing = tag_schema.missing_keys(value, "aws", workload=resource.urn in workload)
        if missing or value.get("CostCenter") != "cc-1234":
            problems.append(f"{resource.name}: missing {missing}")
    assert checked >= 25  # the fleet, the endpoint and the budget have that many
    assert problems == []


def test_one_provider_with_default_tags_for_everything_aws(
    dev: tuple[StackConfig, StackRun],
) -> None:
    _config, run = dev
    (provider,) = run.of_type("pulumi:providers:aws")
    assert json.loads(provider.inputs["defaultTags"]) == {"tags": STACK_TAGS}
    assert provider.inputs["region"] == "us-east-1"
    for resource in run.custom_resources():
        if resource.type.startswith("aws:"):
            assert resource.options["provider"].startswith(provider.urn), resource.name


def test_priced_monthly(dev: tuple[StackConfig, StackRun]) -> None:
    config, run = dev
    report = cost.estimate(run, config)
    by_name = {c.name: c for c in report.resources}
    assert by_name["vision-train-group"].monthly_usd > 0
    assert by_name["vision-train-on-demand"].monthly_usd == 0  # at zero until spot runs short
    assert by_name["vision-serve-config"].monthly_usd == pytest.approx(0.99 * 730, rel=0.01)
    assert report.by_tag["Project"]["vision"] >= (
        by_name["vision-train-group"].monthly_usd + by_name["vision-serve-config"].monthly_usd
    )


def test_the_preview_is_told_about_cost_allocation_tags(
    dev: tuple[StackConfig, StackRun],
) -> None:
    _config, run = dev
    notes = [text for level, text in run.messages if level == "info"]
    assert any("user:Project" in n and "activates Project" in n for n in notes)


def test_scale_to_zero_endpoint_gets_a_tagged_aws_native_provider() -> None:
    project = find_project_dir()
    raw = copy.deepcopy(read_stack_file(project / "Pulumi.dev.yaml"))
    raw["finops:inferenceEndpoints"][0]["replicas"]["min"] = 0
    config = parse(raw, source="Pulumi.zero.yaml")
    run = run_program(program_dir(project), "zero", raw, config.regions)
    (native,) = run.of_type("pulumi:providers:aws-native")
    assert json.loads(native.inputs["defaultTags"]) == {"tags": STACK_TAGS}
    (component,) = run.of_type("aws-native:sagemaker:InferenceComponent")
    assert component.options["provider"].startswith(native.urn)


def test_fleets_share_one_network_per_region_with_a_way_out(
    dev: tuple[StackConfig, StackRun],
) -> None:
    """The dev fleet launches into the stack's network: every subnet its groups use routes
    to the internet gateway (public addresses, no inbound rule) and to S3 by the endpoint."""
    _config, run = dev
    (network,) = components(run, "finops:aws:FleetNetwork")
    assert network.name == "network-us-east-1"
    (vpc,) = run.of_type("aws:ec2/vpc:Vpc")
    (gateway,) = run.of_type("aws:ec2/internetGateway:InternetGateway")
    (endpoint,) = run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    tables = {
        a.inputs["subnetId"]: a.inputs["routeTableId"]
        for a in run.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    }
    routes = {
        (r.inputs["routeTableId"], r.inputs["destinationCidrBlock"]): r.inputs
        for r in run.of_type("aws:ec2/route:Route")
    }
    groups = run.of_type("aws:autoscaling/group:Group")
    assert groups
    for group in groups:
        for subnet in group.inputs["vpcZoneIdentifiers"]:
            assert routes[(tables[subnet], "0.0.0.0/0")]["gatewayId"] == gateway.id
            assert tables[subnet] in endpoint.inputs["routeTableIds"]
    assert endpoint.inputs["vpcId"] == gateway.inputs["vpcId"] == vpc.id
    (template,) = run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert template.inputs["networkInterfaces"][0]["associatePublicIpAddress"] == "true"


def test_dev_endpoint_gives_its_container_what_it_needs_to_start(
    dev: tuple[StackConfig, StackRun],
) -> None:
    """The dev model is a ResNet-50 image classifier on ml.inf2: the Neuron PyTorch inference
    container, the model archive it loads, the handler inside it, a role that may pull that
    image and read that archive. (It was a TGI server with no HF_MODEL_ID, which exits.)"""
    _config, run = dev
    (model,) = run.of_type("aws:sagemaker/model:Model")
    container = model.inputs["primaryContainer"]
    (variant,) = run.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")[0].inputs[
        "productionVariants"
    ]
    assert variant["instanceType"] == "ml.inf2.xlarge"
    assert "/pytorch-inference-neuronx:" in container["image"]  # the inf2 build
    assert "neuronx" in container["image"].split(":")[1]
    assert container["modelDataUrl"] == "s3://vision-models-dev/resnet50-v3/model.tar.gz"
    environment = container["environment"]
    assert environment["SAGEMAKER_PROGRAM"] == "inference.py"
    assert environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert environment["SAGEMAKER_MODEL_SERVER_WORKERS"] == "2"
    assert environment["SAGEMAKER_MODEL_SERVER_TIMEOUT"] == "60"  # the stack's env key
    assert "HF_MODEL_ID" not in environment
    policy = json.loads(
        next(
            r
            for r in run.of_type("aws:iam/rolePolicy:RolePolicy")
            if r.name == "vision-serve-execution-policy"
        ).inputs["policy"]
    )
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["ReadModel"]["Resource"].endswith(":::vision-models-dev/resnet50-v3/model.tar.gz")
    assert by_sid["PullServingImage"]["Resource"].endswith("repository/pytorch-inference-neuronx")
