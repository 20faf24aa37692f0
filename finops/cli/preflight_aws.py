"""The AWS checks of `finops preflight`: what makes a first GPU deploy fail, read with the
user's own credentials and read-only (only Get*, List*, Describe* and SimulatePrincipalPolicy
calls; tests/cli/test_preflight.py records every call).

- GPU vCPU quotas (Service Quotas, EC2), on-demand and spot, per instance family and
  region, against what the fleets start with (their planned instance types, the largest
  counted); SageMaker "<type> for endpoint usage" quotas against the endpoints' first
  instances.
- Network: room for the VPC (and NAT address) the stack creates, or the given subnets: they
  exist, belong to the VPC, and route out.
- Cost-allocation tags: active, inactive or not yet seen by billing (never a deploy failure:
  the budget component activates them when billing has seen them; a warning says when
  budgets will see nothing yet).
- Permissions: every create action of the resource types the stack's program registers
  (run offline), simulated for the caller's IAM principal.

What cannot be read is UNKNOWN, never ok.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from aifinops import catalog
from aifinops import tags as tag_schema
from aifinops.config import Capacity, Cloud, Egress, Hosting, StackConfig

OK, WARN, FAIL, UNKNOWN = "ok", "warn", "FAIL", "UNKNOWN"
Clients = Callable[[str, str], Any]

# Service Quotas codes of the EC2 vCPU quotas, by instance family group and market.
EC2_VCPU_QUOTAS: dict[str, dict[str, tuple[str, str]]] = {
    "G": {
        "on-demand": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
        "spot": ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    },
    "P": {
        "on-demand": ("L-417A185B", "Running On-Demand P instances"),
        "spot": ("L-7212CCBC", "All P Spot Instance Requests"),
    },
    "Inf": {
        "on-demand": ("L-1945791B", "Running On-Demand Inf instances"),
        "spot": ("L-B5D1601B", "All Inf Spot Instance Requests"),
    },
    "Trn": {
        "on-demand": ("L-2C3B7624", "Running On-Demand Trn instances"),
        "spot": ("L-6B0D517C", "All Trn Spot Instance Requests"),
    },
    "DL": {
        "on-demand": ("L-6E869C2A", "Running On-Demand DL instances"),
        "spot": ("L-85EED4F7", "All DL Spot Instance Requests"),
    },
    "Standard": {
        "on-demand": (
            "L-1216C47A",
            "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
        ),
        "spot": ("L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests"),
    },
}
FAMILY_GROUP = {"g": "G", "vt": "G", "p": "P", "inf": "Inf", "trn": "Trn", "dl": "DL"}
VPCS_PER_REGION = ("vpc", "L-F678F1CE", "VPCs per Region")
GATEWAYS_PER_REGION = ("vpc", "L-A4707A72", "Internet gateways per Region")
ELASTIC_IPS = ("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs")
CE_REGION = "us-east-1"

# The IAM actions that create each resource type the AWS components register (the Terraform
# AWS provider's create calls). A type missing here is reported UNKNOWN, never skipped.
ACTIONS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("ec2:CreateVpc", "ec2:ModifyVpcAttribute", "ec2:CreateTags"),
    "aws:ec2/subnet:Subnet": ("ec2:CreateSubnet", "ec2:ModifySubnetAttribute"),
    "aws:ec2/internetGateway:InternetGateway": (
        "ec2:CreateInternetGateway",
        "ec2:AttachInternetGateway",
    ),
    "aws:ec2/routeTable:RouteTable": ("ec2:CreateRouteTable",),
    "aws:ec2/route:Route": ("ec2:CreateRoute",),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("ec2:AssociateRouteTable",),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("ec2:CreateVpcEndpoint",),
    "aws:ec2/eip:Eip": ("ec2:AllocateAddress",),
    "aws:ec2/natGateway:NatGateway": ("ec2:CreateNatGateway",),
    "aws:ec2/securityGroup:SecurityGroup": ("ec2:CreateSecurityGroup",),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": (
        "ec2:AuthorizeSecurityGroupEgress",
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": ("ec2:CreateLaunchTemplate",),
    "aws:autoscaling/group:Group": (
        "autoscaling:CreateAutoScalingGroup",
        "autoscaling:CreateOrUpdateTags",
        "ec2:RunInstances",
        "iam:PassRole",
    ),
    "aws:autoscaling/lifecycleHook:LifecycleHook": ("autoscaling:PutLifecycleHook",),
    "aws:iam/role:Role": ("iam:CreateRole", "iam:TagRole"),
    "aws:iam/rolePolicy:RolePolicy": ("iam:PutRolePolicy",),
    "aws:iam/instanceProfile:InstanceProfile": (
        "iam:CreateInstanceProfile",
        "iam:AddRoleToInstanceProfile",
    ),
    "aws:s3/bucket:Bucket": ("s3:CreateBucket", "s3:PutBucketTagging"),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ("s3:PutBucketPublicAccessBlock",),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ("s3:PutBucketOwnershipControls",),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "s3:PutEncryptionConfiguration",
    ),
    "aws:s3/bucketVersioning:BucketVersioning": ("s3:PutBucketVersioning",),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        "s3:PutLifecycleConfiguration",
    ),
    "aws:s3/bucketPolicy:BucketPolicy": ("s3:PutBucketPolicy",),
    "aws:s3/bucketObjectv2:BucketObjectv2": ("s3:PutObject",),
    "aws:lambda/function:Function": ("lambda:CreateFunction", "iam:PassRole"),
    "aws:lambda/permission:Permission": ("lambda:AddPermission",),
    "aws:lambda/invocation:Invocation": ("lambda:InvokeFunction",),
    "aws:cloudwatch/logGroup:LogGroup": ("logs:CreateLogGroup", "logs:PutRetentionPolicy"),
    "aws:cloudwatch/eventRule:EventRule": ("events:PutRule",),
    "aws:cloudwatch/eventTarget:EventTarget": ("events:PutTargets",),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch:PutMetricAlarm",),
    "aws:sagemaker/model:Model": ("sagemaker:CreateModel", "iam:PassRole"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        "sagemaker:CreateEndpointConfig",
    ),
    "aws:sagemaker/endpoint:Endpoint": ("sagemaker:CreateEndpoint",),
    "aws-native:sagemaker:InferenceComponent": ("sagemaker:CreateInferenceComponent",),
    "aws:appautoscaling/target:Target": ("application-autoscaling:RegisterScalableTarget",),
    "aws:appautoscaling/policy:Policy": ("application-autoscaling:PutScalingPolicy",),
    "aws:budgets/budget:Budget": ("budgets:ModifyBudget",),
    "aws:costexplorer/anomalyMonitor:AnomalyMonitor": ("ce:CreateAnomalyMonitor",),
    "aws:costexplorer/anomalySubscription:AnomalySubscription": ("ce:CreateAnomalySubscription",),
    "aws:kms/key:Key": ("kms:CreateKey", "kms:EnableKeyRotation", "kms:TagResource"),
    "aws:sns/topic:Topic": ("sns:CreateTopic", "sns:TagResource"),
    "aws:sns/topicPolicy:TopicPolicy": ("sns:SetTopicAttributes",),
    "aws:sns/topicSubscription:TopicSubscription": ("sns:Subscribe",),
}


@dataclass(frozen=True)
class Check:
    """One line of the preflight: `status` ok, warn, FAIL or UNKNOWN."""

    status: str
    area: str
    message: str


def family_group(instance_type: str) -> str:
    """The vCPU quota group of an EC2 type: g5.xlarge -> G, p4d.24xlarge -> P, inf2 -> Inf."""
    letters = re.match(r"^([a-z]+)", instance_type)
    return FAMILY_GROUP.get(letters.group(1) if letters else "", "Standard")


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def quota_value(clients: Clients, region: str, service: str, code: str) -> float:
    """The account's value of a quota, or its AWS default when never changed."""
    quotas = clients("service-quotas", region)
    try:
        return float(
            quotas.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"]
        )
    except ClientError as exc:
        if _error_code(exc) != "NoSuchResourceException":
            raise
    answer = quotas.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code)
    return float(answer["Quota"]["Value"])


