"""`finops:aws:FleetNetwork`: a VPC where GPU training nodes can reach what they need, cheaply.

Nodes without a public address in the default VPC's subnets have no route out: no package
install, no checkpoint upload, no metrics. This network gives them one:

- a VPC (`10.42.0.0/16` by default) with one subnet per availability zone of the region (up to
  six: every zone is another spot pool for the fleet), an internet gateway and a route table;
- an **S3 gateway endpoint** on the fleet's route table: checkpoints, datasets in S3 and the
  agent bundle go to S3 inside the region without a NAT gateway and without its $0.045/GB
  processing charge; gateway endpoints cost nothing;
- for everything else (the training job's own downloads, CloudWatch, the controller's and
  agent's API calls), by `egress`:
  - `public-ip` (default): each node gets a public IPv4 address on a subnet routed to the
    internet gateway; the fleet's security group allows no inbound traffic at all. AWS charges
    $0.005 per address-hour ($3.65 a month per node), and nothing per GB;
  - `nat-gateway`: nodes stay on private subnets routed through one NAT gateway (with its
    Elastic IP) in the first zone's public subnet: $0.045 an hour in us-east-1 ($32.85 a
    month) plus $0.045 per GB it processes, and cross-zone transfer from the other zones.
    For accounts whose rules forbid public addresses on instances.

Public addresses are the default because they are cheaper for the fleets this project builds:
a NAT gateway costs as much as nine nodes' addresses before it moves a byte, and training jobs
pull datasets and model weights from the internet (Hugging Face, pip), which a NAT gateway
bills per GB. Both prices are in the preview (finops/catalog/data/network_prices.csv).
"""

import ipaddress
from enum import StrEnum
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from aifinops.components import _args, _hosting
from aifinops.components.aws import _common

TYPE_TOKEN = "finops:aws:FleetNetwork"
DEFAULT_CIDR = "10.42.0.0/16"
SUBNET_PREFIX = 20  # 4,091 usable addresses per zone
MAX_ZONES = 6


class FleetEgress(StrEnum):
    """How a fleet's nodes reach the internet (S3 always goes through the gateway endpoint)."""

    PUBLIC_IP = "public-ip"
    """A public IPv4 address per node, no inbound rule (default; $0.005/h per node)."""
    NAT_GATEWAY = "nat-gateway"
    """Private subnets behind one NAT gateway ($0.045/h + $0.045/GB in us-east-1)."""


class AwsFleetNetworkArgs(TypedDict):
    """Arguments of `finops:aws:FleetNetwork`."""

    tags: dict[str, str]
    """The stack's tags, written on every taggable child."""
    egress: NotRequired[FleetEgress]
    """public-ip (default) or nat-gateway."""
    cidr_block: NotRequired[str]
    """IPv4 range of the VPC, a /16 (default 10.42.0.0/16)."""
    region: NotRequired[str | None]
    """AWS region (default: the provider's)."""


