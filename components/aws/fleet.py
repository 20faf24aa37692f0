"""`finops:aws:GpuTrainingFleet`: a GPU training fleet on EC2 spot, with a real fallback to
on-demand and back (see lambdas/fallback_controller.py and docs/components-aws.md)."""

import base64
import re
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from aifinops import catalog
from aifinops.components import _args, _hosting, agent_artifact
from aifinops.components.agent_bootstrap import (
    AGENT_METRIC_NAMESPACE,
    FLEET_TAG,
    AgentInstall,
    BundleInstall,
    agent_bootstrap_script,
    agent_config,
)
from aifinops.components.aws import _common
from aifinops.components.aws.lambdas import fallback_controller
from aifinops.components.aws.network import AwsFleetNetwork, FleetEgress
from aifinops.config import Capacity, StackConfig, TrainingFleet, sqs_queue_arn, sqs_queue_url
from aifinops.errors import CatalogError, did_you_mean

TYPE_TOKEN = "finops:aws:GpuTrainingFleet"
MIN_OVERRIDES = 3  # spot pools the issue asks for at the least
PREFERRED_OVERRIDES = 4  # more pools, fewer interruptions; more would add dearer types
MAX_OVERRIDES = 6
_GRAVITON_FAMILY = re.compile(r"^[a-z]+\d+g")
CHECKPOINT_PREFIX = "checkpoints/"
NONCURRENT_CHECKPOINT_DAYS = 1
SPOT_ALLOCATION_STRATEGY = "price-capacity-optimized"
ON_DEMAND_ALLOCATION_STRATEGY = "lowest-price"
# AWS Deep Learning Base AMI (NVIDIA driver, CUDA, Amazon Linux 2023), published by Amazon.
DEFAULT_AMI_NAME = "Deep Learning Base OSS Nvidia Driver GPU AMI (Amazon Linux 2023) *"
CONTROLLER_SCHEDULE = "rate(1 minute)"
# The termination lifecycle hook on both groups: a node the fleet removes (controller drain,
# budget enforcement, scale-in, capacity rebalancing) waits in Terminating:Wait until the
# agent has run the job's checkpoint hook and completes the action (agents/lifecycle.py).
LIFECYCLE_HOOK_NAME = "finops-checkpoint"
# Without a heartbeat for this long (agent dead, instance hung) the node goes anyway.
LIFECYCLE_HEARTBEAT_TIMEOUT_SECONDS = 120
LAUNCH_EVENTS = (
    "EC2 Instance Launch Unsuccessful",
    "EC2 Instance Launch Successful",
    "EC2 Instance Terminate Successful",
)


class AwsGpuTrainingFleetArgs(TypedDict):
    """Arguments of `finops:aws:GpuTrainingFleet`. Give `instance_types` or `accelerator`."""

    nodes_max: int
    """Most nodes the fleet ever runs, spot and on-demand together (1..1000)."""
    model_version: str
    """`ModelVersion` tag of every resource (the model this fleet trains)."""
    tags: dict[str, str]
    """The stack's tags (Project, Team, Environment, optional CostCenter); written on every
    taggable child, launched instances, volumes and network interfaces included."""
    instance_types: NotRequired[list[str] | None]
    """EC2 instance types, preferred first; padded with catalog equivalents to at least three."""
    accelerator: NotRequired[str | None]
    """Accelerator model from the catalog ("A10G", "L4", "H100"...); the catalog picks the
    types."""
    accelerators_per_node: NotRequired[int | None]
    """Accelerators per node with `accelerator` (default 1)."""
    nodes_min: NotRequired[int]
    """Fewest nodes (default 0)."""
    nodes_desired: NotRequired[int]
    """Nodes to run (default `nodes_min`)."""
    capacity: NotRequired[Capacity]
    """spot-with-fallback (default), spot-only or on-demand."""
    on_demand_base_nodes: NotRequired[int]
    """Nodes always bought on-demand in the main group (default 0)."""
    region: NotRequired[str | None]
    """AWS region (default: the provider's)."""
    checkpoint_retention_days: NotRequired[int]
    """Checkpoints older than this many days are deleted (default 14)."""
    fallback_after_minutes: NotRequired[int]
    """Minutes spot may fall short before on-demand covers it (default 10, 1..120)."""
    spot_stable_minutes: NotRequired[int]
    """Minutes a spot instance must stay in service before an on-demand node is drained for
    it (default 15, 1..240)."""
    checkpoint_grace_seconds: NotRequired[int]
    """Most seconds a node the fleet removes waits for the job's checkpoint (default 900,
    60..7200): the agent heartbeats the lifecycle action until the hook is done or this."""
    vpc_id: NotRequired[str | None]
    """VPC of the fleet (default: the region's default VPC)."""
    subnet_ids: NotRequired[list[str] | None]
    """Subnets to launch in, with a route out (NAT, or an internet gateway with
    `associate_public_ip`) and ideally an S3 gateway endpoint. Give `vpc_id` with them.
    Default: the fleet creates its own network (`finops:aws:FleetNetwork`, see `egress`)."""
    associate_public_ip: NotRequired[bool]
    """With `subnet_ids`: give instances a public IPv4 address (default false). Without, the
    fleet's network decides (`egress`)."""
    egress: NotRequired[FleetEgress]
    """Without `subnet_ids`: how nodes of the fleet's own network reach the internet,
    public-ip (default, no inbound rule) or nat-gateway; S3 goes through a gateway endpoint."""
    ami_id: NotRequired[str | None]
    """AMI (default: the latest AWS Deep Learning Base OSS NVIDIA AMI, Amazon Linux 2023)."""
    root_volume_size_gib: NotRequired[int]
    """Size of the encrypted gp3 root volume, GiB (default 200)."""
    agent_wheel: NotRequired[str | None]
    """A built `aifinops` wheel to bundle (default: one built from this checkout)."""
    agent_requirements: NotRequired[list[str] | None]
    """Instead of the bundle: requirements pinned with `--hash`, from `agent_index_url`."""
    agent_index_url: NotRequired[str | None]
    """Your package index (https) for `agent_requirements`."""
    scale_on_queue: NotRequired[str | None]
    """SQS queue (ARN or URL, in the fleet's region) whose depth sizes the fleet: nodes =
    ceil((visible + in-flight messages) / `jobs_per_node`) within `nodes_min`..`nodes_max`,
    zero when the queue is empty (docs/components-aws.md, "Queue-depth scaling")."""
    jobs_per_node: NotRequired[int | None]
    """Jobs one node works on at a time, with `scale_on_queue` (1..100000)."""


