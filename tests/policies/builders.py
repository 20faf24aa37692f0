"""Happy-path resources in Pulumi wire names; each test changes one field."""

from __future__ import annotations

import copy
from typing import Any

from aifinops.policies.context import Context
from aifinops.policies.model import Resource
from aifinops.policies.normalize import normalize
from aifinops.policies.verdicts import evaluate

LT = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
INSTANCE = "aws:ec2/instance:Instance"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
BUDGET = "aws:budgets/budget:Budget"
GCP_TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"
GCP_MIG = "gcp:compute/instanceGroupManager:InstanceGroupManager"
TPU_VM = "gcp:tpu/v2Vm:V2Vm"
VMSS = "azure-native:compute:VirtualMachineScaleSet"
STACK_RULES_OFF = {"budget-required": "disabled", "stack-cost-ceiling": "disabled"}


def tags(**changes: Any) -> dict[str, Any]:
    found = {"Project": "vision", "Team": "ml-platform", "Environment": "dev", "ModelVersion": "v1"}
    found.update(changes)
    return {k: v for k, v in found.items() if v is not None}


def launch_template(**changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "instanceType": "g5.xlarge",
        "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required"},
        "tags": tags(),
        "tagSpecifications": [
            {"resourceType": "instance", "tags": tags()},
            {"resourceType": "volume", "tags": tags()},
        ],
    }
    props.update(copy.deepcopy(changes))
    return props


def fleet(**changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "maxSize": 4,
        "minSize": 0,
        "desiredCapacity": 2,
        "mixedInstancesPolicy": {
            "instancesDistribution": {
                "onDemandBaseCapacity": 0,
                "onDemandPercentageAboveBaseCapacity": 0,
                "spotAllocationStrategy": "price-capacity-optimized",
            },
            "launchTemplate": {
                "launchTemplateSpecification": {"launchTemplateId": "lt-1", "version": "$Latest"},
                "overrides": [{"instanceType": "g5.xlarge"}, {"instanceType": "g6.xlarge"}],
            },
        },
        "tags": [{"key": k, "value": v, "propagateAtLaunch": True} for k, v in tags().items()],
    }
    props.update(copy.deepcopy(changes))
    return props


def endpoint_config(**changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "productionVariants": [
            {"variantName": "main", "modelName": "m", "instanceType": "ml.inf2.xlarge",
             "initialInstanceCount": 2}
        ],
        "tags": tags(),
    }  # fmt: skip
    props.update(copy.deepcopy(changes))
    return props


def gcp_template(**changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "machineType": "g2-standard-4",
        "scheduling": {"provisioningModel": "SPOT", "preemptible": True},
        "labels": {"project": "vision", "team": "ml-platform", "environment": "dev",
                   "model-version": "v1"},
    }  # fmt: skip
    props.update(copy.deepcopy(changes))
    return props


def budget(project: str | None = "vision", **changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "budgetType": "COST",
        "limitAmount": "1000",
        "limitUnit": "USD",
        "timeUnit": "MONTHLY",
        "tags": tags(ModelVersion=None),
        "costFilters": [{"name": "TagKeyValue", "values": [f"user:Project${project}"]}]
        if project
        else [],
    }
    props.update(copy.deepcopy(changes))
    return props


def resource(type_token: str, props: dict[str, Any], name: str = "r", **kwargs: Any) -> Resource:
    return normalize(type_token, name, props, urn=f"urn:{name}", **kwargs)


def verdicts(
    *resources: Resource,
    environment: str = "dev",
    settings: dict[str, Any] | None = None,
    ceiling: float | None = None,
) -> list[tuple[str, str, str]]:
    """(policy, level, message) of every violation; stack rules off unless settings say."""
    context = Context(environment=environment, cost_ceiling_usd=ceiling)
    merged = {**STACK_RULES_OFF, **(settings or {})}
    return [(v.policy, v.level, v.message) for v in evaluate(list(resources), context, merged)]