@dataclass
class Demand:
    """vCPUs a quota must cover: at the first deploy (`start`) and at most (`most`)."""

    start: float = 0.0
    most: float = 0.0
    why: list[str] | None = None


def fleet_demand(config: StackConfig) -> dict[tuple[str, str, str], Demand]:
    """(region, family group, market) -> vCPUs the AWS fleets need, counting every node as
    the largest of its planned instance types."""
    # here, not at the top: every `finops` command imports this module to build its parser,
    # and the AWS components bring the AWS provider SDK (about 75 MiB and a second)
    from aifinops.components.aws import fleet as aws_fleet

    demand: dict[tuple[str, str, str], Demand] = defaultdict(Demand)
    for fleet in (f for f in config.training_fleets if f.cloud == Cloud.AWS):
        args = aws_fleet.from_config(fleet, config)
        plan = aws_fleet.plan_fleet(args)
        region = plan.catalog_region
        infos = [catalog.lookup(t, region, cloud="aws") for t in plan.instance_types]
        largest = max(infos, key=lambda i: i.vcpus)
        vcpus = float(largest.vcpus)
        group = family_group(largest.instance_type)
        base = min(plan.on_demand_base, plan.nodes_desired)
        markets: list[tuple[str, int, int]] = []
        if plan.capacity == Capacity.ON_DEMAND:
            markets.append(("on-demand", plan.nodes_desired, plan.nodes_max))
        else:
            markets.append(("spot", plan.nodes_desired - base, plan.nodes_max))
            # with a fallback, on-demand may stand in for every node
            most_on_demand = plan.nodes_max if plan.has_fallback else base
            markets.append(("on-demand", base, most_on_demand))
        for market, start, most in markets:
            entry = demand[(region, group, market)]
            entry.start += start * vcpus
            entry.most += most * vcpus
            entry.why = [*(entry.why or []), f"{fleet.name}: {start} x {largest.instance_type}"]
    return dict(demand)


