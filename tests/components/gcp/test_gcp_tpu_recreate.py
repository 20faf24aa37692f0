"""The recreate controller's function against a fake Cloud TPU v2 API: a preempted node is
deleted, a missing one created again under its id with the component's spec, a healthy one
left; a second pass changes nothing more; one node's failure does not stop the others."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from typing import Any

from aifinops.components.gcp.functions.tpu_recreate import TpuApi, reconcile

PARENT = "https://tpu.googleapis.com/v2/projects/p/locations/us-central1-a"
SPEC = {"acceleratorType": "v5litepod-4", "schedulingConfig": {"spot": True}}


class FakeTpu:
    """Nodes by id -> state; records every call."""

    def __init__(self, nodes: dict[str, str], broken: frozenset[str] = frozenset()) -> None:
        self.nodes = dict(nodes)
        self.broken = broken
        self.calls: list[tuple[str, str, Any]] = []

    def __call__(self, request: urllib.request.Request) -> io.BytesIO:
        url = request.full_url
        if url.startswith("http://metadata.google.internal"):
            assert request.get_header("Metadata-flavor") == "Google"
            return io.BytesIO(json.dumps({"access_token": "t"}).encode())
        assert request.get_header("Authorization") == "Bearer t"
        method = request.get_method()
        body = json.loads(request.data) if request.data else None
        self.calls.append((method, url, body))
        node = url.removeprefix(f"{PARENT}/nodes").lstrip("/").split("?")[0] or url.rsplit("=")[-1]
        if node in self.broken:
            raise urllib.error.URLError("connection reset")
        if method == "GET":
            if node not in self.nodes:
                raise urllib.error.HTTPError(url, 404, "not found", {}, io.BytesIO())  # type: ignore[arg-type]
            return io.BytesIO(json.dumps({"state": self.nodes[node]}).encode())
        if method == "DELETE":
            del self.nodes[node]
            return io.BytesIO(b'{"name": "operations/1"}')
        assert method == "POST" and url.startswith(f"{PARENT}/nodes?nodeId=")
        self.nodes[url.rsplit("=", 1)[1]] = "CREATING"
        return io.BytesIO(b'{"name": "operations/2"}')


def test_preempted_is_deleted_then_created_again_and_a_ready_node_is_kept():
    fake = FakeTpu({"b-0": "READY", "b-1": "PREEMPTED"})
    api = TpuApi("p", "us-central1-a", opener=fake)
    assert reconcile(api, ["b-0", "b-1"], SPEC) == {"b-0": "kept", "b-1": "deleted"}
    assert reconcile(api, ["b-0", "b-1"], SPEC) == {"b-0": "kept", "b-1": "created"}
    (create,) = [call for call in fake.calls if call[0] == "POST"]
    assert create[2] == SPEC
    assert reconcile(api, ["b-0", "b-1"], SPEC) == {"b-0": "kept", "b-1": "kept"}


def test_one_failing_node_does_not_stop_the_others():
    fake = FakeTpu({"b-0": "TERMINATED", "b-1": "READY"}, broken=frozenset({"b-1"}))
    done = reconcile(TpuApi("p", "us-central1-a", opener=fake), ["b-1", "b-0"], SPEC)
    assert done["b-0"] == "deleted" and done["b-1"].startswith("error: ")
