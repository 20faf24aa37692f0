"""Spot fallback controller for one `GpuTrainingFleet`: on-demand while spot cannot fill, back
to spot as soon as it can.

Neither an Auto Scaling group nor Karpenter does this: a group's spot/on-demand split is fixed,
and Karpenter never moves a node from on-demand back to spot. The fleet is two groups on one
launch template: the *spot group* (spot above its on-demand base) and the *on-demand group*
(100 % on-demand, normally at zero). This controller runs on every "EC2 Instance Launch
Unsuccessful"/"Successful" event of the spot group and on a one-minute schedule.

Every decision is a pure function of what it observes (`decide`), so running it twice, or on
a burst of repeated events, changes nothing the second time:

- `fleet_desired` (D) and `fleet_max` (M): tags on the spot group, written by Pulumi;
- `spot_in_service` (S): instances of the spot group that are pending or in service;
- `on_demand_desired`: the on-demand group's desired capacity;
- `shortfall_since`: when the spot group first failed to provide D nodes; kept as a tag on the
  spot group, the only state the controller keeps, so a restart loses nothing.

The rules (all counts are nodes):

- missing = D - S. While missing on-demand nodes are not yet requested, the shortfall clock
  runs; after `fallback_after_minutes` the on-demand group is raised to cover it.
- Spot coming back lowers `missing`, and the on-demand group is lowered with it at once
  (drained: the group terminates its newest instances first is not guaranteed; the group's
  termination policy decides).
- The fleet maximum holds at all times: on-demand <= M - S, and spot desired + on-demand desired
  <= M. When both cannot fit, the spot group's desired is lowered to what it actually runs
  plus whatever headroom is left; that headroom is how spot is tried again, so a fleet whose
  desired equals its maximum stays on on-demand until capacity is freed (documented in
  docs/components-aws.md: leave max above desired).
- A `finops:budget-enforced` tag (written by the budget enforcer) stops the fleet: both
  desired capacities 0, nothing else.

Queue-depth scaling (`scaleOn`): with `QUEUE_URL` set, D is not the Pulumi tag but what the
work queue needs, `queue_desired` (jobs queued or running / jobs per node, within the fleet's
minimum and maximum), read from SQS on every run. Everything above then holds for that D:
the on-demand fallback covers only what the queue needs and never passes M. Nodes are only
ever removed by lowering a group's desired capacity, so a scale-in is the group's own, with
its termination policy and lifecycle hooks. A fleet without a fallback group
(`ON_DEMAND_GROUP_NAME` empty: spot-only or on-demand capacity) gets the same scaling on its
one group.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

FLEET_DESIRED_TAG = "finops:fleet-desired"
FLEET_MAX_TAG = "finops:fleet-max"
SHORTFALL_SINCE_TAG = "finops:spot-shortfall-since"
BUDGET_ENFORCED_TAG = "finops:budget-enforced"
# Instances the group is providing or about to provide; Standby, Terminating... are not.
RUNNING_STATES = frozenset(
    {"Pending", "Pending:Wait", "Pending:Proceed", "InService", "Warmed:Pending"}
)

logger = logging.getLogger("finops.fallback_controller")
logger.setLevel(logging.INFO)


@dataclass(frozen=True)
class FleetState:
    """What the controller observes; the only input of `decide`."""

    fleet_desired: int
    fleet_max: int
    spot_desired: int
    spot_in_service: int
    on_demand_desired: int
    shortfall_since: datetime | None
    budget_enforced: bool = False


@dataclass(frozen=True)
class Decision:
    """What the two groups should be set to, and the shortfall clock to persist."""

    spot_desired: int
    on_demand_desired: int
    shortfall_since: datetime | None
    reason: str


def decide(state: FleetState, now: datetime, fallback_after: timedelta) -> Decision:
    """The target of both groups for `state` at `now` (pure; see the module docstring)."""
    if state.budget_enforced:
        return Decision(0, 0, None, "budget enforced: fleet held at zero")
    fleet_max = max(0, state.fleet_max)
    desired = min(max(0, state.fleet_desired), fleet_max)
    spot = max(0, state.spot_in_service)
    missing = max(0, desired - spot)
    on_demand = min(state.on_demand_desired, missing)  # spot returned: drain the excess now
    since = state.shortfall_since
    if missing > on_demand:
        since = since or now
        if now - since >= fallback_after:
            on_demand = missing
            reason = f"spot short by {missing} for {now - since}: on-demand raised to cover it"
            since = None
        else:
            reason = (
                f"spot short by {missing - on_demand}; waiting {fallback_after} before on-demand"
            )
    else:
        since = None
        if on_demand < state.on_demand_desired:
            reason = f"spot provides {spot} of {desired}: on-demand drained to {on_demand}"
        elif on_demand:
            reason = f"on-demand covers {on_demand} missing spot nodes"
        else:
            reason = "spot provides the fleet"
    on_demand = max(0, min(on_demand, fleet_max - spot))
    spot_desired = max(0, min(desired, fleet_max - on_demand))
    return Decision(spot_desired, on_demand, since, reason)


# A fleet reaches zero this long after its queue empties: the next run of the one-minute
# schedule, plus up to a minute for SQS's approximate counts to settle (docs/components-aws.md).
SCALE_TO_ZERO_MINUTES = 2
# GetQueueAttributes names: visible messages (queued) and messages received but not yet
# deleted (jobs running). Delayed messages are not work yet.
QUEUE_ATTRIBUTES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")


@dataclass(frozen=True)
class QueueDemand:
    """What a work queue asks of the fleet (`scaleOn`)."""

    jobs: int
    """Jobs queued or running (visible + in-flight messages)."""
    jobs_per_node: int
    nodes_min: int


def queue_desired(demand: QueueDemand, fleet_max: int) -> int:
    """Nodes the queue needs: ceil(jobs / jobs_per_node), at least `nodes_min`, at most
    `fleet_max`; 0 for an empty queue with `nodes_min` 0."""
    needed = -(-max(0, demand.jobs) // max(1, demand.jobs_per_node))
    return max(0, min(max(needed, demand.nodes_min), fleet_max))


def follow_queue(state: FleetState, demand: QueueDemand) -> FleetState:
    """`state` with the queue's desired size as the fleet's (and `moving_target_clock`)."""
    return replace(moving_target_clock(state), fleet_desired=queue_desired(demand, state.fleet_max))


def moving_target_clock(state: FleetState) -> FleetState:
    """`state` whose shortfall clock runs only while spot falls short of its own request.

    A queue that grows raises D every minute, and the spot group is always a minute behind
    the last raise: that is not spot failing. So while the spot group provides all it was
    asked for (S >= its desired), the clock starts again; it runs on only while the group
    falls short of what it was asked, as when spot capacity is out."""
    if state.spot_in_service >= state.spot_desired:
        return replace(state, shortfall_since=None)
    return state


def read_queue_jobs(sqs: Any, queue_url: str) -> int:
    """Jobs queued or running in the SQS queue (one GetQueueAttributes call)."""
    found = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(QUEUE_ATTRIBUTES))
    return sum(int(found["Attributes"].get(name, 0)) for name in QUEUE_ATTRIBUTES)


def _tags(group: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in group.get("Tags", [])}


def _describe(client: Any, name: str) -> dict[str, Any]:
    groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not groups:
        raise LookupError(f"Auto Scaling group {name!r} not found")
    return groups[0]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def observe(client: Any, spot_group: str, on_demand_group: str) -> FleetState:
    """Read both groups (one DescribeAutoScalingGroups call each)."""
    spot = _describe(client, spot_group)
    # a fleet without a fallback group scales its one group
    on_demand = _describe(client, on_demand_group) if on_demand_group else {"DesiredCapacity": 0}
    tags = _tags(spot)
    running = sum(1 for i in spot.get("Instances", []) if i["LifecycleState"] in RUNNING_STATES)
    return FleetState(
        fleet_desired=int(tags.get(FLEET_DESIRED_TAG, spot["DesiredCapacity"])),
        fleet_max=int(tags.get(FLEET_MAX_TAG, spot["MaxSize"])),
        spot_desired=int(spot["DesiredCapacity"]),
        spot_in_service=running,
        on_demand_desired=int(on_demand["DesiredCapacity"]),
        shortfall_since=_parse_time(tags.get(SHORTFALL_SINCE_TAG)),
        budget_enforced=BUDGET_ENFORCED_TAG in tags or BUDGET_ENFORCED_TAG in _tags(on_demand),
    )


def apply(
    client: Any, spot_group: str, on_demand_group: str, state: FleetState, decision: Decision
) -> list[str]:
    """Make the groups match `decision`; only what differs is written. Returns the changes."""
    changes = []
    # Lower before raising so the sum of desired capacities never passes the maximum.
    steps = [
        (on_demand_group, state.on_demand_desired, decision.on_demand_desired),
        (spot_group, state.spot_desired, decision.spot_desired),
    ]
    steps = [step for step in steps if step[0]]
    steps.sort(key=lambda step: step[2] - step[1])
    for group, current, target in steps:
        if current != target:
            client.update_auto_scaling_group(AutoScalingGroupName=group, DesiredCapacity=target)
            changes.append(f"{group}: desired {current} -> {target}")
    if decision.shortfall_since != state.shortfall_since:
        if decision.shortfall_since is None:
            client.delete_tags(
                Tags=[
                    {
                        "ResourceId": spot_group,
                        "ResourceType": "auto-scaling-group",
                        "Key": SHORTFALL_SINCE_TAG,
                    }
                ]
            )
            changes.append(f"{spot_group}: shortfall clock cleared")
        else:
            client.create_or_update_tags(
                Tags=[
                    {
                        "ResourceId": spot_group,
                        "ResourceType": "auto-scaling-group",
                        "Key": SHORTFALL_SINCE_TAG,
                        "Value": decision.shortfall_since.isoformat(),
                        "PropagateAtLaunch": False,
                    }
                ]
            )
            changes.append(f"{spot_group}: shortfall clock started")
    return changes


def reconcile(
    client: Any,
    spot_group: str,
    on_demand_group: str,
    fallback_after: timedelta,
    now: datetime | None = None,
    demand: QueueDemand | None = None,
) -> dict[str, Any]:
    """Observe, decide, apply; returns the record that is also logged (one JSON line).

    With `demand` (scaleOn), the fleet's desired size is what the queue needs."""
    state = observe(client, spot_group, on_demand_group)
    if demand is not None:
        state = follow_queue(state, demand)
    if on_demand_group:
        decision = decide(state, now or datetime.now(UTC), fallback_after)
    else:
        decision = decide_one_group(state)
    changes = apply(client, spot_group, on_demand_group, state, decision)
    record = {
        "controller": "finops-spot-fallback",
        "spot_group": spot_group,
        "on_demand_group": on_demand_group,
        "queue": asdict(demand) if demand is not None else None,
        "observed": asdict(state),
        "decision": asdict(decision),
        "changes": changes,
    }
    logger.info(json.dumps(record, default=str))
    return record


def decide_one_group(state: FleetState) -> Decision:
    """A fleet of one group (no fallback): its desired size is the fleet's, within its max."""
    if state.budget_enforced:
        return Decision(0, 0, None, "budget enforced: fleet held at zero")
    desired = max(0, min(state.fleet_desired, state.fleet_max))
    return Decision(desired, 0, None, f"fleet desired {desired}")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (EventBridge launch events and the schedule carry no needed data)."""
    import boto3

    demand = None
    if os.environ.get("QUEUE_URL"):
        demand = QueueDemand(
            jobs=read_queue_jobs(boto3.client("sqs"), os.environ["QUEUE_URL"]),
            jobs_per_node=int(os.environ["JOBS_PER_NODE"]),
            nodes_min=int(os.environ.get("NODES_MIN", "0")),
        )
    return reconcile(
        boto3.client("autoscaling"),
        os.environ["SPOT_GROUP_NAME"],
        os.environ.get("ON_DEMAND_GROUP_NAME", ""),
        timedelta(minutes=float(os.environ.get("FALLBACK_AFTER_MINUTES", "10"))),
        demand=demand,
    )
