"""The spot fallback controller of a GCP `GpuTrainingFleet`: a Cloud Function that a Cloud
Scheduler job calls every minute (components/gcp/functions/mig_fallback.py; the decision is the
AWS fleet's pure `decide`, shipped beside it).

What it creates (children of the fleet, named `<fleet>-controller-*`):

- `<fleet>-controller-sa`: the function's identity, with one custom role on the project holding
  only `compute.instanceGroupManagers.get` and `.update` (read and resize the MIGs), object
  access on the checkpoint bucket (its state object), and `roles/run.invoker` on the function
  itself (the scheduler calls with this identity's OIDC token).
- `<fleet>-controller-build-sa`: the identity Cloud Build runs the function's build as, with
  the roles Google documents for a user-specified build service account
  (`roles/logging.logWriter`, `roles/artifactregistry.writer`, `roles/storage.objectAdmin`).
  Since July 2024 new projects give the default Cloud Build account no such rights, and
  organisations that disable default service accounts have none: without an explicit build
  account the first deploy fails at the build.
- `<fleet>-controller-code` (bucket) + `<fleet>-controller-source` (zip): the function source.
- `<fleet>-controller`: the function (Python 3.12, one instance at most, 256 MB), built as the
  build account (`build_config.service_account`, its `projects/<p>/serviceAccounts/<email>`).

Service account and custom role ids are scoped by Pulumi project and stack
(`_common.account_id`, `_common.role_id`), so two stacks can share a GCP project.
- `<fleet>-controller-schedule`: the Cloud Scheduler job, every minute.

The project needs the Cloud Functions, Cloud Build, Cloud Run, Artifact Registry and Cloud
Scheduler APIs enabled. Cost: about 43,800 invocations a month of under a second each, inside
the Cloud Functions free tier; a Cloud Scheduler job is free up to 3 per billing account, then
$0.10 a month.
"""

import hashlib
from collections.abc import Mapping
from pathlib import Path

import pulumi
import pulumi_gcp as gcp

from aifinops.components.gcp import _common

RESIZER_PERMISSIONS = ("compute.instanceGroupManagers.get", "compute.instanceGroupManagers.update")
# queue-depth scaling: the subscription's backlog (projects.timeSeries.list)
METRIC_PERMISSIONS = ("monitoring.timeSeries.list",)
# A user-specified Cloud Build service account for functions: Cloud Run "Configure the build
# service account" and pulumi-gcp's cloudfunctionsv2 "Basic Builder" example.
BUILD_ROLES = {
    "log-writer": "roles/logging.logWriter",
    "artifact-writer": "roles/artifactregistry.writer",
    "object-admin": "roles/storage.objectAdmin",
}


# Shipped as files, never imported here: the function imports the AWS controller's decision,
# and importing that would load `aifinops.components.aws` and the AWS provider SDK (about a second)
# into a GCP-only program.
_COMPONENTS = Path(__file__).resolve().parents[1]
SOURCE_FILES = {
    "main.py": _COMPONENTS / "gcp" / "functions" / "mig_fallback.py",
    "fallback_decision.py": _COMPONENTS / "aws" / "lambdas" / "fallback_controller.py",
}


def source_archive() -> pulumi.AssetArchive:
    """The function's source: the adapter as `main.py`, the decision beside it."""
    return pulumi.AssetArchive(
        {name: pulumi.FileAsset(str(path)) for name, path in SOURCE_FILES.items()}
    )


def source_object_name() -> str:
    """`mig-fallback-<hash>.zip`: a new name for new code, so the function is redeployed (the
    function only sees its source object's name)."""
    digest = hashlib.sha256()
    for name, path in sorted(SOURCE_FILES.items()):
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return f"mig-fallback-{digest.hexdigest()[:12]}.zip"


