"""Queue-depth scaling (`scale_on_subscription`) of the GCP fleet: the MIG autoscaler on the
Pub/Sub backlog for one-group fleets, the fallback controller sizing a spot-with-fallback
fleet from the same metric (over a scripted backlog), its Monitoring call and permission, and
the argument errors."""

from __future__ import annotations

import io
import json
import math
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gcp_engine import names_of, one, run_components

from aifinops.components.gcp import GpuTrainingFleet
from aifinops.components.gcp.fallback import METRIC_PERMISSIONS, RESIZER_PERMISSIONS
from aifinops.components.gcp.functions import mig_fallback

AUTOSCALER = "gcp:compute/regionAutoscaler:RegionAutoscaler"
BACKLOG = "pubsub.googleapis.com/subscription/num_undelivered_messages"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def fleet(**overrides: Any) -> Any:
    args = {
        "model_version": "v1",
        "node_count": 0,
        "node_count_max": 5,
        "instance_type": "g2-standard-8",
        "region": "us-central1",
        "scale_on_subscription": "projects/finops-test/subscriptions/train-jobs",
        "jobs_per_node": 3,
        **overrides,
    }
    return run_components(lambda: GpuTrainingFleet("train", args))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("capacity", "group"), [("spot-only", "train-spot"), ("on-demand", "train-on-demand")]
)
def test_a_one_group_fleet_gets_the_mig_autoscaler_on_the_backlog(
    capacity: str, group: str
) -> None:
    run = fleet(capacity=capacity, node_count_min=0)
    (autoscaler,) = run.of_type(AUTOSCALER)
    assert autoscaler.name == "train-autoscaler"
    assert autoscaler.inputs["target"] == one(run, group).outputs["selfLink"]
    policy = autoscaler.inputs["autoscalingPolicy"]
    assert (policy["minReplicas"], policy["maxReplicas"], policy["mode"]) == (0, 5, "ON")
    (metric,) = policy["metrics"]
    assert metric["name"] == BACKLOG
    # a per-group metric (resource type not gce_instance): the autoscaler keeps
    # backlog / singleInstanceAssignment nodes, which may be zero
    assert metric["filter"] == (
        'resource.type = pubsub_subscription AND resource.labels.subscription_id = "train-jobs"'
    )
    assert metric["singleInstanceAssignment"] == 3.0
    assert "target" not in metric and "utilizationTarget" not in metric
    assert one(run, group).options.get("ignoreChanges") == ["targetSize"]
    assert names_of(run, "gcp:cloudfunctionsv2/function:Function") == []


def test_with_fallback_the_controller_reads_the_backlog_and_no_autoscaler_fights_it() -> None:
    run = fleet(
        scale_on_subscription="train-jobs", node_count_min=1, node_count=1, on_demand_base=1
    )
    assert run.of_type(AUTOSCALER) == []
    env = one(run, "train-controller").inputs["serviceConfig"]["environmentVariables"]
    assert {k: env[k] for k in ("SUBSCRIPTION_ID", "JOBS_PER_NODE", "NODES_MIN", "FLEET_MAX")} == {
        "SUBSCRIPTION_ID": "train-jobs",
        "JOBS_PER_NODE": "3",
        "NODES_MIN": "1",
        "FLEET_MAX": "5",
    }
    role = one(run, "train-controller-role").inputs
    assert role["permissions"] == [*RESIZER_PERMISSIONS, *METRIC_PERMISSIONS]


def test_without_a_subscription_no_metric_permission() -> None:
    run = fleet(scale_on_subscription=None, jobs_per_node=None, node_count=2)
    assert run.of_type(AUTOSCALER) == []
    assert one(run, "train-controller-role").inputs["permissions"] == list(RESIZER_PERMISSIONS)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"scale_on_subscription": "arn:aws:sqs:us-east-1:1:q"},
            r"scale_on_subscription: .* a Pub/Sub subscription",
        ),
        (
            {"scale_on_subscription": "projects/other-proj/subscriptions/jobs"},
            r"a subscription in the fleet's project finops-test",
        ),
        ({"jobs_per_node": None}, r"jobs_per_node: required"),
        ({"jobs_per_node": 0}, r"jobs_per_node: 0"),
        ({"scale_on_subscription": None}, r"scale_on_subscription: None .*with jobs_per_node"),
        ({"node_count_min": 1}, r"node_count_min: 1"),  # above node_count 0
    ],
)
def test_bad_queue_args_name_the_field(overrides: dict[str, Any], message: str) -> None:
    args = {
        "model_version": "v1",
        "node_count": 0,
        "node_count_max": 5,
        "accelerator": "L4",
        "region": "us-central1",
        "project": "finops-test",
        "scale_on_subscription": "train-jobs",
        "jobs_per_node": 3,
    }
    with pytest.raises(ValueError, match=message):
        GpuTrainingFleet("bad", {**args, **overrides})  # type: ignore[typeddict-item]


# --- the controller over a scripted backlog ---------------------------------------------

ENV = {
    "SPOT_GROUP": "train-spot",
    "ON_DEMAND_GROUP": "train-on-demand",
    "STATE_BUCKET": "ckpt",
    "STATE_OBJECT": "finops-controller/train.json",
    "FLEET_DESIRED": "0",
    "FLEET_MAX": "5",
    "ON_DEMAND_BASE": "0",
    "FALLBACK_AFTER_MINUTES": "2",
    "SUBSCRIPTION_ID": "train-jobs",
    "JOBS_PER_NODE": "3",
    "NODES_MIN": "0",
}


