"""`finops:azure:GpuTrainingFleet`: GPU training nodes in a Flexible scale set with Spot Priority Mix.

What it creates (children named `<name>-<role>`):

- `<name>-rg`: a resource group, unless `resource_group_name` names an existing one.
- `<name>-nsg`, `<name>-vnet`, `<name>-subnet`: a network with no inbound rule beyond Azure's
  defaults (the VNet talks to itself; nothing from the internet comes in) and a
  `Microsoft.Storage` service endpoint, unless `subnet_id` names an existing subnet. A
  Flexible scale set has no default outbound access, so the fleet gives it one (`egress`):
  `public-ip` (default) puts a Standard public IPv4 address on each VM ($0.005/h each;
  Standard addresses are closed to inbound traffic unless an NSG rule opens them, and none
  does); `nat-gateway` puts one NAT gateway with its public address on the subnet ($0.045/h
  plus $0.045/GB processed). A given `subnet_id` must bring its own outbound path.
- `<name>-identity`: a user-assigned managed identity, created before the VMs so that its
  role assignment exists when they boot (grant `identity_principal_id` `Storage Blob Data
  Contributor` on your checkpoint container).
- `<name>-storage` + container `agent` + the agent bundle blob
  (components/agent_artifact.py): the identity may read exactly that blob (a role
  assignment of Storage Blob Data Reader on the container with a condition on the blob's
  path); the VMs fetch it with the identity and verify its sha256 before installing.
- `<name>-vmss`: a `VirtualMachineScaleSet` in Flexible orchestration, `sku.capacity =
  node_count`, the identity above,
  `priority = "Spot"`, `eviction_policy` (Delete by default), `max_price = -1`
  (pay up to the pay-as-you-go price: evicted for capacity only, never for price), custom data
  that installs the finops agent with `[metadata] provider = "azure"` (it watches Scheduled
  Events for `Preempt`), and tags on every resource.

How on-demand fallback works on Azure: Spot Priority Mix makes one scale set a real mixed
fleet. `base_regular_priority_count = on_demand_base` VMs are always regular (pay-as-you-go)
and `regular_priority_percentage_above_base` of the rest too (0 by default: the rest is spot).
When Azure evicts spot VMs, the scale set's spot restore policy (`spot_restore_policy`,
enabled, for `spot_restore_timeout_minutes`) keeps trying to re-create them as spot VMs when
capacity returns, so reversion to spot is the platform's job, not a controller's. What Azure
does not do is replace missing spot VMs with regular ones: the guaranteed floor is the
regular part of the mix. A fleet that must not shrink sets `on_demand_base` (or
`regular_percent_above_base`) to what it cannot lose. Capacity `on-demand` is a plain
Regular-priority scale set; `spot-only` has no regular VMs at all.
"""

import base64
import hashlib
import re
from enum import StrEnum
from typing import Required, TypedDict

import pulumi
import pulumi_azure_native as azure_native

from aifinops import catalog
from aifinops import tags as tag_schema
from aifinops.catalog import InstanceInfo
from aifinops.components import _args, _hosting, agent_artifact
from aifinops.components.agent_bootstrap import (
    AgentInstall,
    BundleInstall,
    agent_bootstrap_script,
    agent_config,
)
from aifinops.config import Capacity
from aifinops.errors import CatalogError

DEFAULT_LOCATION = "eastus"
# Ubuntu 22.04 HPC image (Microsoft's DSVM publisher): NVIDIA driver, CUDA, InfiniBand stack.
DEFAULT_IMAGE = ("microsoft-dsvm", "ubuntu-hpc", "2204", "latest")
NETWORK_API_VERSION = "2020-11-01"  # required by Flexible scale sets that create their NICs
# Built-in role "Storage Blob Data Reader" (the same id in every tenant).
BLOB_READER_ROLE = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
BLOB_READ_ACTION = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
AGENT_CONTAINER = "agent"


class AzureEgress(StrEnum):
    """How the VMs of the fleet's own subnet reach the internet."""

    PUBLIC_IP = "public-ip"
    """A Standard public IPv4 address per VM, no inbound rule (default; $0.005/h per VM)."""
    NAT_GATEWAY = "nat-gateway"
    """One NAT gateway with one public address on the subnet ($0.045/h + $0.045/GB)."""


