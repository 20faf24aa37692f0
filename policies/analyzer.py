"""The engine's side of the Analyzer protocol: start a policy pack and ask it about resources.

`finops check`, the bench and the tests drive the CrossGuard pack exactly as the Pulumi engine
does: a small Engine server (the pack logs through `Log`) listens locally; the pack starts as
`python -u -m pulumi.policy <engine-address> <pack-dir>` and prints its port; `Configure`,
`Analyze` (one resource) and `AnalyzeStack` (all of them) go over gRPC.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc

PACK_DIR = Path(__file__).resolve().parent
LEVELS = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "remediate": analyzer_pb2.REMEDIATE,
    "disabled": analyzer_pb2.DISABLED,
}
LEVEL_NAMES = {value: name for name, value in LEVELS.items()}


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    level: str
    message: str
    """As the pack reports it: the policy's description, a newline, the rule's message."""
    urn: str


class _Engine(engine_pb2_grpc.EngineServicer):
    def __init__(self) -> None:
        self.logs: list[str] = []

    def Log(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.logs.append(request.message)
        return empty_pb2.Empty()


def to_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(json.loads(json.dumps(dict(value), default=str)))
    return message


class PackClient:
    """A started pack: `configure`, `analyze`, `analyze_stack`."""

    def __init__(self, stub: analyzer_pb2_grpc.AnalyzerStub, engine: _Engine):
        self.stub = stub
        self.engine = engine

    def info(self) -> Any:
        return self.stub.GetAnalyzerInfo(empty_pb2.Empty())

    def configure(self, settings: Mapping[str, Mapping[str, Any]]) -> None:
        """settings: policy -> {"enforcementLevel": ..., thresholds...} (aifinops.policies.settings.resolve)."""
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, config in settings.items():
            properties = {k: v for k, v in config.items() if k != "enforcementLevel"}
            request.policyConfig[name].CopyFrom(
                analyzer_pb2.PolicyConfig(
                    enforcementLevel=LEVELS[config.get("enforcementLevel", "advisory")],
                    properties=to_struct(properties),
                )
            )
        self.stub.Configure(request)

    def analyze(
        self, type_token: str, name: str, urn: str, inputs: Mapping[str, Any]
    ) -> list[Diagnostic]:
        response = self.stub.Analyze(
            analyzer_pb2.AnalyzeRequest(
                type=type_token, name=name, urn=urn, properties=to_struct(inputs)
            )
        )
        return [_diagnostic(d, urn) for d in response.diagnostics]

    def analyze_stack(
        self, resources: Sequence[Any], dependencies: Mapping[str, list[str]]
    ) -> list[Diagnostic]:
        """resources: objects with `type`, `name`, `urn`, `inputs`, `parent`;
        dependencies: urn -> urns it depends on."""
        request = analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type=r.type,
                    name=r.name,
                    urn=r.urn,
                    parent=r.parent or "",
                    properties=to_struct(r.inputs),
                    dependencies=dependencies.get(r.urn, []),
                )
                for r in resources
            ]
        )
        return [_diagnostic(d, "") for d in self.stub.AnalyzeStack(request).diagnostics]


def _diagnostic(message: Any, urn: str) -> Diagnostic:
    return Diagnostic(
        message.policyName,
        LEVEL_NAMES[message.enforcementLevel],
        message.message,
        message.urn or urn,
    )


def pulumi_config_env(raw_config: Mapping[str, Any]) -> str:
    """A stack file's `config:` as the engine passes it to plugins (PULUMI_CONFIG, JSON strings)."""
    return json.dumps(
        {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in raw_config.items()
            if not (isinstance(value, dict) and "secure" in value)
        }
    )


@contextmanager
def running_pack(raw_config: Mapping[str, Any], pack_dir: Path = PACK_DIR) -> Iterator[PackClient]:
    """Start an engine stub and the pack; yield a client; stop both."""
    engine_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine = _Engine()
    engine_pb2_grpc.add_EngineServicer_to_server(engine, engine_server)
    engine_port = engine_server.add_insecure_port("127.0.0.1:0")
    engine_server.start()
    env = {**os.environ, "PULUMI_CONFIG": pulumi_config_env(raw_config)}
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", f"127.0.0.1:{engine_port}", "."],
        cwd=pack_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    channel = None
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            process.kill()
            _, err = process.communicate(timeout=10)
            raise RuntimeError(f"the policy pack in {pack_dir} did not start: {err[-2000:]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield PackClient(analyzer_pb2_grpc.AnalyzerStub(channel), engine)
    finally:
        if channel is not None:
            channel.close()
        process.kill()
        process.communicate(timeout=10)
        engine_server.stop(0)
