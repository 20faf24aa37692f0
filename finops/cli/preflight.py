"""`finops preflight --stack dev`: before the first `pulumi up`, check with your own
credentials, read-only, what would make it fail (GPU quotas, network, permissions) and what
would leave budgets blind (cost-allocation tags).

finops preflight --stack dev [--profile P] [--allow-unknown]

One line per check: `ok`, `warn` (the deploy works; something to know), `FAIL` (the deploy
or the fleet's first nodes would fail) or `UNKNOWN` (could not be read: not a pass). Exit 0
when nothing fails, 1 when a check fails or is unknown (`--allow-unknown`: unknowns do not
count), 2 on a bad stack file or no credentials.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from aifinops.cli.preflight_aws import FAIL, UNKNOWN, WARN, AwsPreflight, Check, Clients
from aifinops.config import Cloud, StackConfig
from aifinops.engine.stack import run_stack
from aifinops.errors import FinopsError

HAND_CHECKS = "docs/components-gcp-azure.md, 'A first real deploy on GCP and Azure'"
NOT_CHECKED = {
    Cloud.GCP: "GCP is not checked yet: GPU quotas (regional NVIDIA_*_GPUS, PREEMPTIBLE_NVIDIA_*), "
    "the Vertex AI TPU serving and Cloud TPU quotas, the Compute, IAM, Cloud Functions, Cloud "
    "Build, Cloud Run, Artifact Registry, Cloud Scheduler, Vertex AI, Cloud TPU and Billing "
    "Budget APIs enabled, roles/iam.serviceAccountUser on the stack's "
    "service accounts, the billing account role (roles/billing.costsManager) for budgets; "
    f"check them by hand ({HAND_CHECKS})",
    Cloud.AZURE: "Azure is not checked yet: the vCPU quotas of the VM families (standard and "
    "low-priority), the Microsoft.Compute/Network/Storage/ManagedIdentity/Consumption providers "
    "registered, the right to create role assignments (Owner or User Access Administrator), "
    f"Cost Management Contributor for budgets; check them by hand ({HAND_CHECKS})",
}


class PreflightError(FinopsError):
    """Preflight cannot start (no credentials): exit 2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preflight",
        help="check quotas, network, tags and permissions before a first deploy (read-only)",
        description=(
            "Check, with your credentials and read-only, what makes a first deploy of the "
            "stack fail: GPU vCPU quotas (spot and on-demand), SageMaker endpoint quotas, "
            "network (VPC room or the given subnets' routes), cost-allocation tags, and the "
            "IAM actions the stack's resources need. Exit 1 when a check fails or is unknown."
        ),
    )
    parser.add_argument("--stack", default="dev", help="stack name or Pulumi.<stack>.yaml path")
    parser.add_argument("--project-dir", type=Path, help="folder holding Pulumi.yaml")
    parser.add_argument("--profile", help="AWS profile (default: the usual credential chain)")
    parser.add_argument(
        "--allow-unknown",
        action="store_true",
        help="exit 0 when nothing fails but some are UNKNOWN",
    )
    parser.set_defaults(func=run)


def aws_clients(profile: str | None) -> Clients:
    """boto3 clients from the user's credential chain, one per (service, region)."""
    import boto3

    session = boto3.Session(profile_name=profile)
    if session.get_credentials() is None:
        raise PreflightError(
            "no AWS credentials: set AWS_PROFILE or run `aws configure sso`/`aws sso login`"
            " (preflight reads with your own credentials)"
        )
    made: dict[tuple[str, str], Any] = {}

    def client(service: str, region: str) -> Any:
        if (service, region) not in made:
            made[(service, region)] = session.client(service, region_name=region)  # type: ignore[call-overload]
        return made[(service, region)]

    return client


def checks_for(
    config: StackConfig, resource_types: list[str], clients: Clients | None
) -> list[Check]:
    """Every check of a stack: AWS's through `clients`, the other clouds said not checked."""
    found: list[Check] = []
    clouds = config.clouds()
    if Cloud.AWS.value in clouds:
        assert clients is not None
        found += AwsPreflight(config, clients, resource_types).checks()
    for cloud, note in NOT_CHECKED.items():
        if cloud.value in clouds:
            found.append(Check(UNKNOWN, cloud.value, note))
    return found


def report(checks: list[Check], allow_unknown: bool) -> tuple[list[str], int]:
    """The lines to print and the exit code."""
    width = max((len(c.area) for c in checks), default=0)
    lines = [f"{c.status:<8} {c.area:<{width}}  {c.message}" for c in checks]
    failed = sum(c.status == FAIL for c in checks)
    unknown = sum(c.status == UNKNOWN for c in checks)
    warned = sum(c.status == WARN for c in checks)
    blocking = failed + (0 if allow_unknown else unknown)
    verdict = (
        "a deploy would fail"
        if failed
        else (
            "cannot tell: check the UNKNOWN lines by hand"
            if unknown
            else "nothing found that would fail a deploy"
        )
    )
    lines.append(
        f"preflight: {len(checks)} checks, {failed} failed, {unknown} unknown, {warned} "
        f"warnings: {verdict}"
    )
    return lines, 1 if blocking else 0


def run(args: argparse.Namespace) -> int:
    stack_file, config, stack_run = run_stack(args.stack, args.project_dir)
    clients = aws_clients(args.profile) if Cloud.AWS.value in config.clouds() else None
    print(f"preflight {stack_file} (read-only, with your credentials)", file=sys.stderr)
    checks = checks_for(config, [r.type for r in stack_run.custom_resources()], clients)
    lines, code = report(checks, args.allow_unknown)
    for line in lines:
        print(line)
    return code
