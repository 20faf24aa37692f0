"""The engine holds every resource's inputs, after transforms, to its provider SDK's input
types: unknown keys, missing required inputs and values of the wrong kind fail the run, as
the provider would fail `pulumi up`."""

from __future__ import annotations

import re
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pytest

from aifinops.engine import EngineError, run_program
from aifinops.engine.contracts import check_resources, input_problems
from aifinops.engine.stack import run_stack

ROOT = Path(__file__).resolve().parents[2]
STACKS = ["dev", *(str(p) for p in sorted((ROOT / "examples").glob("Pulumi.*.yaml")))]


def run(program):
    return run_program(program, "test", {"aws:region": "us-west-2"}, {"aws": "us-west-2"})


@pytest.mark.parametrize("stack", STACKS, ids=lambda s: Path(s).name)
def test_every_example_stack_registers_only_inputs_its_providers_accept(stack: str) -> None:
    _, _, result = run_stack(stack, ROOT)
    custom = result.custom_resources()
    assert len(custom) > 20
    assert check_resources(result.resources) == []


def test_a_misspelt_nested_key_in_a_dict_literal_fails_the_run() -> None:
    def program():
        aws.s3.BucketLifecycleConfiguration(
            "lifecycle",
            bucket="b",
            rules=[{"id": "expire", "statuss": "Enabled", "expiration": {"days": 7}}],  # type: ignore[list-item]
        )

    with pytest.raises(EngineError) as caught:
        run(program)
    message = str(caught.value)
    assert (
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration 'lifecycle': "
        "inputs.rules[0].statuss: not an input of BucketLifecycleConfigurationRuleArgs "
        "(did you mean status?)"
    ) in message
    assert "inputs.rules[0].status: required by BucketLifecycleConfigurationRuleArgs" in message


def test_a_transform_that_adds_a_property_the_resource_lacks_fails_the_run() -> None:
    def add_labels(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
        return pulumi.ResourceTransformResult({**args.props, "labels": {"team": "ml"}}, args.opts)

    def program():
        pulumi.runtime.register_resource_transform(add_labels)
        gcp.storage.Bucket("ok", location="US")  # has labels
        gcp.storage.BucketIAMMember("grant", bucket="b", role="r", member="m")  # has none

    with pytest.raises(EngineError, match=re.escape("'grant': inputs.labels: not an input")):
        run(program)


def test_values_of_the_wrong_kind_are_named_with_their_path() -> None:
    problems = input_problems(
        "aws:ec2/launchTemplate:LaunchTemplate",
        "lt",
        {
            "imageID": "ami-1",
            "blockDeviceMappings": [{"ebs": {"volumeSize": "200"}}],
            "tagSpecifications": [{"resourceType": "instance", "tags": "Project=x"}],
        },
    )
    assert [str(p) for p in problems] == [
        "aws:ec2/launchTemplate:LaunchTemplate 'lt': inputs.imageID: not an input of "
        "LaunchTemplateArgs (did you mean imageId?)",
        "aws:ec2/launchTemplate:LaunchTemplate 'lt': inputs.blockDeviceMappings[0].ebs."
        "volumeSize: a string where an integer goes",
        "aws:ec2/launchTemplate:LaunchTemplate 'lt': inputs.tagSpecifications[0].tags: "
        "a string where a map goes",
    ]


def test_whole_floats_are_integers_on_the_wire_but_fractions_are_not() -> None:
    token = "gcp:storage/bucket:Bucket"
    lifecycle = [{"action": {"type": "Delete"}, "condition": {"age": 14.0}}]
    assert input_problems(token, "b", {"location": "US", "lifecycleRules": lifecycle}) == []
    lifecycle[0]["condition"]["age"] = 14.5  # type: ignore[index]
    (problem,) = input_problems(token, "b", {"location": "US", "lifecycleRules": lifecycle})
    assert problem.path == "lifecycleRules[0].condition.age"


def test_an_unknown_type_token_is_a_problem_with_a_close_match() -> None:
    (problem,) = input_problems("aws:s3/bucket:Buckett", "b", {})
    assert (
        "pulumi_aws has no resource 'aws:s3/bucket:Buckett' (did you mean aws:s3/bucket:Bucket"
        in (problem.message)
    )


def test_provider_inputs_are_read_as_the_sdk_sends_them() -> None:
    """The SDK sends a provider's non-string inputs as JSON text."""

    def program():
        aws.Provider("p", region="us-west-2", default_tags={"tags": {"Project": "x"}})

    result = run(program)
    (provider,) = result.of_type("pulumi:providers:aws")
    assert isinstance(provider.inputs["defaultTags"], str)
    assert check_resources(result.resources) == []


def test_kubernetes_resources_and_a_crd_custom_resource_are_checked() -> None:
    """pulumi_kubernetes types like any SDK; a custom resource (a CRD's group, not typed by
    the SDK) by its apiVersion/kind and metadata, not refused as an unknown token."""
    ok = {
        "apiVersion": "monitoring.googleapis.com/v1",
        "kind": "PodMonitoring",
        "metadata": {"name": "serve", "namespace": "serve"},
        "spec": {"anything": "the CRD's"},
    }
    token = "kubernetes:monitoring.googleapis.com/v1:PodMonitoring"
    assert input_problems(token, "scrape", ok) == []
    wrong_kind = input_problems(token, "scrape", {**ok, "kind": "PodMonitor"})
    assert [p.message for p in wrong_kind] == [
        "apiVersion/kind monitoring.googleapis.com/v1/PodMonitor do not spell "
        "monitoring.googleapis.com/v1/PodMonitoring"
    ]
    (bad_meta,) = input_problems(token, "scrape", {**ok, "metadata": {"nmae": "x"}})
    assert bad_meta.path == "metadata.nmae" and "did you mean name" in bad_meta.message
    typo, *missing = input_problems(
        "kubernetes:apps/v1:Deployment",
        "d",
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replica": 1}},
    )
    assert typo.path == "spec.replica" and "did you mean replicas" in typo.message
    assert [p.path for p in missing] == ["spec.selector", "spec.template"]
