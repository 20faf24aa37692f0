"""Budget enforcement for one project: scale every Auto Scaling group tagged with the project
to zero, and record what was done.

AWS Budgets actions can stop at most 100 EC2 instances listed by ID at creation time; a
training fleet's instances come and go, so the component subscribes this function to an SNS
topic that the budget notifies only at 100 % of ACTUAL cost. For every group tagged
`Project=<project>` it:

- records the sizes it found in the group tag `finops:budget-enforced` (JSON: min, max,
  desired, when, why) the first time, so an operator can restore them and a second run does
  not overwrite them with zeros;
- sets MinSize and DesiredCapacity to 0 (MaxSize is kept so that restoring is one call);
- logs one JSON line per group, publishes the whole record to the project's alerts topic
  (`ALERTS_TOPIC_ARN`, when set) so that whoever gets the budget alerts learns what stopped,
  and returns it.

The spot fallback controller honours the tag and keeps a stopped fleet at zero. Running it
again changes nothing (idempotent). To resume: restore the sizes and delete the tag.

Scaling to zero goes through the groups' termination lifecycle hooks (a training fleet has
one on each group): every node gets its checkpoint signal first, and leaves when the agent
completes the action or the hook's timeout passes. A group without such a hook is stopped
all the same (the budget comes first), and its record says so: `checkpoint_signal` is
UNKNOWN, logged as a warning and published with the rest.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

ENFORCED_TAG = "finops:budget-enforced"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
NO_SIGNAL = "UNKNOWN: no termination lifecycle hook, its nodes stop without a checkpoint signal"
PROJECT_TAG = "Project"

logger = logging.getLogger("finops.budget_enforcer")
logger.setLevel(logging.INFO)


def project_groups(client: Any, project: str) -> list[dict[str, Any]]:
    """Every Auto Scaling group whose `Project` tag is `project` (all pages)."""
    groups: list[dict[str, Any]] = []
    paginator = client.get_paginator("describe_auto_scaling_groups")
    pages = paginator.paginate(Filters=[{"Name": f"tag:{PROJECT_TAG}", "Values": [project]}])
    for page in pages:
        for group in page["AutoScalingGroups"]:
            tags = {tag["Key"]: tag["Value"] for tag in group.get("Tags", [])}
            if tags.get(PROJECT_TAG) == project:  # the filter is the API's; check anyway
                groups.append(group)
    return groups


def checkpoint_signal(client: Any, group: str) -> str:
    """The termination lifecycle hook(s) that warn the group's nodes, or NO_SIGNAL."""
    hooks = client.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"]
    names = sorted(h["LifecycleHookName"] for h in hooks if h["LifecycleTransition"] == TERMINATING)
    return ", ".join(names) or NO_SIGNAL


def enforce(client: Any, project: str, reason: str, now: datetime | None = None) -> dict[str, Any]:
    """Scale every group of `project` to zero; returns {"project", "groups": [...]}."""
    when = (now or datetime.now(UTC)).isoformat()
    actions = []
    for group in project_groups(client, project):
        name = group["AutoScalingGroupName"]
        tags = {tag["Key"]: tag["Value"] for tag in group.get("Tags", [])}
        previous = {
            "min": group["MinSize"],
            "max": group["MaxSize"],
            "desired": group["DesiredCapacity"],
        }
        action: dict[str, Any] = {
            "group": name,
            "found": previous,
            "changed": False,
            "checkpoint_signal": checkpoint_signal(client, name),
        }
        if ENFORCED_TAG not in tags:
            record = {**previous, "at": when, "reason": reason[:120]}
            client.create_or_update_tags(
                Tags=[
                    {
                        "ResourceId": name,
                        "ResourceType": "auto-scaling-group",
                        "Key": ENFORCED_TAG,
                        "Value": json.dumps(record, separators=(",", ":"))[:256],
                        "PropagateAtLaunch": False,
                    }
                ]
            )
            action["recorded"] = record
            action["changed"] = True
        if group["MinSize"] != 0 or group["DesiredCapacity"] != 0:
            client.update_auto_scaling_group(
                AutoScalingGroupName=name, MinSize=0, DesiredCapacity=0
            )
            action["changed"] = True
        line = json.dumps({"enforcer": "finops-budget", "project": project, **action})
        (logger.warning if action["checkpoint_signal"] == NO_SIGNAL else logger.info)(line)
        actions.append(action)
    return {"project": project, "at": when, "groups": actions}


def _reason(event: dict[str, Any]) -> str:
    """The budget's SNS subject, when the event came from SNS."""
    for record in event.get("Records", []):
        subject = record.get("Sns", {}).get("Subject")
        if subject:
            return str(subject)
    return "budget at 100% of actual cost"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for the enforcement topic's messages."""
    import boto3

    project = os.environ["PROJECT"]
    record = enforce(boto3.client("autoscaling"), project, _reason(event))
    topic = os.environ.get("ALERTS_TOPIC_ARN")
    if topic:
        report(boto3.client("sns"), topic, record)
    return record


def report(client: Any, topic_arn: str, record: dict[str, Any]) -> None:
    """Publish what `enforce` did to the alerts topic."""
    stopped = [g["group"] for g in record["groups"] if g["changed"]]
    subject = f"finops: budget enforced for {record['project']}: {len(stopped)} group(s) to zero"
    client.publish(TopicArn=topic_arn, Subject=subject[:100], Message=json.dumps(record, indent=2))
