"""Instance metadata and interruption notices against small fake metadata servers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from aifinops.agents.config import MetadataSection
from aifinops.agents.metadata import (
    AwsMetadata,
    AzureMetadata,
    GcpMetadata,
    StaticMetadata,
    resolve_host,
)

Route = Callable[[BaseHTTPRequestHandler], tuple[int, str]]


@pytest.fixture
def server() -> Iterator[Callable[[Route], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(route: Route) -> str:
        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                status, body = route(self)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_aws_imdsv2_host_spot_notice_and_rebalance(server) -> None:
    state: dict[str, Any] = {"action": None, "rebalance": None, "tokens": 0}

    def route(req: BaseHTTPRequestHandler) -> tuple[int, str]:
        if req.command == "PUT":
            assert req.path == "/latest/api/token"
            assert req.headers["X-aws-ec2-metadata-token-ttl-seconds"] == "21600"
            state["tokens"] += 1
            return 200, "tok"
        if req.headers.get("X-aws-ec2-metadata-token") != "tok":
            return 401, ""
        values = {
            "/latest/meta-data/instance-id": "i-0abc",
            "/latest/meta-data/instance-type": "g6e.xlarge",
            "/latest/meta-data/placement/region": "eu-west-1",
            "/latest/meta-data/instance-life-cycle": "spot",
        }
        if req.path == "/latest/meta-data/spot/instance-action" and state["action"]:
            return 200, json.dumps(state["action"])
        if req.path == "/latest/meta-data/events/recommendations/rebalance" and state["rebalance"]:
            return 200, json.dumps(state["rebalance"])
        return (200, values[req.path]) if req.path in values else (404, "")

    client = AwsMetadata(MetadataSection(provider="aws", endpoint=server(route)))
    host = client.host_info()
    assert (host.instance_id, host.instance_type, host.region, host.lifecycle, host.cloud) == (
        "i-0abc",
        "g6e.xlarge",
        "eu-west-1",
        "spot",
        "aws",
    )
    assert client.poll() == []
    state["rebalance"] = {"noticeTime": "2026-11-28T16:00:00Z"}
    state["action"] = {"action": "stop", "time": "2026-11-28T16:02:00Z"}
    notices = {n.kind: n for n in client.poll()}
    assert notices["interruption"].action == "stop"
    assert notices["interruption"].time == "2026-11-28T16:02:00Z"
    assert notices["interruption"].key == "aws:i-0abc:stop:2026-11-28T16:02:00Z"
    assert notices["rebalance"].action == "rebalance"
    assert state["tokens"] == 1  # one session token, reused


def test_gcp_preemption_and_host(server) -> None:
    state = {"preempted": "FALSE"}

    def route(req: BaseHTTPRequestHandler) -> tuple[int, str]:
        if req.headers.get("Metadata-Flavor") != "Google":
            return 403, ""
        values = {
            "/instance/id": "4242",
            "/instance/machine-type": "projects/1/machineTypes/a3-highgpu-8g",
            "/instance/zone": "projects/1/zones/us-central1-a",
            "/instance/scheduling/preemptible": "FALSE",
            "/instance/scheduling/provisioning-model": "SPOT",
            "/instance/preempted": state["preempted"],
        }
        return (200, values[req.path]) if req.path in values else (404, "")

    client = GcpMetadata(MetadataSection(provider="gcp", endpoint=server(route)))
    host = client.host_info()
    assert (host.instance_id, host.instance_type, host.region, host.lifecycle) == (
        "4242",
        "a3-highgpu-8g",
        "us-central1",
        "spot",
    )
    assert client.poll() == []
    state["preempted"] = "TRUE"
    [notice] = client.poll()
    assert (notice.kind, notice.action, notice.deadline_seconds) == (
        "interruption",
        "preempt",
        30.0,
    )
    assert notice.key.startswith("gcp:4242:preempt:")


def test_azure_scheduled_events_preempt_for_this_vm_only(server) -> None:
    events: list[dict[str, Any]] = []

    def route(req: BaseHTTPRequestHandler) -> tuple[int, str]:
        if req.headers.get("Metadata") != "true":
            return 400, ""
        if req.path.startswith("/metadata/instance/compute"):
            return 200, json.dumps(
                {
                    "vmId": "vm-1",
                    "vmSize": "Standard_ND96isr_H100_v5",
                    "location": "eastus",
                    "priority": "Spot",
                    "name": "train-0",
                }
            )
        if req.path.startswith("/metadata/scheduledevents"):
            return 200, json.dumps({"DocumentIncarnation": len(events), "Events": events})
        return 404, ""

    client = AzureMetadata(MetadataSection(provider="azure", endpoint=server(route)))
    host = client.host_info()
    assert (host.instance_id, host.instance_type, host.region, host.lifecycle) == (
        "vm-1",
        "Standard_ND96isr_H100_v5",
        "eastus",
        "spot",
    )
    assert client.poll() == []
    events.append(
        {
            "EventId": "E1",
            "EventType": "Preempt",
            "Resources": ["train-1"],
            "NotBefore": "Sat, 28 Nov 2026 16:00:30 GMT",
        }
    )  # another VM
    events.append(
        {
            "EventId": "E2",
            "EventType": "Reboot",
            "Resources": ["train-0"],
            "NotBefore": "Sat, 28 Nov 2026 16:00:30 GMT",
        }
    )  # not a preemption
    assert client.poll() == []
    events.append(
        {
            "EventId": "E3",
            "EventType": "Preempt",
            "Resources": ["train-0"],
            "NotBefore": "Sat, 28 Nov 2026 16:00:30 GMT",
        }
    )
    [notice] = client.poll()
    assert (notice.action, notice.time, notice.key) == (
        "preempt",
        "2026-11-28T16:00:30Z",
        "azure:E3",
    )


def test_unreachable_metadata_is_unknown_not_a_crash() -> None:
    section = MetadataSection(provider="aws", endpoint="http://127.0.0.1:9", timeout_seconds=0.2)
    client = AwsMetadata(section)
    assert client.host_info().instance_id == "unknown"
    assert client.poll() == []
    fallback = MetadataSection(
        provider="aws",
        endpoint="http://127.0.0.1:9",
        timeout_seconds=0.2,
        instance_id="i-from-config",
        lifecycle="on-demand",
    )
    host = resolve_host(AwsMetadata(fallback), fallback, "h", {"team": "ml"})
    assert (host.instance_id, host.lifecycle, host.tags) == (
        "i-from-config",
        "on-demand",
        {"team": "ml"},
    )


def test_static_provider_uses_the_config() -> None:
    section = MetadataSection(
        instance_id="i-1", instance_type="p4d.24xlarge", region="us-west-2", lifecycle="spot"
    )
    client = StaticMetadata(section)
    host = client.host_info()
    assert (host.instance_id, host.instance_type, host.region, host.lifecycle, host.cloud) == (
        "i-1",
        "p4d.24xlarge",
        "us-west-2",
        "spot",
        "none",
    )
    assert client.poll() == []
