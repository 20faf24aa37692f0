"""`finops:gcp:GpuTrainingFleet`: GPU training nodes on Spot VMs with an on-demand fallback group.

What it creates (children named `<name>-<role>`):

- `<name>-checkpoints`: a regional bucket beside the fleet, uniform access, public access
  prevention enforced, objects deleted after `checkpoint_retention_days`, soft delete off
  (checkpoints are large and rewritten often; soft-deleted copies would be billed for a week).
- `<name>-sa`: the nodes' service account with `roles/monitoring.metricWriter` on the
  project and `roles/storage.objectUser` on the checkpoint bucket only.
- `<name>-spot-template` + `<name>-spot`: an instance template with
  `provisioning_model=SPOT`, `instance_termination_action` (DELETE by default, see
  `GcpTerminationAction`), `on_host_maintenance=TERMINATE` (required for GPUs) and
  `automatic_restart=False` (required for Spot), and a regional managed instance group at the
  spot share of `node_count`.
- `<name>-on-demand-template` + `<name>-on-demand`: the same machine on `STANDARD`
  provisioning, in a second regional MIG sized `on_demand_base` (0 by default): the fallback.

Capacity: `spot-with-fallback` creates both groups, `spot-only` the spot group only,
`on-demand` the on-demand group only, at `node_count`.

Fallback: a MIG has one provisioning model, so the fallback is a second group, as on AWS, and
the same controller decides (components/gcp/fallback.py): with spot-with-fallback a Cloud
Function, called every minute by Cloud Scheduler, applies the AWS fleet's pure `decide` to
the two groups: after `fallback_after_minutes` of spot shortfall it raises the on-demand group
above its base by what spot is missing, and lowers it as soon as spot returns, within
`node_count_max`. The controller then owns both groups' target sizes
(`ignore_changes=["targetSize"]`); `node_count` reaches it through its environment.
`fallback_controller=False` leaves the groups at their planned sizes.

Network: nodes have no external IP by default (`assign_external_ip=False`). Without a
`network`/`subnetwork` argument the fleet creates its own (`finops:gcp:FleetNetwork`: Cloud
Router + Cloud NAT, Private Google Access on the subnetwork); a given subnetwork must offer
the same (Cloud NAT and Private Google Access), or the nodes reach nothing.

Agent: every node boots the finops agent with `[metadata] provider = "gcp"`, which watches
`instance/preempted` and writes `/run/finops-agent/interruption.json` for the job. The agent
comes from the stack's bundle (components/agent_artifact.py), uploaded to the checkpoint
bucket under `agent/`; the nodes' service account may read exactly that object (an IAM
condition on the object's name) and verifies its sha256 before installing. Checkpoints go
under `checkpoints/` (as on AWS): the service account may write only there, and only there do
objects expire after `checkpoint_retention_days`.

Queue-depth scaling (`scale_on_subscription`, `jobs_per_node`): the fleet runs
ceil(undelivered messages / jobs_per_node) nodes within `node_count_min`..`node_count_max`
(docs/components-gcp-azure.md). A fleet of one group (spot-only, on-demand) gets a
`<name>-autoscaler`: the MIG autoscaler on the Pub/Sub metric
`subscription/num_undelivered_messages` as a per-group metric with `single_instance_assignment
= jobs_per_node`, which scales to zero. With spot-with-fallback the controller reads the same
metric (Cloud Monitoring API) and uses it as the fleet's desired size, so the on-demand group
covers only what the queue needs; an autoscaler on the spot group would fight it.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Required, TypedDict

import pulumi
import pulumi_gcp as gcp

from aifinops.components import _args, _hosting, agent_artifact
from aifinops.components.agent_bootstrap import (
    GCE_GRACEFUL_SHUTDOWN_MAX_SECONDS,
    AgentInstall,
    BundleInstall,
    agent_bootstrap_script,
    agent_config,
    gce_shutdown_script,
)
from aifinops.components.gcp import _common
from aifinops.components.gcp.fallback import fallback_controller
from aifinops.components.gcp.network import GcpFleetNetwork, GcpFleetNetworkArgs
from aifinops.config import Capacity, pubsub_subscription

DEFAULT_IMAGE = "projects/deeplearning-platform-release/global/images/family/common-cu124-debian-11"
CHECKPOINT_PREFIX = "checkpoints/"
BACKLOG_METRIC = "pubsub.googleapis.com/subscription/num_undelivered_messages"


class GcpTerminationAction(StrEnum):
    """What Compute Engine does with a Spot VM it preempts."""

    DELETE = "DELETE"
    """The VM is deleted and nothing is billed until the MIG recreates it from the template
    when capacity returns; checkpoints live in the bucket, not on the boot disk. Default."""
    STOP = "STOP"
    """The VM is stopped and its boot disk kept (and billed); useful when the disk holds a
    dataset cache that is slow to rebuild."""


class GcpGpuTrainingFleetArgs(TypedDict, total=False):
    """Arguments of `finops:gcp:GpuTrainingFleet`."""

    model_version: Required[str]
    """The model version the fleet trains; written as the `model-version` label."""
    node_count: Required[int]
    """Nodes the fleet runs (the stack config's `nodes.desired`)."""
    node_count_max: int
    """Most nodes the fleet may run, spot and fallback together (`nodes.max`); default
    `node_count`. Leave room above `node_count`: that headroom is how the fallback controller
    tries spot again while on-demand covers a shortfall."""
    instance_type: str
    """A GCE GPU machine from the catalog: `g2-standard-8`, `a2-highgpu-1g`, `a3-highgpu-8g`,
    or N1 with attached GPUs as `n1-standard-8+nvidia-tesla-t4:1`. Or give `accelerator`."""
    accelerator: str
    """An accelerator model (`T4`, `L4`, `A100`...): the cheapest GCE machine with
    `accelerators_per_node` of them in the region is used."""
    accelerators_per_node: int
    """Accelerators per node when picking by `accelerator`; default 1."""
    capacity: Capacity
    """spot-with-fallback (default), spot-only or on-demand."""
    on_demand_base: int
    """Nodes always on STANDARD (on-demand) VMs; the rest of `node_count` is spot. Default 0."""
    region: str
    """GCP region; default the stack's `gcp:region`, else us-central1."""
    project: str
    """GCP project id; default the stack's `gcp:project`, else the provider's."""
    fallback_controller: bool
    """With spot-with-fallback, deploy the controller that raises the on-demand group while spot
    is short and lowers it when spot returns (Cloud Function + Cloud Scheduler); default True."""
    fallback_after_minutes: int
    """How long spot may stay short before on-demand fills in; default 10."""
    spot_stable_minutes: int
    """Minutes spot VMs must stay running before an on-demand VM is drained for them; default
    15."""
    checkpoint_grace_seconds: int
    """Most seconds a VM the fleet deletes waits for the job's checkpoint (the on-demand
    template's graceful shutdown and the shutdown script's bound); 60..3600, default 900."""
    termination_action: GcpTerminationAction
    """What happens to a preempted Spot VM: DELETE (default) or STOP."""
    checkpoint_retention_days: int
    """Days a checkpoint object is kept before the bucket's lifecycle rule deletes it; default 14."""
    network: str
    """VPC network of the nodes, with Cloud NAT and Private Google Access on `subnetwork`;
    default: the fleet creates one (`finops:gcp:FleetNetwork`)."""
    subnetwork: str
    """Subnetwork of the nodes (in `region`); give it with `network`."""
    assign_external_ip: bool
    """Give nodes an ephemeral external IP; default False (egress through Cloud NAT)."""
    spread_across_zones: bool
    """Spread nodes over the region's zones (target shape ANY) for spot obtainability;
    default False: one zone per group (ANY_SINGLE_ZONE), no cross-zone traffic charges and
    lower latency between nodes of a multi-node job."""
    source_image: str
    """Boot image or image family; default the Deep Learning VM CUDA 12.4 family."""
    boot_disk_size_gb: int
    """Boot disk size, GB; default 200."""
    secure_boot: bool
    """Shielded VM Secure Boot; default False because the GPU driver the image installs at
    boot is not signed for it. vTPM and integrity monitoring are always on."""
    agent_wheel: str
    """A built `aifinops` wheel to bundle (default: one built from this checkout)."""
    agent_requirements: list[str]
    """Instead of the bundle: requirements pinned with `--hash`, from `agent_index_url`."""
    agent_index_url: str
    """Your package index (https) for `agent_requirements`."""
    tags: dict[str, str]
    """Extra canonical tags (Project, Team, Environment...), written as GCP labels; the stack's
    tags are added by the stack transform."""
    scale_on_subscription: str
    """Pub/Sub subscription (`projects/<p>/subscriptions/<id>` in the fleet's project, or the
    id) whose backlog sizes the fleet: ceil(undelivered messages / `jobs_per_node`) nodes
    within `node_count_min`..`node_count_max`, zero when it is empty."""
    jobs_per_node: int
    """Jobs one node works on at a time, with `scale_on_subscription` (1..100000)."""
    node_count_min: int
    """Fewest nodes with `scale_on_subscription` (`nodes.min`); default 0."""


_COMPONENT = "finops:gcp:GpuTrainingFleet"


class GcpGpuTrainingFleet(pulumi.ComponentResource):
    """GPU training nodes on GCE Spot VMs in a regional MIG, with an on-demand fallback MIG,
    a checkpoint bucket, a least-privilege service account and the finops agent."""

    machine_type: pulumi.Output[str]
    """Catalog name of the node type (N1 + GPUs as `n1-standard-8+nvidia-tesla-t4:1`)."""
    spot_group: pulumi.Output[str] | None
    """Self link of the spot MIG (absent with capacity on-demand)."""
    on_demand_group: pulumi.Output[str] | None
    """Self link of the on-demand (fallback) MIG (absent with capacity spot-only)."""
    checkpoint_bucket: pulumi.Output[str]
    """Name of the checkpoint bucket."""
    service_account_email: pulumi.Output[str]
    """E-mail of the nodes' service account."""
    fallback_controller: pulumi.Output[str] | None
    """URL of the fallback controller function (spot-with-fallback only)."""

    def __init__(
        self,
        name: str,
        args: GcpGpuTrainingFleetArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        where = f"{_COMPONENT} {name!r}"
        capacity = _args.enum_arg(
            where, "capacity", args.get("capacity"), Capacity, Capacity.SPOT_WITH_FALLBACK
        )
        termination = _args.enum_arg(
            where,
            "termination_action",
            args.get("termination_action"),
            GcpTerminationAction,
            GcpTerminationAction.DELETE,
        )
        node_count = _args.required_int(where, args, "node_count", 0)
        node_count_max = _args.int_arg(where, args, "node_count_max", node_count, node_count)
        on_demand_base = _args.int_arg(where, args, "on_demand_base", 0, 0, node_count)
        fallback_after = _args.int_arg(where, args, "fallback_after_minutes", 10, 1, 120)
        stable_minutes = _args.int_arg(where, args, "spot_stable_minutes", 15, 1, 240)
        grace = _args.int_arg(
            where, args, "checkpoint_grace_seconds", 900, 60, GCE_GRACEFUL_SHUTDOWN_MAX_SECONDS
        )
        retention_days = _args.int_arg(where, args, "checkpoint_retention_days", 14, 1)
        disk_gb = _args.int_arg(where, args, "boot_disk_size_gb", 200, 10)
        model_version = _args.required_str(where, args, "model_version")
        if capacity == Capacity.SPOT_ONLY and on_demand_base:
            raise _args.invalid(
                "on_demand_base",
                on_demand_base,
                "capacity spot-only has no on-demand nodes: use capacity spot-with-fallback "
                "or on_demand_base 0",
                where=where,
            )
        queue = _queue_scaling(where, args, node_count, node_count_max)
        region = _common.region_of(args.get("region"))
        machine = _common.gce_machine(
            where,
            region,
            instance_type=args.get("instance_type"),
            accelerator=args.get("accelerator"),
            accelerators_per_node=_args.int_arg(where, args, "accelerators_per_node", 1, 1),
            spot=capacity != Capacity.ON_DEMAND,
        )
        if args.get("subnetwork") and not args.get("network"):
            raise ValueError(f"{where}: give the network of subnetwork {args['subnetwork']!r}")
        source = agent_artifact.agent_source(
            where, args, progress=lambda message: pulumi.log.info(message)
        )

        super().__init__(_hosting.type_token(type(self), _COMPONENT), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = _common.project_of(args.get("project"))
        canonical_tags = {**(args.get("tags") or {}), "ModelVersion": model_version}
        labels = _common.labels(canonical_tags, None)

        bucket = gcp.storage.Bucket(
            _common.child_name(name, "checkpoints"),
            location=region.upper(),
            project=project,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            soft_delete_policy=gcp.storage.BucketSoftDeletePolicyArgs(retention_duration_seconds=0),
            lifecycle_rules=[
                gcp.storage.BucketLifecycleRuleArgs(
                    action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    # only checkpoints: the agent bundle must outlive them (new nodes fetch it)
                    condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                        age=retention_days, matches_prefixes=[CHECKPOINT_PREFIX]
                    ),
                )
            ],
            force_destroy=False,
            labels=labels,
            opts=child,
        )
        account = _common.service_account(where, name, "train", project, self)
        member = _common.member(account)
        gcp.storage.BucketIAMMember(
            f"{name}-checkpoint-access",
            bucket=bucket.name,
            role="roles/storage.objectUser",
            member=member,
            # objects under checkpoints/ only; listing is a bucket-level call
            condition=gcp.storage.BucketIAMMemberConditionArgs(
                title="finops checkpoints",
                description=f"objects under {CHECKPOINT_PREFIX} and listing",
                expression=bucket.name.apply(
                    lambda b: (
                        'resource.type == "storage.googleapis.com/Bucket" || '
                        f'resource.name.startsWith("projects/_/buckets/{b}/objects/{CHECKPOINT_PREFIX}")'
                    )
                ),
            ),
            opts=child,
        )
        install: pulumi.Output[AgentInstall]
        if isinstance(source, agent_artifact.AgentBundle):
            bundle = source
            uploaded = gcp.storage.BucketObject(
                f"{name}-agent-bundle",
                gcp.storage.BucketObjectArgs(
                    bucket=bucket.name,
                    name=bundle.object_name,
                    source=pulumi.FileAsset(str(bundle.path)),
                    content_type="application/x-tar",
                ),
                opts=child,
            )
            gcp.storage.BucketIAMMember(
                f"{name}-agent-read",
                bucket=bucket.name,
                role="roles/storage.objectViewer",
                member=member,
                condition=gcp.storage.BucketIAMMemberConditionArgs(
                    title="finops agent bundle",
                    description="read the agent bundle object, nothing else",
                    expression=bucket.name.apply(
                        lambda b: (
                            f'resource.name == "projects/_/buckets/{b}/objects/'
                            f'{bundle.object_name}"'
                        )
                    ),
                ),
                opts=child,
            )
            install = pulumi.Output.all(bucket.name, uploaded.name).apply(
                lambda names: BundleInstall(bundle.sha256, ("gcp", names[0], names[1]))
            )
        else:
            install = pulumi.Output.from_input(source)

        # Runs on every boot; the install step skips an installed bundle.
        config = agent_config("gcp", name, canonical_tags, checkpoint_grace_seconds=grace)
        startup_script = install.apply(lambda how: agent_bootstrap_script(config, how))
        network_name: pulumi.Input[str]
        subnetwork_name: pulumi.Input[str] | None
        if args.get("network"):
            network_name, subnetwork_name = args["network"], args.get("subnetwork")
        else:
            network_args: GcpFleetNetworkArgs = {"region": region}
            if args.get("project"):
                network_args["project"] = args["project"]
            fleet_network = GcpFleetNetwork(f"{name}-network", network_args, opts=child)
            network_name, subnetwork_name = fleet_network.network, fleet_network.subnetwork
        network_interface = gcp.compute.InstanceTemplateNetworkInterfaceArgs(
            network=network_name,
            subnetwork=subnetwork_name,
            access_configs=(
                [gcp.compute.InstanceTemplateNetworkInterfaceAccessConfigArgs()]
                if args.get("assign_external_ip")
                else []
            ),
        )
        guest_accelerators = (
            [
                gcp.compute.InstanceTemplateGuestAcceleratorArgs(
                    type=machine.attached_accelerator, count=machine.attached_count
                )
            ]
            if machine.attached_accelerator
            else []
        )

        def template(role: str, spot: bool) -> gcp.compute.InstanceTemplate:
            scheduling = (
                gcp.compute.InstanceTemplateSchedulingArgs(
                    provisioning_model="SPOT",
                    preemptible=True,
                    instance_termination_action=termination.value,
                    on_host_maintenance="TERMINATE",
                    automatic_restart=False,
                )
                if spot
                else gcp.compute.InstanceTemplateSchedulingArgs(
                    provisioning_model="STANDARD",
                    on_host_maintenance="TERMINATE",
                    automatic_restart=True,
                    # A MIG deleting the VM (fallback drain) leaves it this long in graceful
                    # shutdown, where the shutdown script waits for the job's checkpoint.
                    graceful_shutdown=gcp.compute.InstanceTemplateSchedulingGracefulShutdownArgs(
                        enabled=True,
                        max_duration=gcp.compute.InstanceTemplateSchedulingGracefulShutdownMaxDurationArgs(
                            seconds=grace
                        ),
                    ),
                )
            )
            return gcp.compute.InstanceTemplate(
                _common.child_name(name, f"{role}-template"),
                description=f"{name}: {machine.catalog_type} on {'Spot' if spot else 'on-demand'} VMs",
                project=project,
                region=region,
                machine_type=machine.machine_type,
                guest_accelerators=guest_accelerators,
                scheduling=scheduling,
                disks=[
                    gcp.compute.InstanceTemplateDiskArgs(
                        boot=True,
                        auto_delete=True,
                        source_image=args.get("source_image") or DEFAULT_IMAGE,
                        disk_size_gb=disk_gb,
                        disk_type="pd-balanced",
                        labels=labels,
                    )
                ],
                network_interfaces=[network_interface],
                service_account=gcp.compute.InstanceTemplateServiceAccountArgs(
                    email=account.email, scopes=[_common.CLOUD_PLATFORM_SCOPE]
                ),
                shielded_instance_config=gcp.compute.InstanceTemplateShieldedInstanceConfigArgs(
                    enable_secure_boot=bool(args.get("secure_boot")),
                    enable_vtpm=True,
                    enable_integrity_monitoring=True,
                ),
                metadata={
                    "install-nvidia-driver": "True",
                    "enable-oslogin": "TRUE",
                    "block-project-ssh-keys": "TRUE",
                    "finops-checkpoint-bucket": bucket.name,
                    "shutdown-script": gce_shutdown_script(grace),
                },
                metadata_startup_script=startup_script,
                labels=labels,
                opts=child,
            )

        controlled = (
            capacity == Capacity.SPOT_WITH_FALLBACK and args.get("fallback_controller") is not False
        )
        # the MIG autoscaler owns the size of a queue-scaled group that has no controller
        autoscaled = queue is not None and not controlled

        def group(role: str, spot: bool, size: int) -> gcp.compute.RegionInstanceGroupManager:
            instance_template = template(role, spot)
            return gcp.compute.RegionInstanceGroupManager(
                _common.child_name(name, role),
                base_instance_name=f"{name}-{role}",
                project=project,
                region=region,
                # The template's self link: templates are auto-named, so a replaced template
                # has a new one; the cost model and the policies resolve the group's
                # machine through it.
                versions=[
                    gcp.compute.RegionInstanceGroupManagerVersionArgs(
                        name=role, instance_template=instance_template.self_link
                    )
                ],
                target_size=size,
                distribution_policy_target_shape=(
                    "ANY" if args.get("spread_across_zones") else "ANY_SINGLE_ZONE"
                ),
                # Running training nodes are never replaced by a template change: new nodes
                # get the new template. Shapes ANY/ANY_SINGLE_ZONE need redistribution off.
                update_policy=gcp.compute.RegionInstanceGroupManagerUpdatePolicyArgs(
                    type="OPPORTUNISTIC",
                    minimal_action="REPLACE",
                    instance_redistribution_type="NONE",
                ),
                wait_for_instances=False,
                # The fallback controller owns the sizes once the groups exist.
                opts=child.merge(
                    pulumi.ResourceOptions(
                        ignore_changes=["targetSize"] if controlled or autoscaled else None
                    )
                ),
            )

        spot_group = on_demand_group = None
        if capacity != Capacity.ON_DEMAND:
            spot_group = group("spot", True, node_count - on_demand_base)
        if capacity != Capacity.SPOT_ONLY:
            on_demand_size = node_count if capacity == Capacity.ON_DEMAND else on_demand_base
            on_demand_group = group("on-demand", False, on_demand_size)

        if autoscaled:
            assert queue is not None
            scaled = spot_group if spot_group is not None else on_demand_group
            assert scaled is not None
            gcp.compute.RegionAutoscaler(
                _common.child_name(name, "autoscaler"),
                project=project,
                region=region,
                target=scaled.self_link,
                description=f"{name}: nodes follow the backlog of {queue.subscription_id}",
                autoscaling_policy=gcp.compute.RegionAutoscalerAutoscalingPolicyArgs(
                    min_replicas=queue.nodes_min,
                    max_replicas=node_count_max,
                    mode="ON",
                    metrics=[
                        gcp.compute.RegionAutoscalerAutoscalingPolicyMetricArgs(
                            name=BACKLOG_METRIC,
                            # a per-group metric: filtered on a resource that is not gce_instance
                            filter=(
                                "resource.type = pubsub_subscription AND "
                                f'resource.labels.subscription_id = "{queue.subscription_id}"'
                            ),
                            single_instance_assignment=float(queue.jobs_per_node),
                        )
                    ],
                ),
                opts=child,
            )

        controller = None
        if controlled and spot_group is not None and on_demand_group is not None:
            controller = fallback_controller(
                name,
                parent=self,
                project=project,
                region=region,
                labels=labels,
                spot_group=spot_group,
                on_demand_group=on_demand_group,
                state_bucket=bucket,
                env={
                    "FLEET_DESIRED": str(node_count),
                    "FLEET_MAX": str(node_count_max),
                    "ON_DEMAND_BASE": str(on_demand_base),
                    "FALLBACK_AFTER_MINUTES": str(fallback_after),
                    "SPOT_STABLE_MINUTES": str(stable_minutes),
                    "STATE_OBJECT": f"finops-controller/{name}.json",
                    **(queue.environment() if queue is not None else {}),
                },
                reads_metrics=queue is not None,
            )

        self.machine_type = pulumi.Output.from_input(machine.catalog_type)
        self.spot_group = spot_group.self_link if spot_group else None
        self.on_demand_group = on_demand_group.self_link if on_demand_group else None
        self.checkpoint_bucket = bucket.name
        self.service_account_email = account.email
        self.fallback_controller = controller.url if controller else None
        self.register_outputs(
            {
                "machine_type": self.machine_type,
                "spot_group": self.spot_group,
                "on_demand_group": self.on_demand_group,
                "checkpoint_bucket": self.checkpoint_bucket,
                "service_account_email": self.service_account_email,
                "fallback_controller": self.fallback_controller,
            }
        )


@dataclass(frozen=True)
class _QueueScaling:
    project: str | None
    """The subscription's project when its path names one."""
    subscription_id: str
    jobs_per_node: int
    nodes_min: int

    def environment(self) -> dict[str, str]:
        """What the fallback controller reads to size the fleet from the backlog."""
        return {
            "SUBSCRIPTION_ID": self.subscription_id,
            "JOBS_PER_NODE": str(self.jobs_per_node),
            "NODES_MIN": str(self.nodes_min),
        }


def _queue_scaling(
    where: str, args: GcpGpuTrainingFleetArgs, node_count: int, node_count_max: int
) -> _QueueScaling | None:
    subscription = args.get("scale_on_subscription") or None
    if subscription is None:
        if args.get("jobs_per_node") is not None:
            raise _args.invalid(
                "scale_on_subscription",
                None,
                "a Pub/Sub subscription with jobs_per_node",
                where=where,
            )
        return None
    found = pubsub_subscription(str(subscription), None)
    if found is None:
        raise _args.invalid(
            "scale_on_subscription",
            subscription,
            "a Pub/Sub subscription: projects/<project>/subscriptions/<id> or the id",
            where=where,
        )
    fleet_project = args.get("project") or pulumi.Config("gcp").get("project")
    if found[0] and fleet_project and found[0] != fleet_project:
        raise _args.invalid(
            "scale_on_subscription",
            subscription,
            f"a subscription in the fleet's project {fleet_project} (the autoscaler and the "
            "controller read Cloud Monitoring metrics of their own project)",
            where=where,
        )
    jobs_per_node = _args.required_int(where, args, "jobs_per_node", 1, 100_000)
    nodes_min = _args.int_arg(where, args, "node_count_min", 0, 0, node_count)
    return _QueueScaling(found[0], found[1], jobs_per_node, nodes_min)
