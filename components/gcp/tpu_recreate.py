"""The recreate controller of a spot `TpuBatchInference`: a Cloud Function that a Cloud
Scheduler job calls every minute (components/gcp/functions/tpu_recreate.py) to delete the
batch's preempted TPU VMs and create them again under the same node ids.

What it creates (children of the batch component, named `<name>-recreate-*`), built as the
fleet's spot fallback controller is (components/gcp/fallback.py):

- `<name>-recreate-sa`: the function's identity, with one custom role on the project holding
  only `tpu.nodes.get`, `tpu.nodes.create` and `tpu.nodes.delete` (Cloud TPU has no
  resource-level IAM), `roles/iam.serviceAccountUser` on the batch VMs' own service account
  only (a node is created to run as it), and `roles/run.invoker` on the function.
- `<name>-recreate-build-sa`: the identity Cloud Build runs the function's build as, with the
  roles of fallback.BUILD_ROLES.
- `<name>-recreate-code` (bucket) + `<name>-recreate-source` (zip) and `<name>-recreate`: the
  function (Python 3.12, one instance at most, 256 MB); `<name>-recreate-schedule`: the job.

Cost: about 43,800 invocations a month of under a second, inside the Cloud Functions free
tier; one Cloud Scheduler job (free up to 3 per billing account, then $0.10 a month).
"""

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_gcp as gcp

from aifinops.components.gcp import _common
from aifinops.components.gcp.fallback import BUILD_ROLES

RECREATE_PERMISSIONS = ("tpu.nodes.get", "tpu.nodes.create", "tpu.nodes.delete")
SOURCE = Path(__file__).resolve().parent / "functions" / "tpu_recreate.py"


def source_object_name() -> str:
    """`tpu-recreate-<hash>.zip`: a new object name for new code, so the function redeploys."""
    return f"tpu-recreate-{hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]}.zip"


def recreate_controller(
    name: str,
    *,
    parent: pulumi.Resource,
    project: pulumi.Input[str],
    region: str,
    zone: str,
    labels: Mapping[str, str],
    node_ids: Sequence[pulumi.Input[str]],
    node_spec: Mapping[str, Any],
    vm_account: gcp.serviceaccount.Account,
) -> gcp.cloudfunctionsv2.Function:
    """Deploy the recreate controller of batch `name`; `node_spec` is the Cloud TPU v2 `Node`
    body (REST field names) each node is created again with."""
    child = pulumi.ResourceOptions(parent=parent)
    account = gcp.serviceaccount.Account(
        f"{name}-recreate-sa",
        account_id=_common.account_id(name, "recreate"),
        display_name=f"finops TPU recreate controller {name}",
        description=f"{name}: reads, deletes and recreates the batch's TPU VMs, nothing else",
        project=project,
        opts=child,
    )
    member = account.email.apply(lambda email: f"serviceAccount:{email}")
    role = gcp.projects.IAMCustomRole(
        f"{name}-recreate-role",
        project=project,
        role_id=_common.role_id(name, "tpu_recreate"),
        title=f"finops {name} TPU recreate",
        description="Read, delete and create TPU VMs (finops TPU recreate controller)",
        permissions=list(RECREATE_PERMISSIONS),
        opts=child,
    )
    grants = [
        gcp.projects.IAMMember(
            f"{name}-recreate-tpu", project=project, role=role.name, member=member, opts=child
        ),
        gcp.serviceaccount.IAMMember(
            f"{name}-recreate-act-as",
            service_account_id=vm_account.name,
            role="roles/iam.serviceAccountUser",
            member=member,
            opts=child,
        ),
    ]
    builder = gcp.serviceaccount.Account(
        f"{name}-recreate-build-sa",
        account_id=_common.account_id(name, "rbuild"),
        display_name=f"finops TPU recreate controller build {name}",
        description=f"{name}: builds the recreate function (Cloud Build), nothing else",
        project=project,
        opts=child,
    )
    builder_member = builder.email.apply(lambda email: f"serviceAccount:{email}")
    build_grants = [
        gcp.projects.IAMMember(
            f"{name}-recreate-build-{grant}",
            project=project,
            role=build_role,
            member=builder_member,
            opts=child,
        )
        for grant, build_role in BUILD_ROLES.items()
    ]
    code_bucket = gcp.storage.Bucket(
        _common.child_name(name, "recreate-code"),
        location=region.upper(),
        project=project,
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        labels=dict(labels),
        opts=child,
    )
    source = gcp.storage.BucketObject(
        f"{name}-recreate-source",
        bucket=code_bucket.name,
        name=source_object_name(),
        source=pulumi.AssetArchive({"main.py": pulumi.FileAsset(str(SOURCE))}),
        opts=child,
    )
    function = gcp.cloudfunctionsv2.Function(
        _common.child_name(name, "recreate"),
        location=region,
        project=project,
        description=f"finops: recreate the preempted Spot TPU VMs of {name}",
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
                "PROJECT": project,
                "ZONE": zone,
                "NODES": pulumi.Output.json_dumps(list(node_ids)),
                "NODE_SPEC": pulumi.Output.json_dumps(node_spec),
            },
        ),
        labels=dict(labels),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*build_grants, *grants]),
    )
    gcp.cloudrunv2.ServiceIamMember(
        f"{name}-recreate-invoker",
        project=project,
        location=region,
        name=function.name,
        role="roles/run.invoker",
        member=member,
        opts=child,
    )
    gcp.cloudscheduler.Job(
        f"{name}-recreate-schedule",
        project=project,
        region=region,
        description=f"finops: recreate the preempted Spot TPU VMs of {name} every minute",
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


def node_spec(
    *,
    accelerator_type: str,
    runtime_version: str,
    description: str,
    spot: bool,
    account_email: pulumi.Input[str],
    scopes: Sequence[str],
    network: str,
    subnetwork: str | None,
    metadata: Mapping[str, str],
    labels: pulumi.Input[Mapping[str, str]],
) -> dict[str, Any]:
    """The Cloud TPU v2 `Node` body (REST names: `serviceAccount.scope`, not `scopes`) that
    recreates a node as the component created it."""
    network_config: dict[str, Any] = {"network": network, "enableExternalIps": False}
    if subnetwork:
        network_config["subnetwork"] = subnetwork
    return {
        "acceleratorType": accelerator_type,
        "runtimeVersion": runtime_version,
        "description": description,
        "schedulingConfig": {"spot": spot},
        "serviceAccount": {"email": account_email, "scope": list(scopes)},
        "networkConfig": network_config,
        "metadata": dict(metadata),
        "labels": labels,
    }
