"""`finops preflight`: the first-deploy checks against AWS, offline. EC2 is moto's; Service
Quotas, Cost Explorer, STS and IAM (whose policy simulator moto lacks) answer through
botocore's own before-call hook, after botocore validated each call's parameters against its
model, as its Stubber does, but keyed by what is asked. Every call is recorded: preflight
only ever reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from aifinops.cli import main
from aifinops.cli.preflight import checks_for, report
from aifinops.cli.preflight_aws import FAIL, OK, UNKNOWN, WARN, fleet_demand
from aifinops.engine.stack import run_stack

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/platform/deployer"
HEALTHY = {
    "L-DB2E81BA": 64.0,  # G and VT on-demand
    "L-3819A6DF": 64.0,  # G and VT spot
    "L-F678F1CE": 5.0,  # VPCs per region
    "L-A4707A72": 5.0,  # internet gateways per region
    "L-0263D0A3": 5.0,  # Elastic IPs
}
SAGEMAKER = {"ml.inf2.xlarge for endpoint usage": 2.0, "ml.g5.xlarge for endpoint usage": 4.0}
READ_ONLY = ("Get", "List", "Describe", "Simulate")


@pytest.fixture(scope="module")
def dev() -> tuple[Any, list[str]]:
    _, config, run = run_stack("dev")
    return config, [r.type for r in run.custom_resources()]


def answer(client: Any, respond: Callable[[str, dict[str, Any]], Any]) -> None:
    """Answer every call of `client` from `respond(operation, params)` (a dict, or a
    (code, message) error), after botocore validated the parameters against its model."""

    def keep(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        context["api_params"] = dict(params)

    def handler(model: Any, context: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict]:
        reply = respond(model.name, context["api_params"])
        if isinstance(reply, tuple):
            code, message = reply
            return AWSResponse("", 400, {}, None), {"Error": {"Code": code, "Message": message}}
        return AWSResponse("", 200, {}, None), reply

    client.meta.events.register("before-parameter-build", keep)
    client.meta.events.register("before-call", handler)


class Account:
    """An AWS account as preflight sees it; `calls` records every operation made."""

    def __init__(
        self,
        quotas: dict[str, float],
        sagemaker: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
        denied: list[str] | None = None,
        simulate_error: str | None = None,
    ):
        self.quotas = quotas
        self.sagemaker = SAGEMAKER if sagemaker is None else sagemaker
        self.tags = (
            {"Project": "Active", "Team": "Active", "Environment": "Active"}
            if tags is None
            else tags
        )
        self.denied = denied or []
        self.simulate_error = simulate_error
        self.calls: list[str] = []
        self.made: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str) -> Any:
        if (service, region) in self.made:
            return self.made[(service, region)]
        made = boto3.client(service, region_name=region)  # type: ignore[call-overload]
        made.meta.events.register(
            "before-parameter-build",
            lambda model, **_: self.calls.append(f"{service}:{model.name}"),
        )
        if service == "service-quotas":
            answer(made, self._quota)
        elif service == "ce":
            answer(
                made,
                lambda op, p: {
                    "CostAllocationTags": [
                        {"TagKey": k, "Type": "UserDefined", "Status": s}
                        for k, s in self.tags.items()
                        if k in p["TagKeys"]
                    ]
                },
            )
        elif service == "sts":
            answer(
                made,
                lambda op, p: {
                    "UserId": "AROA:me",
                    "Account": ACCOUNT,
                    "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/me",
                },
            )
        elif service == "iam":
            answer(made, self._iam)
        self.made[(service, region)] = made
        return made

    def _quota(self, operation: str, params: dict[str, Any]) -> Any:
        if operation in ("ListServiceQuotas", "ListAWSDefaultServiceQuotas"):
            listed = self.sagemaker if operation == "ListServiceQuotas" else {}
            return {
                "Quotas": [
                    {"QuotaName": n, "Value": v, "QuotaCode": "L-X"} for n, v in listed.items()
                ]
            }
        code = params["QuotaCode"]
        if operation == "GetServiceQuota" and code not in self.quotas:
            return ("NoSuchResourceException", "not applied")
        value = self.quotas.get(code, 0.0)
        return {"Quota": {"QuotaCode": code, "Value": value, "ServiceCode": params["ServiceCode"]}}

    def _iam(self, operation: str, params: dict[str, Any]) -> Any:
        if operation == "GetRole":
            return {
                "Role": {
                    "Path": "/platform/",
                    "RoleName": "deployer",
                    "RoleId": "AROAEXAMPLEID000001",
                    "Arn": ROLE_ARN,
                    "CreateDate": "2026-01-01T00:00:00Z",
                    "AssumeRolePolicyDocument": "{}",
                }
            }
        if self.simulate_error:
            return (self.simulate_error, "not authorized to simulate")
        assert params["PolicySourceArn"] == ROLE_ARN  # the role with its path, not the session
        return {
            "EvaluationResults": [
                {
                    "EvalActionName": a,
                    "EvalResourceName": "*",
                    "EvalDecision": "implicitDeny" if a in self.denied else "allowed",
                }
                for a in params["ActionNames"]
            ],
            "IsTruncated": False,
        }


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def statuses(checks: list[Any], area: str | None = None) -> list[tuple[str, str]]:
    return [(c.status, c.message) for c in checks if area is None or c.area == area]


def test_a_new_account_without_gpu_quota_fails_with_the_quota_to_raise(aws, dev) -> None:
    config, types = dev
    account = Account({**HEALTHY, "L-3819A6DF": 0.0, "L-DB2E81BA": 0.0})
    checks = checks_for(config, types, account.client)
    quota = statuses(checks, "quota")
    assert (
        quota[0][0] == WARN
        and "Running On-Demand G and VT instances in us-east-1 (L-DB2E81BA): 0 vCPUs covers the start (0)"
        in quota[0][1]
    )
    assert quota[1][0] == FAIL
    assert quota[1][1].startswith(
        "All G and VT Spot Instance Requests in us-east-1 (L-3819A6DF): 0 vCPUs, the fleets start with 16"
    )
    assert "vision-train: 2 x g6.2xlarge" in quota[1][1]  # the largest planned type (8 vCPUs)
    assert "servicequotas/home/services/ec2/quotas/L-3819A6DF" in quota[1][1]
    lines, code = report(checks, allow_unknown=False)
    assert code == 1 and lines[-1].endswith("a deploy would fail")


def test_a_ready_account_passes_every_check(aws, dev) -> None:
    config, types = dev
    account = Account(HEALTHY)
    checks = checks_for(config, types, account.client)
    assert {c.status for c in checks} <= {OK, WARN}, [
        c for c in checks if c.status not in (OK, WARN)
    ]
    assert (
        OK,
        "SageMaker ml.inf2.xlarge for endpoint usage in us-east-1: 2 instances",
    ) in statuses(checks)
    network = statuses(checks, "network")
    assert network[0] == (
        OK,
        "VPCs per Region in us-east-1 (L-F678F1CE): 1 used of 5, the stack adds 1",
    )  # moto's default VPC
    (permissions,) = statuses(checks, "permissions")
    assert permissions[0] == OK and permissions[1].startswith(f"{ROLE_ARN} may do all ")
    tags = statuses(checks, "tags")
    assert (
        WARN,
        "cost-allocation tag ModelVersion: not yet seen by billing; budgets on it see costs a day after the first tagged resource (activated then, automatically)",
    ) in tags
    assert report(checks, allow_unknown=False)[1] == 0


def test_preflight_only_reads(aws, dev) -> None:
    config, types = dev
    account = Account(HEALTHY, denied=["ec2:CreateVpc"])
    checks_for(config, types, account.client)
    assert account.calls
    assert [c for c in account.calls if not c.split(":")[1].startswith(READ_ONLY)] == []


def test_missing_permissions_fail_naming_the_actions(aws, dev) -> None:
    config, types = dev
    account = Account(HEALTHY, denied=["iam:PassRole", "ce:CreateAnomalyMonitor"])
    (permissions,) = statuses(checks_for(config, types, account.client), "permissions")
    assert permissions == (FAIL, f"{ROLE_ARN} may not: ce:CreateAnomalyMonitor, iam:PassRole")


def test_what_cannot_be_read_is_unknown_not_ok(aws, dev) -> None:
    config, types = dev
    account = Account(HEALTHY, simulate_error="AccessDenied")
    checks = checks_for(config, types, account.client)
    (permissions,) = statuses(checks, "permissions")
    assert permissions[0] == UNKNOWN and "grant it iam:SimulatePrincipalPolicy" in permissions[1]
    assert report(checks, allow_unknown=False)[1] == 1
    assert report(checks, allow_unknown=True)[1] == 0


def test_every_resource_type_of_the_stack_has_its_actions(dev) -> None:
    from aifinops.cli.preflight_aws import ACTIONS_BY_TYPE

    _, types = dev
    missing = [t for t in types if t.startswith("aws") and t not in ACTIONS_BY_TYPE]
    assert missing == []


GIVEN = """\
config:
  aws:region: us-east-1
  finops:tags: {{Project: vision, Team: ml-platform, Environment: dev}}
  finops:trainingFleets:
    - name: train
      cloud: aws
      accelerator: A10G
      nodes: {{min: 0, desired: 1, max: 2}}
      modelVersion: v1
      vpcId: {vpc}
      subnetIds: {subnets}
