"""A Cloud Function that a Cloud Scheduler job calls every minute, with its own least-privilege
identity: the scaffolding the fleet's spot fallback controller (components/gcp/fallback.py) and
the TPU batch's recreate controller (components/gcp/tpu_recreate.py) share.

What it creates (children of `parent`, named `<name>-<role>-*` where `role` is `controller`,
`recreate`...):

- `<name>-<role>-sa`: the function's identity. It gets one custom role on the project
  (`<name>-<role>-role`, the caller's permissions only), whatever grants the caller adds
  (`grants`), and `roles/run.invoker` on the function itself (`<name>-<role>-invoker`: the
  scheduler calls with this identity's OIDC token).
- `<name>-<role>-build-sa`: the identity Cloud Build runs the function's build as, with the
  roles Google documents for a user-specified build service account (BUILD_ROLES). Since July
  2024 new projects give the default Cloud Build account no such rights, and organisations that
  disable default service accounts have none: without an explicit build account the first
  deploy fails at the build.
- `<name>-<role>-code` (bucket) + `<name>-<role>-source` (zip): the function source, under an
  object name that changes with the code (the function only sees its source object's name, so
  new code under an old name would never be redeployed).
- `<name>-<role>`: the function (Python 3.12, one instance at most, 256 MB, 120 s), built as
  the build account (`build_config.service_account`), created after every grant.
- `<name>-<role>-schedule`: the Cloud Scheduler job, every minute.

Service account and custom role ids are scoped by Pulumi project and stack
(`_common.account_id`, `_common.role_id`), so two stacks can share a GCP project.

The project needs the Cloud Functions, Cloud Build, Cloud Run, Artifact Registry and Cloud
Scheduler APIs enabled. Cost: about 43,800 invocations a month of under a second each, inside
the Cloud Functions free tier; a Cloud Scheduler job is free up to 3 per billing account, then
$0.10 a month.
"""

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_gcp as gcp

from aifinops.components.gcp import _common

# A user-specified Cloud Build service account for functions: Cloud Run "Configure the build
# service account" and pulumi-gcp's cloudfunctionsv2 "Basic Builder" example.
BUILD_ROLES = {
    "log-writer": "roles/logging.logWriter",
    "artifact-writer": "roles/artifactregistry.writer",
    "object-admin": "roles/storage.objectAdmin",
}

Grants = Callable[[pulumi.Output[str], gcp.projects.IAMCustomRole], Sequence[pulumi.Resource]]
"""Given the function identity's IAM member (`serviceAccount:<email>`) and its custom role,
create the identity's grants (the role's binding included) and return them."""


@dataclass(frozen=True)
class FunctionSpec:
    """What one scheduled function is: names, identity, code and texts."""

    role: str
    """The children's middle name: `<name>-<role>-sa`, `<name>-<role>`..."""
    account_kind: str
    """`_common.account_id` kind of the function's identity."""
    build_account_kind: str
    """`_common.account_id` kind of the build identity."""
    role_id_kind: str
    """`_common.role_id` kind of the custom role."""
    permissions: Sequence[str]
    """The custom role's permissions: what the function may do, nothing else."""
    sources: Mapping[str, Path]
    """Files of the function's archive by their name in it (`main.py` is the entry module)."""
    object_prefix: str
    """The source object's name before its code hash (`mig-fallback`)."""
    title: str
    """What it is, for display names (`spot fallback controller`)."""
    purpose: str
    """What its identity may do, for the account's description."""
    role_title: str
    role_description: str
    function_description: str
    """The function's description; `{name}` is the component's name."""
    schedule_description: str
    """The scheduler job's description; `{name}` is the component's name."""


def source_archive(sources: Mapping[str, Path]) -> pulumi.AssetArchive:
    """The function's source files as a zip archive."""
    return pulumi.AssetArchive(
        {name: pulumi.FileAsset(str(path)) for name, path in sources.items()}
    )


def source_object_name(prefix: str, sources: Mapping[str, Path]) -> str:
    """`<prefix>-<hash>.zip`: a new name for new code (names and contents), so the function is
    redeployed."""
    if len(sources) == 1:
        # one file: the hash of its bytes alone (the names deployed stacks already hold)
        (path,) = sources.values()
        return f"{prefix}-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}.zip"
    digest = hashlib.sha256()
    for name, path in sorted(sources.items()):
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return f"{prefix}-{digest.hexdigest()[:12]}.zip"


def scheduled_function(
    name: str,
    spec: FunctionSpec,
    *,
    parent: pulumi.Resource,
    project: pulumi.Input[str],
    region: str,
    labels: Mapping[str, str],
    env: Mapping[str, pulumi.Input[str]],
    grants: Grants,
) -> gcp.cloudfunctionsv2.Function:
    """Deploy function `spec` of component `name` and its schedule; returns the function."""
    child = pulumi.ResourceOptions(parent=parent)
    prefix = f"{name}-{spec.role}"
    account = gcp.serviceaccount.Account(
        f"{prefix}-sa",
        account_id=_common.account_id(name, spec.account_kind),
        display_name=f"finops {spec.title} {name}",
        description=f"{name}: {spec.purpose}, nothing else",
        project=project,
        opts=child,
    )
    member = _common.member(account)
    role = gcp.projects.IAMCustomRole(
        f"{prefix}-role",
        project=project,
        role_id=_common.role_id(name, spec.role_id_kind),
        title=f"finops {name} {spec.role_title}",
        description=spec.role_description,
        permissions=list(spec.permissions),
        opts=child,
    )
    identity_grants = list(grants(member, role))
    builder = gcp.serviceaccount.Account(
        f"{prefix}-build-sa",
        account_id=_common.account_id(name, spec.build_account_kind),
        display_name=f"finops {spec.title} build {name}",
        description=f"{name}: builds the {spec.role} function (Cloud Build), nothing else",
        project=project,
        opts=child,
    )
    builder_member = _common.member(builder)
    build_grants = [
        gcp.projects.IAMMember(
            f"{prefix}-build-{grant}",
            project=project,
            role=build_role,
            member=builder_member,
            opts=child,
        )
        for grant, build_role in BUILD_ROLES.items()
    ]
    code_bucket = gcp.storage.Bucket(
        _common.child_name(name, f"{spec.role}-code"),
        location=region.upper(),
        project=project,
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        labels=dict(labels),
        opts=child,
    )
    source = gcp.storage.BucketObject(
        f"{prefix}-source",
        bucket=code_bucket.name,
        name=source_object_name(spec.object_prefix, spec.sources),
        source=source_archive(spec.sources),
        opts=child,
    )
    function = gcp.cloudfunctionsv2.Function(
        _common.child_name(name, spec.role),
        location=region,
        project=project,
        description=spec.function_description.format(name=name),
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
            environment_variables=dict(env),
        ),
        labels=dict(labels),
        # the build runs as `builder` as soon as the function is created, and the function
        # acts at its first call: every grant first
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*build_grants, *identity_grants]),
    )
    gcp.cloudrunv2.ServiceIamMember(
        f"{prefix}-invoker",
        project=project,
        location=region,
        name=function.name,
        role="roles/run.invoker",
        member=member,
        opts=child,
    )
    gcp.cloudscheduler.Job(
        f"{prefix}-schedule",
        project=project,
        region=region,
        description=spec.schedule_description.format(name=name),
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
