"""finops:azure:GpuTrainingFleet under the offline engine: Flexible scale set, Spot Priority
Mix numbers, spot restore, Spot priority and eviction policy, egress (a public IP per VM or a
NAT gateway on the subnet, no inbound rule), tags, the agent in custom data, and bad args."""

from __future__ import annotations

import base64
import tomllib
from typing import Any

import pytest
from azure_engine import (
    SSH_KEY,
    STACK_TAGS,
    custom_data_script,
    one,
    run_components,
    toml_in_script,
)

from aifinops import tags as tag_schema
from aifinops.agents.config import parse_config
from aifinops.components.azure import AzureEvictionPolicy, GpuTrainingFleet, GpuTrainingFleetArgs
from aifinops.config import Capacity
from aifinops.engine import StackRun
from aifinops.taggability import tag_property

VMSS = "azure-native:compute:VirtualMachineScaleSet"


def fleet_run(**overrides: Any) -> StackRun:
    args: GpuTrainingFleetArgs = {
        "model_version": "vit-b16-v3",
        "node_count": 5,
        "on_demand_base": 2,
        "vm_size": "Standard_NC24ads_A100_v4",
        "admin_ssh_public_key": SSH_KEY,
        "location": "eastus",
    }
    args.update(overrides)  # type: ignore[typeddict-item]
    return run_components(lambda: GpuTrainingFleet("train", args))


@pytest.fixture(scope="module")
def run() -> StackRun:
    return fleet_run()


@pytest.fixture(scope="module")
def scale_set(run) -> dict[str, Any]:
    return one(run, "train-vmss").inputs


def test_children_are_named_by_role_and_parented_to_the_component(run):
    component = one(run, "train")
    assert component.type == "finops:azure:GpuTrainingFleet"
    children = [r for r in run.resources if r is not component]
    assert {r.name for r in children} == {
        "train-rg",
        "train-nsg",
        "train-vnet",
        "train-subnet",
        "train-vmss",
        "train-identity",
        "train-storage",
        "train-agent-container",
        "train-agent-bundle",
        "train-agent-read",
    }
    assert all(r.parent == component.urn for r in children)


def test_flexible_scale_set_of_the_size_at_node_count(scale_set):
    assert scale_set["orchestrationMode"] == "Flexible"
    assert scale_set["sku"]["name"] == "Standard_NC24ads_A100_v4"
    assert scale_set["sku"]["capacity"] == 5
    # created before the VMs, so its role assignment exists when they boot
    assert scale_set["identity"]["type"] == "UserAssigned"


def test_spot_priority_mix_keeps_the_on_demand_base_regular(scale_set):
    assert scale_set["priorityMixPolicy"] == {
        "baseRegularPriorityCount": 2,
        "regularPriorityPercentageAboveBase": 0,
    }
    profile = scale_set["virtualMachineProfile"]
    assert profile["priority"] == "Spot"
    assert profile["evictionPolicy"] == "Delete"
    assert profile["billingProfile"]["maxPrice"] == -1


def test_spot_restore_brings_evicted_vms_back_as_spot(scale_set):
    assert scale_set["spotRestorePolicy"] == {"enabled": True, "restoreTimeout": "PT60M"}


def ip_configurations(scale_set: dict[str, Any]) -> list[dict[str, Any]]:
    nics = scale_set["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"]
    return [ip for nic in nics for ip in nic["ipConfigurations"]]


def test_default_egress_is_a_public_ip_per_vm_with_no_inbound_rule(run, scale_set):
    """A Flexible scale set has no default outbound access: without this, cloud-init could
    reach nothing (no agent, no checkpoints)."""
    ip_configs = ip_configurations(scale_set)
    assert len(ip_configs) == 1
    assert ip_configs[0]["subnet"]["id"] == one(run, "train-subnet").id
    public = ip_configs[0]["publicIPAddressConfiguration"]
    assert public["sku"] == {
        "name": "Standard",
        "tier": "Regional",
    }  # closed unless an NSG opens it
    assert public["deleteOption"] == "Delete"
    nsg = one(run, "train-nsg")
    assert nsg.inputs["securityRules"] == []
    subnet = one(run, "train-subnet").inputs
    assert subnet["networkSecurityGroup"]["id"] == nsg.id
    assert subnet["serviceEndpoints"] == [{"service": "Microsoft.Storage"}]
    assert "natGateway" not in subnet
    assert not run.of_type("azure-native:network:NatGateway")


def test_nat_gateway_egress_serves_the_fleets_subnet():
    run = fleet_run(egress="nat-gateway")
    scale_set = one(run, "train-vmss").inputs
    ip_configs = ip_configurations(scale_set)
    assert all("publicIPAddressConfiguration" not in ip for ip in ip_configs)
    nat = one(run, "train-nat")
    address = one(run, "train-nat-ip")
    assert nat.inputs["publicIpAddresses"] == [{"id": address.id}]
    assert address.inputs["sku"]["name"] == "Standard"
    subnet = one(run, "train-subnet")
    assert subnet.inputs["natGateway"] == {"id": nat.id}
    assert ip_configs[0]["subnet"]["id"] == subnet.id