class AzureEvictionPolicy(StrEnum):
    """What Azure does with an evicted Spot VM."""

    DELETE = "Delete"
    """The VM and its disks are deleted: nothing is billed and no core quota held until spot
    restore re-creates it. Default."""
    DEALLOCATE = "Deallocate"
    """The VM is stopped and deallocated: its disks are kept (and billed) and its cores still
    count against the Spot quota."""


class AzureGpuTrainingFleetArgs(TypedDict, total=False):
    """Arguments of `finops:azure:GpuTrainingFleet`."""

    model_version: Required[str]
    """The model version the fleet trains; written as the `ModelVersion` tag."""
    node_count: Required[int]
    """VMs in the scale set (`sku.capacity`; the stack config's `nodes.desired`)."""
    admin_ssh_public_key: Required[str]
    """OpenSSH public key of the admin user (password login is disabled)."""
    vm_size: str
    """A GPU VM size from the catalog: `Standard_NC4as_T4_v3`, `Standard_NV36ads_A10_v5`,
    `Standard_NC24ads_A100_v4`... Or give `accelerator`."""
    accelerator: str
    """An accelerator model (`T4`, `A10`, `A100-80GB`...): the cheapest size in the location
    with `accelerators_per_node` of them is used."""
    accelerators_per_node: int
    """Accelerators per VM when picking by `accelerator`; default 1."""
    capacity: Capacity
    """spot-with-fallback (default), spot-only or on-demand."""
    on_demand_base: int
    """VMs always on regular priority (`base_regular_priority_count`); default 0."""
    regular_percent_above_base: int
    """Percent of the VMs above the base on regular priority
    (`regular_priority_percentage_above_base`); default 0 (all spot)."""
    location: str
    """Azure region; default the stack's `azure-native:location`, else eastus."""
    resource_group_name: str
    """Existing resource group to use; default: one is created."""
    subnet_id: str
    """Existing subnet (ARM id) with outbound access; default: a VNet and subnet are created."""
    egress: AzureEgress
    """Outbound access of the created subnet: public-ip (default) or nat-gateway."""
    eviction_policy: AzureEvictionPolicy
    """Delete (default) or Deallocate."""
    spot_restore_timeout_minutes: int
    """How long spot restore keeps trying to re-create evicted spot VMs; default 60."""
    admin_username: str
    """Admin user; default `azureuser`."""
    os_disk_size_gb: int
    """OS disk size, GB; default 128."""
    image_publisher: str
    """Marketplace image publisher; default `microsoft-dsvm`."""
    image_offer: str
    """Marketplace image offer; default `ubuntu-hpc`."""
    image_sku: str
    """Marketplace image SKU; default `2204`."""
    image_version: str
    """Marketplace image version; default `latest`."""
    agent_wheel: str
    """A built `aifinops` wheel to bundle (default: one built from this checkout)."""
    agent_requirements: list[str]
    """Instead of the bundle: requirements pinned with `--hash`, from `agent_index_url`."""
    agent_index_url: str
    """Your package index (https) for `agent_requirements`."""
    checkpoint_grace_seconds: int
    """Most seconds a VM the scale set deletes waits for the job's checkpoint: the terminate
    notification's `not_before_timeout`, which Azure takes in whole minutes from 5 to 15;
    300..900, default 900."""
    tags: dict[str, str]
    """Extra canonical tags (Project, Team, Environment...); the stack transform adds the
    stack's tags too."""


_COMPONENT = "finops:azure:GpuTrainingFleet"