class Fleet(mig_fallback.GcpApi):
    """Two MIGs, the state object and the subscription's backlog, in memory; spot VMs exist
    up to `spot_capacity`."""

    def __init__(self, spot_capacity: int) -> None:
        super().__init__("finops-test", "us-central1")
        self.targets = {"train-spot": 0, "train-on-demand": 0}
        self.spot_capacity = spot_capacity
        self.backlog: int | None = 0
        self.state: dict[str, Any] = {}

    def target_size(self, group: str) -> int:
        return self.targets[group]

    def existing_instances(self, group: str) -> int:
        if group == "train-spot":
            return min(self.spot_capacity, self.targets[group])
        return self.targets[group]

    def instance_counts(self, group: str) -> dict[str, int]:
        return {"running": self.existing_instances(group), "pending": 0, "leaving": 0}

    def resize(self, group: str, size: int) -> None:
        self.targets[group] = size

    def read_state(self, bucket: str, name: str) -> dict[str, Any]:
        return dict(self.state)

    def write_state(self, bucket: str, name: str, state: Any) -> None:
        self.state = dict(state)

    def undelivered_messages(self, subscription_id: str, now: datetime) -> int | None:
        assert subscription_id == "train-jobs"
        return self.backlog

    def running(self) -> int:
        return self.existing_instances("train-spot") + self.targets["train-on-demand"]


# backlog at each minute: a burst above what 5 nodes take, work done, empty
BACKLOGS = [4, 9, 20, 20, 14, 7, 3, 1, 0, 0, 0]


@pytest.mark.parametrize("spot_capacity", [10, 1], ids=["spot-plenty", "spot-short"])
def test_nodes_follow_the_backlog_within_max_and_reach_zero(spot_capacity: int) -> None:
    fleet = Fleet(spot_capacity)
    for minute, backlog in enumerate(BACKLOGS):
        fleet.backlog = backlog
        on_demand_before = fleet.targets["train-on-demand"]
        record = mig_fallback.reconcile(fleet, ENV, now=T0 + timedelta(minutes=minute))
        needed = min(5, math.ceil(backlog / 3))
        assert record["queue"]["desired"] == needed, minute
        assert fleet.running() <= 5, minute
        assert sum(fleet.targets.values()) <= 5, minute
        if spot_capacity >= 5:
            assert fleet.targets == {"train-spot": needed, "train-on-demand": 0}, minute
        else:
            # a raise covers only what the queue needs beyond the one spot node; a drain waits
            # for spot to stay (spotStableMinutes), and on-demand never exceeds the queue's need
            if fleet.targets["train-on-demand"] > on_demand_before:
                assert fleet.targets["train-on-demand"] <= max(0, needed - 1), minute
            assert fleet.targets["train-on-demand"] <= needed, minute
        if backlog == 0:
            assert fleet.targets == {"train-spot": 0, "train-on-demand": 0}, minute
    if spot_capacity == 1:
        assert fleet.state["queue_desired"] == 0


def test_the_base_stays_and_works_the_queue() -> None:
    fleet = Fleet(spot_capacity=10)
    fleet.targets["train-on-demand"] = 1
    env = {**ENV, "ON_DEMAND_BASE": "1"}
    for backlog, spot in ((0, 0), (3, 0), (6, 1), (0, 0)):
        fleet.backlog = backlog
        mig_fallback.reconcile(fleet, env, now=T0)
        assert fleet.targets == {"train-spot": spot, "train-on-demand": 1}, backlog


def test_an_unknown_backlog_keeps_the_last_size_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fleet = Fleet(spot_capacity=10)
    fleet.backlog = 7
    mig_fallback.reconcile(fleet, ENV, now=T0)
    assert fleet.targets["train-spot"] == 3
    fleet.backlog = None  # Monitoring has no point
    record = mig_fallback.reconcile(fleet, ENV, now=T0 + timedelta(minutes=1))
    assert fleet.targets["train-spot"] == 3  # neither zero nor FLEET_DESIRED
    assert record["queue"]["jobs"] is None
    assert record["queue"]["reason"].startswith("UNKNOWN:")
    assert any("UNKNOWN" in r.message and r.levelname == "WARNING" for r in caplog.records)


def test_the_backlog_read_is_one_monitoring_call_the_role_allows() -> None:
    calls: list[str] = []

    def opener(request: Any) -> Any:
        if request.full_url.startswith("http://metadata.google.internal"):
            return io.BytesIO(b'{"access_token": "tok"}')
        calls.append(request.full_url)
        points = [{"value": {"int64Value": "12"}}, {"value": {"int64Value": "30"}}]  # newest first
        return io.BytesIO(json.dumps({"timeSeries": [{"points": points}]}).encode())

    api = mig_fallback.GcpApi("finops-test", "us-central1", opener=opener)
    assert api.undelivered_messages("train-jobs", T0) == 12
    (url,) = calls
    base, query = url.split("?", 1)
    # projects.timeSeries.list, which needs monitoring.timeSeries.list (Monitoring API IAM)
    assert base == "https://monitoring.googleapis.com/v3/projects/finops-test/timeSeries"
    assert "monitoring.timeSeries.list" in METRIC_PERMISSIONS
    params = dict(urllib.parse.parse_qsl(query))
    assert params["filter"] == (
        f'metric.type = "{BACKLOG}" AND resource.labels.subscription_id = "train-jobs"'
    )
    assert params["interval.endTime"] == "2026-12-01T09:00:00Z"
    assert params["interval.startTime"] == "2026-12-01T08:50:00Z"

    def empty(request: Any) -> Any:
        if request.full_url.startswith("http://metadata.google.internal"):
            return io.BytesIO(b'{"access_token": "tok"}')
        return io.BytesIO(b"{}")

    assert mig_fallback.GcpApi("p", "r", opener=empty).undelivered_messages("x", T0) is None