@dataclass(frozen=True)
class FleetPlan:
    """The validated, catalog-resolved arguments."""

    instance_types: list[str]
    capacity: Capacity
    nodes_min: int
    nodes_desired: int
    nodes_max: int
    on_demand_base: int
    region: str | None
    catalog_region: str
    retention_days: int
    fallback_after_minutes: int
    root_volume_size_gib: int
    associate_public_ip: bool
    egress: FleetEgress
    queue_url: str | None = None
    queue_arn: str | None = None
    jobs_per_node: int | None = None
    spot_stable_minutes: int = 15
    checkpoint_grace_seconds: int = 900

    @property
    def has_controller(self) -> bool:
        """The controller Lambda owns the groups' desired capacities."""
        return self.has_fallback or self.queue_url is not None

    @property
    def has_fallback(self) -> bool:
        return self.capacity == Capacity.SPOT_WITH_FALLBACK

    @property
    def buys_spot(self) -> bool:
        return self.capacity != Capacity.ON_DEMAND


def is_arm(info: catalog.InstanceInfo) -> bool:
    """Graviton families (g5g, c7g...) need arm64 AMIs; the fleet's AMI is x86_64."""
    return _GRAVITON_FAMILY.match(info.family) is not None


def interchangeable(base: catalog.InstanceInfo, spot: bool) -> tuple[list[str], list[str]]:
    """Types that can run `base`'s job: as many accelerators (the job's world size holds), at
    least as much accelerator memory, same vendor and kind, x86_64; cheapest first.

    First list: also at least 90 % of `base`'s training throughput for at most twice its
    price. Second: the rest, only to reach the minimum number of spot pools.
    """
    close: list[catalog.InstanceInfo] = []
    rest: list[catalog.InstanceInfo] = []
    price = base.usd_per_hour(spot)
    for info in catalog.equivalents(base.instance_type, base.region, spot=spot):
        if info.instance_type == base.instance_type or is_arm(info):
            continue
        if info.accelerator_count != base.accelerator_count:
            continue
        similar = (
            info.throughput_per_node >= 0.9 * base.throughput_per_node
            and info.usd_per_hour(spot) <= 2 * price
        )
        (close if similar else rest).append(info)

    def by_price(infos: list[catalog.InstanceInfo]) -> list[str]:
        return [
            i.instance_type
            for i in sorted(infos, key=lambda i: (i.usd_per_hour(spot), i.instance_type))
        ]

    return by_price(close), by_price(rest)


