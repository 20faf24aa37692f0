"""The committed registry must agree with the installed provider SDKs (regenerate with
scripts/gen_taggability.py when this fails after an SDK bump)."""

import importlib
import importlib.metadata
import json

import pytest

from finops.taggability import REGISTRY_PATH, _resource_index, introspect_class, tag_property

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