def test_password_login_off(scale_set):
    profile = scale_set["virtualMachineProfile"]
    linux = profile["osProfile"]["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True
    assert linux["ssh"]["publicKeys"][0]["keyData"] == SSH_KEY


def test_every_taggable_resource_carries_the_tags(run):
    checked = 0
    for resource in run.custom_resources():
        where = tag_property(resource.type)
        if where is None:
            continue
        tags = resource.inputs[where.property]
        assert tag_schema.missing_keys(tags, "azure", workload=True) == [], resource.name
        assert tags["ModelVersion"] == "vit-b16-v3"
        assert all(tags[key] == value for key, value in STACK_TAGS.items())
        checked += 1
    # resource group, NSG, VNet, scale set, identity, storage account
    assert checked == 6


def test_custom_data_installs_the_agent_watching_scheduled_events(scale_set):
    script = custom_data_script(scale_set)
    config = parse_config(toml_in_script(script), source="custom-data")
    assert config.metadata.provider == "azure"
    assert dict(config.tags)["finops:fleet"] == "train"
    assert "systemctl enable --now finops-agent.service" in script


def test_deleted_vms_get_a_terminate_notification_the_agent_answers(scale_set):
    profile = scale_set["virtualMachineProfile"]
    assert profile["scheduledEventsProfile"] == {
        "terminateNotificationProfile": {"enable": True, "notBeforeTimeout": "PT15M"}
    }
    script = base64.b64decode(profile["osProfile"]["customData"]).decode()
    toml = script.split("<<'FINOPS_AGENT_TOML'\n", 1)[1].split("FINOPS_AGENT_TOML\n", 1)[0]
    config = parse_config(tomllib.loads(toml), source="custom data")
    assert config.lifecycle.max_wait_seconds == 900 and config.lifecycle.azure_approve


def test_on_demand_is_a_regular_scale_set_without_spot_settings():
    scale_set = one(fleet_run(capacity=Capacity.ON_DEMAND, on_demand_base=0), "train-vmss").inputs
    profile = scale_set["virtualMachineProfile"]
    assert profile["priority"] == "Regular"
    assert "evictionPolicy" not in profile and "billingProfile" not in profile
    assert "priorityMixPolicy" not in scale_set and "spotRestorePolicy" not in scale_set


def test_existing_group_and_subnet_are_used_and_deallocate_is_passed_on():
    subnet = "/subscriptions/x/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/gpu"
    run = fleet_run(
        resource_group_name="ml-rg",
        subnet_id=subnet,
        accelerator="T4",
        vm_size=None,
        capacity="spot-only",
        on_demand_base=0,
        eviction_policy=AzureEvictionPolicy.DEALLOCATE,
        spot_restore_timeout_minutes=30,
    )
    assert sorted(r.name for r in run.custom_resources()) == [
        "train-agent-bundle",
        "train-agent-container",
        "train-agent-read",
        "train-identity",
        "train-storage",
        "train-vmss",
    ]  # no network: the given subnet brings its own way out
    assert all(
        "publicIPAddressConfiguration" not in ip
        for ip in ip_configurations(one(run, "train-vmss").inputs)
    )
    scale_set = one(run, "train-vmss").inputs
    assert scale_set["resourceGroupName"] == "ml-rg"
    assert scale_set["sku"]["name"] == "Standard_NC4as_T4_v3"  # cheapest 1 x T4 in eastus
    assert scale_set["priorityMixPolicy"]["baseRegularPriorityCount"] == 0
    assert scale_set["virtualMachineProfile"]["evictionPolicy"] == "Deallocate"
    assert scale_set["spotRestorePolicy"]["restoreTimeout"] == "PT30M"
    nic = scale_set["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    assert nic["ipConfigurations"][0]["subnet"]["id"] == subnet


BASE: dict[str, Any] = {
    "model_version": "v1",
    "node_count": 2,
    "admin_ssh_public_key": SSH_KEY,
    "location": "eastus",
}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"vm_size": "Standard_NC4as_T4_v4"}, r"did you mean .*Standard_NC4as_T4_v3"),
        ({"vm_size": "Standard_NC4as_T4_v3", "accelerator": "T4"}, "exactly one of"),
        ({"accelerator": "H200"}, "no Azure VM size with 1 x H200 in eastus"),
        ({"vm_size": "Standard_NC4as_T4_v3", "admin_ssh_public_key": "hunter2"}, "OpenSSH"),
        (
            {"vm_size": "Standard_NC4as_T4_v3", "capacity": "spot"},
            "capacity: 'spot' is not allowed",
        ),
        ({"vm_size": "Standard_NC4as_T4_v3", "eviction_policy": "Stop"}, "Delete, Deallocate"),
        (
            {"vm_size": "Standard_NC4as_T4_v3", "on_demand_base": 3},
            r"on_demand_base: 3 .*an integer 0\.\.2",
        ),
        (
            {"vm_size": "Standard_NC4as_T4_v3", "capacity": "spot-only", "on_demand_base": 1},
            "contradict capacity spot-only",
        ),
        ({"vm_size": "Standard_NC4as_T4_v3", "regular_percent_above_base": 101}, "0..100"),
    ],
)
def test_bad_args_are_refused_with_the_field_and_value(overrides, message):
    with pytest.raises(ValueError, match=message) as caught:
        GpuTrainingFleet("bad", {**BASE, **overrides})  # type: ignore[typeddict-item]
    assert "finops:azure:GpuTrainingFleet 'bad'" in str(caught.value)
