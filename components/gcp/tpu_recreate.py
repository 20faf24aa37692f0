"""The recreate controller of a spot `TpuBatchInference`: a Cloud Function that a Cloud
Scheduler job calls every minute (components/gcp/functions/tpu_recreate.py) to delete the
batch's preempted TPU VMs and create them again under the same node ids.

What it creates (children of the batch component, named `<name>-recreate-*`), by the shared
scheduled-function scaffolding the fleet's spot fallback controller also uses
(components/gcp/scheduled.py):

- `<name>-recreate-sa`: the function's identity, with one custom role on the project holding
  only `tpu.nodes.get`, `tpu.nodes.create` and `tpu.nodes.delete` (Cloud TPU has no
  resource-level IAM), `roles/iam.serviceAccountUser` on the batch VMs' own service account
  only (a node is created to run as it), and `roles/run.invoker` on the function.
- `<name>-recreate-build-sa`: the identity Cloud Build runs the function's build as, with the
  roles of scheduled.BUILD_ROLES.
- `<name>-recreate-code` (bucket) + `<name>-recreate-source` (zip) and `<name>-recreate`: the
  function (Python 3.12, one instance at most, 256 MB); `<name>-recreate-schedule`: the job.

Cost: about 43,800 invocations a month of under a second, inside the Cloud Functions free
tier; one Cloud Scheduler job (free up to 3 per billing account, then $0.10 a month).
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_gcp as gcp

from aifinops.components.gcp import scheduled

RECREATE_PERMISSIONS = ("tpu.nodes.get", "tpu.nodes.create", "tpu.nodes.delete")
SOURCE = Path(__file__).resolve().parent / "functions" / "tpu_recreate.py"
SPEC = scheduled.FunctionSpec(
    role="recreate",
    account_kind="recreate",
    build_account_kind="rbuild",
    role_id_kind="tpu_recreate",
    permissions=RECREATE_PERMISSIONS,
    sources={"main.py": SOURCE},
    object_prefix="tpu-recreate",
    title="TPU recreate controller",
    purpose="reads, deletes and recreates the batch's TPU VMs",
    role_title="TPU recreate",
    role_description="Read, delete and create TPU VMs (finops TPU recreate controller)",
    function_description="finops: recreate the preempted Spot TPU VMs of {name}",
    schedule_description="finops: recreate the preempted Spot TPU VMs of {name} every minute",
)


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

    def grants(
        member: pulumi.Output[str], role: gcp.projects.IAMCustomRole
    ) -> Sequence[pulumi.Resource]:
        return [
            gcp.projects.IAMMember(
                f"{name}-recreate-tpu", project=project, role=role.name, member=member, opts=child
            ),
            # a node is created to run as the batch VMs' account: act as that one only
            gcp.serviceaccount.IAMMember(
                f"{name}-recreate-act-as",
                service_account_id=vm_account.name,
                role="roles/iam.serviceAccountUser",
                member=member,
                opts=child,
            ),
        ]

    return scheduled.scheduled_function(
        name,
        SPEC,
        parent=parent,
        project=project,
        region=region,
        labels=labels,
        env={
            "PROJECT": project,
            "ZONE": zone,
            "NODES": pulumi.Output.json_dumps(list(node_ids)),
            "NODE_SPEC": pulumi.Output.json_dumps(node_spec),
        },
        grants=grants,
    )


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
