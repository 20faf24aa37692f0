"""What to change, said in the language of the resource's source.

A Pulumi finding points at the stack config key or input property (`finops:tags`,
`metadataOptions.httpTokens`); a Terraform one at the block or attribute to write
(`default_tags`, `metadata_options { http_tokens = "required" }`); a CloudFormation one at the
template property. The registry's `remediation` is the Pulumi text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aifinops.policies.model import CLOUDFORMATION, LAUNCH_TEMPLATE, TERRAFORM, Resource

if TYPE_CHECKING:
    from aifinops.policies.registry import Policy

# Terraform: how each kind of fleet buys spot capacity.
_TERRAFORM_SPOT = {
    "aws_autoscaling_group": "mixed_instances_policy { instances_distribution { "
    "on_demand_percentage_above_base_capacity = 0 } } (keep on-demand nodes in "
    "on_demand_base_capacity)",
    "aws_eks_node_group": 'capacity_type = "SPOT"',
    "aws_batch_compute_environment": 'compute_resources { type = "SPOT" }',
    "google_container_node_pool": "node_config { spot = true }",
    "google_container_cluster": "node_config { spot = true }",
    "azurerm_linux_virtual_machine_scale_set": 'priority = "Spot"',
    "azurerm_windows_virtual_machine_scale_set": 'priority = "Spot"',
    "azurerm_orchestrated_virtual_machine_scale_set": 'priority = "Spot"',
    "azurerm_kubernetes_cluster_node_pool": 'priority = "Spot"',
    "azurerm_machine_learning_compute_cluster": 'vm_priority = "LowPriority"',
}
_CLOUDFORMATION_SPOT = {
    "AWS::AutoScaling::AutoScalingGroup": "MixedInstancesPolicy.InstancesDistribution."
    "OnDemandPercentageAboveBaseCapacity: 0 (on-demand nodes in OnDemandBaseCapacity)",
    "AWS::EKS::Nodegroup": "CapacityType: SPOT",
    "AWS::Batch::ComputeEnvironment": "ComputeResources.Type: SPOT",
}


def _terraform_tags(resource: Resource) -> str:
    kind = resource.type
    if kind == "aws_autoscaling_group":
        return ("add `tag { key = ..., value = ..., propagate_at_launch = true }` blocks "
                "(the provider's default_tags do not reach Auto Scaling groups)")  # fmt: skip
    if resource.kind == LAUNCH_TEMPLATE and resource.cloud == "aws":
        return ("add `tag_specifications { resource_type = \"instance\" ... }` and "
                "`resource_type = \"volume\"` blocks, and the keys to `tags` or to the "
                "provider's `default_tags { tags = {...} }` block")  # fmt: skip
    if kind == "google_container_cluster":
        return "add the labels (lower case: `model-version`) to `resource_labels`"
    if kind == "google_container_node_pool":
        return "add the labels (lower case: `model-version`) to `node_config { resource_labels }`"
    if resource.cloud == "gcp":
        return ("add the labels (lower case: `model-version`) to `labels`, or once for every "
                "resource to the google provider's `default_labels`")  # fmt: skip
    if resource.cloud == "azure":
        return "add the keys to `tags`"
    if kind.startswith("awscc_"):
        return "add `{ key = ..., value = ... }` entries to `tags`"
    return ("add the keys to `tags`, or once for every resource to the provider's "
            "`default_tags { tags = {...} }` block")  # fmt: skip


def _cloudformation_tags(resource: Resource) -> str:
    if resource.kind == LAUNCH_TEMPLATE:
        return ("add LaunchTemplateData.TagSpecifications for ResourceType `instance` and "
                "`volume` with the keys")  # fmt: skip
    if resource.type == "AWS::AutoScaling::AutoScalingGroup":
        return "add Tags entries with Key, Value and PropagateAtLaunch: true"
    return ("add the keys to Tags, or pass them as stack tags (`aws cloudformation deploy "
            "--tags`), which CloudFormation gives every resource that supports tags")  # fmt: skip


def advice(policy: Policy, resource: Resource) -> str:
    """The remediation of `policy` for `resource`, in its source's language."""
    name = policy.name
    if resource.source == TERRAFORM:
        if name == "required-tags":
            return _terraform_tags(resource)
        if name == "gpu-instance-oversized":
            return ("choose a smaller instance type (`finops catalog cheapest ACCELERATOR "
                    "COUNT`), lower the fleet's maximum size, or raise this environment's "
                    "limit in the policy config (FINOPS_POLICY_CONFIG / --policy-config)")  # fmt: skip
        if name == "training-on-spot":
            return "buy capacity above the on-demand base on spot: " + _TERRAFORM_SPOT.get(
                resource.type, "a spot capacity type"
            )
        if name == "imdsv2-required":
            return 'set `metadata_options { http_tokens = "required" }`'
        if name == "previous-generation-accelerator":
            return "change `instance_type` to the suggested current type and retest throughput"
        if name == "inference-on-cheaper-chip":
            return ("compile the model for AWS Neuron or XLA, benchmark latency, then change the "
                    "variant's `instance_type`")  # fmt: skip
    if resource.source == CLOUDFORMATION:
        if name == "required-tags":
            return _cloudformation_tags(resource)
        if name == "training-on-spot":
            return "buy capacity above the on-demand base on spot: " + _CLOUDFORMATION_SPOT.get(
                resource.type, "a spot capacity type"
            )
        if name == "imdsv2-required":
            return "set MetadataOptions.HttpTokens: required"
        if name == "gpu-instance-oversized":
            return ("choose a smaller InstanceType, lower MaxSize/MaxvCpus, or raise this "
                    "environment's limit in the policy config")  # fmt: skip
    return policy.remediation
