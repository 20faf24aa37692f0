"""The policies: stable names, descriptions, severities, remediation steps and their rules.

Every adapter (CrossGuard pack, checkov checks, `finops preview`/`check`) reads this table, so
a policy is described once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aifinops.policies import budgets, compute, security, tags
from aifinops.policies.context import Context
from aifinops.policies.model import Finding, Resource

ResourceRule = Callable[[Resource, Mapping[str, Any], Context], list[Finding]]
StackRule = Callable[[Sequence[Resource], Mapping[str, Any], Context], list[Finding]]


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    severity: str
    """"low", "medium", "high" or "critical"."""
    remediation: str
    resource_rule: ResourceRule | None = None
    stack_rule: StackRule | None = None
    checkov_id: str = ""
    """The ID of its checkov external checks (Terraform and CloudFormation share it)."""


POLICIES: tuple[Policy, ...] = (
    Policy(
        "required-tags",
        "Taggable resources carry the tag schema's keys (Project, Team, Environment; "
        "ModelVersion on workloads) with allowed values; launch templates pass them on.",
        "high",
        "Set finops:tags in the stack file (the stack transform tags every resource), or add "
        "the missing keys to the resource; for launch templates add tagSpecifications for "
        "instance and volume; on GCP use lower-case label keys (model-version).",
        resource_rule=tags.required_tags,
        checkov_id="CKV_FINOPS_1",
    ),
    Policy(
        "gpu-instance-oversized",
        "Accelerator instances and fleets stay within the environment's count, model, "
        "price and allow-list limits.",
        "high",
        "Pick a smaller type (finops catalog cheapest ACCELERATOR COUNT), lower the fleet's "
        "maximum size, or raise the limit for this environment in the policy config.",
        resource_rule=compute.gpu_instance_oversized,
        checkov_id="CKV_FINOPS_2",
    ),
    Policy(
        "training-on-spot",
        "Training fleets outside prod buy capacity above the on-demand base on spot.",
        "medium",
        "Use capacity spot-with-fallback (the default) or set onDemandPercentageAboveBaseCapacity "
        "at or below the configured percent; keep on-demand nodes in onDemandBase.",
        resource_rule=compute.training_on_spot,
        checkov_id="CKV_FINOPS_3",
    ),
    Policy(
        "previous-generation-accelerator",
        "Previous-generation accelerators (K80, M60, V100: p2, p3, g3) cost more per unit of "
        "work than current ones.",
        "low",
        "Move to the suggested current type (finops catalog equivalents TYPE) and retest "
        "throughput.",
        resource_rule=compute.previous_generation_accelerator,
        checkov_id="CKV_FINOPS_4",
    ),
    Policy(
        "inference-on-cheaper-chip",
        "Inference on a GPU where an Inferentia or TPU type with enough memory is cheaper, or "
        "on a TPU where a GPU or Inferentia type with its memory and throughput is, or where "
        "provisioned, scale-to-zero or serverless serving costs less for the stated traffic.",
        "low",
        "Compile the model for AWS Neuron (Inferentia) or XLA (TPU), benchmark latency, and move "
        "the endpoint to the suggested type; or change the endpoint's hosting (hosting: "
        "serverless, or replicas.min 0) as the advice names, after weighing its cold start.",
        resource_rule=compute.inference_on_cheaper_chip,
        checkov_id="CKV_FINOPS_5",
    ),
    Policy(
        "budget-required",
        "Every Project that owns resources has a budget covering it.",
        "medium",
        "Add a finops:budgets entry for the project (the ProjectBudget component filters the "
        "budget on the Project tag).",
        stack_rule=budgets.budget_required,
        checkov_id="CKV_FINOPS_6",
    ),
    Policy(
        "stack-cost-ceiling",
        "The stack's estimated monthly cost stays under its budget or configured ceiling.",
        "high",
        "Shrink the largest resources listed, run fewer hours (hoursPerMonth), or raise "
        "finops:costCeilingUsd / the budget after review.",
        stack_rule=budgets.stack_cost_ceiling,
    ),
    Policy(
        "imdsv2-required",
        "GPU launch templates and instances require IMDSv2 (httpTokens required).",
        "high",
        'Set metadataOptions.httpTokens to "required" (Terraform metadata_options.http_tokens, '
        "CloudFormation MetadataOptions.HttpTokens).",
        resource_rule=security.imdsv2_required,
        checkov_id="CKV_FINOPS_8",
    ),
)

BY_NAME: dict[str, Policy] = {policy.name: policy for policy in POLICIES}
