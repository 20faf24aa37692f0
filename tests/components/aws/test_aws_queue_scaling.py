"""Queue-depth scaling (`scaleOn`) of the AWS fleet's controller, against moto's SQS and Auto
Scaling over scripted arrival patterns.

Each simulated minute: jobs arrive on the queue, every running node works on at most
`jobs_per_node` jobs (it receives messages, and deletes each when its job is done), then the
controller runs once, as its one-minute schedule runs it in AWS. A node the group removes
drops its jobs, which become visible again, as SQS redelivers a message whose receiver died.
The expected sizes are computed here from the queue's own counts, not by the controller.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aifinops.components.aws.lambdas import fallback_controller as fc

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
AFTER = timedelta(minutes=2)
DOCS = Path(__file__).resolve().parents[3] / "docs" / "components-aws.md"


def queue_jobs(sqs: Any, url: str) -> int:
    """Visible + in-flight messages, read independently of the controller."""
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(found["ApproximateNumberOfMessages"]) + int(
        found["ApproximateNumberOfMessagesNotVisible"]
    )


def group(asg: Any, name: str) -> dict[str, Any]:
    return dict(
        asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    )


def running_ids(asg: Any, name: str) -> list[str]:
    return [
        i["InstanceId"]
        for i in group(asg, name)["Instances"]
        if i["LifecycleState"] in fc.RUNNING_STATES
    ]


@dataclass
class Workers:
    """The training jobs' side: nodes take jobs off the queue and finish them."""

    sqs: Any
    url: str
    jobs_per_node: int
    job_minutes: int
    held: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    """Instance id -> (receipt handle, minute its job is done)."""

    def step(self, minute: int, nodes: list[str]) -> None:
        for node in [n for n in self.held if n not in nodes]:  # removed by the group
            for receipt, _ in self.held.pop(node):
                self.sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=receipt, VisibilityTimeout=0
                )
        for node, jobs in self.held.items():
            for receipt, done in jobs:
                if done <= minute:
                    self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)
            self.held[node] = [(r, d) for r, d in jobs if d > minute]
        for node in nodes:
            jobs = self.held.setdefault(node, [])
            free = self.jobs_per_node - len(jobs)
            while free > 0:
                got = self.sqs.receive_message(
                    QueueUrl=self.url,
                    MaxNumberOfMessages=min(10, free),
                    VisibilityTimeout=12 * 3600,
                ).get("Messages", [])
                if not got:
                    break
                jobs += [(m["ReceiptHandle"], minute + self.job_minutes) for m in got]
                free -= len(got)


@pytest.fixture
def sim(aws_client: Any, spot_market: Any, fleet_groups: Any) -> Any:
    class Sim:
        asg = aws_client("autoscaling")
        ec2 = aws_client("ec2")
        sqs = aws_client("sqs")
        market = spot_market

        def create(
            self,
            *,
            maximum: int,
            jobs_per_node: int,
            job_minutes: int,
            fallback: bool = True,
            spot_capacity: int | None = None,
            nodes_min: int = 0,
        ) -> None:
            self.url = self.sqs.create_queue(QueueName="train-jobs")["QueueUrl"]
            self.maximum, self.jobs_per_node, self.nodes_min = maximum, jobs_per_node, nodes_min
            self.market.limits["train-group"] = spot_capacity
            self.spot, on_demand = fleet_groups(self.asg, self.ec2, desired=0, maximum=maximum)
            self.on_demand = on_demand if fallback else ""
            self.workers = Workers(self.sqs, self.url, jobs_per_node, job_minutes)

        def nodes(self) -> list[str]:
            names = [self.spot] + ([self.on_demand] if self.on_demand else [])
            return [i for name in names for i in running_ids(self.asg, name)]

        def desired(self) -> int:
            names = [self.spot] + ([self.on_demand] if self.on_demand else [])
            return sum(group(self.asg, name)["DesiredCapacity"] for name in names)

        def minute(self, minute: int, arrivals: int) -> dict[str, Any]:
            for start in range(0, arrivals, 10):
                self.sqs.send_message_batch(
                    QueueUrl=self.url,
                    Entries=[
                        {"Id": str(i), "MessageBody": f"job {minute}-{start + i}"}
                        for i in range(min(10, arrivals - start))
                    ],
                )
            self.workers.step(minute, self.nodes())
            jobs = queue_jobs(self.sqs, self.url)
            demand = fc.QueueDemand(
                jobs=fc.read_queue_jobs(self.sqs, self.url),
                jobs_per_node=self.jobs_per_node,
                nodes_min=self.nodes_min,
            )
            record = fc.reconcile(
                self.asg,
                self.spot,
                self.on_demand,
                AFTER,
                now=T0 + timedelta(minutes=minute),
                demand=demand,
            )
            return {
                "jobs": jobs,
                "record": record,
                "desired": self.desired(),
                "nodes": self.nodes(),
            }

        def needed(self, jobs: int) -> int:
            return min(self.maximum, max(self.nodes_min, math.ceil(jobs / self.jobs_per_node)))

    return Sim()