def pick_instance_types(
    instance_types: list[str] | None,
    accelerator: str | None,
    accelerators_per_node: int,
    region: str,
    spot: bool,
) -> list[str]:
    """Overrides for the Auto Scaling group: at least three interchangeable types for spot.

    From `instance_types` (kept first, in order, padded with equivalents of the first), or the
    cheapest type with `accelerators_per_node` x `accelerator` and its equivalents.
    """
    if instance_types:
        for i, name in enumerate(instance_types):
            try:
                info = catalog.lookup(name, region, cloud="aws")
            except CatalogError as exc:
                raise _args.invalid(
                    f"instance_types[{i}]", name, f"{exc} (EC2 types in {region})"
                ) from None
            if info.service != "ec2":
                raise _args.invalid(
                    f"instance_types[{i}]", name, "an EC2 instance type (not a SageMaker ml.*)"
                )
            if is_arm(info):
                raise _args.invalid(
                    f"instance_types[{i}]", name, "an x86_64 type (the fleet's AMI is x86_64)"
                )
        chosen = list(dict.fromkeys(instance_types))
        base = catalog.lookup(chosen[0], region, cloud="aws")
    else:
        assert accelerator is not None
        try:
            model = catalog.accelerator(accelerator).model
        except CatalogError:
            known = sorted({i.accelerator for i in _ec2_rows(region)})
            raise _args.invalid("accelerator", accelerator, known) from None
        rows = catalog.cheapest(
            model, accelerators_per_node, spot=spot, cloud="aws", region=region, service="ec2"
        )
        exact = [i for i in rows if i.accelerator_count == accelerators_per_node]
        if not rows:
            known = sorted({i.accelerator for i in _ec2_rows(region)})
            hint = did_you_mean(accelerator, known)
            raise ValueError(
                f"accelerator: {accelerator!r}: no EC2 type in {region} has "
                f"{accelerators_per_node} x {model}"
                + (" with a spot price" if spot else "")
                + f"{hint}; EC2 accelerators in {region}: {', '.join(known)}"
            )
        base = (exact or rows)[0]
        chosen = [base.instance_type]
    close, rest = interchangeable(base, spot)
    wanted = max(PREFERRED_OVERRIDES, len(chosen))
    chosen += [name for name in close if name not in chosen][: max(0, wanted - len(chosen))]
    needed = MIN_OVERRIDES if spot else 1  # pools matter to spot; on-demand needs one type
    if len(chosen) < needed:
        chosen += [name for name in rest if name not in chosen][: needed - len(chosen)]
    chosen = chosen[: max(MAX_OVERRIDES, len(instance_types or []))]
    if len(chosen) < needed:
        raise _args.invalid(
            "instance_types" if instance_types else "accelerator",
            instance_types or accelerator,
            f"the catalog has only {len(chosen)} interchangeable type(s) in {region} "
            f"({', '.join(chosen)}); a spot fleet needs at least {MIN_OVERRIDES} pools: "
            "name more instance types, or use capacity on-demand",
        )
    return chosen


def _ec2_rows(region: str) -> list[catalog.InstanceInfo]:
    return [
        catalog.lookup(name, region)
        for name in catalog.instance_types(cloud="aws", service="ec2")
        if region in catalog.regions(name)
    ]


def plan_fleet(args: AwsGpuTrainingFleetArgs) -> FleetPlan:
    """Validate `args` (ValueError naming the field, the value and what is allowed)."""
    raw: dict[str, Any] = dict(args)
    _args.known_keys(raw, AwsGpuTrainingFleetArgs.__annotations__)
    _args.require(raw, "model_version")
    _common.check_tags(raw.get("tags"), workload=True)
    capacity = _args.enum_arg(
        "", "capacity", raw.get("capacity") or None, Capacity, Capacity.SPOT_WITH_FALLBACK
    )
    nodes_max = _args.whole_number("nodes_max", raw.get("nodes_max"), 1, 1000)
    nodes_min = _args.int_arg("", raw, "nodes_min", 0, 0, nodes_max)
    nodes_desired = _args.int_arg("", raw, "nodes_desired", nodes_min, nodes_min, nodes_max)
    base = _args.int_arg("", raw, "on_demand_base_nodes", 0, 0, nodes_max)
    retention = _args.int_arg("", raw, "checkpoint_retention_days", 14, 1, 3650)
    fallback = _args.int_arg("", raw, "fallback_after_minutes", 10, 1, 120)
    root_gib = _args.int_arg("", raw, "root_volume_size_gib", 200, 30, 16384)
    stable = _args.int_arg("", raw, "spot_stable_minutes", 15, 1, 240)
    grace = _args.int_arg("", raw, "checkpoint_grace_seconds", 900, 60, 7200)
    instance_types = raw.get("instance_types") or None
    accelerator = raw.get("accelerator") or None
    if bool(instance_types) == bool(accelerator):
        raise _args.invalid(
            "instance_types/accelerator",
            {"instance_types": instance_types, "accelerator": accelerator},
            "give exactly one of instance_types or accelerator",
        )
    per_node = _args.int_arg("", raw, "accelerators_per_node", 1, 1, 16)
    if raw.get("subnet_ids") and not raw.get("vpc_id"):
        raise _args.invalid("vpc_id", None, "give the VPC of subnet_ids")
    egress = _args.enum_arg("", "egress", raw.get("egress"), FleetEgress, FleetEgress.PUBLIC_IP)
    region = raw.get("region") or None
    where = _common.catalog_region(region)
    queue_url, queue_arn, jobs_per_node = _queue_scaling(raw, where)
    types = pick_instance_types(
        instance_types, accelerator, per_node, where, capacity != Capacity.ON_DEMAND
    )
    return FleetPlan(
        instance_types=types,
        capacity=capacity,
        nodes_min=nodes_min,
        nodes_desired=nodes_desired,
        nodes_max=nodes_max,
        on_demand_base=base,
        region=region,
        catalog_region=where,
        retention_days=retention,
        fallback_after_minutes=fallback,
        root_volume_size_gib=root_gib,
        spot_stable_minutes=stable,
        checkpoint_grace_seconds=grace,
        associate_public_ip=bool(raw.get("associate_public_ip", False)),
        egress=egress,
        queue_url=queue_url,
        queue_arn=queue_arn,
        jobs_per_node=jobs_per_node,
    )


