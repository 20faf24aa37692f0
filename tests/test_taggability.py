"""The committed registry must agree with the installed provider SDKs (regenerate with
scripts/gen_taggability.py when this fails after an SDK bump)."""

import importlib
import importlib.metadata
import json

import pytest

from aifinops.taggability import REGISTRY_PATH, _resource_index, introspect_class, tag_property

SAMPLED_MODULES = {
    "pulumi_aws": (
        "pulumi_aws.ec2",
        "pulumi_aws.autoscaling",
        "pulumi_aws.sagemaker",
        "pulumi_aws.iam",
        "pulumi_aws.s3",
    ),
    "pulumi_gcp": ("pulumi_gcp.compute", "pulumi_gcp.tpu", "pulumi_gcp.storage"),
    "pulumi_azure_native": ("pulumi_azure_native.compute",),
}
ARGUMENT = {"pulumi_aws": "tags", "pulumi_gcp": "labels", "pulumi_azure_native": "tags"}


def test_registry_was_generated_from_the_installed_versions():
    generated = json.loads(REGISTRY_PATH.read_text())["generatedFrom"]
    for package in SAMPLED_MODULES:
        assert generated[package] == importlib.metadata.version(package.replace("_", "-"))


@pytest.mark.parametrize("package", sorted(SAMPLED_MODULES))
def test_registry_matches_live_signatures(package):
    registry = json.loads(REGISTRY_PATH.read_text())["types"]
    checked = 0
    for entry in _resource_index(package):
        if entry["fqn"] not in SAMPLED_MODULES[package]:
            continue
        module = importlib.import_module(entry["fqn"])
        for token, class_name in entry["classes"].items():
            assert registry[token] == introspect_class(
                getattr(module, class_name), ARGUMENT[package]
            ), token
            checked += 1
    assert checked > 20


def test_known_answers():
    assert tag_property("aws:autoscaling/group:Group").shape == "list"
    assert tag_property("aws:ec2/launchTemplate:LaunchTemplate").property == "tags"
    assert tag_property("gcp:compute/instanceTemplate:InstanceTemplate").property == "labels"
    assert tag_property("azure-native:compute:VirtualMachineScaleSet").property == "tags"
    # cannot carry tags: must never be flagged
    assert tag_property("aws:iam/rolePolicy:RolePolicy") is None
    assert tag_property("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock") is None
    assert tag_property("finops:aws:GpuTrainingFleet") is None


def test_gcp_labels_that_are_not_resource_labels_are_not_taggable():
    # a notification channel's `labels` are its configuration (e.g. email_address)
    assert tag_property("gcp:monitoring/notificationChannel:NotificationChannel") is None
    assert tag_property("gcp:monitoring/metricDescriptor:MetricDescriptor") is None
    assert tag_property("gcp:storage/bucket:Bucket").property == "labels"


def test_terraform_types_come_from_the_provider_schemas_not_name_patterns():
    from aifinops.taggability import terraform_known, terraform_tag_property, terraform_token

    # taggable, though no naming rule finds a Pulumi type for them
    assert terraform_tag_property("aws_alb").property == "tags"
    assert terraform_tag_property("aws_cloudtrail").property == "tags"
    assert terraform_tag_property("azurerm_linux_virtual_machine").property == "tags"
    assert terraform_tag_property("azurerm_kubernetes_cluster_node_pool").property == "tags"
    assert terraform_tag_property("google_tpu_v2_vm").property == "labels"
    # where the tags are not a top-level `tags` map
    assert terraform_tag_property("aws_autoscaling_group").shape == "list"
    assert terraform_tag_property("google_container_cluster").property == "resource_labels"
    assert terraform_tag_property("google_container_node_pool").property == (
        "node_config.resource_labels"
    )
    assert terraform_tag_property("awscc_sagemaker_cluster").shape == "list"
    # known and not taggable: never flagged
    for name in ("aws_iam_role_policy_attachment", "azurerm_role_assignment",
                 "google_compute_instance_group_manager"):  # fmt: skip
        assert terraform_known(name) and terraform_tag_property(name) is None
    assert not terraform_known("aws_no_such_thing")
    assert terraform_token("azurerm_linux_virtual_machine") == (
        "azure:compute/linuxVirtualMachine:LinuxVirtualMachine"
    )
    assert terraform_token("awscc_sagemaker_cluster") == "aws-native:sagemaker:Cluster"


def test_cloudformation_types_come_from_the_resource_schemas():
    from aifinops.taggability import cloudformation_known, cloudformation_tag_property

    assert cloudformation_tag_property("AWS::EC2::Instance").shape == "list"
    assert cloudformation_tag_property("AWS::EKS::Nodegroup").shape == "map"
    assert cloudformation_tag_property("AWS::Batch::ComputeEnvironment").shape == "map"
    assert cloudformation_tag_property("AWS::SageMaker::Cluster").property == "Tags"
    assert cloudformation_tag_property("AWS::SageMaker::EndpointConfig").property == "Tags"
    assert cloudformation_known("AWS::IAM::Policy")
    assert cloudformation_tag_property("AWS::IAM::Policy") is None


def test_registries_record_their_sources():
    from aifinops.taggability import CLOUDFORMATION_PATH, TERRAFORM_PATH

    terraform = json.loads(TERRAFORM_PATH.read_text())["generatedFrom"]
    assert {"tflint-ruleset-aws", "pulumi-gcp", "pulumi-azure", "cfn-lint"} <= set(terraform)
    assert "hashicorp/aws provider 6.57.1" in terraform["tflint-ruleset-aws"]
    cloudformation = json.loads(CLOUDFORMATION_PATH.read_text())["generatedFrom"]
    assert cloudformation["cfn-lint"].startswith("e9ed14267")
