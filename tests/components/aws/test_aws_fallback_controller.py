"""The spot fallback controller against moto's Auto Scaling and EC2 APIs.

Spot capacity is the `spot_market` limit on the main group: with a limit of 0 EC2 launches
nothing there, as when every spot pool is out of capacity.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aifinops.components.aws.lambdas import fallback_controller as fc

AFTER = timedelta(minutes=10)
STABLE = timedelta(minutes=15)
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def sizes(client: Any, group: str) -> tuple[int, int]:
    """(desired, instances pending or in service)."""
    found = client.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][
        0
    ]
    running = sum(1 for i in found["Instances"] if i["LifecycleState"] in fc.RUNNING_STATES)
    return found["DesiredCapacity"], running


def tags(client: Any, group: str) -> dict[str, str]:
    found = client.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][
        0
    ]
    return {t["Key"]: t["Value"] for t in found["Tags"]}


def asg_retry(client: Any, group: str) -> None:
    """What the Auto Scaling service does on its own every few seconds: try to reach desired."""
    desired = sizes(client, group)[0]
    client.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=desired)


@pytest.fixture
def fleet(aws_client: Any, spot_market: Any, fleet_groups: Any) -> Any:
    class Fleet:
        asg = aws_client("autoscaling")
        ec2 = aws_client("ec2")
        market = spot_market

        def create(self, desired: int, maximum: int, spot_capacity: int | None) -> None:
            self.market.limits["train-group"] = spot_capacity
            self.spot, self.on_demand = fleet_groups(
                self.asg, self.ec2, desired=desired, maximum=maximum
            )

        def tick(self, minutes: float) -> dict[str, Any]:
            return fc.reconcile(
                self.asg,
                self.spot,
                self.on_demand,
                AFTER,
                now=T0 + timedelta(minutes=minutes),
                stable_for=STABLE,
            )

        def total_running(self) -> int:
            return sizes(self.asg, self.spot)[1] + sizes(self.asg, self.on_demand)[1]

    return Fleet()


def test_spot_unavailable_falls_back_after_the_wait_only(fleet: Any) -> None:
    fleet.create(desired=3, maximum=6, spot_capacity=0)
    record = fleet.tick(0)
    assert sizes(fleet.asg, fleet.on_demand) == (0, 0)  # not yet: spot may come back
    assert tags(fleet.asg, fleet.spot)[fc.SHORTFALL_SINCE_TAG] == T0.isoformat()
    assert "waiting" in record["decision"]["reason"]
    fleet.tick(9)
    assert sizes(fleet.asg, fleet.on_demand) == (0, 0)
    fleet.tick(10)
    assert sizes(fleet.asg, fleet.on_demand) == (3, 3)
    assert fc.SHORTFALL_SINCE_TAG not in tags(fleet.asg, fleet.spot)
    # the spot group keeps trying within the maximum: 3 on-demand + 3 spot desired = 6
    assert sizes(fleet.asg, fleet.spot) == (3, 0)
    assert fleet.total_running() == 3


def test_partial_spot_covers_only_the_shortfall(fleet: Any) -> None:
    fleet.create(desired=4, maximum=6, spot_capacity=1)
    assert sizes(fleet.asg, fleet.spot) == (4, 1)
    fleet.tick(0)
    fleet.tick(11)
    assert sizes(fleet.asg, fleet.on_demand) == (3, 3)
    assert fleet.total_running() == 4
    # spot desired lowered so that spot desired + on-demand desired stays within 6
    assert sizes(fleet.asg, fleet.spot)[0] == 3


def test_spot_returns_drains_on_demand_one_node_at_a_time_once_stable(fleet: Any) -> None:
    fleet.create(desired=3, maximum=6, spot_capacity=0)
    fleet.tick(0)
    fleet.tick(10)
    assert sizes(fleet.asg, fleet.on_demand) == (3, 3)

    fleet.market.limits["train-group"] = None  # spot capacity is back
    asg_retry(fleet.asg, fleet.spot)
    assert sizes(fleet.asg, fleet.spot) == (3, 3)
    record = fleet.tick(11)  # in service, but not yet for STABLE: nothing drained
    assert sizes(fleet.asg, fleet.on_demand) == (3, 3)
    assert "stayed in service" in record["decision"]["reason"]
    assert tags(fleet.asg, fleet.spot)[fc.SPOT_HISTORY_TAG].startswith("3@")
    fleet.tick(25)
    assert sizes(fleet.asg, fleet.on_demand) == (3, 3)
    drained = []
    for minute in range(26, 30):
        record = fleet.tick(minute)
        drained.append(sizes(fleet.asg, fleet.on_demand)[0])
    assert drained == [2, 1, 0, 0]  # one node per run, each through its lifecycle hook
    assert record["decision"]["reason"] == "spot provides the fleet"
    assert sizes(fleet.asg, fleet.spot) == (3, 3)


def test_flapping_spot_never_drains_on_demand(fleet: Any) -> None:
    """Spot comes back for 10 minutes out of every 12: shorter than STABLE, nothing drained."""
    fleet.create(desired=2, maximum=4, spot_capacity=0)
    fleet.tick(0)
    fleet.tick(10)
    assert sizes(fleet.asg, fleet.on_demand) == (2, 2)
    for minute in range(11, 11 + 5 * 12):
        up = (minute - 11) % 12 < 10
        fleet.market.limits["train-group"] = None if up else 0
        if not up:  # the pool reclaims its instances
            fleet.asg.set_desired_capacity(AutoScalingGroupName=fleet.spot, DesiredCapacity=0)
            fleet.asg.set_desired_capacity(AutoScalingGroupName=fleet.spot, DesiredCapacity=2)
        asg_retry(fleet.asg, fleet.spot)
        fleet.tick(minute)
        assert sizes(fleet.asg, fleet.on_demand) == (2, 2), minute
    fleet.market.limits["train-group"] = None  # now it stays
    asg_retry(fleet.asg, fleet.spot)
    for minute in range(71, 71 + 15):
        fleet.tick(minute)
        assert sizes(fleet.asg, fleet.on_demand)[0] == 2, minute
    fleet.tick(86)
    assert sizes(fleet.asg, fleet.on_demand)[0] == 1


def test_spot_returning_in_part_drains_step_by_step(fleet: Any) -> None:
    fleet.create(desired=4, maximum=5, spot_capacity=0)
    fleet.tick(0)
    fleet.tick(10)
    # one node of headroom: spot desired 1 is the probe, on-demand covers 4
    assert sizes(fleet.asg, fleet.on_demand) == (4, 4)
    assert sizes(fleet.asg, fleet.spot) == (1, 0)
    fleet.market.limits["train-group"] = None
    previous = 4
    for minute in range(11, 11 + 4 * 17):
        asg_retry(fleet.asg, fleet.spot)
        fleet.tick(minute)
        assert fleet.total_running() <= 5
        spot_desired, _ = sizes(fleet.asg, fleet.spot)
        on_demand = sizes(fleet.asg, fleet.on_demand)[0]
        assert spot_desired + on_demand <= 5
        assert previous - on_demand in (0, 1)  # never more than one node per step
        previous = on_demand
    assert sizes(fleet.asg, fleet.spot) == (4, 4)
    assert sizes(fleet.asg, fleet.on_demand) == (0, 0)


def test_repeated_events_change_nothing(fleet: Any) -> None:
    fleet.create(desired=3, maximum=6, spot_capacity=1)
    fleet.tick(0)
    first = tags(fleet.asg, fleet.spot)[fc.SHORTFALL_SINCE_TAG]
    for _ in range(5):  # a burst of "Launch Unsuccessful" events within the same minute
        record = fleet.tick(0.5)
        assert record["changes"] == []
    assert tags(fleet.asg, fleet.spot)[fc.SHORTFALL_SINCE_TAG] == first  # clock not reset
    fleet.tick(10)
    before = (sizes(fleet.asg, fleet.spot), sizes(fleet.asg, fleet.on_demand))
    for minute in (10, 10, 11, 12):
        assert fleet.tick(minute)["changes"] == []
    assert (sizes(fleet.asg, fleet.spot), sizes(fleet.asg, fleet.on_demand)) == before
    assert sizes(fleet.asg, fleet.on_demand) == (2, 2)


def test_max_reached_never_exceeded(fleet: Any) -> None:
    fleet.create(desired=4, maximum=4, spot_capacity=1)
    fleet.tick(0)
    fleet.tick(10)
    assert sizes(fleet.asg, fleet.on_demand) == (3, 3)
    assert sizes(fleet.asg, fleet.spot) == (1, 1)  # lowered to what it runs: no room to probe
    assert fleet.total_running() == 4
    fleet.market.limits["train-group"] = None
    for minute in range(11, 20):
        asg_retry(fleet.asg, fleet.spot)
        fleet.tick(minute)
        assert fleet.total_running() <= 4
        assert sizes(fleet.asg, fleet.spot)[0] + sizes(fleet.asg, fleet.on_demand)[0] <= 4


def test_budget_enforced_fleet_stays_at_zero(fleet: Any) -> None:
    fleet.create(desired=2, maximum=4, spot_capacity=0)
    fleet.tick(0)
    fleet.tick(10)
    assert sizes(fleet.asg, fleet.on_demand)[0] == 2
    fleet.asg.create_or_update_tags(
        Tags=[
            {
                "ResourceId": fleet.spot,
                "ResourceType": "auto-scaling-group",
                "Key": fc.BUDGET_ENFORCED_TAG,
                "Value": "{}",
                "PropagateAtLaunch": False,
            }
        ]
    )
    fleet.tick(11)
    assert sizes(fleet.asg, fleet.on_demand) == (0, 0)
    assert sizes(fleet.asg, fleet.spot)[0] == 0


@pytest.mark.parametrize(
    ("state", "minutes", "expected"),
    [
        # (D, M, spot desired, spot running, on-demand desired, since) -> (spot, od)
        ((3, 6, 3, 3, 0, None), 0, (3, 0)),  # healthy
        ((3, 6, 3, 0, 0, None), 0, (3, 0)),  # shortfall starts, wait
        ((3, 6, 3, 0, 0, 0), 10, (3, 3)),  # waited long enough
        ((3, 6, 3, 2, 3, None), 0, (3, 3)),  # spot partly back, not yet stable: keep
        ((4, 4, 4, 0, 0, 0), 10, (0, 4)),  # at max: spot desired gives way
        ((0, 4, 0, 0, 2, None), 0, (0, 0)),  # fleet scaled to zero: all go now, each via its hook
    ],
)
def test_decide_table(state: tuple[Any, ...], minutes: int, expected: tuple[int, int]) -> None:
    desired, maximum, spot_desired, running, od, since = state
    decision = fc.decide(
        fc.FleetState(
            fleet_desired=desired,
            fleet_max=maximum,
            spot_desired=spot_desired,
            spot_in_service=running,
            on_demand_desired=od,
            shortfall_since=None if since is None else T0 + timedelta(minutes=since),
        ),
        T0 + timedelta(minutes=minutes),
        AFTER,
    )
    assert (decision.spot_desired, decision.on_demand_desired) == expected
    assert decision.spot_desired + decision.on_demand_desired <= maximum


def test_handler_reads_its_groups_from_the_environment(
    fleet: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet.create(desired=1, maximum=2, spot_capacity=None)
    monkeypatch.setenv("SPOT_GROUP_NAME", fleet.spot)
    monkeypatch.setenv("ON_DEMAND_GROUP_NAME", fleet.on_demand)
    monkeypatch.setenv("FALLBACK_AFTER_MINUTES", "5")
    record = fc.handler({"detail-type": "Scheduled Event"}, None)
    assert record["decision"]["reason"] == "spot provides the fleet"
    assert [c.split(" 1@")[0] for c in record["changes"]] == [
        f"{fleet.spot}: spot in service since"
    ]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_history_keeps_the_start_of_each_level_and_drops_to_the_lowest() -> None:
    h = fc.update_history((), 2, at(0))
    assert h == ((2, at(0)),)
    h = fc.update_history(h, 3, at(5))
    assert h == ((2, at(0)), (3, at(5)))
    assert fc.stable_level(h, at(15), STABLE) == 2  # level 3 only 10 minutes old
    assert fc.stable_level(h, at(20), STABLE) == 3
    h = fc.update_history(h, 1, at(21))  # two instances reclaimed: >= 1 since minute 0
    assert h == ((1, at(0)),)
    assert fc.update_history(h, 0, at(22)) == ()
    assert fc.parse_history(fc.format_history(h)) == h
    assert fc.parse_history("3@100,2@200") == ()  # not ascending: unreadable, no history
    assert fc.parse_history("garbage") == ()


def state(**overrides: Any) -> fc.FleetState:
    base: dict[str, Any] = dict(
        fleet_desired=4,
        fleet_max=8,
        spot_desired=4,
        spot_in_service=4,
        on_demand_desired=4,
        shortfall_since=None,
        spot_history=((4, at(0)),),
        on_demand_running=4,
        on_demand_terminating=0,
    )
    return fc.FleetState(**{**base, **overrides})


def test_one_on_demand_node_drains_at_a_time() -> None:
    decision = fc.decide(state(), at(30), AFTER, STABLE)
    assert decision.on_demand_desired == 3
    # the drained node is still in its lifecycle hook (checkpointing): wait for it
    busy = state(on_demand_desired=3, on_demand_running=3, on_demand_terminating=1)
    decision = fc.decide(busy, at(31), AFTER, STABLE)
    assert decision.on_demand_desired == 3
    assert "waiting for the node being drained" in decision.reason
    # the group has not yet acted on the last decrement
    lagging = state(on_demand_desired=3, on_demand_running=4)
    assert fc.decide(lagging, at(31), AFTER, STABLE).on_demand_desired == 3
    assert (
        fc.decide(
            state(on_demand_desired=3, on_demand_running=3), at(32), AFTER, STABLE
        ).on_demand_desired
        == 2
    )


def test_on_demand_never_below_what_running_spot_leaves_uncovered() -> None:
    # 4 spot stable since minute 0, then 2 of them reclaimed: 2 missing
    decision = fc.decide(state(spot_in_service=2), at(30), AFTER, STABLE)
    assert decision.on_demand_desired == 3  # one step towards 4 - 2
    covered = state(spot_in_service=2, on_demand_desired=2, on_demand_running=2)
    assert fc.decide(covered, at(31), AFTER, STABLE).on_demand_desired == 2
    short = state(spot_in_service=1, on_demand_desired=3, on_demand_running=3)
    assert fc.decide(short, at(31), AFTER, STABLE).on_demand_desired == 3


def test_pending_spot_is_not_spot_back() -> None:
    decision = fc.decide(
        state(spot_in_service=0, spot_pending=4, spot_history=()), at(30), AFTER, STABLE
    )
    assert decision.on_demand_desired == 4