def _queue_scaling(raw: dict[str, Any], region: str) -> tuple[str | None, str | None, int | None]:
    """(queue URL, queue ARN, jobs per node) of `scale_on_queue`, or Nones without it."""
    queue = raw.get("scale_on_queue") or None
    if queue is None:
        if raw.get("jobs_per_node") is not None:
            raise _args.invalid(
                "scale_on_queue", None, "an SQS queue ARN or URL with jobs_per_node"
            )
        return None, None, None
    arn = sqs_queue_arn(str(queue))
    url = sqs_queue_url(str(queue))
    if arn is None or url is None:
        raise _args.invalid(
            "scale_on_queue",
            queue,
            "an SQS queue ARN (arn:aws:sqs:<region>:<account>:<name>) or URL "
            "(https://sqs.<region>.amazonaws.com/<account>/<name>)",
        )
    queue_region = arn.split(":")[3]
    if queue_region != region:
        raise _args.invalid(
            "scale_on_queue",
            queue,
            f"a queue in the fleet's region {region} (it is in {queue_region})",
        )
    if raw.get("jobs_per_node") is None:
        raise _args.invalid("jobs_per_node", None, "jobs one node works on at a time (1..100000)")
    jobs_per_node = _args.whole_number("jobs_per_node", raw.get("jobs_per_node"), 1, 100_000)
    return url, arn, jobs_per_node


def instance_policy_statements(
    bucket_arn: pulumi.Input[str], agent_object: str | None = None, fleet: str | None = None
) -> list[dict[str, Any]]:
    """The instance role's permissions: the agent's metrics, the checkpoint prefix, tags, and
    reading exactly the agent bundle object `agent_object` (a key of the bucket); with
    queue-depth scaling (`fleet` given), protecting its own fleet's instances from scale-in
    while they hold a job."""
    agent = (
        [
            {
                "Sid": "AgentBundle",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": pulumi.Output.concat(bucket_arn, "/", agent_object),
            }
        ]
        if agent_object
        else []
    )
    protection = [
        {
            "Sid": "ScaleInProtectionWhileWorking",
            "Effect": "Allow",
            "Action": "autoscaling:SetInstanceProtection",
            "Resource": "*",  # the group's ARN would make the role depend on the group
            "Condition": {"StringEquals": {f"autoscaling:ResourceTag/{FLEET_TAG}": fleet}},
        }
    ]
    return [
        *agent,
        *(protection if fleet else []),
        {
            "Sid": "AgentMetricsOnly",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",  # PutMetricData has no resource type; the namespace is the scope
            "Condition": {"StringEquals": {"cloudwatch:namespace": AGENT_METRIC_NAMESPACE}},
        },
        {
            "Sid": "CheckpointObjects",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": pulumi.Output.concat(bucket_arn, "/", CHECKPOINT_PREFIX, "*"),
        },
        {
            "Sid": "CheckpointListing",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [f"{CHECKPOINT_PREFIX}*"]}},
        },
        {
            "Sid": "OwnTags",
            "Effect": "Allow",
            "Action": "ec2:DescribeTags",
            "Resource": "*",  # DescribeTags has no resource-level permissions
        },
    ]


def lifecycle_policy_statements(
    group_arns: list[pulumi.Input[str]], fleet: str
) -> list[dict[str, Any]]:
    """The instance role's part in the termination lifecycle hook: find its group, heartbeat
    and complete lifecycle actions of this fleet's groups only."""
    return [
        {
            "Sid": "FindOwnGroup",
            "Effect": "Allow",
            "Action": "autoscaling:DescribeAutoScalingInstances",
            "Resource": "*",  # Describe* has no resource-level permissions
        },
        {
            "Sid": "CompleteOwnLifecycleActions",
            "Effect": "Allow",
            "Action": [
                "autoscaling:CompleteLifecycleAction",
                "autoscaling:RecordLifecycleActionHeartbeat",
            ],
            "Resource": group_arns,
            "Condition": {"StringEquals": {f"autoscaling:ResourceTag/{FLEET_TAG}": fleet}},
        },
    ]


