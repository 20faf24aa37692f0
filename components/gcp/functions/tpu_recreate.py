"""Recreate preempted Spot TPU VMs of one `TpuBatchInference`, run as a Cloud Function every
minute.

A preempted Spot TPU VM stays in state PREEMPTED: it cannot be restarted, only deleted and
created again (Cloud TPU "Spot VMs"; queued resources go SUSPENDED and are not refilled
either). For each node the component created, this function reads the node through the
Cloud TPU v2 REST API and:

- PREEMPTED or TERMINATED: deletes it (a long-running operation);
- missing (404): creates it again under the same node id with the spec the component gave
  (`NODE_SPEC`: accelerator type, runtime version, network, service account, spot, labels,
  metadata), so the next `pulumi up` finds the node it expects;
- any other state (READY, CREATING, DELETING...): leaves it.

A node is deleted in one run and created in a later one: running it twice changes nothing
the second time. Standard library only: the token comes from the runtime's metadata server.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

TPU = "https://tpu.googleapis.com/v2"
TOKEN_URL = (
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
)
GONE = frozenset({"PREEMPTED", "TERMINATED"})

logger = logging.getLogger("finops.tpu_recreate")
logger.setLevel(logging.INFO)

Opener = Callable[[urllib.request.Request], Any]


def _open(request: urllib.request.Request) -> Any:
    return urllib.request.urlopen(request, timeout=20)


class TpuApi:
    """The three Cloud TPU calls the controller makes."""

    def __init__(self, project: str, zone: str, opener: Opener = _open) -> None:
        self.parent = f"projects/{project}/locations/{zone}"
        self.opener = opener
        self._token: str | None = None

    def _call(self, method: str, url: str, body: Mapping[str, Any] | None = None) -> Any:
        if self._token is None:
            request = urllib.request.Request(TOKEN_URL, headers={"Metadata-Flavor": "Google"})
            with self.opener(request) as reply:
                self._token = json.loads(reply.read())["access_token"]
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        with self.opener(request) as reply:
            return json.loads(reply.read() or b"{}")

    def state(self, node_id: str) -> str | None:
        """The node's state, or None when it does not exist."""
        try:
            node = self._call("GET", f"{TPU}/{self.parent}/nodes/{node_id}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return str(node.get("state", ""))

    def delete(self, node_id: str) -> None:
        self._call("DELETE", f"{TPU}/{self.parent}/nodes/{node_id}")

    def create(self, node_id: str, spec: Mapping[str, Any]) -> None:
        query = urllib.parse.urlencode({"nodeId": node_id})
        self._call("POST", f"{TPU}/{self.parent}/nodes?{query}", spec)


def reconcile(api: TpuApi, node_ids: list[str], spec: Mapping[str, Any]) -> dict[str, str]:
    """One pass over the nodes; returns node id -> what was done (`kept`, `deleted`,
    `created`) or why nothing could be (`error: ...`, the others still handled)."""
    done: dict[str, str] = {}
    for node_id in node_ids:
        try:
            state = api.state(node_id)
            if state is None:
                api.create(node_id, spec)
                done[node_id] = "created"
            elif state in GONE:
                api.delete(node_id)
                done[node_id] = "deleted"
            else:
                done[node_id] = "kept"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            done[node_id] = f"error: {exc}"
        logger.info("tpu node %s: %s", node_id, done[node_id])
    return done


def reconcile_http(request: Any) -> tuple[str, int]:
    """The Cloud Function's entry point (the scheduler's POST)."""
    api = TpuApi(os.environ["PROJECT"], os.environ["ZONE"])
    done = reconcile(api, json.loads(os.environ["NODES"]), json.loads(os.environ["NODE_SPEC"]))
    failed = any(value.startswith("error") for value in done.values())
    return json.dumps(done), 500 if failed else 200
