"""`finops:gcp:FleetNetwork`: a VPC network where GPU nodes without external IPs can reach out.

Nodes of the training fleets have no external IP, and the `default` network has neither Cloud
NAT nor Private Google Access, so they could reach nothing: no agent, no checkpoints, no
metrics. This network gives them:

- a custom-mode VPC network and one subnetwork in the fleet's region (`10.42.0.0/20` by
  default) with **Private Google Access** on: Cloud Storage (checkpoints, datasets, the agent
  bundle) and the Google APIs are reached without NAT, so that traffic pays no NAT
  processing charge;
- a **Cloud Router and Cloud NAT** for that subnetwork (all its ranges, NAT addresses
  allocated automatically): the rest of the internet (package mirrors, model hubs). Cloud NAT
  costs $0.0014 per VM-hour (up to 32 VMs; $0.044/h flat above) plus $0.045 per GB processed,
  and its address is billed as an external IP ($0.005/h); the preview prices it
  (finops/catalog/data/network_prices.csv);
- a firewall rule that lets the subnetwork's own addresses reach each other (multi-node
  training: NCCL, torch.distributed), which the `default` network's `default-allow-internal`
  did; nothing from outside may come in (a custom network denies ingress by default).
"""

import ipaddress
from typing import NotRequired, TypedDict

import pulumi
import pulumi_gcp as gcp

from aifinops.components.gcp import _common

TYPE_TOKEN = "finops:gcp:FleetNetwork"
DEFAULT_CIDR = "10.42.0.0/20"


class GcpFleetNetworkArgs(TypedDict):
    """Arguments of `finops:gcp:FleetNetwork`."""

    region: str
    """The region of the subnetwork, router and NAT (the fleets' region)."""
    project: NotRequired[str]
    """GCP project id; default the stack's `gcp:project`."""
    cidr_block: NotRequired[str]
    """IPv4 range of the subnetwork (default 10.42.0.0/20)."""


class GcpFleetNetwork(pulumi.ComponentResource):
    """A custom VPC network with one subnetwork (Private Google Access), Cloud Router + NAT."""

    network: pulumi.Output[str]
    """Self link of the network."""
    subnetwork: pulumi.Output[str]
    """Self link of the subnetwork fleets launch into."""
    nat: pulumi.Output[str]
    """Name of the Cloud NAT gateway."""

    def __init__(
        self, name: str, args: GcpFleetNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        where = f"{TYPE_TOKEN} {name!r}"
        region = str(args.get("region") or "")
        if not region:
            raise ValueError(f"{where}: region is required")
        cidr = str(args.get("cidr_block") or DEFAULT_CIDR)
        try:
            ipaddress.IPv4Network(cidr)
        except ValueError:
            raise ValueError(f"{where}: cidr_block {cidr!r} is not an IPv4 CIDR") from None
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = _common.project_of(args.get("project"))

        network = gcp.compute.Network(
            f"{name}-vpc",
            gcp.compute.NetworkArgs(
                project=project,
                auto_create_subnetworks=False,
                description="finops training fleets: private nodes, Cloud NAT egress",
            ),
            opts=child,
        )
        subnetwork = gcp.compute.Subnetwork(
            f"{name}-subnet",
            gcp.compute.SubnetworkArgs(
                project=project,
                region=region,
                network=network.id,
                ip_cidr_range=cidr,
                # Cloud Storage and Google APIs without NAT (no processing charge)
                private_ip_google_access=True,
            ),
            opts=child,
        )
        gcp.compute.Firewall(
            f"{name}-internal",
            gcp.compute.FirewallArgs(
                project=project,
                network=network.id,
                direction="INGRESS",
                source_ranges=[cidr],
                allows=[gcp.compute.FirewallAllowArgs(protocol="all")],
                description="nodes of the fleets reach each other (multi-node training)",
            ),
            opts=child,
        )
        router = gcp.compute.Router(
            f"{name}-router",
            gcp.compute.RouterArgs(project=project, region=region, network=network.id),
            opts=child,
        )
        nat = gcp.compute.RouterNat(
            f"{name}-nat",
            gcp.compute.RouterNatArgs(
                project=project,
                region=region,
                router=router.name,
                nat_ip_allocate_option="AUTO_ONLY",
                source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
                subnetworks=[
                    gcp.compute.RouterNatSubnetworkArgs(
                        name=subnetwork.id, source_ip_ranges_to_nats=["ALL_IP_RANGES"]
                    )
                ],
                log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            ),
            opts=child,
        )
        self.network = network.self_link
        self.subnetwork = subnetwork.self_link
        self.nat = nat.name
        self.register_outputs(
            {"network": self.network, "subnetwork": self.subnetwork, "nat": self.nat}
        )