def controller_policy_statements(
    group_arn: pulumi.Input[str],
    on_demand_arn: pulumi.Input[str] | None,
    queue_arn: str | None = None,
) -> list[dict[str, Any]]:
    """The controller's permissions: read groups, size the fleet's (one or two), its one tag;
    with queue-depth scaling, read the queue's message counts."""
    queue = [
        {
            "Sid": "ReadQueueDepth",
            "Effect": "Allow",
            "Action": "sqs:GetQueueAttributes",
            "Resource": queue_arn,
        }
    ]
    groups: pulumi.Input[str] | list[pulumi.Input[str]] = (
        [group_arn, on_demand_arn] if on_demand_arn is not None else group_arn
    )
    return (queue if queue_arn else []) + [
        {
            "Sid": "ReadGroups",
            "Effect": "Allow",
            "Action": "autoscaling:DescribeAutoScalingGroups",
            "Resource": "*",  # Describe* has no resource-level permissions
        },
        {
            "Sid": "SizeFleetGroups",
            "Effect": "Allow",
            "Action": "autoscaling:UpdateAutoScalingGroup",
            "Resource": groups,
        },
        {
            "Sid": "ShortfallClockTag",
            "Effect": "Allow",
            "Action": ["autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"],
            "Resource": group_arn,
            "Condition": {
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": [
                        fallback_controller.SHORTFALL_SINCE_TAG,
                        fallback_controller.SPOT_HISTORY_TAG,
                    ]
                }
            },
        },
    ]


