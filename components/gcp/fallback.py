"""The spot fallback controller of a GCP `GpuTrainingFleet`: a Cloud Function that a Cloud
Scheduler job calls every minute (components/gcp/functions/mig_fallback.py; the decision is the
AWS fleet's pure `decide`, shipped beside it), deployed by the shared scheduled-function
scaffolding (components/gcp/scheduled.py: identities, build account, source bucket, schedule).

What it creates (children of the fleet, named `<fleet>-controller-*`):

- `<fleet>-controller-sa`: the function's identity, with one custom role on the project holding
  only `compute.instanceGroupManagers.get` and `.update` (read and resize the MIGs; with
  queue-depth scaling also `monitoring.timeSeries.list`), object access on the checkpoint
  bucket (its state object), and `roles/run.invoker` on the function itself.
- `<fleet>-controller-build-sa`: the identity Cloud Build runs the function's build as
  (scheduled.BUILD_ROLES).
- `<fleet>-controller-code` (bucket) + `<fleet>-controller-source` (zip): the function source.
- `<fleet>-controller`: the function (Python 3.12, one instance at most, 256 MB).
- `<fleet>-controller-schedule`: the Cloud Scheduler job, every minute.

The project needs the Cloud Functions, Cloud Build, Cloud Run, Artifact Registry and Cloud
Scheduler APIs enabled. Cost: inside the Cloud Functions free tier; a Cloud Scheduler job is
free up to 3 per billing account, then $0.10 a month.
"""

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pulumi
import pulumi_gcp as gcp

from aifinops.components.gcp import scheduled

RESIZER_PERMISSIONS = ("compute.instanceGroupManagers.get", "compute.instanceGroupManagers.update")
# queue-depth scaling: the subscription's backlog (projects.timeSeries.list)
METRIC_PERMISSIONS = ("monitoring.timeSeries.list",)


# Shipped as files, never imported here: the function imports the AWS controller's decision,
# and importing that would load `aifinops.components.aws` and the AWS provider SDK (about a second)
# into a GCP-only program.
_COMPONENTS = Path(__file__).resolve().parents[1]
SOURCE_FILES = {
    "main.py": _COMPONENTS / "gcp" / "functions" / "mig_fallback.py",
    "fallback_decision.py": _COMPONENTS / "aws" / "lambdas" / "fallback_controller.py",
}
OBJECT_PREFIX = "mig-fallback"


def source_archive() -> pulumi.AssetArchive:
    """The function's source: the adapter as `main.py`, the decision beside it."""
    return scheduled.source_archive(SOURCE_FILES)


def source_object_name() -> str:
    """`mig-fallback-<hash>.zip`: a new name for new code, so the function is redeployed."""
    return scheduled.source_object_name(OBJECT_PREFIX, SOURCE_FILES)


SPEC = scheduled.FunctionSpec(
    role="controller",
    account_kind="fallback",
    build_account_kind="build",
    role_id_kind="mig_resizer",
    permissions=RESIZER_PERMISSIONS,
    sources=SOURCE_FILES,
    object_prefix=OBJECT_PREFIX,
    title="spot fallback controller",
    purpose="reads and resizes the fleet's two MIGs",
    role_title="MIG resizer",
    role_description="Read and resize managed instance groups (finops spot fallback controller)",
    function_description="finops spot fallback controller of fleet {name}",
    schedule_description="finops: run the spot fallback controller of fleet {name} every minute",
)


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

    def grants(
        member: pulumi.Output[str], role: gcp.projects.IAMCustomRole
    ) -> Sequence[pulumi.Resource]:
        return [
            gcp.projects.IAMMember(
                f"{name}-controller-resizer",
                project=project,
                role=role.name,
                member=member,
                opts=child,
            ),
            gcp.storage.BucketIAMMember(
                f"{name}-controller-state",
                bucket=state_bucket.name,
                role="roles/storage.objectUser",
                member=member,
                opts=child,
            ),
        ]

    spec = SPEC
    if reads_metrics:
        spec = replace(SPEC, permissions=(*RESIZER_PERMISSIONS, *METRIC_PERMISSIONS))
    return scheduled.scheduled_function(
        name,
        spec,
        parent=parent,
        project=project,
        region=region,
        labels=labels,
        env={
            **env,
            "PROJECT": project,
            "REGION": region,
            "SPOT_GROUP": spot_group.name,
            "ON_DEMAND_GROUP": on_demand_group.name,
            "STATE_BUCKET": state_bucket.name,
        },
        grants=grants,
    )
