"""Which live AWS resources break the tag schema, judged through the taggability registry.

An ARN is mapped to the Pulumi type that creates such a resource (a short table for the
types whose names differ, then `aws:<service>/<camelType>:<PascalType>`); a type the registry
says cannot carry tags is never reported (the stack could not fix it), and a type the
registry does not know is counted as not judged, never silently passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aifinops import taggability
from aifinops import tags as tag_schema

# (ARN service, ARN resource type) -> Pulumi type token, where the generic rule misses
ARN_TYPE_TOKENS = {
    ("ec2", "volume"): "aws:ebs/volume:Volume",
    ("ec2", "snapshot"): "aws:ebs/snapshot:Snapshot",
    ("ec2", "image"): "aws:ec2/ami:Ami",
    ("ec2", "elastic-ip"): "aws:ec2/eip:Eip",
    ("ec2", "natgateway"): "aws:ec2/natGateway:NatGateway",
    ("ec2", "flow-log"): "aws:ec2/flowLog:FlowLog",
    ("ec2", "flow-logs"): "aws:ec2/flowLog:FlowLog",
    ("ec2", "managed-prefix-lists"): "aws:ec2/managedPrefixList:ManagedPrefixList",
    ("ec2", "prefix-list"): "aws:ec2/managedPrefixList:ManagedPrefixList",
    ("ec2", "transit-gateway"): "aws:ec2transitgateway/transitGateway:TransitGateway",
    ("ec2", "transit-gateway-attachment"): "aws:ec2transitgateway/vpcAttachment:VpcAttachment",
    ("s3", ""): "aws:s3/bucket:Bucket",
    ("sqs", ""): "aws:sqs/queue:Queue",
    ("sns", ""): "aws:sns/topic:Topic",
    ("sagemaker", "endpoint-config"): "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
    ("autoscaling", "autoScalingGroup"): "aws:autoscaling/group:Group",
    ("logs", "log-group"): "aws:cloudwatch/logGroup:LogGroup",
    ("cloudwatch", "alarm"): "aws:cloudwatch/metricAlarm:MetricAlarm",
    ("elasticfilesystem", "file-system"): "aws:efs/fileSystem:FileSystem",
    ("elasticloadbalancing", "loadbalancer"): "aws:lb/loadBalancer:LoadBalancer",
    ("elasticloadbalancing", "targetgroup"): "aws:lb/targetGroup:TargetGroup",
}
# ARN service -> Pulumi module, where the hyphen-less service name is not the module
SERVICE_MODULES = {"acm-pca": "acmpca", "states": "sfn", "monitoring": "cloudwatch"}


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource_type: str
    resource_id: str


def parse_arn(arn: str) -> Arn | None:
    """Split an ARN; the resource type is the last type segment of `type/id[/type/id]`
    (`certificate-authority/CA/certificate/C` -> `certificate`) or '' for `arn:...:name`."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    _, partition, service, region, account, resource = parts
    slash, colon = resource.find("/"), resource.find(":")
    if colon != -1 and (slash == -1 or colon < slash):  # "log-group:/aws/lambda/x"
        kind, ident = resource.split(":", 1)
    elif slash != -1:
        segments = resource.split("/")
        kind = segments[-2] if len(segments) >= 4 else segments[0]
        ident = segments[-1]
    else:
        kind, ident = "", resource
    return Arn(partition, service, region, account, kind, ident)


def _camel(kebab: str) -> str:
    head, *rest = kebab.split("-")
    return head[:1].lower() + head[1:] + "".join(w[:1].upper() + w[1:] for w in rest)


def type_token(arn: Arn) -> str | None:
    """The Pulumi type token for an ARN, or None when no registry entry matches."""
    explicit = ARN_TYPE_TOKENS.get((arn.service, arn.resource_type))
    if explicit:
        return explicit
    if not arn.resource_type:
        return None
    module = SERVICE_MODULES.get(arn.service, arn.service.replace("-", ""))
    camel = _camel(arn.resource_type)
    token = f"aws:{module}/{camel}:{camel[:1].upper() + camel[1:]}"
    return token if taggability.known_type(token) else None


@dataclass(frozen=True)
class TagVerdict:
    judged: bool
    """False: the type is unknown to the registry (counted, not reported)."""
    taggable: bool
    missing: tuple[str, ...]
    problems: tuple[str, ...]
    type_label: str


def judge(arn: str, present: Mapping[str, str], workload: bool = False) -> TagVerdict:
    """Missing required keys and invalid values of one resource's tags (AWS spelling)."""
    parsed = parse_arn(arn)
    label = f"{parsed.service}:{parsed.resource_type or '-'}" if parsed else "unparsable-arn"
    token = type_token(parsed) if parsed else None
    if token is None:
        return TagVerdict(False, False, (), (), label)
    if not taggability.is_taggable(token):
        return TagVerdict(True, False, (), (), label)
    missing = tuple(tag_schema.missing_keys(present, "aws", workload))
    problems = tuple(tag_schema.invalid_values(present, "aws"))
    return TagVerdict(True, True, missing, problems, label)