def fallback_controller(
    name: str,
    *,
    parent: pulumi.Resource,
    project: pulumi.Input[str],
    region: str,
    labels: Mapping[str, str],
    spot_group: gcp.compute.RegionInstanceGroupManager,
    on_demand_group: gcp.compute.RegionInstanceGroupManager,
    state_bucket: gcp.storage.Bucket,
    env: Mapping[str, str],
    reads_metrics: bool = False,
) -> gcp.cloudfunctionsv2.Function:
    """Deploy the controller of fleet `name`; returns the function. With `reads_metrics`
    (queue-depth scaling) its role may also read Cloud Monitoring time series."""
    child = pulumi.ResourceOptions(parent=parent)
    account = gcp.serviceaccount.Account(
        f"{name}-controller-sa",
        account_id=_common.account_id(name, "fallback"),
        display_name=f"finops spot fallback controller {name}",
        description=f"{name}: reads and resizes the fleet's two MIGs, nothing else",
        project=project,
        opts=child,
    )
    member = account.email.apply(lambda email: f"serviceAccount:{email}")
    role = gcp.projects.IAMCustomRole(
        f"{name}-controller-role",
        project=project,
        role_id=_common.role_id(name, "mig_resizer"),
        title=f"finops {name} MIG resizer",
        description="Read and resize managed instance groups (finops spot fallback controller)",
        permissions=list(RESIZER_PERMISSIONS) + (list(METRIC_PERMISSIONS) if reads_metrics else []),
        opts=child,
    )
    gcp.projects.IAMMember(
        f"{name}-controller-resizer", project=project, role=role.name, member=member, opts=child
    )
    gcp.storage.BucketIAMMember(
        f"{name}-controller-state",
        bucket=state_bucket.name,
        role="roles/storage.objectUser",
        member=member,
        opts=child,
    )
    builder = gcp.serviceaccount.Account(
        f"{name}-controller-build-sa",
        account_id=_common.account_id(name, "build"),
        display_name=f"finops spot fallback controller build {name}",
        description=f"{name}: builds the controller function (Cloud Build), nothing else",
        project=project,
        opts=child,
    )
    builder_member = builder.email.apply(lambda email: f"serviceAccount:{email}")
    build_grants = [
        gcp.projects.IAMMember(
            f"{name}-controller-build-{grant}",
            project=project,
            role=build_role,
            member=builder_member,
            opts=child,
        )
        for grant, build_role in BUILD_ROLES.items()
    ]
    code_bucket = gcp.storage.Bucket(
        _common.child_name(name, "controller-code"),
        location=region.upper(),
        project=project,
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        labels=dict(labels),
        opts=child,
    )
    source = gcp.storage.BucketObject(
        f"{name}-controller-source",
        bucket=code_bucket.name,
        name=source_object_name(),
        source=source_archive(),
        opts=child,
    )
    function = gcp.cloudfunctionsv2.Function(
        _common.child_name(name, "controller"),
        location=region,
        project=project,
        description=f"finops spot fallback controller of fleet {name}",
        build_config=gcp.cloudfunctionsv2.FunctionBuildConfigArgs(
            runtime="python312",
            entry_point="reconcile_http",
            service_account=builder.id,
            source=gcp.cloudfunctionsv2.FunctionBuildConfigSourceArgs(
                storage_source=gcp.cloudfunctionsv2.FunctionBuildConfigSourceStorageSourceArgs(
                    bucket=code_bucket.name, object=source.name
                )
            ),
        ),
        service_config=gcp.cloudfunctionsv2.FunctionServiceConfigArgs(
            max_instance_count=1,
            available_memory="256M",
            timeout_seconds=120,
            service_account_email=account.email,
            environment_variables={
                **env,
                "PROJECT": project,
                "REGION": region,
                "SPOT_GROUP": spot_group.name,
                "ON_DEMAND_GROUP": on_demand_group.name,
                "STATE_BUCKET": state_bucket.name,
            },
        ),
        labels=dict(labels),
        # the build runs as `builder` as soon as the function is created: its roles first
        opts=pulumi.ResourceOptions(parent=parent, depends_on=build_grants),
    )
    gcp.cloudrunv2.ServiceIamMember(
        f"{name}-controller-invoker",
        project=project,
        location=region,
        name=function.name,
        role="roles/run.invoker",
        member=member,
        opts=child,
    )
    gcp.cloudscheduler.Job(
        f"{name}-controller-schedule",
        project=project,
        region=region,
        description=f"finops: run the spot fallback controller of fleet {name} every minute",
        schedule="* * * * *",
        attempt_deadline="120s",
        http_target=gcp.cloudscheduler.JobHttpTargetArgs(
            uri=function.url,
            http_method="POST",
            oidc_token=gcp.cloudscheduler.JobHttpTargetOidcTokenArgs(
                service_account_email=account.email, audience=function.url
            ),
        ),
        opts=child,
    )
    return function