# minute -> jobs arriving: a burst, a lull, a larger burst than the fleet can hold, silence
ARRIVALS = {0: 5, 1: 2, 4: 1, 7: 12, 8: 6, 12: 1}


def run_pattern(sim: Any, minutes: int) -> list[dict[str, Any]]:
    return [sim.minute(m, ARRIVALS.get(m, 0)) for m in range(minutes)]


def assert_follows_the_queue_then_zero(sim: Any, ticks: list[dict[str, Any]]) -> None:
    for minute, tick in enumerate(ticks):
        assert tick["desired"] <= sim.maximum, f"minute {minute}: {tick}"
        assert len(tick["nodes"]) <= sim.maximum, f"minute {minute}: {tick}"
        assert tick["desired"] == sim.needed(tick["jobs"]), f"minute {minute}: {tick}"
    assert max(t["desired"] for t in ticks) == sim.maximum  # the burst was capped, not ignored
    emptied = next(m for m, t in enumerate(ticks) if m > max(ARRIVALS) and t["jobs"] == 0)
    zero = next(m for m, t in enumerate(ticks) if m >= emptied and not t["nodes"])
    last_busy = emptied - 1
    assert ticks[last_busy]["jobs"] > 0
    # the queue empties during minute `emptied`; nodes are gone within the documented time
    assert zero - last_busy <= fc.SCALE_TO_ZERO_MINUTES
    assert all(t["desired"] == 0 and not t["nodes"] for t in ticks[zero:])


def test_a_fleet_with_fallback_follows_the_queue_and_ends_at_zero(sim: Any) -> None:
    sim.create(maximum=4, jobs_per_node=2, job_minutes=3)
    ticks = run_pattern(sim, 30)
    assert_follows_the_queue_then_zero(sim, ticks)
    assert group(sim.asg, sim.on_demand)["DesiredCapacity"] == 0  # spot served it all
    assert ticks[0]["desired"] == 3  # 5 jobs, 2 per node
    assert ticks[7]["jobs"] > 8 and ticks[7]["desired"] == 4  # capped at nodes.max


def test_a_fleet_without_fallback_scales_its_one_group(sim: Any) -> None:
    sim.create(maximum=4, jobs_per_node=2, job_minutes=3, fallback=False)
    ticks = run_pattern(sim, 30)
    assert_follows_the_queue_then_zero(sim, ticks)
    assert all(t["record"]["decision"]["on_demand_desired"] == 0 for t in ticks)


def test_every_job_is_done_once_nodes_are_gone(sim: Any) -> None:
    sim.create(maximum=3, jobs_per_node=1, job_minutes=2)
    run_pattern(sim, 40)
    assert queue_jobs(sim.sqs, sim.url) == 0
    assert sim.nodes() == []


