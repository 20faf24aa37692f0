"""CloudFormation resource `Properties` -> `Resource`.

Keys are PascalCase (`InstanceType`), tags are `[{Key, Value}]` lists (a map on some types,
such as `AWS::Batch::ComputeEnvironment`), launch templates keep their settings under
`LaunchTemplateData`, and a value may be an intrinsic function (`Ref`, `Fn::GetAtt`...).
`aifinops.policies.cloudformation` resolves what the template alone decides; what is left (and any
intrinsic in properties handed over by checkov) is UNKNOWN.

Types the rules read map to a Pulumi type token whose reader understands them: the AWS
classic provider for the types the finops components create, AWS native (generated from the
CloudFormation schemas, so the shapes are CloudFormation's) for the rest. Where tags are
comes from the CloudFormation resource schemas (`aifinops.taggability`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from aifinops.policies.model import CLOUDFORMATION, LAUNCH_TEMPLATE, Resource
from aifinops.policies.normalize.wire import KINDS, normalize
from aifinops.policies.values import UNKNOWN
from aifinops.taggability import TagProperty, cloudformation_known, cloudformation_tag_property

CFN_TO_PULUMI = {
    "AWS::EC2::Instance": "aws:ec2/instance:Instance",
    "AWS::EC2::LaunchTemplate": "aws:ec2/launchTemplate:LaunchTemplate",
    "AWS::AutoScaling::AutoScalingGroup": "aws:autoscaling/group:Group",
    "AWS::SageMaker::EndpointConfig": "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
    "AWS::Budgets::Budget": "aws:budgets/budget:Budget",
    "AWS::S3::Bucket": "aws:s3/bucketV2:BucketV2",
    "AWS::Batch::ComputeEnvironment": "aws-native:batch:ComputeEnvironment",
    "AWS::EKS::Nodegroup": "aws-native:eks:Nodegroup",
    "AWS::SageMaker::Cluster": "aws-native:sagemaker:Cluster",
    "AWS::SageMaker::NotebookInstance": "aws-native:sagemaker:NotebookInstance",
}
# The launch template's own tags are the tag specification for resource type launch-template.
_LAUNCH_TEMPLATE_TAGS = TagProperty(property="tags", shape="map")


def _is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and (next(iter(value)) == "Ref" or str(next(iter(value))).startswith("Fn::"))
    )


def _tags_map(entries: Any) -> Any:
    if _is_intrinsic(entries) or entries is UNKNOWN:
        return UNKNOWN
    if isinstance(entries, Mapping):
        return {str(k): plain(v) for k, v in entries.items()}
    return {
        str(plain(i.get("Key"))): plain(i.get("Value"))
        for i in entries or []
        if isinstance(i, Mapping)
    }


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
            if key == "Tags" and not (
                isinstance(item, list)
                and any(isinstance(i, Mapping) and "PropagateAtLaunch" in i for i in item)
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
        own = props.get("tagSpecifications")
        specs = [s for s in own or [] if isinstance(s, dict)] if own is not UNKNOWN else []
        return {
            **data,
            "tags": UNKNOWN if own is UNKNOWN else next((s.get("tags") for s in specs), {}),
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


def _token(cfn_type: str) -> str | None:
    if cfn_type in CFN_TO_PULUMI:
        return CFN_TO_PULUMI[cfn_type]
    parts = cfn_type.split("::")
    if len(parts) == 3 and parts[0] == "AWS" and cloudformation_known(cfn_type):
        return f"aws-native:{parts[1].lower()}:{parts[2]}"
    return None


def tag_location(cfn_type: str) -> TagProperty | None:
    """Where the wire shape keeps the tags (`plain` turns Key/Value lists into a map, except
    an Auto Scaling group's, whose entries carry `PropagateAtLaunch`)."""
    if cfn_type == "AWS::EC2::LaunchTemplate":
        return _LAUNCH_TEMPLATE_TAGS
    where = cloudformation_tag_property(cfn_type)
    if where is None:
        return None
    name = where.property[:1].lower() + where.property[1:]
    shape = "list" if cfn_type == "AWS::AutoScaling::AutoScalingGroup" else "map"
    return TagProperty(property=name, shape=shape)


def normalize_cloudformation(
    cfn_type: str,
    properties: Mapping[str, Any],
    name: str,
    related: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
) -> Resource | None:
    """related: (Pulumi type token, CloudFormation type, properties) of the launch templates
    it uses."""
    """The `Resource` for one CloudFormation resource, or None for a type outside AWS's."""
    token = _token(cfn_type)
    if token is None:
        return None
    resource = normalize(
        token,
        name,
        to_wire(cfn_type, properties or {}),
        urn=name,
        related=[(token, to_wire(cfn, props)) for token, cfn, props in related],
        tag_location=tag_location(cfn_type),
        source=CLOUDFORMATION,
    )
    return replace(resource, type=cfn_type)


_FIELD_PROPERTIES = {
    "instance_types": ("InstanceType", "InstanceTypes", "InstanceGroups", "ProductionVariants",
                       "LaunchTemplate", "Overrides", "ComputeResources"),
    "tags": ("Tags", "TagSpecifications"),
    "nodes_max": ("MaxSize", "MaxvCpus", "ScalingConfig", "InstanceCount", "DesiredCapacity"),
    "http_tokens": ("MetadataOptions", "HttpTokens"),
    "launch_tags": ("TagSpecifications",),
    "on_demand_percent_above_base": ("InstancesDistribution", "CapacityType", "Type",
                                     "MixedInstancesPolicy"),
}  # fmt: skip


def from_template(
    loaded: Any, related: Callable[[Sequence[str]], list[Any]] = lambda ids: []
) -> Resource | None:
    """The `Resource` of one `aifinops.policies.cloudformation.TemplateResource`."""
    templates = [
        (CFN_TO_PULUMI.get(t.type, ""), t.type, t.properties)
        for t in related(loaded.references)
        if KINDS.get(CFN_TO_PULUMI.get(t.type, "")) == LAUNCH_TEMPLATE
    ]
    resource = normalize_cloudformation(
        loaded.type, loaded.properties, f"{loaded.type}.{loaded.logical_id}", templates
    )
    if resource is None:
        return None
    reasons = {}
    for field in resource.unknown | ({"tags"} if not resource.tags_complete else set()):
        for path, text in loaded.unknown_sources.items():
            if set(path.split(".")) & set(_FIELD_PROPERTIES.get(field, ())):
                reasons[field] = text
                break
    if loaded.created is None:
        reasons["created"] = loaded.created_source
    return replace(
        resource,
        location=f"{loaded.file}:{loaded.line}",
        unknown_reasons=reasons,
        created=loaded.created,
    )
