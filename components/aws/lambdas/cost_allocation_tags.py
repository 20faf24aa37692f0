"""Activate the finops tag keys as cost-allocation tags: idempotent, and never deactivating.

A budget filtered on `user:Project` sees no cost until `Project` is an active cost-allocation
tag of the account. Managing that as a resource fails twice over: AWS refuses to activate a
key it has not yet seen in billing data (up to a day after the first tagged resource), so a
first `pulumi up` would fail; and deleting the resource deactivates the key for the whole
account, breaking every other stack's budgets on `pulumi destroy`.

So the budget component deploys this function instead, invoked once by the deployment
(`aws.lambda_.Invocation`) and then daily by EventBridge. Each run:

- lists the keys' status (`ce:ListCostAllocationTags`, user-defined tags);
- activates the ones that are inactive (`ce:UpdateCostAllocationTagsStatus`, only ever with
  `Status: Active`; per-key errors are reported, not raised);
- reports keys not yet in billing as pending; once nothing is pending it disables its own
  daily schedule (`events:DisableRule` on that rule only), so it stops costing API calls;
- in a member account of an organisation, where only the management account may change
  cost-allocation tags, reports that instead.

It never raises for these expected states, so the deployment's invocation never fails, and
nothing deactivates a key when the stack is destroyed (the function has no such call).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

# Cost Explorer's endpoint is us-east-1 whatever the stack's region.
CE_REGION = "us-east-1"
UPDATE_BATCH = 20  # botocore: CostAllocationTagStatusList max 20
# Only the management account of an organisation may change cost-allocation tags.
NOT_ALLOWED = ("AccessDeniedException", "UnauthorizedException")

logger = logging.getLogger("finops.cost_allocation_tags")
logger.setLevel(logging.INFO)


def tag_status(ce: Any, keys: list[str]) -> dict[str, str]:
    """{key: "Active" | "Inactive"} for the keys AWS has seen in billing (all pages)."""
    found: dict[str, str] = {}
    request: dict[str, Any] = {"TagKeys": keys, "Type": "UserDefined"}
    while True:
        page = ce.list_cost_allocation_tags(**request)
        for tag in page.get("CostAllocationTags", []):
            found[tag["TagKey"]] = tag["Status"]
        if not page.get("NextToken"):
            return found
        request["NextToken"] = page["NextToken"]


def activate(ce: Any, keys: list[str]) -> dict[str, Any]:
    """Activate every key of `keys` AWS knows and that is inactive; report the rest.

    Returns {"active": [...], "activated": [...], "pending": [...], "errors": [...]}: active
    includes those activated now; pending are keys not yet seen in billing or refused.
    """
    status = tag_status(ce, keys)
    inactive = [k for k in keys if status.get(k) == "Inactive"]
    errors: list[dict[str, str]] = []
    for start in range(0, len(inactive), UPDATE_BATCH):
        batch = inactive[start : start + UPDATE_BATCH]
        answer = ce.update_cost_allocation_tags_status(
            CostAllocationTagsStatus=[{"TagKey": key, "Status": "Active"} for key in batch]
        )
        errors += [
            {
                "TagKey": e.get("TagKey", ""),
                "Code": e.get("Code", ""),
                "Message": e.get("Message", ""),
            }
            for e in answer.get("Errors", [])
        ]
    refused = {e["TagKey"] for e in errors}
    activated = [k for k in inactive if k not in refused]
    active = [k for k in keys if status.get(k) == "Active" or k in activated]
    pending = [k for k in keys if k not in active]
    return {"active": active, "activated": activated, "pending": pending, "errors": errors}


def run(ce: Any, events: Any, keys: list[str], schedule_rule: str | None) -> dict[str, Any]:
    """One run: activate, and stop the daily schedule once every key is active."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        report: dict[str, Any] = {"status": "ok", **activate(ce, keys)}
    except BotoCoreError as exc:  # no answer at all: the daily run tries again
        return {"status": "error", "code": type(exc).__name__, "message": str(exc), "pending": keys}
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in NOT_ALLOWED:
            return {"status": "error", "code": code, "message": str(exc), "pending": keys}
        return {
            "status": "management-account-required",
            "message": "only the organisation's management account may activate "
            f"cost-allocation tags; activate {', '.join(keys)} there ({code})",
            "pending": keys,
        }
    if not report["pending"] and schedule_rule:
        events.disable_rule(Name=schedule_rule)
        report["schedule"] = "disabled"
    return report


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    keys = list(event.get("TagKeys") or os.environ["TAG_KEYS"].split(","))
    report = run(
        boto3.client("ce", region_name=CE_REGION),
        boto3.client("events"),
        keys,
        os.environ.get("SCHEDULE_RULE_NAME") or None,
    )
    logger.info(json.dumps(report))
    return report