class AwsPreflight:
    """The AWS checks for one stack. `clients(service, region)` makes boto3 clients."""

    def __init__(self, config: StackConfig, clients: Clients, resource_types: Iterable[str]):
        self.config = config
        self.clients = clients
        self.resource_types = sorted(set(resource_types))
        self.region = config.region(Cloud.AWS)

    def checks(self) -> list[Check]:
        found: list[Check] = []
        for step in (self.quotas, self.endpoint_quotas, self.network, self.tags, self.permissions):
            try:
                found += step()
            except (ClientError, BotoCoreError) as exc:
                found.append(
                    Check(UNKNOWN, step.__name__, f"could not read: {_error_code(exc)}: {exc}")
                )
        return found

    # --- quotas -----------------------------------------------------------------------------
    def quotas(self) -> list[Check]:
        found = []
        for (region, group, market), need in sorted(fleet_demand(self.config).items()):
            code, name = EC2_VCPU_QUOTAS[group][market]
            where = f"{name} in {region} ({code})"
            try:
                have = quota_value(self.clients, region, "ec2", code)
            except ClientError as exc:
                found.append(
                    Check(UNKNOWN, "quota", f"{where}: cannot read it ({_error_code(exc)})")
                )
                continue
            fleets = "; ".join(need.why or [])
            request = f"request more: https://console.aws.amazon.com/servicequotas/home/services/ec2/quotas/{code}"
            if have < need.start:
                found.append(
                    Check(
                        FAIL,
                        "quota",
                        f"{where}: {have:g} vCPUs, the fleets start with {need.start:g} "
                        f"({fleets}); {request}",
                    )
                )
            elif have < need.most:
                found.append(
                    Check(
                        WARN,
                        "quota",
                        f"{where}: {have:g} vCPUs covers the start ({need.start:g}) but not "
                        f"the most the fleets may run ({need.most:g}); {request}",
                    )
                )
            else:
                found.append(
                    Check(
                        OK, "quota", f"{where}: {have:g} vCPUs, the fleets need up to {need.most:g}"
                    )
                )
        return found

    def endpoint_quotas(self) -> list[Check]:
        found = []
        by_region: dict[str, dict[str, float]] = {}
        for endpoint in (e for e in self.config.inference_endpoints if e.cloud == Cloud.AWS):
            region = self.config.region(Cloud.AWS, endpoint.region)
            if endpoint.hosting == Hosting.SERVERLESS or endpoint.replicas is None:
                found.append(
                    Check(
                        UNKNOWN,
                        "quota",
                        f"SageMaker serverless in {region}: {endpoint.name}'s concurrency "
                        "quota is not checked; compare maxConcurrency with the serverless "
                        "quotas in Service Quotas (Amazon SageMaker)",
                    )
                )
                continue
            if region not in by_region:
                by_region[region] = self._sagemaker_quotas(region)
            from aifinops.components.aws import inference as aws_inference

            instance = aws_inference.resolve_instance(
                endpoint.instance_type, endpoint.accelerator, region
            ).instance_type
            name = f"{instance} for endpoint usage"
            start = max(1, endpoint.replicas.min)
            have = by_region[region].get(name)
            where = f"SageMaker {name} in {region}"
            if have is None:
                found.append(Check(UNKNOWN, "quota", f"{where}: no such quota listed"))
            elif have < start:
                found.append(
                    Check(
                        FAIL,
                        "quota",
                        f"{where}: {have:g} instances, {endpoint.name} starts {start}; request "
                        "an increase in Service Quotas (Amazon SageMaker)",
                    )
                )
            elif have < endpoint.replicas.max:
                found.append(
                    Check(
                        WARN,
                        "quota",
                        f"{where}: {have:g} instances, {endpoint.name} may scale to "
                        f"{endpoint.replicas.max}",
                    )
                )
            else:
                found.append(Check(OK, "quota", f"{where}: {have:g} instances"))
        return found

    def _sagemaker_quotas(self, region: str) -> dict[str, float]:
        """SageMaker quotas by name: the account's values over AWS's defaults."""
        quotas = self.clients("service-quotas", region)
        named: dict[str, float] = {}
        for operation in ("list_service_quotas", "list_aws_default_service_quotas"):
            for page in quotas.get_paginator(operation).paginate(ServiceCode="sagemaker"):
                for quota in page["Quotas"]:
                    named.setdefault(quota["QuotaName"], float(quota["Value"]))
        return named

    # --- network ----------------------------------------------------------------------------
    def network(self) -> list[Check]:
        found: list[Check] = []
        fleets = [f for f in self.config.training_fleets if f.cloud == Cloud.AWS]
        created: dict[str, set[str]] = defaultdict(set)
        for fleet in fleets:
            if fleet.subnet_ids:
                found += self._given_subnets(
                    fleet.name,
                    fleet.vpc_id or "",
                    fleet.subnet_ids,
                    self.config.region(Cloud.AWS, fleet.region),
                )
            else:
                created[self.config.region(Cloud.AWS, fleet.region)].add(
                    (fleet.egress or Egress.PUBLIC_IP).value
                )
        for region, modes in sorted(created.items()):
            ec2 = self.clients("ec2", region)
            vpcs = len(ec2.describe_vpcs()["Vpcs"])
            gateways = len(ec2.describe_internet_gateways()["InternetGateways"])
            for (service, code, name), used, new in (
                (VPCS_PER_REGION, vpcs, len(modes)),
                (GATEWAYS_PER_REGION, gateways, len(modes)),
            ):
                have = quota_value(self.clients, region, service, code)
                status = OK if used + new <= have else FAIL
                found.append(
                    Check(
                        status,
                        "network",
                        f"{name} in {region} ({code}): {used:g} used of {have:g}, the stack adds {new}",
                    )
                )
            if Egress.NAT_GATEWAY.value in modes:
                service, code, name = ELASTIC_IPS
                used = len(ec2.describe_addresses()["Addresses"])
                have = quota_value(self.clients, region, service, code)
                status = OK if used + 1 <= have else FAIL
                found.append(
                    Check(
                        status,
                        "network",
                        f"{name} in {region} ({code}): {used} used of {have:g}, the NAT gateway adds 1",
                    )
                )
        return found

    def _given_subnets(
        self, fleet: str, vpc_id: str, subnet_ids: list[str], region: str
    ) -> list[Check]:
        ec2 = self.clients("ec2", region)
        try:
            subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
        except ClientError as exc:
            if _error_code(exc) in ("InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"):
                return [Check(FAIL, "network", f"{fleet}: subnets {', '.join(subnet_ids)}: {exc}")]
            raise
        found = []
        tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
            "RouteTables"
        ]
        main = next(
            (t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None
        )
        for subnet in subnets:
            name = f"{fleet}: subnet {subnet['SubnetId']}"
            if subnet["VpcId"] != vpc_id:
                found.append(
                    Check(FAIL, "network", f"{name} is in {subnet['VpcId']}, not vpcId {vpc_id}")
                )
                continue
            table = next(
                (
                    t
                    for t in tables
                    if any(
                        a.get("SubnetId") == subnet["SubnetId"] for a in t.get("Associations", [])
                    )
                ),
                main,
            )
            routes = (table or {}).get("Routes", [])
            default = next(
                (
                    r
                    for r in routes
                    if r.get("DestinationCidrBlock") == "0.0.0.0/0"
                    and r.get("State", "active") == "active"
                ),
                None,
            )
            s3 = any(r.get("DestinationPrefixListId") for r in routes)
            if default is None:
                found.append(
                    Check(
                        FAIL,
                        "network",
                        f"{name}: no route to 0.0.0.0/0: the nodes reach nothing (no agent, no checkpoints); add a NAT gateway route",
                    )
                )
            elif str(default.get("GatewayId", "")).startswith("igw-"):
                found.append(
                    Check(
                        FAIL,
                        "network",
                        f"{name}: routes to an internet gateway, and fleets on given subnets get no public address: give a subnet behind a NAT gateway",
                    )
                )
            else:
                target = (
                    default.get("NatGatewayId")
                    or default.get("TransitGatewayId")
                    or default.get("NetworkInterfaceId")
                    or "a gateway"
                )
                found.append(Check(OK, "network", f"{name}: routes out through {target}"))
            if default is not None and not s3:
                found.append(
                    Check(
                        WARN,
                        "network",
                        f"{name}: no S3 gateway endpoint route: checkpoint traffic pays NAT processing per GB",
                    )
                )
        missing = sorted(set(subnet_ids) - {s["SubnetId"] for s in subnets})
        if missing:
            found.append(
                Check(FAIL, "network", f"{fleet}: subnets not found: {', '.join(missing)}")
            )
        return found

    # --- cost-allocation tags ---------------------------------------------------------------
    def tags(self) -> list[Check]:
        if not any(b.cloud == Cloud.AWS for b in self.config.budgets):
            return []
        keys = [
            k
            for k in tag_schema.ALL_KEYS
            if k in self.config.tags.as_dict() or k in tag_schema.required_keys(workload=True)
        ]
        ce = self.clients("ce", CE_REGION)
        try:
            listed = ce.list_cost_allocation_tags(TagKeys=keys, Type="UserDefined")
        except ClientError as exc:
            if _error_code(exc) in ("AccessDeniedException", "UnauthorizedException"):
                return [
                    Check(
                        WARN,
                        "tags",
                        f"cost-allocation tags: cannot read them here ({_error_code(exc)}); in a member account the management account activates {', '.join(keys)}",
                    )
                ]
            raise
        status = {t["TagKey"]: t["Status"] for t in listed.get("CostAllocationTags", [])}
        found = []
        for key in keys:
            if status.get(key) == "Active":
                found.append(Check(OK, "tags", f"cost-allocation tag {key}: active"))
            elif key in status:
                found.append(
                    Check(
                        WARN,
                        "tags",
                        f"cost-allocation tag {key}: inactive; the budget's step activates it at deploy",
                    )
                )
            else:
                found.append(
                    Check(
                        WARN,
                        "tags",
                        f"cost-allocation tag {key}: not yet seen by billing; budgets on it see costs a day after the first tagged resource (activated then, automatically)",
                    )
                )
        return found

    # --- permissions ------------------------------------------------------------------------
    def permissions(self) -> list[Check]:
        aws_types = [t for t in self.resource_types if t.startswith(("aws:", "aws-native:"))]
        unknown = [t for t in aws_types if t not in ACTIONS_BY_TYPE]
        actions = sorted({a for t in aws_types for a in ACTIONS_BY_TYPE.get(t, ())})
        found = []
        if unknown:
            found.append(Check(UNKNOWN, "permissions", f"no action list for {', '.join(unknown)}"))
        if not actions:
            return found
        identity = self.clients("sts", self.region).get_caller_identity()
        principal, note = self._principal(str(identity["Arn"]))
        if principal is None:
            return [
                *found,
                Check(WARN if note.startswith("root") else UNKNOWN, "permissions", note),
            ]
        iam = self.clients("iam", self.region)
        denied: list[str] = []
        try:
            for page in iam.get_paginator("simulate_principal_policy").paginate(
                PolicySourceArn=principal, ActionNames=actions
            ):
                denied += [
                    r["EvalActionName"]
                    for r in page["EvaluationResults"]
                    if r["EvalDecision"] != "allowed"
                ]
        except ClientError as exc:
            return [
                *found,
                Check(
                    UNKNOWN,
                    "permissions",
                    f"cannot simulate {principal} ({_error_code(exc)}): grant it iam:SimulatePrincipalPolicy, or check these by hand: {', '.join(actions)}",
                ),
            ]
        if denied:
            found.append(
                Check(FAIL, "permissions", f"{principal} may not: {', '.join(sorted(denied))}")
            )
        else:
            found.append(
                Check(
                    OK,
                    "permissions",
                    f"{principal} may do all {len(actions)} actions the stack's resources need{note}",
                )
            )
        return found

    def _principal(self, arn: str) -> tuple[str | None, str]:
        """The IAM principal to simulate for a caller ARN, and a note."""
        if re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:root", arn):
            return None, "root: every action is allowed; deploy with a role instead"
        role = re.fullmatch(r"arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([^/]+)/.+", arn)
        if role:
            partition, account, name = role.groups()
            try:
                return str(
                    self.clients("iam", self.region).get_role(RoleName=name)["Role"]["Arn"]
                ), ""
            except ClientError:
                return (
                    f"arn:{partition}:iam::{account}:role/{name}",
                    " (role path unknown: assumed none)",
                )
        if re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:user/.+", arn):
            return arn, ""
        return None, f"cannot simulate a {arn.split(':')[5].split('/')[0]} principal ({arn})"
