"""Spot fallback controller for one `GpuTrainingFleet`: on-demand while spot cannot fill, back
to spot once spot has proved it stays.

Neither an Auto Scaling group nor Karpenter does this: a group's spot/on-demand split is fixed,
and Karpenter never moves a node from on-demand back to spot. The fleet is two groups on one
launch template: the *spot group* (spot above its on-demand base) and the *on-demand group*
(100 % on-demand, normally at zero). This controller runs on every "EC2 Instance Launch
Unsuccessful"/"Successful"/"Terminate Successful" event of the spot group and on a one-minute
schedule.

Every decision is a pure function of what it observes (`decide`), so running it twice, or on
a burst of repeated events, changes nothing the second time:

- `fleet_desired` (D) and `fleet_max` (M): tags on the spot group, written by Pulumi;
- `spot_in_service` (S): instances of the spot group in service; `spot_pending` those still
  launching;
- `on_demand_desired`, and the on-demand instances running or still terminating;
- `shortfall_since`: when the spot group first failed to provide D nodes (a tag);
- `spot_history`: since when the spot group has had at least 1, 2, ... instances in service
  without a break (a tag, `SPOT_HISTORY_TAG`). Tags are the only state the controller keeps,
  so a restart loses nothing.

The rules (all counts are nodes):

- missing = D - S - pending. While missing on-demand nodes are not yet requested, the
  shortfall clock runs; after `fallback_after` the on-demand group is raised to cover it.
- Reversion does not churn. Spot counts as back only for the instances that have been in
  service for `stable_for` without a break (`stable_level`): a pending instance, or one that
  has just come up in a pool that keeps flapping, does not. The on-demand group is then
  lowered **one node at a time**, and only when the previous node has finished terminating:
  every on-demand node goes through the groups' termination lifecycle hook, where the agent
  runs the job's checkpoint hook and completes the lifecycle action (agents/lifecycle.py), so
  a drain never loses a step in flight. On-demand never goes below D - S (what the running
  spot cannot cover).
- The fleet maximum holds at all times: on-demand <= M - S, and spot desired + on-demand desired
  <= M. When both cannot fit, the spot group's desired is lowered to what it actually runs
  plus whatever headroom is left; that headroom is how spot is tried again, so a fleet whose
  desired equals its maximum stays on on-demand until capacity is freed (documented in
  docs/components-aws.md: leave max above desired).
- A `finops:budget-enforced` tag (written by the budget enforcer) stops the fleet: both
  desired capacities 0, nothing else. The nodes leave through the same lifecycle hook, so
  each gets its checkpoint signal first.

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
from itertools import pairwise
from typing import Any

FLEET_DESIRED_TAG = "finops:fleet-desired"
FLEET_MAX_TAG = "finops:fleet-max"
SHORTFALL_SINCE_TAG = "finops:spot-shortfall-since"
SPOT_HISTORY_TAG = "finops:spot-in-service-since"
BUDGET_ENFORCED_TAG = "finops:budget-enforced"
IN_SERVICE = "InService"
# Instances the group is about to provide (not yet proved to stay).
PENDING_STATES = frozenset({"Pending", "Pending:Wait", "Pending:Proceed", "Warmed:Pending"})
# Instances the group is providing or about to provide; Standby, Terminating... are not.
RUNNING_STATES = PENDING_STATES | {IN_SERVICE}
# An instance on its way out: its lifecycle hook (checkpoint) may still be running.
TERMINATING_STATES = frozenset({"Terminating", "Terminating:Wait", "Terminating:Proceed"})
# A tag value holds at most 256 characters: "12@1764331200," is 14, so 16 steps fit.
MAX_HISTORY_STEPS = 16
DEFAULT_STABLE_MINUTES = 15.0

logger = logging.getLogger("finops.fallback_controller")
logger.setLevel(logging.INFO)

SpotHistory = tuple[tuple[int, datetime], ...]
"""(level, since): the spot group has had at least `level` instances in service, without a
break, since `since`. Levels and times both ascend."""


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
    spot_pending: int = 0
    spot_history: SpotHistory = ()
    on_demand_running: int = -1
    """On-demand instances pending or in service (-1: not observed, taken as settled)."""
    on_demand_terminating: int = 0
    """On-demand instances still terminating (their checkpoint hook may be running)."""


@dataclass(frozen=True)
class Decision:
    """What the two groups should be set to, and the clocks to persist."""

    spot_desired: int
    on_demand_desired: int
    shortfall_since: datetime | None
    reason: str
    spot_history: SpotHistory = ()


def update_history(history: SpotHistory, in_service: int, now: datetime) -> SpotHistory:
    """`history` after observing `in_service` spot instances in service at `now`.

    A drop to L keeps, for level L, the time of the first step at or above L (the count has
    been >= L since then); a rise to a new level starts that level's clock now.
    """
    in_service = max(0, in_service)
    kept = [(level, since) for level, since in history if level < in_service]
    at_or_above = [since for level, since in history if level >= in_service]
    if in_service:
        kept.append((in_service, at_or_above[0] if at_or_above else now))
    # Forgetting the lowest steps only makes a level younger (later since): never optimistic.
    return tuple(kept[-MAX_HISTORY_STEPS:])


def stable_level(history: SpotHistory, now: datetime, stable_for: timedelta) -> int:
    """Spot instances in service for at least `stable_for` without a break."""
    return max((level for level, since in history if now - since >= stable_for), default=0)


def decide(
    state: FleetState,
    now: datetime,
    fallback_after: timedelta,
    stable_for: timedelta = timedelta(minutes=DEFAULT_STABLE_MINUTES),
) -> Decision:
    """The target of both groups for `state` at `now` (pure; see the module docstring)."""
    if state.budget_enforced:
        return Decision(0, 0, None, "budget enforced: fleet held at zero")
    fleet_max = max(0, state.fleet_max)
    desired = min(max(0, state.fleet_desired), fleet_max)
    in_service = max(0, state.spot_in_service)
    spot = in_service + max(0, state.spot_pending)
    history = update_history(state.spot_history, in_service, now)
    stable = min(stable_level(history, now, stable_for), desired)
    missing = max(0, desired - spot)
    on_demand = max(0, state.on_demand_desired)
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
        target = max(0, desired - stable)  # >= desired - in_service: what spot cannot cover
        settled = state.on_demand_terminating == 0 and (
            state.on_demand_running < 0 or state.on_demand_running <= on_demand
        )
        if on_demand > desired:
            # the fleet itself shrank (nodes.desired, its queue): nodes it no longer needs at
            # all go now, each still through its lifecycle hook; one-at-a-time is for handing
            # work back to spot
            on_demand = desired
            reason = f"fleet desired {desired}: on-demand lowered to it"
        elif on_demand > target and settled:
            on_demand -= 1
            reason = (
                f"spot has held {stable} of {desired} in service for {stable_for}: "
                f"one on-demand node drained (to {on_demand}) through its checkpoint hook"
            )
        elif on_demand > target:
            reason = (
                f"on-demand {on_demand} > {target} needed: waiting for the node being drained "
                "to finish its checkpoint"
            )
        elif on_demand > max(0, desired - in_service - max(0, state.spot_pending)) and on_demand:
            reason = (
                f"spot runs {in_service} (+{state.spot_pending} pending) but only {stable} "
                f"stayed in service for {stable_for}: on-demand kept at {on_demand}"
            )
        elif on_demand:
            reason = f"on-demand covers {on_demand} missing spot nodes"
        else:
            reason = "spot provides the fleet"
    on_demand = max(0, min(on_demand, fleet_max - spot))
    spot_desired = max(0, min(desired, fleet_max - on_demand))
    return Decision(spot_desired, on_demand, since, reason, history)


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


def format_history(history: SpotHistory) -> str:
    """The tag value: "level@epoch-seconds,..." (at most 16 steps, < 256 characters)."""
    return ",".join(f"{level}@{int(since.timestamp())}" for level, since in history)


def parse_history(value: str | None) -> SpotHistory:
    """`format_history` read back; an unreadable tag is no history (spot must prove itself)."""
    steps: list[tuple[int, datetime]] = []
    for part in (value or "").split(","):
        level, _, epoch = part.partition("@")
        try:
            steps.append((int(level), datetime.fromtimestamp(int(epoch), UTC)))
        except ValueError:
            return ()
    ordered = all(a[0] < b[0] and a[1] <= b[1] for a, b in pairwise(steps))
    return tuple(steps) if ordered else ()


def _count(group: dict[str, Any], states: frozenset[str]) -> int:
    return sum(1 for i in group.get("Instances", []) if i["LifecycleState"] in states)


def observe(client: Any, spot_group: str, on_demand_group: str) -> FleetState:
    """Read both groups (one DescribeAutoScalingGroups call each)."""
    spot = _describe(client, spot_group)
    # a fleet without a fallback group scales its one group
    on_demand = _describe(client, on_demand_group) if on_demand_group else {"DesiredCapacity": 0}
    tags = _tags(spot)
    return FleetState(
        fleet_desired=int(tags.get(FLEET_DESIRED_TAG, spot["DesiredCapacity"])),
        fleet_max=int(tags.get(FLEET_MAX_TAG, spot["MaxSize"])),
        spot_desired=int(spot["DesiredCapacity"]),
        spot_in_service=_count(spot, frozenset({IN_SERVICE})),
        on_demand_desired=int(on_demand["DesiredCapacity"]),
        shortfall_since=_parse_time(tags.get(SHORTFALL_SINCE_TAG)),
        budget_enforced=BUDGET_ENFORCED_TAG in tags or BUDGET_ENFORCED_TAG in _tags(on_demand),
        spot_pending=_count(spot, PENDING_STATES),
        spot_history=parse_history(tags.get(SPOT_HISTORY_TAG)),
        on_demand_running=_count(on_demand, RUNNING_STATES),
        on_demand_terminating=_count(on_demand, TERMINATING_STATES),
    )


def _set_tag(client: Any, group: str, key: str, value: str | None) -> None:
    if value is None:
        client.delete_tags(
            Tags=[{"ResourceId": group, "ResourceType": "auto-scaling-group", "Key": key}]
        )
        return
    client.create_or_update_tags(
        Tags=[
            {
                "ResourceId": group,
                "ResourceType": "auto-scaling-group",
                "Key": key,
                "Value": value,
                "PropagateAtLaunch": False,
            }
        ]
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
        since = decision.shortfall_since
        _set_tag(client, spot_group, SHORTFALL_SINCE_TAG, since.isoformat() if since else None)
        changes.append(f"{spot_group}: shortfall clock {'started' if since else 'cleared'}")
    if decision.spot_history != state.spot_history:
        value = format_history(decision.spot_history) or None
        _set_tag(client, spot_group, SPOT_HISTORY_TAG, value)
        changes.append(f"{spot_group}: spot in service since {value or '-'}")
    return changes


def reconcile(
    client: Any,
    spot_group: str,
    on_demand_group: str,
    fallback_after: timedelta,
    now: datetime | None = None,
    demand: QueueDemand | None = None,
    stable_for: timedelta = timedelta(minutes=DEFAULT_STABLE_MINUTES),
) -> dict[str, Any]:
    """Observe, decide, apply; returns the record that is also logged (one JSON line).

    With `demand` (scaleOn), the fleet's desired size is what the queue needs."""
    state = observe(client, spot_group, on_demand_group)
    if demand is not None:
        state = follow_queue(state, demand)
    if on_demand_group:
        decision = decide(state, now or datetime.now(UTC), fallback_after, stable_for)
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
        return Decision(0, 0, None, "budget enforced: fleet held at zero", state.spot_history)
    desired = max(0, min(state.fleet_desired, state.fleet_max))
    return Decision(desired, 0, None, f"fleet desired {desired}", state.spot_history)


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
        stable_for=timedelta(
            minutes=float(os.environ.get("SPOT_STABLE_MINUTES", str(DEFAULT_STABLE_MINUTES)))
        ),
    )
