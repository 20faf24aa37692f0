"""The least-privilege IAM policy documents of `finops audit`, and the API call -> IAM action map.

`iam/readonly.json` allows exactly what the scan calls; `iam/apply.json` adds what `--apply`
and `--undo` call. `iam_actions` maps a botocore call to the IAM actions it needs; the test
suite records every call of a full scan/apply/undo against moto and checks each is allowed
by the matching document, and that no document allows anything never called.

Most operations need the action of the same name under the service's IAM prefix. The
exceptions (AWS Service Authorization Reference, "Actions defined by Amazon S3" and the S3
User Guide's "Required permissions for Amazon S3 API operations"):

- S3 ListObjectsV2 needs s3:ListBucket; GetBucketLifecycleConfiguration needs
  s3:GetLifecycleConfiguration; DeleteObjects needs s3:DeleteObject for each key, and
  s3:DeleteObjectVersion when a VersionId is given.
- CloudWatch's API is served as "monitoring" but its IAM prefix is "cloudwatch"; the
  Resource Groups Tagging API's prefix is "tag".
- EC2 calls that tag on creation (`TagSpecifications` on CreateSnapshot, CreateVolume) also
  need ec2:CreateTags (EC2 User Guide, "Grant permission to tag resources during creation");
  the apply document allows it only with `ec2:CreateAction` CreateSnapshot or CreateVolume.
- STS GetCallerIdentity needs no permission (it is always allowed).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

MODES = ("readonly", "apply")
IAM_PREFIX = {
    "ec2": "ec2",
    "cloudwatch": "cloudwatch",
    "sagemaker": "sagemaker",
    "resourcegroupstaggingapi": "tag",
    "s3": "s3",
    "sts": "sts",
}
S3_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "GetBucketLocation": "s3:GetBucketLocation",
}
ALWAYS_ALLOWED = frozenset({"sts:GetCallerIdentity"})


def policy_text(mode: str) -> str:
    """The JSON text of the `readonly` or `apply` policy document."""
    if mode not in MODES:
        raise ValueError(f"IAM policy mode {mode!r}: expected one of {', '.join(MODES)}")
    return (resources.files("aifinops.audit") / "iam" / f"{mode}.json").read_text(encoding="utf-8")


@cache
def policy(mode: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(policy_text(mode))
    return document


def allowed_actions(mode: str) -> set[str]:
    """Every action an Allow statement of the document names (no wildcards are used)."""
    found: set[str] = set()
    for statement in policy(mode)["Statement"]:
        if statement["Effect"] == "Allow":
            actions = statement["Action"]
            found.update([actions] if isinstance(actions, str) else actions)
    return found


def iam_actions(service: str, operation: str, params: Mapping[str, Any]) -> set[str]:
    """IAM actions a call of `operation` (botocore name, e.g. "DescribeVolumes") with
    `params` needs. Raises KeyError for a service the audit does not use."""
    prefix = IAM_PREFIX[service]
    if service == "ec2" and params.get("TagSpecifications"):
        return {f"ec2:{operation}", "ec2:CreateTags"}
    if service != "s3":
        return {f"{prefix}:{operation}"}
    if operation == "DeleteObjects":
        objects = params.get("Delete", {}).get("Objects", [])
        return {
            "s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject" for o in objects
        }
    if operation == "DeleteObject":
        return {"s3:DeleteObjectVersion" if params.get("VersionId") else "s3:DeleteObject"}
    return {S3_ACTIONS.get(operation, f"s3:{operation}")}


def resource_allowed(mode: str, action: str, resource_arn: str) -> bool:
    """Whether some Allow statement grants `action` on `resource_arn` (ARN globbing as IAM
    does for `*` and `?`; conditions are not evaluated)."""
    for statement in policy(mode)["Statement"]:
        actions = statement["Action"]
        if action not in ([actions] if isinstance(actions, str) else actions):
            continue
        patterns = statement["Resource"]
        for pattern in [patterns] if isinstance(patterns, str) else patterns:
            if fnmatch.fnmatchcase(resource_arn, pattern):
                return True
    return False
