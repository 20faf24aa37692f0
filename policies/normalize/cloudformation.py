"""CloudFormation resource `Properties` -> `Resource`.

Keys are PascalCase (`InstanceType`), tags are `[{Key, Value}]` lists, launch templates keep
their settings under `LaunchTemplateData`, and a value may be an intrinsic function (`Ref`,
`Fn::GetAtt`...), which cannot be read before deployment: it becomes UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.model import Resource
from policies.normalize.wire import UNKNOWN, normalize

CFN_TO_PULUMI = {
    "AWS::EC2::Instance": "aws:ec2/instance:Instance",
    "AWS::EC2::LaunchTemplate": "aws:ec2/launchTemplate:LaunchTemplate",
    "AWS::AutoScaling::AutoScalingGroup": "aws:autoscaling/group:Group",
    "AWS::SageMaker::EndpointConfig": "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
    "AWS::Budgets::Budget": "aws:budgets/budget:Budget",
    "AWS::S3::Bucket": "aws:s3/bucketV2:BucketV2",
}


def _is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and (next(iter(value)) == "Ref" or str(next(iter(value))).startswith("Fn::"))
    )


def _tags_map(items: Any) -> Any:
    if _is_intrinsic(items) or items is UNKNOWN:
        return UNKNOWN
    return {str(i.get("Key")): i.get("Value") for i in items or [] if isinstance(i, Mapping)}


def plain(value: Any) -> Any:
    """PascalCase keys -> camelCase (tags lists become maps); intrinsics -> UNKNOWN."""
    if _is_intrinsic(value):
        return UNKNOWN
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            key = str(key)
            if key.startswith("__") and key.endswith("__"):
                continue
            if (
                key == "Tags"
                and isinstance(item, list)
                and all("PropagateAtLaunch" not in i for i in item)
            ):
                out["tags"] = _tags_map(item)
            else:
                out[key[:1].lower() + key[1:]] = plain(item)
        return out
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def to_wire(cfn_type: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation properties in the Pulumi provider's wire shape."""
    props = plain(properties)
    if not isinstance(props, dict):
        return {}
    if cfn_type == "AWS::EC2::LaunchTemplate":
        data = props.get("launchTemplateData") or {}
        data = data if isinstance(data, dict) else {}
        own = [s for s in props.get("tagSpecifications") or [] if isinstance(s, dict)]
        return {
            **data,
            "tags": next((s.get("tags") for s in own), {}),
            "name": props.get("launchTemplateName"),
        }
    if cfn_type == "AWS::Budgets::Budget":
        budget = props.get("budget") or {}
        filters = budget.get("costFilters") or {}
        return {
            "tags": _tags_map(properties.get("ResourceTags") or []),
            "limitAmount": (budget.get("budgetLimit") or {}).get("amount"),
            "costFilters": [
                {"name": key[:1].upper() + key[1:], "values": values}
                for key, values in filters.items()
            ],
        }
    return props


def normalize_cloudformation(
    cfn_type: str, properties: Mapping[str, Any], name: str
) -> Resource | None:
    """The `Resource` for one CloudFormation resource, or None for a type the rules skip."""
    token = CFN_TO_PULUMI.get(cfn_type)
    if token is None:
        return None
    return normalize(token, name, to_wire(cfn_type, properties or {}), urn=name)
