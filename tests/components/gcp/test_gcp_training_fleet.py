"""finops:gcp:GpuTrainingFleet under the offline engine: the resource graph, spot scheduling,
the on-demand fallback group, no external IP but Cloud NAT and Private Google Access on the
subnetwork the nodes use, shielded VM, labels, the agent, and bad args."""

from __future__ import annotations

from typing import Any

import pytest
from gcp_engine import assert_gcp_labels, names_of, one, run_components, toml_in_script

from aifinops.agents.config import parse_config
from aifinops.components.gcp import GcpTerminationAction, GpuTrainingFleet, GpuTrainingFleetArgs
from aifinops.config import Capacity
from aifinops.engine import StackRun

TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"
MIG = "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"


def fleet_run(**overrides: Any) -> StackRun:
    args: GpuTrainingFleetArgs = {
        "model_version": "ResNet50-v1.2",
        "node_count": 4,
        "on_demand_base": 1,
        "accelerator": "T4",
        "region": "us-central1",
        "checkpoint_retention_days": 9,
    }
    args.update(overrides)  # type: ignore[typeddict-item]
    return run_components(lambda: GpuTrainingFleet("train", args))


@pytest.fixture(scope="module")
def run() -> StackRun:
    return fleet_run()


def test_children_are_named_by_role_and_parented_to_the_component(run):
    component = one(run, "train")
    assert component.type == "finops:gcp:GpuTrainingFleet"
    children = [r for r in run.resources if r is not component]
    assert {r.name for r in children} == {
        "train-checkpoints",
        "train-sa",
        "train-metric-writer",
        "train-checkpoint-access",
        "train-spot-template",
        "train-spot",
        "train-on-demand-template",
        "train-on-demand",
        # the fallback controller (tested in test_gcp_fallback_controller.py)
        "train-controller-sa",
        "train-controller-role",
        "train-controller-resizer",
        "train-controller-state",
        "train-controller-code",
        "train-controller-source",
        "train-controller",
        "train-controller-invoker",
        "train-controller-schedule",
        "train-controller-build-sa",
        "train-controller-build-log-writer",
        "train-controller-build-artifact-writer",
        "train-controller-build-object-admin",
        # the agent bundle and its one reader (test_agent_delivery.py)
        "train-agent-bundle",
        "train-agent-read",
        # the fleet's own network (below)
        "train-network",
        "train-network-vpc",
        "train-network-subnet",
        "train-network-internal",
        "train-network-router",
        "train-network-nat",
    }
    network = one(run, "train-network")
    assert all(
        r.parent == (network.urn if r.name.startswith("train-network-") else component.urn)
        for r in children
    )


