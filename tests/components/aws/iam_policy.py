"""The part of IAM policy evaluation the finops roles use, to hold each Lambda's API calls to
the role its component gives it.

`allowed(statements, request)` follows the IAM evaluation logic for identity policies: an
explicit Deny wins, else an Allow whose Action, Resource and every Condition match. Anything
outside the supported subset (a condition operator, an API call with no request model) raises
`Unsupported`: a call is never allowed for want of understanding it.

`requests_for(call, world)` models the authorisation requests one API call makes: its action
(`<signing name>:<operation>`), the resource ARNs it acts on and the condition keys AWS
supplies (Service Authorization Reference: Amazon EC2 Auto Scaling, Amazon SNS), including the
KMS permissions a publisher needs on an encrypted topic (SNS developer guide, "Configure AWS
KMS permissions": kms:GenerateDataKey and kms:Decrypt).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Unsupported(Exception):
    """A policy or an API call this evaluator does not model."""


@dataclass(frozen=True)
class Call:
    """One API call as botocore made it."""

    signing_name: str
    operation: str
    params: Mapping[str, Any]

    @property
    def action(self) -> str:
        return f"{self.signing_name}:{self.operation}"


@dataclass(frozen=True)
class Request:
    """One authorisation request: what IAM evaluates."""

    action: str
    resource: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)


@dataclass
class World:
    """What the requests need to know about the account (from moto, at the time of the call)."""

    group_arn: Callable[[str], str]
    group_tags: Callable[[str], dict[str, str]]
    topic_key: Callable[[str], str | None]
    """The KMS key ARN of an encrypted topic, else None."""
    rule_arn: Callable[[str], str] | None = None
    """The ARN of an EventBridge rule by name (for a function that stops its own schedule)."""


def _wildcard(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags) is not None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool:
    wanted = [str(v) for v in _listed(expected)]
    present = key in context
    values = [str(v) for v in _listed(context.get(key, []))]
    if operator == "StringEquals":
        return present and len(values) == 1 and values[0] in wanted
    if operator == "StringLike":
        return present and len(values) == 1 and any(_wildcard(w, values[0]) for w in wanted)
    if operator == "Bool":
        return present and len(values) == 1 and values[0].lower() in [w.lower() for w in wanted]
    if operator == "ForAllValues:StringEquals":
        return all(v in wanted for v in values)  # an absent key holds (IAM semantics)
    if operator == "ForAnyValue:StringEquals":
        return any(v in wanted for v in values)
    raise Unsupported(f"condition operator {operator!r}")


def _matches(statement: Mapping[str, Any], request: Request) -> bool:
    if "NotAction" in statement or "NotResource" in statement:
        raise Unsupported("NotAction/NotResource")
    actions = _listed(statement.get("Action", []))
    if not any(_wildcard(a, request.action, case_sensitive=False) for a in actions):
        return False
    resources = _listed(statement.get("Resource", []))
    if not any(_wildcard(str(r), request.resource) for r in resources):
        return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, expected in keys.items():
            if not _condition_holds(operator, key, expected, request.context):
                return False
    return True


def allowed(statements: Iterable[Mapping[str, Any]], request: Request) -> bool:
    """Whether an identity policy of `statements` allows `request`."""
    allow = False
    for statement in statements:
        if _matches(statement, request):
            if statement["Effect"] == "Deny":
                return False
            allow = True
    return allow


def _group_request(action: str, group: str, world: World, **context: Any) -> Request:
    tags = {f"autoscaling:ResourceTag/{k}": v for k, v in world.group_tags(group).items()}
    return Request(action, world.group_arn(group), {**tags, **context})


def _queue_arn(url: str) -> str:
    """An SQS queue's ARN from its URL (https://sqs.<region>.amazonaws.com/<account>/<name>)."""
    found = re.fullmatch(r"https://sqs\.([a-z0-9-]+)\.amazonaws\.com/(\d{12})/([\w.-]+)", url)
    if not found:
        raise Unsupported(f"queue URL {url!r}")
    region, account, name = found.groups()
    return f"arn:aws:sqs:{region}:{account}:{name}"


def requests_for(call: Call, world: World) -> list[Request]:
    """The authorisation requests of `call`."""
    params = call.params
    if call.action == "autoscaling:DescribeAutoScalingGroups":
        return [Request(call.action, "*")]  # no resource-level permissions
    if call.action in (
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeLifecycleHooks",
    ):
        return [Request(call.action, "*")]  # no resource-level permissions
    if call.action in (
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
    ):
        return [_group_request(call.action, params["AutoScalingGroupName"], world)]
    if call.action == "autoscaling:UpdateAutoScalingGroup":
        return [_group_request(call.action, params["AutoScalingGroupName"], world)]
    if call.action in ("autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"):
        by_group: dict[str, list[Mapping[str, Any]]] = {}
        for tag in params["Tags"]:
            if tag.get("ResourceType", "auto-scaling-group") != "auto-scaling-group":
                raise Unsupported(f"tags on {tag.get('ResourceType')!r}")
            by_group.setdefault(tag["ResourceId"], []).append(tag)
        requests = []
        for group, tags in by_group.items():
            request_tags = (
                {f"aws:RequestTag/{t['Key']}": t.get("Value", "") for t in tags}
                if call.operation == "CreateOrUpdateTags"
                else {}
            )
            keys = [str(t["Key"]) for t in tags]
            requests.append(
                _group_request(call.action, group, world, **{"aws:TagKeys": keys}, **request_tags)
            )
        return requests
    if call.action == "sqs:GetQueueAttributes":
        return [Request(call.action, _queue_arn(params["QueueUrl"]))]
    if call.action == "sns:Publish":
        topic = params["TopicArn"]
        requests = [Request(call.action, topic)]
        key = world.topic_key(topic)
        if key:
            requests += [Request("kms:GenerateDataKey", key), Request("kms:Decrypt", key)]
        return requests
    if call.action in ("ce:ListCostAllocationTags", "ce:UpdateCostAllocationTagsStatus"):
        return [Request(call.action, "*")]  # no resource-level permissions
    if call.action == "events:DisableRule" and world.rule_arn is not None:
        return [Request(call.action, world.rule_arn(params["Name"]))]
    raise Unsupported(f"no request model for {call.action}: add it to iam_policy.py")
