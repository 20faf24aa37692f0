"""Remedies `--apply` carries out, and how `--undo` reverses each where the cloud allows.

| action | does | undo |
|---|---|---|
| stop-instance | StopInstances | StartInstances |
| snapshot-delete-volume | CreateSnapshot (tags kept), wait until completed, DetachVolume (volumes of stopped instances), DeleteVolume | CreateVolume from the snapshot in the same zone, type, IOPS, throughput and tags; AttachVolume at the same device |
| scale-endpoint-down | UpdateEndpointWeightsAndCapacities to the floor (1, or 0 where managed instance scaling allows) | the same call with the counts before |
| delete-checkpoints | DeleteObjects in batches of 1,000 | on a versioned bucket, deleting the delete markers brings the objects back (while the noncurrent versions live: 1 day in the fleet buckets); unversioned: cannot be undone |
| delete-snapshot | DeleteSnapshot | cannot be undone |

Each step writes what it did into the action's `undo` spec through `note` before the next
step runs, so a failure half-way leaves a record of the backup snapshot or the objects
already deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aifinops.audit.clients import AwsClients

Note = Callable[[str, Any], None]
BACKUP_TAG = "finops:audit-backup-of"
SNAPSHOT_WAIT = {"Delay": 15, "MaxAttempts": 480}  # up to 2 hours for a large volume
VOLUME_WAIT = {"Delay": 5, "MaxAttempts": 120}
DELETE_BATCH = 1000  # DeleteObjects' limit


class ActionError(Exception):
    """An action did part of its work or none; the message says which."""


def _api_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


@dataclass(frozen=True)
class ActionClass:
    name: str
    title: str
    """What the confirmation asks about, e.g. "stop idle GPU instances"."""
    reversibility: str
    run: Callable[[AwsClients, str, dict[str, Any], Note], None]
    undo: Callable[[AwsClients, str, dict[str, Any], dict[str, Any], Note], None] | None


def _user_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    # keys starting with "aws:" are reserved: CreateSnapshot/CreateVolume refuse them
    return [{"Key": k, "Value": v} for k, v in tags.items() if not k.startswith("aws:")]


# ------------------------------------------------------------------ stop instance


def _stop_instance(clients: AwsClients, region: str, params: dict[str, Any], note: Note) -> None:
    clients.client("ec2", region).stop_instances(InstanceIds=[params["instance_id"]])
    note("instance_id", params["instance_id"])


def _start_instance(
    clients: AwsClients, region: str, params: dict[str, Any], undo: dict[str, Any], note: Note
) -> None:
    clients.client("ec2", region).start_instances(InstanceIds=[undo["instance_id"]])


# ------------------------------------------------------- snapshot then delete volume


def _snapshot_delete_volume(
    clients: AwsClients, region: str, params: dict[str, Any], note: Note
) -> None:
    ec2 = clients.client("ec2", region)
    volume_id = params["volume_id"]
    snapshot = ec2.create_snapshot(
        VolumeId=volume_id,
        Description=f"finops audit: backup of {volume_id} before deletion",
        TagSpecifications=[
            {
                "ResourceType": "snapshot",
                "Tags": [
                    *_user_tags(params.get("tags") or {}),
                    {"Key": BACKUP_TAG, "Value": volume_id},
                ],
            }
        ],
    )
    snapshot_id = snapshot["SnapshotId"]
    note("snapshot_id", snapshot_id)
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snapshot_id], WaiterConfig=SNAPSHOT_WAIT)
    if params.get("instance_id"):
        ec2.detach_volume(
            VolumeId=volume_id, InstanceId=params["instance_id"], Device=params["device"]
        )
        note("detached", True)
        ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=VOLUME_WAIT)
    ec2.delete_volume(VolumeId=volume_id)
    note("deleted", True)


def _restore_volume(
    clients: AwsClients, region: str, params: dict[str, Any], undo: dict[str, Any], note: Note
) -> None:
    ec2 = clients.client("ec2", region)
    if not undo.get("deleted"):
        if undo.get("detached"):
            ec2.attach_volume(
                VolumeId=params["volume_id"],
                InstanceId=params["instance_id"],
                Device=params["device"],
            )
        return
    request: dict[str, Any] = {
        "SnapshotId": undo["snapshot_id"],
        "AvailabilityZone": params["availability_zone"],
        "VolumeType": params["volume_type"],
    }
    if params.get("iops") and params["volume_type"] in ("io1", "io2", "gp3"):
        request["Iops"] = params["iops"]
    if params.get("throughput") and params["volume_type"] == "gp3":
        request["Throughput"] = params["throughput"]
    tags = _user_tags(params.get("tags") or {})
    if tags:
        request["TagSpecifications"] = [{"ResourceType": "volume", "Tags": tags}]
    volume_id = ec2.create_volume(**request)["VolumeId"]
    note("restored_volume_id", volume_id)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume_id], WaiterConfig=VOLUME_WAIT)
    if params.get("instance_id"):
        ec2.attach_volume(
            VolumeId=volume_id, InstanceId=params["instance_id"], Device=params["device"]
        )
        note("reattached_to", params["instance_id"])


# --------------------------------------------------------------- scale endpoint


def _scale_endpoint(clients: AwsClients, region: str, params: dict[str, Any], note: Note) -> None:
    clients.client("sagemaker", region).update_endpoint_weights_and_capacities(
        EndpointName=params["endpoint_name"],
        DesiredWeightsAndCapacities=[
            {"VariantName": v["name"], "DesiredInstanceCount": v["to"]} for v in params["variants"]
        ],
    )
    note("variants", [{"name": v["name"], "count": v["from"]} for v in params["variants"]])


def _restore_endpoint(
    clients: AwsClients, region: str, params: dict[str, Any], undo: dict[str, Any], note: Note
) -> None:
    clients.client("sagemaker", region).update_endpoint_weights_and_capacities(
        EndpointName=params["endpoint_name"],
        DesiredWeightsAndCapacities=[
            {"VariantName": v["name"], "DesiredInstanceCount": v["count"]} for v in undo["variants"]
        ],
    )


# ----------------------------------------------------------- delete checkpoints


def _delete_checkpoints(
    clients: AwsClients, region: str, params: dict[str, Any], note: Note
) -> None:
    s3 = clients.client("s3", region)
    keys: list[str] = params["keys"]
    deleted: list[dict[str, str | None]] = []
    errors: list[str] = []
    for first in range(0, len(keys), DELETE_BATCH):
        batch = keys[first : first + DELETE_BATCH]
        try:
            answer = s3.delete_objects(
                Bucket=params["bucket"],
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": False},
            )
        except _api_errors() as exc:  # one batch failing: record it, go on with the next
            errors += [f"{k}: {exc}" for k in batch]
            continue
        deleted += [
            {"key": d["Key"], "marker": d.get("DeleteMarkerVersionId")}
            for d in answer.get("Deleted", [])
        ]
        errors += [
            f"{e.get('Key')}: {e.get('Code')} {e.get('Message', '')}".strip()
            for e in answer.get("Errors", [])
        ]
        note("deleted", deleted)
    if errors:
        raise ActionError(
            f"{len(errors)} of {len(keys)} objects not deleted (first: {errors[0]}); "
            f"{len(deleted)} deleted and recorded"
        )


def _restore_checkpoints(
    clients: AwsClients, region: str, params: dict[str, Any], undo: dict[str, Any], note: Note
) -> None:
    s3 = clients.client("s3", region)
    markers = [d for d in undo.get("deleted", []) if d.get("marker")]
    errors: list[str] = []
    restored = 0
    for first in range(0, len(markers), DELETE_BATCH):
        batch = markers[first : first + DELETE_BATCH]
        answer = s3.delete_objects(
            Bucket=params["bucket"],
            Delete={
                "Objects": [{"Key": d["key"], "VersionId": d["marker"]} for d in batch],
                "Quiet": False,
            },
        )
        restored += len(answer.get("Deleted", []))
        errors += [f"{e.get('Key')}: {e.get('Code')}" for e in answer.get("Errors", [])]
        note("restored", restored)
    if errors:
        raise ActionError(f"{len(errors)} objects not restored (first: {errors[0]})")


# --------------------------------------------------------------- delete snapshot


def _delete_snapshot(clients: AwsClients, region: str, params: dict[str, Any], note: Note) -> None:
    clients.client("ec2", region).delete_snapshot(SnapshotId=params["snapshot_id"])
    note("deleted", True)


ACTIONS = {
    a.name: a
    for a in (
        ActionClass(
            "stop-instance",
            "stop idle GPU instances",
            "undo starts them again (their EBS volumes and private IPs stay)",
            _stop_instance,
            _start_instance,
        ),
        ActionClass(
            "snapshot-delete-volume",
            "snapshot, then delete unused EBS volumes",
            "undo creates each volume again from its backup snapshot",
            _snapshot_delete_volume,
            _restore_volume,
        ),
        ActionClass(
            "scale-endpoint-down",
            "scale idle SageMaker endpoints down to their minimum",
            "undo restores the instance counts",
            _scale_endpoint,
            _restore_endpoint,
        ),
        ActionClass(
            "delete-checkpoints",
            "delete checkpoints past retention",
            "undo removes the delete markers on versioned buckets; deletion on unversioned buckets CANNOT be undone",
            _delete_checkpoints,
            _restore_checkpoints,
        ),
        ActionClass(
            "delete-snapshot",
            "delete EBS snapshots past retention",
            "this CANNOT be undone",
            _delete_snapshot,
            None,
        ),
    )
}
