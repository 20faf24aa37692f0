"""Spot fallback controller for one GCP `GpuTrainingFleet`, run as a Cloud Function every minute.

The fleet is two regional MIGs on one machine type: the *spot group* (SPOT template) and the
*on-demand group* (STANDARD template) holding `on_demand_base` nodes. The decision is the AWS
fleet's, unchanged: `decide` in components/aws/lambdas/fallback_controller.py, a pure function
of what is observed (shipped beside this file as `fallback_decision.py`). This module only
observes the MIGs and applies the decision, through the Compute Engine REST API:

- D (fleet desired) and M (fleet max) are the fleet's `node_count` and `node_count_max`
  minus `on_demand_base`, from the environment (Pulumi rewrites them on `pulumi up`);
- S: spot VMs RUNNING (`listManagedInstances`); PROVISIONING and STAGING ones are pending
  (a VM the MIG cannot create for lack of capacity has no status);
- the on-demand group's target size above its base, its VMs running and those being deleted
  (currentAction DELETING or status STOPPING: their shutdown script is checkpointing);
- `shortfall_since` and `spot_history` (since when 1, 2... spot VMs have been running without
  a break): the controller's only state, a JSON object in the checkpoint bucket
  (`finops-controller/<fleet>.json`), since MIGs carry no labels.

Queue-depth scaling (`SUBSCRIPTION_ID` set): D is what the subscription's backlog needs,
`queue_desired` (the AWS controller's) of the newest `num_undelivered_messages` point
(Cloud Monitoring API, last 10 minutes), with the on-demand base counted among its nodes.
When Monitoring has no point, the queue is UNKNOWN: the record says so, a warning is logged
and the last size decided from the queue is kept (stored beside the shortfall clock; before
any, the on-demand base): an unreadable backlog moves the fleet neither up nor down.

As on AWS, spot counts as back only once it has stayed for `SPOT_STABLE_MINUTES`, and the
on-demand group is lowered one VM at a time, the next only when the previous has gone: each
deleted VM runs its shutdown script, which gives the job its checkpoint signal
(components/gcp/training_fleet.py).

The decision's on-demand count is applied on top of the base; sizes are lowered before they
are raised. Running it twice changes nothing the second time. Standard library only: the
token comes from the metadata server of the function's runtime.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

try:  # in the deployed function, the decision module ships beside this file
    from fallback_decision import (
        DEFAULT_STABLE_MINUTES,
        Decision,
        FleetState,
        QueueDemand,
        decide,
        format_history,
        moving_target_clock,
        parse_history,
        queue_desired,
    )
except ImportError:  # in this repository
    from aifinops.components.aws.lambdas.fallback_controller import (
        DEFAULT_STABLE_MINUTES,
        Decision,
        FleetState,
        QueueDemand,
        decide,
        format_history,
        moving_target_clock,
        parse_history,
        queue_desired,
    )

COMPUTE = "https://compute.googleapis.com/compute/v1"
STORAGE = "https://storage.googleapis.com/storage/v1"
UPLOAD = "https://storage.googleapis.com/upload/storage/v1"
TOKEN_URL = (
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
)
EXISTING = frozenset({"PROVISIONING", "STAGING", "RUNNING"})
MONITORING = "https://monitoring.googleapis.com/v3"
BACKLOG_METRIC = "pubsub.googleapis.com/subscription/num_undelivered_messages"
BACKLOG_WINDOW = timedelta(minutes=10)
PENDING = frozenset({"PROVISIONING", "STAGING"})

logger = logging.getLogger("finops.gcp_fallback_controller")
logger.setLevel(logging.INFO)

Opener = Callable[[urllib.request.Request], Any]


def _open(request: urllib.request.Request) -> Any:
    return urllib.request.urlopen(request, timeout=20)


class GcpApi:
    """The few Compute Engine and Cloud Storage calls the controller makes."""

    def __init__(self, project: str, region: str, opener: Opener = _open) -> None:
        self.project = project
        self.region = region
        self._opener = opener
        self._token: str | None = None

    def _bearer(self) -> str:
        if self._token is None:
            request = urllib.request.Request(TOKEN_URL, headers={"Metadata-Flavor": "Google"})
            with self._opener(request) as response:
                self._token = str(json.loads(response.read())["access_token"])
        return self._token

    def _call(self, method: str, url: str, body: bytes | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self._bearer()}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        with self._opener(request) as response:
            payload = response.read()
        return json.loads(payload) if payload else {}

    def _group_url(self, group: str) -> str:
        return (
            f"{COMPUTE}/projects/{self.project}/regions/{self.region}/instanceGroupManagers/"
            f"{urllib.parse.quote(group)}"
        )

    def target_size(self, group: str) -> int:
        return int(self._call("GET", self._group_url(group)).get("targetSize", 0))

    def instance_counts(self, group: str) -> dict[str, int]:
        """Managed instances by phase: running, pending (provisioning, staging) and leaving
        (being deleted or stopping)."""
        counts = {"running": 0, "pending": 0, "leaving": 0}
        token = ""
        while True:
            query = f"?pageToken={urllib.parse.quote(token)}" if token else ""
            page = self._call("POST", f"{self._group_url(group)}/listManagedInstances{query}")
            for instance in page.get("managedInstances", []):
                status = instance.get("instanceStatus")
                if instance.get("currentAction") == "DELETING" or status in ("STOPPING",):
                    counts["leaving"] += 1
                elif status == "RUNNING":
                    counts["running"] += 1
                elif status in PENDING:
                    counts["pending"] += 1
            token = page.get("nextPageToken", "")
            if not token:
                return counts

    def existing_instances(self, group: str) -> int:
        """Managed instances whose VM exists and stays (provisioning, staging or running)."""
        counts = self.instance_counts(group)
        return counts["running"] + counts["pending"]

    def undelivered_messages(self, subscription_id: str, now: datetime) -> int | None:
        """The subscription's newest backlog point of the last 10 minutes; None when Cloud
        Monitoring has none."""

        def stamp(moment: datetime) -> str:
            return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        query = urllib.parse.urlencode(
            {
                "filter": f'metric.type = "{BACKLOG_METRIC}" AND '
                f'resource.labels.subscription_id = "{subscription_id}"',
                "interval.startTime": stamp(now - BACKLOG_WINDOW),
                "interval.endTime": stamp(now),
                "view": "FULL",
            }
        )
        page = self._call("GET", f"{MONITORING}/projects/{self.project}/timeSeries?{query}")
        points = [s["points"][0] for s in page.get("timeSeries", []) if s.get("points")]
        if not points:
            return None
        # newest point first (the API returns points in reverse time order)
        return sum(int(p["value"].get("int64Value", 0)) for p in points)

    def resize(self, group: str, size: int) -> None:
        self._call("POST", f"{self._group_url(group)}/resize?size={size}")

    def read_state(self, bucket: str, name: str) -> dict[str, Any]:
        url = f"{STORAGE}/b/{bucket}/o/{urllib.parse.quote(name, safe='')}?alt=media"
        try:
            data = self._call("GET", url)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return {}
            raise
        return data if isinstance(data, dict) else {}

    def write_state(self, bucket: str, name: str, state: Mapping[str, Any]) -> None:
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        self._call("POST", f"{UPLOAD}/b/{bucket}/o?{query}", json.dumps(state).encode())


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def observe(
    api: GcpApi,
    spot_group: str,
    on_demand_group: str,
    *,
    fleet_desired: int,
    fleet_max: int,
    on_demand_base: int,
    state: Mapping[str, Any],
) -> FleetState:
    """The fleet as `decide` sees it: counts above the on-demand base."""
    spot = api.instance_counts(spot_group)
    on_demand = api.instance_counts(on_demand_group)
    return FleetState(
        fleet_desired=fleet_desired - on_demand_base,
        fleet_max=fleet_max - on_demand_base,
        spot_desired=api.target_size(spot_group),
        spot_in_service=spot["running"],
        on_demand_desired=max(0, api.target_size(on_demand_group) - on_demand_base),
        shortfall_since=_parse_time(state.get("shortfall_since")),
        budget_enforced=bool(state.get("budget_enforced")),
        spot_pending=spot["pending"],
        spot_history=parse_history(str(state.get("spot_history") or "")),
        on_demand_running=max(0, on_demand["running"] + on_demand["pending"] - on_demand_base),
        on_demand_terminating=on_demand["leaving"],
    )


def apply(
    api: GcpApi,
    spot_group: str,
    on_demand_group: str,
    on_demand_base: int,
    state: FleetState,
    decision: Decision,
) -> list[str]:
    """Resize what differs, lowering before raising; returns the changes made."""
    base = 0 if state.budget_enforced else on_demand_base
    steps = [
        (
            on_demand_group,
            state.on_demand_desired + on_demand_base,
            decision.on_demand_desired + base,
        ),
        (spot_group, state.spot_desired, decision.spot_desired),
    ]
    steps.sort(key=lambda step: step[2] - step[1])
    changes = []
    for group, current, target in steps:
        if current != target:
            api.resize(group, target)
            changes.append(f"{group}: target size {current} -> {target}")
    return changes


def reconcile(
    api: GcpApi,
    env: Mapping[str, str],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Observe, decide, apply, remember the shortfall clock; returns the logged record."""
    spot_group, on_demand_group = env["SPOT_GROUP"], env["ON_DEMAND_GROUP"]
    bucket, state_object = env["STATE_BUCKET"], env["STATE_OBJECT"]
    base = int(env.get("ON_DEMAND_BASE", "0"))
    now = now or datetime.now(UTC)
    stored = api.read_state(bucket, state_object)
    fleet_desired, queue = int(env["FLEET_DESIRED"]), None
    if env.get("SUBSCRIPTION_ID"):
        fleet_desired, queue = queue_fleet_desired(api, env, stored, base, now)
    observed = observe(
        api,
        spot_group,
        on_demand_group,
        fleet_desired=fleet_desired,
        fleet_max=int(env["FLEET_MAX"]),
        on_demand_base=base,
        state=stored,
    )
    if queue is not None:  # D moves with the queue
        observed = moving_target_clock(observed)
    fallback_after = timedelta(minutes=float(env.get("FALLBACK_AFTER_MINUTES", "10")))
    stable_for = timedelta(
        minutes=float(env.get("SPOT_STABLE_MINUTES", str(DEFAULT_STABLE_MINUTES)))
    )
    decision = decide(observed, now, fallback_after, stable_for)
    changes = apply(api, spot_group, on_demand_group, base, observed, decision)
    updated = dict(stored)
    if decision.shortfall_since != observed.shortfall_since:
        since = decision.shortfall_since.isoformat() if decision.shortfall_since else None
        updated["shortfall_since"] = since
        changes.append(f"shortfall clock {'started' if since else 'cleared'}")
    if decision.spot_history != observed.spot_history:
        updated["spot_history"] = format_history(decision.spot_history)
        changes.append(f"spot running since {updated['spot_history'] or '-'}")
    if queue is not None:
        updated["queue_desired"] = fleet_desired
    if updated != stored:
        api.write_state(bucket, state_object, updated)
    record = {
        "controller": "finops-gcp-spot-fallback",
        "spot_group": spot_group,
        "on_demand_group": on_demand_group,
        "queue": queue,
        "observed": asdict(observed),
        "decision": asdict(decision),
        "changes": changes,
    }
    logger.info(json.dumps(record, default=str))
    return record