def test_nodes_reach_out_through_cloud_nat_and_google_apis_privately(run):
    """Nodes without external IPs reach Cloud Storage through Private Google Access and the
    rest through the Cloud NAT of exactly the subnetwork their templates use."""
    subnet = one(run, "train-network-subnet")
    network = one(run, "train-network-vpc")
    assert network.inputs["autoCreateSubnetworks"] is False
    assert subnet.inputs["privateIpGoogleAccess"] is True
    assert subnet.inputs["network"] == network.id
    for name in ("train-spot-template", "train-on-demand-template"):
        (nic,) = one(run, name).inputs["networkInterfaces"]
        assert nic["subnetwork"] == subnet.outputs["selfLink"]
        assert nic["network"] == network.outputs["selfLink"]
        assert not nic.get("accessConfigs")
    router = one(run, "train-network-router")
    nat = one(run, "train-network-nat").inputs
    assert router.inputs["network"] == network.id
    assert nat["router"] == router.outputs["name"]
    assert nat["region"] == router.inputs["region"] == subnet.inputs["region"] == "us-central1"
    assert nat["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert nat["subnetworks"] == [{"name": subnet.id, "sourceIpRangesToNats": ["ALL_IP_RANGES"]}]
    assert nat["natIpAllocateOption"] == "AUTO_ONLY"
    internal = one(run, "train-network-internal").inputs
    assert internal["direction"] == "INGRESS"
    assert internal["sourceRanges"] == [subnet.inputs["ipCidrRange"]]  # nothing from outside


def test_a_given_network_is_used_as_is():
    run = fleet_run(
        network="projects/p/global/networks/ml", subnetwork="regions/us-central1/subnetworks/gpu"
    )
    assert not run.of_type("gcp:compute/routerNat:RouterNat")
    (nic,) = one(run, "train-spot-template").inputs["networkInterfaces"]
    assert nic["network"] == "projects/p/global/networks/ml"
    assert nic["subnetwork"] == "regions/us-central1/subnetworks/gpu"


def test_spot_template_schedules_spot_with_the_termination_action(run):
    scheduling = one(run, "train-spot-template").inputs["scheduling"]
    assert scheduling["provisioningModel"] == "SPOT"
    assert scheduling["instanceTerminationAction"] == "DELETE"
    assert scheduling["onHostMaintenance"] == "TERMINATE"
    assert scheduling["automaticRestart"] is False
    assert scheduling["preemptible"] is True


def test_fallback_template_is_standard_and_restarts(run):
    scheduling = one(run, "train-on-demand-template").inputs["scheduling"]
    assert scheduling["provisioningModel"] == "STANDARD"
    assert scheduling["onHostMaintenance"] == "TERMINATE"
    assert "instanceTerminationAction" not in scheduling


def test_n1_nodes_attach_their_gpus(run):
    template = one(run, "train-spot-template").inputs
    assert template["machineType"] == "n1-standard-4"
    assert template["guestAccelerators"] == [{"type": "nvidia-tesla-t4", "count": 1}]


def test_groups_split_the_nodes_and_point_at_their_own_template(run):
    for group, template, size in (
        ("train-spot", "train-spot-template", 3),
        ("train-on-demand", "train-on-demand-template", 1),
    ):
        inputs = one(run, group).inputs
        assert inputs["targetSize"] == size
        assert inputs["region"] == "us-central1"
        assert inputs["versions"][0]["instanceTemplate"] == (one(run, template).outputs["selfLink"])
        assert inputs["distributionPolicyTargetShape"] == "ANY_SINGLE_ZONE"
        assert inputs["updatePolicy"]["type"] == "OPPORTUNISTIC"


def test_nodes_have_no_external_ip_and_a_shielded_vm(run):
    for name in ("train-spot-template", "train-on-demand-template"):
        inputs = one(run, name).inputs
        assert [nic.get("accessConfigs") or [] for nic in inputs["networkInterfaces"]] == [[]]
        shielded = inputs["shieldedInstanceConfig"]
        assert shielded["enableVtpm"] is True
        assert shielded["enableIntegrityMonitoring"] is True


def test_every_taggable_resource_carries_gcp_labels(run):
    # checkpoint bucket, two templates, the controller's code bucket and function
    assert assert_gcp_labels(run, workload=True) == 5
    template = one(run, "train-spot-template").inputs
    assert template["labels"]["model-version"] == "resnet50-v1-2"
    assert template["disks"][0]["labels"]["model-version"] == "resnet50-v1-2"


def test_checkpoint_bucket_is_private_and_expires_objects(run):
    bucket = one(run, "train-checkpoints").inputs
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["publicAccessPrevention"] == "enforced"
    # only checkpoints expire: new nodes still fetch the agent bundle beside them
    assert bucket["lifecycleRules"] == [
        {"action": {"type": "Delete"}, "condition": {"age": 9, "matchesPrefixes": ["checkpoints/"]}}
    ]
    assert bucket["softDeletePolicy"]["retentionDurationSeconds"] == 0


def test_service_account_has_metric_writer_and_the_bucket_only(run):
    roles = {r.name: r.inputs["role"] for r in run.of_type("gcp:projects/iAMMember:IAMMember")}
    assert roles == {
        "train-metric-writer": "roles/monitoring.metricWriter",  # the nodes
        "train-controller-resizer": one(run, "train-controller-role").outputs["name"],
        # the controller function's build identity (tests/components/gcp/test_gcp_fallback_*)
        "train-controller-build-log-writer": "roles/logging.logWriter",
        "train-controller-build-artifact-writer": "roles/artifactregistry.writer",
        "train-controller-build-object-admin": "roles/storage.objectAdmin",
    }
    access = one(run, "train-checkpoint-access").inputs
    assert access["role"] == "roles/storage.objectUser"
    assert access["bucket"] == one(run, "train-checkpoints").outputs["name"]


def test_startup_script_installs_and_starts_the_agent_watching_gcp(run):
    script = one(run, "train-spot-template").inputs["metadataStartupScript"]
    raw = toml_in_script(script)
    config = parse_config(raw, source="startup-script")
    assert config.metadata.provider == "gcp"
    assert config.checkpoint.hook.mode == "file"
    assert dict(config.tags)["finops:fleet"] == "train"
    assert dict(config.tags)["ModelVersion"] == "ResNet50-v1.2"
    assert "--no-index --find-links" in script  # the stack's bundle (test_agent_delivery.py)
    assert "ExecStart=/usr/local/bin/finops-agent" in script
    assert script.rstrip().endswith("systemctl enable --now finops-agent.service")


def test_a_vm_the_group_deletes_gets_its_checkpoint_signal_within_gces_time(run):
    for role in ("spot", "on-demand"):
        template = one(run, f"train-{role}-template").inputs
        script = template["metadata"]["shutdown-script"]
        assert script.startswith("#!/bin/bash\n")
        assert "finops-agent --config /etc/finops-agent.toml --scale-in" in script
        assert "timeout 915 " in script  # the 900 s bound plus the agent's start
        assert "instance/preempted" in script  # a preemption is the running agent's
    on_demand = one(run, "train-on-demand-template").inputs["scheduling"]
    assert on_demand["gracefulShutdown"] == {"enabled": True, "maxDuration": {"seconds": 900}}
    assert "gracefulShutdown" not in one(run, "train-spot-template").inputs["scheduling"]
    config = parse_config(
        toml_in_script(one(run, "train-spot-template").inputs["metadataStartupScript"]),
        source="startup-script",
    )
    assert config.lifecycle.max_wait_seconds == 900


def test_the_checkpoint_grace_is_held_to_gces_graceful_shutdown_limit():
    with pytest.raises(Exception, match=r"checkpoint_grace_seconds: 7200 .* 60\.\.3600"):
        fleet_run(checkpoint_grace_seconds=7200)


def test_accelerator_optimized_machines_carry_their_gpus():
    run = fleet_run(accelerator=None, instance_type="a2-highgpu-1g")
    template = one(run, "train-spot-template").inputs
    assert template["machineType"] == "a2-highgpu-1g"
    assert not template.get("guestAccelerators")


def test_spot_only_has_no_fallback_group_and_stop_is_passed_on():
    run = fleet_run(
        capacity=Capacity.SPOT_ONLY, on_demand_base=0, termination_action=GcpTerminationAction.STOP
    )
    assert names_of(run, MIG) == ["train-spot"]
    assert one(run, "train-spot").inputs["targetSize"] == 4
    scheduling = one(run, "train-spot-template").inputs["scheduling"]
    assert scheduling["instanceTerminationAction"] == "STOP"


def test_on_demand_is_one_standard_group_at_node_count():
    run = fleet_run(capacity="on-demand", on_demand_base=0)
    assert names_of(run, MIG) == ["train-on-demand"]
    assert names_of(run, TEMPLATE) == ["train-on-demand-template"]
    assert one(run, "train-on-demand").inputs["targetSize"] == 4


BASE: dict[str, Any] = {"model_version": "v1", "node_count": 2, "region": "us-central1"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"accelerator": "T4", "instance_type": "g2-standard-8"}, "exactly one of"),
        ({}, "exactly one of"),
        ({"instance_type": "g2-standard-7"}, r"did you mean .*g2-standard-"),
        ({"instance_type": "v5litepod-4"}, "is a tpu type"),
        ({"accelerator": "H100", "region": "europe-west1"}, "no GCE machine|not offered"),
        ({"accelerator": "T4", "capacity": "spot"}, r"capacity: 'spot' is not allowed .*spot-only"),
        ({"accelerator": "T4", "termination_action": "HIBERNATE"}, "STOP, DELETE|DELETE, STOP"),
        ({"accelerator": "T4", "on_demand_base": 3}, r"on_demand_base: 3 .*an integer 0\.\.2"),
        ({"accelerator": "T4", "on_demand_base": 0.5}, r"on_demand_base: 0\.5 is not allowed"),
        (
            {"accelerator": "T4", "capacity": "spot-only", "on_demand_base": 1},
            "capacity spot-only has no on-demand nodes",
        ),
        ({"accelerator": "T4", "checkpoint_retention_days": 0}, "checkpoint_retention_days"),
        (
            {"accelerators_per_node": 0, "accelerator": "T4"},
            r"accelerators_per_node: 0 .*1 or more",
        ),
        ({"accelerator": "T4", "model_version": ""}, "model_version: required"),
        ({"accelerator": "T4", "node_count": None}, "node_count: required"),
    ],
)
def test_bad_args_are_refused_with_the_field_and_value(overrides, message):
    with pytest.raises(ValueError, match=message) as caught:
        GpuTrainingFleet("bad", {**BASE, **overrides})  # type: ignore[typeddict-item]
    assert "finops:gcp:GpuTrainingFleet 'bad'" in str(caught.value)