def _vm_size(
    where: str,
    location: str,
    vm_size: str | None,
    accelerator: str | None,
    count: int,
    spot: bool,
) -> InstanceInfo:
    if bool(vm_size) == bool(accelerator):
        raise ValueError(
            f"{where}: give exactly one of vm_size or accelerator "
            f"(got vm_size={vm_size!r}, accelerator={accelerator!r})"
        )
    if vm_size:
        try:
            return catalog.lookup(vm_size, location, cloud="azure")
        except CatalogError as exc:
            raise ValueError(f"{where}: vm_size {vm_size!r}: {exc}") from None
    assert accelerator is not None
    try:
        offers = catalog.cheapest(accelerator, count, spot=spot, cloud="azure", region=location)
    except CatalogError as exc:
        raise ValueError(f"{where}: accelerator {accelerator!r}: {exc}") from None
    if not offers:
        elsewhere = sorted({i.region for i in catalog.cheapest(accelerator, count, cloud="azure")})
        raise ValueError(
            f"{where}: no Azure VM size with {count} x {accelerator} in {location}; "
            f"offered in: {', '.join(elsewhere) or 'no location'}"
        )
    exact = [i for i in offers if i.accelerator_count == count]
    return (exact or offers)[0]


class AzureGpuTrainingFleet(pulumi.ComponentResource):
    """GPU training VMs in a Flexible scale set: Spot Priority Mix (regular base + spot),
    spot restore, managed identity, no public IP, and the finops agent."""

    vm_size: pulumi.Output[str]
    """The VM size of every node."""
    scale_set_id: pulumi.Output[str]
    """ARM id of the scale set."""
    resource_group_name: pulumi.Output[str]
    """Resource group of the fleet."""
    identity_principal_id: pulumi.Output[str]
    """Principal id of the nodes' managed identity (for role assignments)."""

    def __init__(
        self,
        name: str,
        args: AzureGpuTrainingFleetArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        where = f"{_COMPONENT} {name!r}"
        model_version = _args.required_str(where, args, "model_version")
        ssh_key = (args.get("admin_ssh_public_key") or "").strip()
        if not ssh_key.startswith(("ssh-rsa ", "ssh-ed25519 ", "ecdsa-sha2-")):
            raise ValueError(
                f"{where}: admin_ssh_public_key must be an OpenSSH public key "
                f"('ssh-rsa ...' or 'ssh-ed25519 ...'); got {ssh_key[:20]!r}"
            )
        capacity = _args.enum_arg(
            where, "capacity", args.get("capacity"), Capacity, Capacity.SPOT_WITH_FALLBACK
        )
        eviction = _args.enum_arg(
            where,
            "eviction_policy",
            args.get("eviction_policy"),
            AzureEvictionPolicy,
            AzureEvictionPolicy.DELETE,
        )
        node_count = _args.required_int(where, args, "node_count", 0)
        on_demand_base = _args.int_arg(where, args, "on_demand_base", 0, 0, node_count)
        percent_above = _args.int_arg(where, args, "regular_percent_above_base", 0, 0, 100)
        restore_minutes = _args.int_arg(where, args, "spot_restore_timeout_minutes", 60, 1)
        disk_gb = _args.int_arg(where, args, "os_disk_size_gb", 128, 30)
        grace_minutes = _args.int_arg(where, args, "checkpoint_grace_seconds", 900, 300, 900) // 60
        if capacity == Capacity.SPOT_ONLY and (on_demand_base or percent_above):
            raise ValueError(
                f"{where}: on_demand_base {on_demand_base} / regular_percent_above_base "
                f"{percent_above} contradict capacity spot-only; use spot-with-fallback"
            )
        location = (
            args.get("location")
            or pulumi.Config("azure-native").get("location")
            or DEFAULT_LOCATION
        )
        info = _vm_size(
            where,
            location,
            args.get("vm_size"),
            args.get("accelerator"),
            _args.int_arg(where, args, "accelerators_per_node", 1, 1),
            capacity != Capacity.ON_DEMAND,
        )
        admin = args.get("admin_username") or "azureuser"
        egress = _args.enum_arg(
            where, "egress", args.get("egress"), AzureEgress, AzureEgress.PUBLIC_IP
        )
        source = agent_artifact.agent_source(
            where, args, progress=lambda message: pulumi.log.info(message)
        )

        super().__init__(_hosting.type_token(type(self), _COMPONENT), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        canonical_tags = {**(args.get("tags") or {}), "ModelVersion": model_version}
        tags = tag_schema.spell(canonical_tags, "azure")

        group_name: pulumi.Input[str]
        if args.get("resource_group_name"):
            group_name = args["resource_group_name"]
        else:
            group = azure_native.resources.ResourceGroup(
                f"{name}-rg", location=location, tags=tags, opts=child
            )
            group_name = group.name

        identity = azure_native.managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            azure_native.managedidentity.UserAssignedIdentityArgs(
                resource_group_name=group_name, location=location, tags=tags
            ),
            opts=child,
        )
        subnet_id, public_ip = self._network(name, args, egress, group_name, location, tags)
        install = self._agent_install(name, source, identity, group_name, location, tags)
        spot = capacity != Capacity.ON_DEMAND
        config = agent_config(
            "azure", name, canonical_tags, checkpoint_grace_seconds=grace_minutes * 60
        )
        custom_data = install.apply(
            lambda how: base64.b64encode(agent_bootstrap_script(config, how).encode()).decode()
        )
        publisher, offer, sku, version = DEFAULT_IMAGE
        profile = azure_native.compute.VirtualMachineScaleSetVMProfileArgs(
            priority="Spot" if spot else "Regular",
            eviction_policy=eviction.value if spot else None,
            billing_profile=azure_native.compute.BillingProfileArgs(max_price=-1) if spot else None,
            os_profile=azure_native.compute.VirtualMachineScaleSetOSProfileArgs(
                computer_name_prefix=name[:15].rstrip("-"),
                admin_username=admin,
                custom_data=custom_data,
                linux_configuration=azure_native.compute.LinuxConfigurationArgs(
                    disable_password_authentication=True,
                    ssh=azure_native.compute.SshConfigurationArgs(
                        public_keys=[
                            azure_native.compute.SshPublicKeyArgs(
                                path=f"/home/{admin}/.ssh/authorized_keys", key_data=ssh_key
                            )
                        ]
                    ),
                ),
            ),
            storage_profile=azure_native.compute.VirtualMachineScaleSetStorageProfileArgs(
                image_reference=azure_native.compute.ImageReferenceArgs(
                    publisher=args.get("image_publisher") or publisher,
                    offer=args.get("image_offer") or offer,
                    sku=args.get("image_sku") or sku,
                    version=args.get("image_version") or version,
                ),
                os_disk=azure_native.compute.VirtualMachineScaleSetOSDiskArgs(
                    create_option="FromImage",
                    caching=azure_native.compute.CachingTypes.READ_WRITE,
                    delete_option="Delete",
                    disk_size_gb=disk_gb,
                    managed_disk=azure_native.compute.VirtualMachineScaleSetManagedDiskParametersArgs(
                        storage_account_type="StandardSSD_LRS"
                    ),
                ),
            ),
            network_profile=azure_native.compute.VirtualMachineScaleSetNetworkProfileArgs(
                network_api_version=NETWORK_API_VERSION,
                network_interface_configurations=[
                    azure_native.compute.VirtualMachineScaleSetNetworkConfigurationArgs(
                        name=f"{name}-nic",
                        primary=True,
                        delete_option="Delete",
                        ip_configurations=[
                            azure_native.compute.VirtualMachineScaleSetIPConfigurationArgs(
                                name=f"{name}-ip",
                                primary=True,
                                subnet=azure_native.compute.ApiEntityReferenceArgs(id=subnet_id),
                                # egress public-ip: a Standard address per VM (closed to
                                # inbound traffic: no NSG rule opens it)
                                public_ip_address_configuration=azure_native.compute.VirtualMachineScaleSetPublicIPAddressConfigurationArgs(
                                    name=f"{name}-pip",
                                    sku=azure_native.compute.PublicIPAddressSkuArgs(
                                        name="Standard", tier="Regional"
                                    ),
                                    delete_option="Delete",
                                )
                                if public_ip
                                else None,
                            )
                        ],
                    )
                ],
            ),
            # A VM the scale set deletes (scale-in, budget stop) gets a Terminate scheduled
            # event this long before; the agent checkpoints, then approves it (agents/lifecycle.py).
            scheduled_events_profile=azure_native.compute.ScheduledEventsProfileArgs(
                terminate_notification_profile=azure_native.compute.TerminateNotificationProfileArgs(
                    enable=True, not_before_timeout=f"PT{grace_minutes}M"
                )
            ),
        )
        scale_set = azure_native.compute.VirtualMachineScaleSet(
            f"{name}-vmss",
            resource_group_name=group_name,
            location=location,
            orchestration_mode="Flexible",
            platform_fault_domain_count=1,
            sku=azure_native.compute.SkuArgs(
                name=info.instance_type, tier="Standard", capacity=node_count
            ),
            identity=azure_native.compute.VirtualMachineScaleSetIdentityArgs(
                type=azure_native.compute.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[identity.id],
            ),
            priority_mix_policy=(
                azure_native.compute.PriorityMixPolicyArgs(
                    base_regular_priority_count=on_demand_base,
                    regular_priority_percentage_above_base=percent_above,
                )
                if spot
                else None
            ),
            spot_restore_policy=(
                azure_native.compute.SpotRestorePolicyArgs(
                    enabled=True, restore_timeout=f"PT{restore_minutes}M"
                )
                if spot
                else None
            ),
            virtual_machine_profile=profile,
            tags=tags,
            opts=child,
        )

        self.vm_size = pulumi.Output.from_input(info.instance_type)
        self.scale_set_id = scale_set.id
        self.resource_group_name = pulumi.Output.from_input(group_name)
        self.identity_principal_id = identity.principal_id
        self.register_outputs(
            {
                "vm_size": self.vm_size,
                "scale_set_id": self.scale_set_id,
                "resource_group_name": self.resource_group_name,
                "identity_principal_id": self.identity_principal_id,
            }
        )

    def _network(
        self,
        name: str,
        args: AzureGpuTrainingFleetArgs,
        egress: AzureEgress,
        group_name: pulumi.Input[str],
        location: str,
        tags: dict[str, str],
    ) -> tuple[pulumi.Input[str], bool]:
        """(subnet id, public address per VM): the given subnet, or one with egress."""
        if args.get("subnet_id"):
            return args["subnet_id"], False
        child = pulumi.ResourceOptions(parent=self)
        nsg = azure_native.network.NetworkSecurityGroup(
            f"{name}-nsg",
            azure_native.network.NetworkSecurityGroupInitArgs(
                resource_group_name=group_name, location=location, security_rules=[], tags=tags
            ),
            opts=child,
        )
        vnet = azure_native.network.VirtualNetwork(
            f"{name}-vnet",
            azure_native.network.VirtualNetworkInitArgs(
                resource_group_name=group_name,
                location=location,
                address_space=azure_native.network.AddressSpaceArgs(
                    address_prefixes=["10.42.0.0/16"]
                ),
                tags=tags,
            ),
            opts=child.merge(pulumi.ResourceOptions(ignore_changes=["subnets"])),
        )
        nat_gateway = None
        if egress == AzureEgress.NAT_GATEWAY:
            address = azure_native.network.PublicIPAddress(
                f"{name}-nat-ip",
                azure_native.network.PublicIPAddressInitArgs(
                    resource_group_name=group_name,
                    location=location,
                    sku=azure_native.network.PublicIPAddressSkuArgs(
                        name="Standard", tier="Regional"
                    ),
                    public_ip_allocation_method="Static",
                    tags=tags,
                ),
                opts=child,
            )
            nat = azure_native.network.NatGateway(
                f"{name}-nat",
                azure_native.network.NatGatewayInitArgs(
                    resource_group_name=group_name,
                    location=location,
                    sku=azure_native.network.NatGatewaySkuArgs(name="Standard"),
                    public_ip_addresses=[azure_native.network.SubResourceArgs(id=address.id)],
                    tags=tags,
                ),
                opts=child,
            )
            nat_gateway = azure_native.network.SubResourceArgs(id=nat.id)
        subnet = azure_native.network.Subnet(
            f"{name}-subnet",
            azure_native.network.SubnetInitArgs(
                resource_group_name=group_name,
                virtual_network_name=vnet.name,
                address_prefix="10.42.0.0/20",
                network_security_group=azure_native.network.NetworkSecurityGroupArgs(id=nsg.id),
                nat_gateway=nat_gateway,
                # Blob Storage (the agent bundle, checkpoints) over the Azure backbone
                service_endpoints=[
                    azure_native.network.ServiceEndpointPropertiesFormatArgs(
                        service="Microsoft.Storage"
                    )
                ],
            ),
            opts=child,
        )
        return subnet.id, egress == AzureEgress.PUBLIC_IP

    def _agent_install(
        self,
        name: str,
        source: agent_artifact.AgentBundle | agent_artifact.RequirementsInstall,
        identity: azure_native.managedidentity.UserAssignedIdentity,
        group_name: pulumi.Input[str],
        location: str,
        tags: dict[str, str],
    ) -> pulumi.Output[AgentInstall]:
        """The agent's install: the bundle in the fleet's own storage account, readable by
        exactly the fleet's identity, or the given pinned requirements."""
        if not isinstance(source, agent_artifact.AgentBundle):
            return pulumi.Output.from_input(source)
        bundle = source
        child = pulumi.ResourceOptions(parent=self)
        client = azure_native.authorization.get_client_config_output(
            opts=pulumi.InvokeOptions(parent=self)
        )
        account = azure_native.storage.StorageAccount(
            f"{name}-storage",
            azure_native.storage.StorageAccountArgs(
                resource_group_name=group_name,
                account_name=client.subscription_id.apply(
                    lambda subscription: storage_account_name(name, subscription)
                ),
                location=location,
                kind="StorageV2",
                sku=azure_native.storage.SkuArgs(name="Standard_LRS"),
                allow_blob_public_access=False,
                enable_https_traffic_only=True,
                minimum_tls_version="TLS1_2",
                tags=tags,
            ),
            opts=child,
        )
        container = azure_native.storage.BlobContainer(
            f"{name}-agent-container",
            azure_native.storage.BlobContainerArgs(
                resource_group_name=group_name,
                account_name=account.name,
                container_name=AGENT_CONTAINER,
                public_access=azure_native.storage.PublicAccess.NONE,
            ),
            opts=child,
        )
        blob = azure_native.storage.Blob(
            f"{name}-agent-bundle",
            azure_native.storage.BlobArgs(
                resource_group_name=group_name,
                account_name=account.name,
                container_name=container.name,
                blob_name=bundle.object_name,
                source=pulumi.FileAsset(str(bundle.path)),
                content_type="application/x-tar",
                type=azure_native.storage.BlobType.BLOCK,
            ),
            opts=child,
        )
        azure_native.authorization.RoleAssignment(
            f"{name}-agent-read",
            azure_native.authorization.RoleAssignmentArgs(
                principal_id=identity.principal_id,
                principal_type=azure_native.authorization.PrincipalType.SERVICE_PRINCIPAL,
                role_definition_id=client.subscription_id.apply(
                    lambda subscription: (
                        f"/subscriptions/{subscription}/providers/"
                        f"Microsoft.Authorization/roleDefinitions/{BLOB_READER_ROLE}"
                    )
                ),
                scope=container.id,
                condition=blob_read_condition(bundle.object_name),
                condition_version="2.0",
                description=f"finops fleet {name}: read its agent bundle, nothing else",
            ),
            opts=child,
        )
        return pulumi.Output.all(account.name, container.name, blob.name, identity.client_id).apply(
            lambda found: BundleInstall(
                bundle.sha256, ("azure", found[0], found[1], found[2], found[3])
            )
        )


def storage_account_name(fleet: str, subscription: str) -> str:
    """A storage account name (3-24 lower-case letters and digits, unique in Azure): the
    fleet's name and a digest of subscription, project, stack and fleet."""
    slug = re.sub(r"[^a-z0-9]", "", fleet.lower())[:12]
    digest = hashlib.sha256(
        f"{subscription}/{pulumi.get_project()}/{pulumi.get_stack()}/{fleet}".encode()
    ).hexdigest()
    return f"fa{slug}{digest[: 22 - len(slug)]}"


def blob_read_condition(blob_path: str) -> str:
    """An ABAC condition: blob reads are allowed only for `blob_path` (the role assignment's
    scope is the container)."""
    return (
        f"((!(ActionMatches{{'{BLOB_READ_ACTION}'}})) OR "
        f"(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] "
        f"StringEquals '{blob_path}'))"
    )