def queue_fleet_desired(
    api: GcpApi, env: Mapping[str, str], stored: Mapping[str, Any], base: int, now: datetime
) -> tuple[int, dict[str, Any]]:
    """The fleet's desired size from the subscription's backlog, and what the record says of
    it. An UNKNOWN backlog keeps the last size decided from the queue."""
    subscription = env["SUBSCRIPTION_ID"]
    jobs = api.undelivered_messages(subscription, now)
    if jobs is None:
        kept = int(stored.get("queue_desired", base))
        reason = (
            f"UNKNOWN: Cloud Monitoring has no {BACKLOG_METRIC} point for {subscription} in "
            f"the last {BACKLOG_WINDOW}; fleet size kept at {kept}"
        )
        logger.warning(reason)
        return kept, {"subscription": subscription, "jobs": None, "reason": reason}
    demand = QueueDemand(
        jobs=jobs,
        jobs_per_node=int(env["JOBS_PER_NODE"]),
        # the on-demand base runs whatever the queue holds, and works on it too
        nodes_min=max(int(env.get("NODES_MIN", "0")), base),
    )
    desired = queue_desired(demand, int(env["FLEET_MAX"]))
    return desired, {"subscription": subscription, **asdict(demand), "desired": desired}


def reconcile_http(request: object) -> tuple[str, int]:
    """Cloud Functions (HTTP) entry point, called by Cloud Scheduler; the body is ignored."""
    api = GcpApi(os.environ["PROJECT"], os.environ["REGION"])
    record = reconcile(api, os.environ)
    return json.dumps(record, default=str), 200