class AwsGpuTrainingFleet(pulumi.ComponentResource):
    """A GPU training fleet: launch template, Auto Scaling groups, checkpoint bucket, instance
    role, and (spot-with-fallback) an on-demand group plus the fallback controller."""

    instance_types: pulumi.Output[list[str]]
    """Instance types of the groups' overrides, preferred first."""
    group_name: pulumi.Output[str]
    """The main Auto Scaling group (spot above the on-demand base)."""
    on_demand_group_name: pulumi.Output[str]
    """The fallback on-demand group ("" without spot-with-fallback)."""
    launch_template_id: pulumi.Output[str]
    checkpoint_bucket: pulumi.Output[str]
    """Bucket name; checkpoints go under `checkpoints/`."""
    instance_role_arn: pulumi.Output[str]
    controller_function_name: pulumi.Output[str]
    """The fallback controller Lambda ("" without spot-with-fallback)."""

    def __init__(
        self,
        name: str,
        args: AwsGpuTrainingFleetArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        _common.check_name(name)
        plan = plan_fleet(args)
        source = agent_artifact.agent_source(
            f"{TYPE_TOKEN} {name!r}", args, progress=lambda message: pulumi.log.info(message)
        )
        super().__init__(_hosting.type_token(type(self), TYPE_TOKEN), name, None, opts)
        tags = _common.resource_tags(args["tags"], args["model_version"], **{FLEET_TAG: name})
        child = pulumi.ResourceOptions(parent=self)
        region = plan.region

        vpc_id, subnet_ids, public_ip = self._network(name, args, plan, tags)
        bucket = self._checkpoint_bucket(name, plan, tags)
        install: pulumi.Output[AgentInstall]
        agent_object = None
        if isinstance(source, agent_artifact.AgentBundle):
            bundle = source
            agent_object = bundle.object_name
            aws.s3.BucketObjectv2(
                f"{name}-agent-bundle",
                aws.s3.BucketObjectv2Args(
                    bucket=bucket.id,
                    key=bundle.object_name,
                    source=pulumi.FileAsset(str(bundle.path)),
                    content_type="application/x-tar",
                    checksum_algorithm="SHA256",
                    region=region,
                    tags=tags,
                ),
                opts=child,
            )
            install = bucket.bucket.apply(
                lambda bucket_name: BundleInstall(
                    bundle.sha256, ("aws", bucket_name, bundle.object_name)
                )
            )
        else:
            install = pulumi.Output.from_input(source)
        role = aws.iam.Role(
            f"{name}-instance-role",
            aws.iam.RoleArgs(
                assume_role_policy=_common.assume_role_policy("ec2.amazonaws.com"),
                description=f"finops training fleet {name}: agent metrics, checkpoints",
                tags=tags,
            ),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-instance-policy",
            aws.iam.RolePolicyArgs(
                role=role.id,
                policy=_common.policy_document(
                    instance_policy_statements(
                        bucket.arn, agent_object, name if plan.queue_url else None
                    )
                ),
            ),
            opts=child,
        )
        profile = aws.iam.InstanceProfile(
            f"{name}-instance-profile",
            aws.iam.InstanceProfileArgs(role=role.name, tags=tags),
            opts=child,
        )
        security_group = aws.ec2.SecurityGroup(
            f"{name}-security-group",
            aws.ec2.SecurityGroupArgs(
                description=f"finops training fleet {name}: no inbound, outbound for agent and data",
                vpc_id=vpc_id,
                region=region,
                tags=tags,
            ),
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-egress",
            aws.vpc.SecurityGroupEgressRuleArgs(
                security_group_id=security_group.id,
                ip_protocol="-1",
                cidr_ipv4="0.0.0.0/0",
                description="package installs, S3, CloudWatch, the training job's data",
                region=region,
                tags=tags,
            ),
            opts=child,
        )
        template = self._launch_template(
            name, args, plan, tags, profile, security_group, install, public_ip
        )
        group = self._group(name, "group", plan, tags, template, subnet_ids, on_demand=False)
        groups = [group]
        self.instance_types = pulumi.Output.from_input(plan.instance_types)
        self.group_name = group.name
        self.launch_template_id = template.id
        self.checkpoint_bucket = bucket.bucket
        self.instance_role_arn = role.arn
        self.on_demand_group_name = pulumi.Output.from_input("")
        self.controller_function_name = pulumi.Output.from_input("")
        on_demand = None
        if plan.has_fallback:
            on_demand = self._group(
                name, "on-demand", plan, tags, template, subnet_ids, on_demand=True
            )
            self.on_demand_group_name = on_demand.name
            groups.append(on_demand)
        if plan.has_controller:
            function = self._controller(name, plan, tags, group, on_demand)
            self.controller_function_name = function.name
        aws.iam.RolePolicy(
            f"{name}-lifecycle-policy",
            aws.iam.RolePolicyArgs(
                role=role.id,
                policy=_common.policy_document(
                    lifecycle_policy_statements([g.arn for g in groups], name)
                ),
            ),
            opts=child,
        )
        self.register_outputs(
            {
                "instanceTypes": self.instance_types,
                "groupName": self.group_name,
                "onDemandGroupName": self.on_demand_group_name,
                "launchTemplateId": self.launch_template_id,
                "checkpointBucket": self.checkpoint_bucket,
                "instanceRoleArn": self.instance_role_arn,
                "controllerFunctionName": self.controller_function_name,
            }
        )

    def _network(
        self, name: str, args: AwsGpuTrainingFleetArgs, plan: FleetPlan, tags: dict[str, str]
    ) -> tuple[pulumi.Input[str], pulumi.Input[list[str]], bool]:
        """(VPC, subnets, public address per node): the caller's subnets, else the fleet's own
        network with egress (see components/aws/network.py)."""
        given = args.get("subnet_ids")
        if given:
            subnet_ids = given if isinstance(given, pulumi.Output) else list(given)
            return args.get("vpc_id") or "", subnet_ids, plan.associate_public_ip
        network = AwsFleetNetwork(
            f"{name}-network",
            {"tags": tags, "egress": plan.egress, "region": plan.region},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return network.vpc_id, network.subnet_ids, network.associate_public_ip

    def _checkpoint_bucket(self, name: str, plan: FleetPlan, tags: dict[str, str]) -> aws.s3.Bucket:
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{name}-checkpoints",
            # bucket_prefix: lower case, at most 37 characters
            aws.s3.BucketArgs(
                bucket_prefix=f"{name.lower()[:31]}-ckpt-", region=plan.region, tags=tags
            ),
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-checkpoints-public-access",
            aws.s3.BucketPublicAccessBlockArgs(
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                region=plan.region,
            ),
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-checkpoints-ownership",
            aws.s3.BucketOwnershipControlsArgs(
                bucket=bucket.id,
                rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
                region=plan.region,
            ),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-checkpoints-encryption",
            # its resource args class is named *InitArgs: *Args is a nested type of Bucket
            aws.s3.BucketServerSideEncryptionConfigurationInitArgs(
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="aws:kms"  # the account's aws/s3 key
                        ),
                        bucket_key_enabled=True,  # one KMS call per object, not per part
                    )
                ],
                region=plan.region,
            ),
            opts=child,
        )
        # A job that overwrites its only checkpoint with a corrupt one can go back one
        # version; old versions expire after a day, so storage stays bounded.
        versioning = aws.s3.BucketVersioning(
            f"{name}-checkpoints-versioning",
            aws.s3.BucketVersioningInitArgs(
                bucket=bucket.id,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                    status="Enabled"
                ),
                region=plan.region,
            ),
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-checkpoints-lifecycle",
            aws.s3.BucketLifecycleConfigurationArgs(
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketLifecycleConfigurationRuleArgs(
                        id="expire-old-checkpoints",
                        status="Enabled",
                        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(
                            prefix=CHECKPOINT_PREFIX
                        ),
                        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                            days=plan.retention_days
                        ),
                        noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                            noncurrent_days=NONCURRENT_CHECKPOINT_DAYS
                        ),
                    ),
                    aws.s3.BucketLifecycleConfigurationRuleArgs(
                        id="abort-incomplete-uploads",
                        status="Enabled",
                        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                            days_after_initiation=1
                        ),
                    ),
                ],
                region=plan.region,
            ),
            # S3 refuses noncurrent-version rules until versioning is on
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(
            f"{name}-checkpoints-tls-only",
            aws.s3.BucketPolicyArgs(
                bucket=bucket.id,
                policy=_common.policy_document(
                    [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ]
                ),
                region=plan.region,
            ),
            opts=child,
        )
        return bucket

    def _launch_template(
        self,
        name: str,
        args: AwsGpuTrainingFleetArgs,
        plan: FleetPlan,
        tags: dict[str, str],
        profile: aws.iam.InstanceProfile,
        security_group: aws.ec2.SecurityGroup,
        install: pulumi.Output[AgentInstall],
        public_ip: bool,
    ) -> aws.ec2.LaunchTemplate:
        region = plan.region
        given_ami = args.get("ami_id")
        if given_ami:
            image_id: pulumi.Input[str] = given_ami
            root_device: pulumi.Input[str] = "/dev/xvda"
        else:
            ami = aws.ec2.get_ami_output(
                most_recent=True,
                owners=["amazon"],
                filters=[
                    aws.ec2.GetAmiFilterArgs(name="name", values=[DEFAULT_AMI_NAME]),
                    aws.ec2.GetAmiFilterArgs(name="architecture", values=["x86_64"]),
                ],
                region=region,
                opts=pulumi.InvokeOptions(parent=self),
            )
            image_id, root_device = ami.id, ami.root_device_name
        config = agent_config(
            "aws",
            name,
            tags,
            cloudwatch=True,
            on_rebalance=True,
            lifecycle_hook=LIFECYCLE_HOOK_NAME,
            checkpoint_grace_seconds=plan.checkpoint_grace_seconds,
        )
        user_data = install.apply(
            lambda how: base64.b64encode(agent_bootstrap_script(config, how).encode()).decode()
        )
        return aws.ec2.LaunchTemplate(
            f"{name}-launch-template",
            aws.ec2.LaunchTemplateArgs(
                name_prefix=f"{name}-",
                description=f"finops training fleet {name}",
                image_id=image_id,
                update_default_version=True,
                ebs_optimized="true",
                iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
                metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                    http_endpoint="enabled",
                    http_tokens="required",  # IMDSv2 only
                    # training containers on the Docker bridge are one hop further away
                    http_put_response_hop_limit=2,
                ),
                block_device_mappings=[
                    aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                        device_name=root_device,
                        ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                            volume_type="gp3",
                            volume_size=plan.root_volume_size_gib,
                            encrypted="true",
                            delete_on_termination="true",
                        ),
                    )
                ],
                network_interfaces=[
                    aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                        device_index=0,
                        associate_public_ip_address=str(public_ip).lower(),
                        delete_on_termination="true",
                        security_groups=[security_group.id],
                    )
                ],
                # Tags on the group alone never reach volumes and network interfaces.
                tag_specifications=[
                    aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
                    for kind in ("instance", "volume", "network-interface")
                ],
                user_data=user_data,
                region=region,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _group(
        self,
        name: str,
        role: str,
        plan: FleetPlan,
        tags: dict[str, str],
        template: aws.ec2.LaunchTemplate,
        subnet_ids: pulumi.Input[list[str]],
        *,
        on_demand: bool,
    ) -> aws.autoscaling.Group:
        all_on_demand = on_demand or not plan.buys_spot
        group_tags = [
            aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=True)
            for key, value in tags.items()
        ]
        if plan.has_fallback:
            # The controller owns both groups' desired capacity; Pulumi owns these two.
            group_tags += [
                aws.autoscaling.GroupTagArgs(
                    key=fallback_controller.FLEET_DESIRED_TAG,
                    value=str(plan.nodes_desired),
                    propagate_at_launch=False,
                ),
                aws.autoscaling.GroupTagArgs(
                    key=fallback_controller.FLEET_MAX_TAG,
                    value=str(plan.nodes_max),
                    propagate_at_launch=False,
                ),
            ]
        # The controller owns both groups' desired capacity and may lower the main group's
        # below nodes_min (see its docstring): with a fallback, the floor is its job.
        min_size = 0 if on_demand or plan.has_fallback else plan.nodes_min
        desired_capacity = 0 if on_demand else plan.nodes_desired
        group = aws.autoscaling.Group(
            f"{name}-{role}",
            aws.autoscaling.GroupArgs(
                max_size=plan.nodes_max,
                min_size=min_size,
                desired_capacity=desired_capacity,
                vpc_zone_identifiers=subnet_ids,
                capacity_rebalance=not all_on_demand,
                health_check_type="EC2",
                # do not block `pulumi up` until spot capacity shows up
                wait_for_capacity_timeout="0",
                mixed_instances_policy=aws.autoscaling.GroupMixedInstancesPolicyArgs(
                    launch_template=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateArgs(
                        launch_template_specification=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecificationArgs(
                            launch_template_id=template.id, version="$Latest"
                        ),
                        overrides=[
                            aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArgs(
                                instance_type=instance_type
                            )
                            for instance_type in plan.instance_types
                        ],
                    ),
                    instances_distribution=aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
                        on_demand_base_capacity=0 if on_demand else plan.on_demand_base,
                        on_demand_percentage_above_base_capacity=100 if all_on_demand else 0,
                        on_demand_allocation_strategy=ON_DEMAND_ALLOCATION_STRATEGY,
                        spot_allocation_strategy=SPOT_ALLOCATION_STRATEGY,
                    ),
                ),
                region=plan.region,
                tags=group_tags,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=["desiredCapacity"] if plan.has_controller else None,
            ),
        )
        aws.autoscaling.LifecycleHook(
            f"{name}-{role}-checkpoint-hook",
            aws.autoscaling.LifecycleHookArgs(
                autoscaling_group_name=group.name,
                name=LIFECYCLE_HOOK_NAME,
                lifecycle_transition="autoscaling:EC2_INSTANCE_TERMINATING",
                heartbeat_timeout=LIFECYCLE_HEARTBEAT_TIMEOUT_SECONDS,
                # a hook that times out still lets the node go: never a stuck instance
                default_result="CONTINUE",
                region=plan.region,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return group

    def _controller(
        self,
        name: str,
        plan: FleetPlan,
        tags: dict[str, str],
        group: aws.autoscaling.Group,
        on_demand: aws.autoscaling.Group | None,
    ) -> aws.lambda_.Function:
        child = pulumi.ResourceOptions(parent=self)
        environment: dict[str, pulumi.Input[str]] = {
            "SPOT_GROUP_NAME": group.name,
            "ON_DEMAND_GROUP_NAME": on_demand.name if on_demand is not None else "",
            "FALLBACK_AFTER_MINUTES": str(plan.fallback_after_minutes),
            "SPOT_STABLE_MINUTES": str(plan.spot_stable_minutes),
        }
        if plan.queue_url:
            environment |= {
                "QUEUE_URL": plan.queue_url,
                "JOBS_PER_NODE": str(plan.jobs_per_node),
                "NODES_MIN": str(plan.nodes_min),
            }
        jobs = []
        if on_demand is not None:
            jobs.append("spot fallback and reversion")
        if plan.queue_url:
            jobs.append("queue-depth scaling")
        function, _role = _common.lambda_function(
            f"{name}-fallback",
            "fallback_controller",
            description=f"finops {' and '.join(jobs)} for fleet {name}",
            role_statements=controller_policy_statements(
                group.arn, on_demand.arn if on_demand is not None else None, plan.queue_arn
            ),
            environment=environment,
            tags=tags,
            parent=self,
            region=plan.region,
        )
        pattern = pulumi.Output.json_dumps(
            {
                "source": ["aws.autoscaling"],
                "detail-type": list(LAUNCH_EVENTS),
                "detail": {"AutoScalingGroupName": [group.name]},
            }
        )
        rules = {
            "schedule": aws.cloudwatch.EventRuleArgs(
                description=f"periodic {' and '.join(jobs)} of fleet {name}",
                schedule_expression=CONTROLLER_SCHEDULE,
                region=plan.region,
                tags=tags,
            ),
        }
        if on_demand is not None:  # spot launch failures matter to the fallback only
            rules["launch-events"] = aws.cloudwatch.EventRuleArgs(
                description=f"spot launches and failures of fleet {name}",
                event_pattern=pattern,
                region=plan.region,
                tags=tags,
            )
        for role, rule_args in rules.items():
            rule = aws.cloudwatch.EventRule(f"{name}-{role}", rule_args, opts=child)
            _common.invoke_on_rule(
                f"{name}-{role}", rule, function, parent=self, region=plan.region
            )
        return function


def from_config(fleet: TrainingFleet, config: StackConfig) -> AwsGpuTrainingFleetArgs:
    """Arguments for one `finops:trainingFleets` entry of a stack."""
    args: AwsGpuTrainingFleetArgs = {
        "nodes_min": fleet.nodes.min,
        "nodes_desired": fleet.nodes.desired,
        "nodes_max": fleet.nodes.max,
        "model_version": fleet.model_version,
        "tags": config.tags.as_dict(),
        "capacity": fleet.capacity,
        "on_demand_base_nodes": fleet.on_demand_base,
        "region": config.region(fleet.cloud, fleet.region),
        "checkpoint_retention_days": fleet.checkpoint_retention_days,
        "fallback_after_minutes": fleet.fallback_after_minutes,
        "spot_stable_minutes": fleet.spot_stable_minutes,
        "checkpoint_grace_seconds": fleet.checkpoint_grace_seconds,
    }
    if fleet.scale_on is not None:
        args["scale_on_queue"] = fleet.scale_on.queue
        args["jobs_per_node"] = fleet.scale_on.jobs_per_node
    if fleet.instance_types:
        args["instance_types"] = list(fleet.instance_types)
    else:
        args["accelerator"] = fleet.accelerator
        args["accelerators_per_node"] = fleet.accelerators_per_node or 1
    if fleet.subnet_ids:
        args["vpc_id"] = fleet.vpc_id
        args["subnet_ids"] = list(fleet.subnet_ids)
    if fleet.egress:
        args["egress"] = FleetEgress(fleet.egress.value)
    args.update(agent_artifact.agent_args(config.agent))  # type: ignore[typeddict-item]
    return args
