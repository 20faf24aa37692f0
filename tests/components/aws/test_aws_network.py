"""The fleet's network gives its nodes a way out: the graph, followed from the Auto Scaling
group's subnets to the routes, the internet or NAT gateway and the S3 gateway endpoint.

(Without it, nodes without a public address in the default VPC's subnets reach nothing.)"""

from __future__ import annotations

from typing import Any

import pytest
from aws_helpers import STACK_TAGS, only, run_components, untagged

from aifinops.components.aws import GpuTrainingFleet
from aifinops.components.aws.network import AwsFleetNetwork
from aifinops.engine import EngineResource, StackRun

ASG = "aws:autoscaling/group:Group"
LT = "aws:ec2/launchTemplate:LaunchTemplate"


def fleet(**overrides: Any) -> StackRun:
    args: dict[str, Any] = {
        "accelerator": "A10G",
        "nodes_max": 2,
        "model_version": "v1",
        "tags": STACK_TAGS,
        **overrides,
    }
    return run_components(lambda: GpuTrainingFleet("train", args))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def public() -> StackRun:
    return fleet()


@pytest.fixture(scope="module")
def nat() -> StackRun:
    return fleet(egress="nat-gateway")


def by_id(run: StackRun) -> dict[str, EngineResource]:
    return {r.id: r for r in run.custom_resources()}


def routes_of(run: StackRun, subnet_id: str) -> list[dict[str, Any]]:
    """The routes that serve `subnet_id`: those of the table associated with it."""
    (association,) = [
        r.inputs
        for r in run.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
        if r.inputs["subnetId"] == subnet_id
    ]
    table = association["routeTableId"]
    return [
        r.inputs for r in run.of_type("aws:ec2/route:Route") if r.inputs["routeTableId"] == table
    ]


def fleet_subnets(run: StackRun) -> list[str]:
    groups = [only(run, ASG, "train-group"), only(run, ASG, "train-on-demand")]
    subnets = {tuple(g.inputs["vpcZoneIdentifiers"]) for g in groups}
    assert len(subnets) == 1
    return list(subnets.pop())


def test_public_ip_egress_routes_every_fleet_subnet_to_the_internet_gateway(public) -> None:
    resources = by_id(public)
    subnets = fleet_subnets(public)
    zones = {resources[s].inputs["availabilityZone"] for s in subnets}
    assert zones == {"us-east-1a", "us-east-1b", "us-east-1c"}  # every zone: more spot pools
    gateway = only(public, "aws:ec2/internetGateway:InternetGateway")
    vpc = only(public, "aws:ec2/vpc:Vpc")
    assert gateway.inputs["vpcId"] == vpc.id
    for subnet in subnets:
        assert resources[subnet].inputs["vpcId"] == vpc.id
        assert routes_of(public, subnet) == [
            {
                "routeTableId": routes_of(public, subnet)[0]["routeTableId"],
                "destinationCidrBlock": "0.0.0.0/0",
                "gatewayId": gateway.id,
            }
        ]
    (interface,) = only(public, LT).inputs["networkInterfaces"]
    assert interface["associatePublicIpAddress"] == "true"
    assert not public.of_type("aws:ec2/natGateway:NatGateway")


def test_nothing_may_come_in(public) -> None:
    group = only(public, "aws:ec2/securityGroup:SecurityGroup")
    assert "ingress" not in group.inputs
    assert not public.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    (interface,) = only(public, LT).inputs["networkInterfaces"]
    assert interface["securityGroups"] == [group.id]
    assert group.inputs["vpcId"] == only(public, "aws:ec2/vpc:Vpc").id


@pytest.mark.parametrize("mode", ["public", "nat"])
def test_s3_gateway_endpoint_serves_the_fleet_subnets_route_table(mode, request) -> None:
    run: StackRun = request.getfixturevalue(mode)
    endpoint = only(run, "aws:ec2/vpcEndpoint:VpcEndpoint").inputs
    assert endpoint["vpcEndpointType"] == "Gateway"
    assert endpoint["serviceName"] == "com.amazonaws.us-east-1.s3"
    assert endpoint["vpcId"] == only(run, "aws:ec2/vpc:Vpc").id
    for subnet in fleet_subnets(run):
        (association,) = [
            r.inputs
            for r in run.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
            if r.inputs["subnetId"] == subnet
        ]
        assert endpoint["routeTableIds"] == [association["routeTableId"]]


def test_nat_gateway_egress_routes_private_fleet_subnets_through_one_nat(nat) -> None:
    resources = by_id(nat)
    gateway = only(nat, "aws:ec2/natGateway:NatGateway").inputs
    address = only(nat, "aws:ec2/eip:Eip")
    assert gateway["allocationId"] == address.id and address.inputs["domain"] == "vpc"
    home = resources[gateway["subnetId"]]
    assert home.name.startswith("train-network-public-")
    # the NAT gateway's own subnet reaches the internet gateway
    igw = only(nat, "aws:ec2/internetGateway:InternetGateway").id
    assert [r.get("gatewayId") for r in routes_of(nat, gateway["subnetId"])] == [igw]
    subnets = fleet_subnets(nat)
    assert len(subnets) == 3
    for subnet in subnets:
        assert resources[subnet].name.startswith("train-network-private-")
        assert resources[subnet].inputs["mapPublicIpOnLaunch"] is False
        (route,) = routes_of(nat, subnet)
        assert route["destinationCidrBlock"] == "0.0.0.0/0"
        assert route["natGatewayId"] == only(nat, "aws:ec2/natGateway:NatGateway").id
    (interface,) = only(nat, LT).inputs["networkInterfaces"]
    assert interface["associatePublicIpAddress"] == "false"


def test_given_subnets_are_used_as_they_are() -> None:
    run = fleet(vpc_id="vpc-0abc1234", subnet_ids=["subnet-0aaa1111", "subnet-0bbb2222"])
    assert not run.of_type("finops:aws:FleetNetwork")
    assert not run.of_type("aws:ec2/vpc:Vpc")
    assert fleet_subnets(run) == ["subnet-0aaa1111", "subnet-0bbb2222"]
    (interface,) = only(run, LT).inputs["networkInterfaces"]
    assert interface["associatePublicIpAddress"] == "false"


def test_network_resources_carry_the_fleets_tags(public, nat) -> None:
    assert untagged(public, workload=True) == []
    assert untagged(nat, workload=True) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"egress": "nat-gw"}, r"egress: 'nat-gw' is not allowed \(did you mean nat-gateway\?\)"),
        ({"cidr_block": "10.0.0.0/20"}, r"cidr_block: '10.0.0.0/20' is not allowed; a /16"),
        ({"cidr_block": "not-a-cidr"}, "an IPv4 CIDR"),
    ],
)
def test_bad_network_arguments_name_the_field(args, message) -> None:
    with pytest.raises(Exception, match=message):
        run_components(lambda: AwsFleetNetwork("net", {"tags": STACK_TAGS, **args}))