"""


def given_stack(tmp_path: Path, vpc: str, subnets: list[str]) -> tuple[Any, list[str]]:
    path = tmp_path / "Pulumi.given.yaml"
    path.write_text(GIVEN.format(vpc=vpc, subnets=subnets))
    _, config, run = run_stack(str(path), Path(__file__).resolve().parents[2])
    return config, [r.type for r in run.custom_resources()]


def test_given_subnets_must_exist_and_route_out_through_a_nat(aws, tmp_path: Path) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    lonely = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.2.0/24")["Subnet"]["SubnetId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    nat = ec2.create_nat_gateway(
        SubnetId=public, AllocationId=ec2.allocate_address(Domain="vpc")["AllocationId"]
    )["NatGateway"]["NatGatewayId"]
    for subnet, route in ((public, {"GatewayId": gateway}), (private, {"NatGatewayId": nat})):
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", **route)
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    config, types = given_stack(tmp_path, vpc, [public, private, lonely])
    network = statuses(checks_for(config, types, Account(HEALTHY).client), "network")
    assert (
        FAIL,
        f"train: subnet {public}: routes to an internet gateway, and fleets on given subnets get no public address: give a subnet behind a NAT gateway",
    ) in network
    assert (OK, f"train: subnet {private}: routes out through {nat}") in network
    assert (
        WARN,
        f"train: subnet {private}: no S3 gateway endpoint route: checkpoint traffic pays NAT processing per GB",
    ) in network
    # the VPC's main route table has only the local route
    assert (
        FAIL,
        f"train: subnet {lonely}: no route to 0.0.0.0/0: the nodes reach nothing (no agent, no checkpoints); add a NAT gateway route",
    ) in network
    config, types = given_stack(tmp_path, vpc, ["subnet-0123456789abcdef0"])
    (missing,) = statuses(checks_for(config, types, Account(HEALTHY).client), "network")
    assert missing[0] == FAIL and "subnet-0123456789abcdef0" in missing[1]


def test_fleet_demand_counts_spot_and_the_on_demand_fallback(dev) -> None:
    config, _ = dev
    demand = fleet_demand(config)
    spot = demand[("us-east-1", "G", "spot")]
    on_demand = demand[("us-east-1", "G", "on-demand")]
    assert (spot.start, spot.most) == (16.0, 32.0)  # desired 2, max 4, 8 vCPUs (g6.2xlarge)
    assert (on_demand.start, on_demand.most) == (0.0, 32.0)  # the fallback may cover all


def test_cli_without_credentials_is_one_line_exit_2(monkeypatch, capsys) -> None:
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["preflight", "--stack", "dev"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no AWS credentials")


@pytest.mark.slow
def test_gcp_and_azure_are_unknown_not_passed(capsys) -> None:
    """A stack without AWS needs no AWS credentials; what preflight cannot read on GCP and
    Azure is one UNKNOWN line per cloud pointing at the checks to do by hand, and exit 1."""
    stack = "examples/Pulumi.multicloud.yaml"
    assert main(["preflight", "--stack", stack]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [[UNKNOWN, "gcp"], [UNKNOWN, "azure"]]
    assert all("A first real deploy on GCP and Azure" in line for line in lines[:-1])
    assert "cloud Build".lower() in lines[0].lower() and "serviceAccountUser" in lines[0]
    assert lines[-1].endswith(
        "0 failed, 2 unknown, 0 warnings: cannot tell: check the UNKNOWN lines by hand"
    )
    assert main(["preflight", "--stack", stack, "--allow-unknown"]) == 0


def test_a_serverless_endpoint_quota_is_unknown_not_an_instance_type(aws) -> None:
    """A serverless endpoint has no instance type: its quota line is UNKNOWN, and the
    provisioned endpoint of the same stack is still checked."""
    root = Path(__file__).resolve().parents[2]
    _, config, run = run_stack(str(root / "examples" / "Pulumi.serverless.yaml"), root)
    types = [r.type for r in run.custom_resources()]
    checks = checks_for(config, types, Account(HEALTHY).client)
    quota = statuses(checks, "quota")
    assert (
        UNKNOWN,
        "SageMaker serverless in us-east-1: faq-embed's concurrency quota is not checked; "
        "compare maxConcurrency with the serverless quotas in Service Quotas (Amazon SageMaker)",
    ) in quota
    assert (OK, "SageMaker ml.inf2.xlarge for endpoint usage in us-east-1: 2 instances") in quota
