"""The component provider host driven as the Pulumi engine drives it, over gRPC.

`pulumi package add ./components` makes the Python language host run
`python <plugin dir> <engine address>` (sdk/python/cmd/pulumi-language-python, RunPlugin): the
plugin prints its port, and the engine calls `GetSchema`, then `Construct` with the program's
inputs as a protobuf `Struct` (every number a float) and the address of its resource monitor,
where the component registers itself and its children.

`HostedComponents` does exactly that with the real plugin in a subprocess. It serves, in this
process, an engine (logs) and a resource monitor backed by the offline engine's mocks and
fixtures, and records every registration as an `EngineResource`, so the children of a hosted
component can be held to the same contracts as a program's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import (
    engine_pb2,
    engine_pb2_grpc,
    provider_pb2,
    provider_pb2_grpc,
    resource_pb2,
    resource_pb2_grpc,
)

from aifinops.engine import EngineResource, OfflineMocks, _plain

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = ROOT / "components"
PROJECT = "finops"
STACK = "hosted"
# What the monitor offers: no resource references (the plugin then sends URNs, which this
# process can record without constructing resources) and no output values (plain inputs).
FEATURES = [
    resource_pb2.RESOURCE_MONITOR_FEATURE_SECRETS,
    resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS,
    resource_pb2.RESOURCE_MONITOR_FEATURE_DELETED_WITH,
]


class _Monitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor with fixed project and stack, recording every registration."""

    def __init__(self, mocks: OfflineMocks) -> None:
        super().__init__(mocks)
        self.records: list[EngineResource] = []
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        parent_type = parent.split("::")[2] if parent else ""
        qualified = f"{parent_type}${type_}" if parent_type else type_
        return f"urn:pulumi:{STACK}::{PROJECT}::{qualified}::{name}"

    def RegisterResource(self, request: resource_pb2.RegisterResourceRequest) -> Any:
        response = super().RegisterResource(request)
        pulumi_mocks._ensure_event_loop()
        record = EngineResource(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=bool(request.custom),
            inputs=_plain(rpc.deserialize_properties(request.object, keep_unknowns=True)),
            id=response.id,
        )
        with self._lock:
            self.records.append(record)
        return response


class _MonitorServicer(resource_pb2_grpc.ResourceMonitorServicer):
    def __init__(self, monitor: _Monitor) -> None:
        self.monitor = monitor

    def GetDeploymentInfo(self, request: Any, context: Any) -> Any:
        return resource_pb2.DeploymentInfo(supportedFeatures=FEATURES)

    def SupportsFeature(self, request: Any, context: Any) -> Any:
        known = {"secrets", "aliasSpecs", "deletedWith"}
        return resource_pb2.SupportsFeatureResponse(hasSupport=request.id in known)

    def RegisterResource(self, request: Any, context: Any) -> Any:
        return self.monitor.RegisterResource(request)

    def RegisterResourceOutputs(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()

    def Invoke(self, request: Any, context: Any) -> Any:
        try:
            return self.monitor.Invoke(request)
        except Exception as exc:  # the plugin sees the engine's error text
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))

    def RegisterPackage(self, request: Any, context: Any) -> Any:
        return resource_pb2.RegisterPackageResponse(
            ref=f"{request.name}-{zlib.crc32(request.version.encode()):08x}"
        )

    def SignalAndWaitForShutdown(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()


class _EngineServicer(engine_pb2_grpc.EngineServicer):
    def __init__(self) -> None:
        self.messages: list[tuple[int, str]] = []

    def Log(self, request: Any, context: Any) -> Any:
        self.messages.append((request.severity, request.message))
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any, context: Any) -> Any:
        return engine_pb2.GetRootResourceResponse(urn="")

    def SetRootResource(self, request: Any, context: Any) -> Any:
        return engine_pb2.SetRootResourceResponse()


def wire_inputs(inputs: Mapping[str, Any]) -> struct_pb2.Struct:
    """Inputs as the engine sends them: a `Struct`, where every number is a double."""
    struct = struct_pb2.Struct()
    struct.update(json.loads(json.dumps(inputs)))
    return struct


class HostedComponents:
    """The real plugin (`python components/ <engine>`) with an offline engine around it."""

    def __init__(self, regions: Mapping[str, str]) -> None:
        self.monitor = _Monitor(OfflineMocks(regions))
        self.engine = _EngineServicer()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        resource_pb2_grpc.add_ResourceMonitorServicer_to_server(
            _MonitorServicer(self.monitor), self.server
        )
        engine_pb2_grpc.add_EngineServicer_to_server(self.engine, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        self.server.start()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 closed by close()
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(PLUGIN_DIR), self.address],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=str(PLUGIN_DIR),
            env=env,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.close()
            raise RuntimeError(f"the component plugin did not start: {line!r} {self.log()}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        self.provider = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def schema(self) -> dict[str, Any]:
        reply = self.provider.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
        return dict(json.loads(reply.schema))

    def construct(
        self,
        type_token: str,
        name: str,
        inputs: Mapping[str, Any],
        config: Mapping[str, str] | None = None,
    ) -> tuple[provider_pb2.ConstructResponse, list[EngineResource]]:
        """`Construct` as the engine calls it during a preview; returns the reply and what the
        component registered."""
        self.monitor.records.clear()
        request = provider_pb2.ConstructRequest(
            project=PROJECT,
            stack=STACK,
            config=dict(config or {}),
            dryRun=True,
            parallel=4,
            monitorEndpoint=self.address,
            type=type_token,
            name=name,
            inputs=wire_inputs(inputs),
        )
        reply = self.provider.Construct(request, timeout=120)
        return reply, list(self.monitor.records)

    def log(self) -> str:
        """What the plugin wrote on stderr so far."""
        self.stderr.seek(0)
        return self.stderr.read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr.close()
        self.server.stop(grace=None)