def test_on_demand_fallback_covers_what_the_queue_needs_never_above_max(sim: Any) -> None:
    sim.create(maximum=4, jobs_per_node=2, job_minutes=3, spot_capacity=1)
    ticks = run_pattern(sim, 30)
    for minute, tick in enumerate(ticks):
        decision = tick["record"]["decision"]
        spot_running = tick["record"]["observed"]["spot_in_service"]
        need = sim.needed(tick["jobs"])
        assert len(tick["nodes"]) <= sim.maximum
        # a raise buys only what running spot does not cover; a drain waits for spot to stay
        # in service (spotStableMinutes) and goes one node at a time, never above the queue's need
        if decision["on_demand_desired"] > tick["record"]["observed"]["on_demand_desired"]:
            assert decision["on_demand_desired"] <= max(0, need - spot_running), minute
        assert decision["on_demand_desired"] <= need, minute
        assert decision["spot_desired"] + decision["on_demand_desired"] <= sim.maximum, minute
    # the burst: one spot node, on-demand covers the rest of what the queue needs after the wait
    assert max(len(t["nodes"]) for t in ticks) == sim.maximum
    assert len(group(sim.asg, sim.on_demand)["Instances"]) == 0
    assert all(not t["nodes"] for t in ticks[-5:])


def test_nodes_min_is_kept_with_an_empty_queue(sim: Any) -> None:
    sim.create(maximum=4, jobs_per_node=2, job_minutes=3, nodes_min=1, fallback=False)
    ticks = run_pattern(sim, 30)
    assert all(t["desired"] == sim.needed(t["jobs"]) for t in ticks)
    assert ticks[-1]["desired"] == 1 and len(ticks[-1]["nodes"]) == 1


def test_a_budget_stop_wins_over_the_queue(sim: Any) -> None:
    sim.create(maximum=4, jobs_per_node=1, job_minutes=5)
    sim.minute(0, 3)
    assert sim.desired() == 3
    sim.asg.create_or_update_tags(
        Tags=[
            {
                "ResourceId": sim.spot,
                "ResourceType": "auto-scaling-group",
                "Key": fc.BUDGET_ENFORCED_TAG,
                "Value": "2026-12-01",
                "PropagateAtLaunch": False,
            }
        ]
    )
    tick = sim.minute(1, 4)
    assert tick["jobs"] == 7 and tick["desired"] == 0


@pytest.mark.parametrize(
    ("jobs", "per_node", "nodes_min", "fleet_max", "expected"),
    [
        (0, 1, 0, 4, 0),
        (1, 4, 0, 4, 1),
        (4, 4, 0, 4, 1),
        (5, 4, 0, 4, 2),
        (100, 1, 0, 4, 4),
        (0, 2, 2, 4, 2),
        (3, 1, 0, 0, 0),
        (-1, 1, 0, 4, 0),  # SQS counts are never negative; a bad read is not a scale-up
    ],
)
def test_queue_desired(
    jobs: int, per_node: int, nodes_min: int, fleet_max: int, expected: int
) -> None:
    demand = fc.QueueDemand(jobs=jobs, jobs_per_node=per_node, nodes_min=nodes_min)
    assert fc.queue_desired(demand, fleet_max) == expected


def test_the_documented_time_to_zero_is_the_controllers() -> None:
    text = DOCS.read_text()
    found = re.search(r"to zero within (\d+) minutes", text, re.IGNORECASE)
    assert found, "docs/components-aws.md states the time to zero"
    assert int(found.group(1)) == fc.SCALE_TO_ZERO_MINUTES


def test_a_growing_queue_is_not_a_spot_shortfall() -> None:
    """Spot is a minute behind every raise of a growing queue; the fallback waits for spot
    to fall short of its own request, not of the newest D."""
    since = T0 - timedelta(minutes=30)  # the queue has grown every minute for half an hour
    delivered = fc.FleetState(
        fleet_desired=3,
        fleet_max=8,
        spot_desired=3,
        spot_in_service=3,  # all spot was asked for, it provides
        on_demand_desired=0,
        shortfall_since=since,
    )
    demand = fc.QueueDemand(jobs=10, jobs_per_node=2, nodes_min=0)
    decision = fc.decide(fc.follow_queue(delivered, demand), T0, AFTER)
    assert (decision.spot_desired, decision.on_demand_desired) == (5, 0)
    assert decision.shortfall_since == T0  # the clock starts at this raise
    # spot short of its own request: the clock runs on and on-demand covers the gap
    short = fc.FleetState(3, 8, 3, 1, 0, since)
    decision = fc.decide(fc.follow_queue(short, demand), T0, AFTER)
    assert (decision.spot_desired, decision.on_demand_desired) == (4, 4)  # within max 8