class AwsFleetNetwork(pulumi.ComponentResource):
    """A VPC with a subnet per zone, an S3 gateway endpoint and internet egress for fleets."""

    vpc_id: pulumi.Output[str]
    subnet_ids: pulumi.Output[list[str]]
    """The subnets fleets launch into (public with public-ip, private with nat-gateway)."""
    route_table_id: pulumi.Output[str]
    """The route table of those subnets (internet route, S3 endpoint route)."""
    egress: pulumi.Output[str]
    associate_public_ip: bool
    """Whether nodes on `subnet_ids` need a public address to reach the internet."""

    def __init__(
        self, name: str, args: AwsFleetNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        _common.check_name(name)
        egress = _args.enum_arg(
            "", "egress", args.get("egress"), FleetEgress, FleetEgress.PUBLIC_IP
        )
        cidr = str(args.get("cidr_block") or DEFAULT_CIDR)
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError:
            raise _args.invalid("cidr_block", cidr, "an IPv4 CIDR such as 10.42.0.0/16") from None
        if network.prefixlen != 16:
            raise _args.invalid("cidr_block", cidr, "a /16 (a /20 per zone, public and private)")
        region = args.get("region") or None
        _common.check_tags(args.get("tags"), workload=False)
        super().__init__(_hosting.type_token(type(self), TYPE_TOKEN), name, None, opts)
        tags = _common.resource_tags(args["tags"], None)
        child = pulumi.ResourceOptions(parent=self)

        zones = aws.get_availability_zones(
            state="available",
            filters=[
                aws.GetAvailabilityZonesFilterArgs(
                    name="opt-in-status", values=["opt-in-not-required"]
                )
            ],
            region=region,
            opts=pulumi.InvokeOptions(parent=self),
        ).names[:MAX_ZONES]
        blocks = list(network.subnets(new_prefix=SUBNET_PREFIX))
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            aws.ec2.VpcArgs(
                cidr_block=cidr,
                enable_dns_support=True,
                enable_dns_hostnames=True,
                region=region,
                tags={**tags, "Name": f"{name}-vpc"},
            ),
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw",
            aws.ec2.InternetGatewayArgs(vpc_id=vpc.id, region=region, tags=tags),
            opts=child,
        )
        public_table = self._route_table(f"{name}-public", vpc, region, tags)
        aws.ec2.Route(
            f"{name}-public-internet",
            aws.ec2.RouteArgs(
                route_table_id=public_table.id,
                destination_cidr_block="0.0.0.0/0",
                gateway_id=gateway.id,
                region=region,
            ),
            opts=child,
        )
        public = [
            self._subnet(f"{name}-public-{zone}", vpc, zone, blocks[i], public_table, region, tags)
            for i, zone in enumerate(zones)
        ]
        fleet_table, fleet_subnets = public_table, public
        if egress == FleetEgress.NAT_GATEWAY:
            address = aws.ec2.Eip(
                f"{name}-nat-ip",
                aws.ec2.EipArgs(domain="vpc", region=region, tags=tags),
                opts=child,
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat",
                aws.ec2.NatGatewayArgs(
                    allocation_id=address.id,
                    subnet_id=public[0].id,
                    connectivity_type="public",
                    region=region,
                    tags=tags,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
            )
            fleet_table = self._route_table(f"{name}-private", vpc, region, tags)
            aws.ec2.Route(
                f"{name}-private-internet",
                aws.ec2.RouteArgs(
                    route_table_id=fleet_table.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat.id,
                    region=region,
                ),
                opts=child,
            )
            fleet_subnets = [
                self._subnet(
                    f"{name}-private-{zone}",
                    vpc,
                    zone,
                    blocks[len(zones) + i],
                    fleet_table,
                    region,
                    tags,
                )
                for i, zone in enumerate(zones)
            ]
        region_name = (
            pulumi.Output.from_input(region)
            if region
            else aws.get_region_output(opts=pulumi.InvokeOptions(parent=self)).region
        )
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            aws.ec2.VpcEndpointArgs(
                vpc_id=vpc.id,
                service_name=pulumi.Output.concat("com.amazonaws.", region_name, ".s3"),
                vpc_endpoint_type="Gateway",
                route_table_ids=[fleet_table.id],
                region=region,
                tags=tags,
            ),
            opts=child,
        )
        self.vpc_id = vpc.id
        self.subnet_ids = pulumi.Output.all(*[s.id for s in fleet_subnets])
        self.route_table_id = fleet_table.id
        self.egress = pulumi.Output.from_input(egress.value)
        self.associate_public_ip = egress == FleetEgress.PUBLIC_IP
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "subnetIds": self.subnet_ids,
                "routeTableId": self.route_table_id,
                "egress": self.egress,
            }
        )

    def _route_table(
        self, name: str, vpc: aws.ec2.Vpc, region: str | None, tags: dict[str, str]
    ) -> aws.ec2.RouteTable:
        return aws.ec2.RouteTable(
            name,
            aws.ec2.RouteTableArgs(vpc_id=vpc.id, region=region, tags={**tags, "Name": name}),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _subnet(
        self,
        name: str,
        vpc: aws.ec2.Vpc,
        zone: str,
        block: ipaddress.IPv4Network,
        table: aws.ec2.RouteTable,
        region: str | None,
        tags: dict[str, str],
    ) -> aws.ec2.Subnet:
        subnet = aws.ec2.Subnet(
            name,
            aws.ec2.SubnetArgs(
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=str(block),
                # the launch template decides; nothing else launched here gets an address
                map_public_ip_on_launch=False,
                region=region,
                tags={**tags, "Name": name},
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-routes",
            aws.ec2.RouteTableAssociationArgs(
                subnet_id=subnet.id, route_table_id=table.id, region=region
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return subnet
