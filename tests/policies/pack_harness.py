"""Drive the CrossGuard pack as the Pulumi engine does, over gRPC.

A tiny fake engine (the Engine service's `Log`, which the pack calls for diagnostics) listens
on a local port; the pack is started as the engine starts it
(`python -u -m pulumi.policy <engine-address> .` in the pack folder) and prints its own port;
calls go through `pulumi.runtime.proto`'s `AnalyzerStub`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"
LEVELS = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "remediate": analyzer_pb2.REMEDIATE,
    "disabled": analyzer_pb2.DISABLED,
}
LEVEL_NAMES = {value: name for name, value in LEVELS.items()}


class FakeEngine(engine_pb2_grpc.EngineServicer):
    """Records what the pack logs."""

    def __init__(self) -> None:
        self.logs: list[str] = []

    def Log(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.logs.append(request.message)
        return empty_pb2.Empty()


def struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(value))
    return message


def urn(type_token: str, name: str, parent_types: tuple[str, ...] = ()) -> str:
    chain = "$".join((*parent_types, type_token))
    return f"urn:pulumi:dev::finops::{chain}::{name}"


@contextmanager
def running_pack(stack_config: Mapping[str, Any]) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """Start a fake engine and the pack; yield an Analyzer stub; stop both."""
    engine = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    fake = FakeEngine()
    engine_pb2_grpc.add_EngineServicer_to_server(fake, engine)
    engine_port = engine.add_insecure_port("127.0.0.1:0")
    engine.start()
    env = dict(os.environ)
    env["PULUMI_CONFIG"] = json.dumps(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in stack_config.items()}
    )
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", f"127.0.0.1:{engine_port}", "."],
        cwd=PACK_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            process.kill()
            _, err = process.communicate(timeout=10)
            raise RuntimeError(f"policy pack did not start: {line!r}\n{err}")
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.kill()
        process.communicate(timeout=10)
        engine.stop(0)


def configure(
    stub: analyzer_pb2_grpc.AnalyzerStub, levels: Mapping[str, str | tuple[str, Mapping[str, Any]]]
) -> None:
    """Configure every policy: name -> level, or (level, thresholds)."""
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, value in levels.items():
        level, properties = (value, {}) if isinstance(value, str) else value
        request.policyConfig[name].CopyFrom(
            analyzer_pb2.PolicyConfig(enforcementLevel=LEVELS[level], properties=struct(properties))
        )
    stub.Configure(request)


def analyze(
    stub: analyzer_pb2_grpc.AnalyzerStub,
    type_token: str,
    name: str,
    properties: Mapping[str, Any],
    parent_types: tuple[str, ...] = (),
) -> list[tuple[str, str, str]]:
    """(policy, level, message) of every diagnostic for one resource."""
    response = stub.Analyze(
        analyzer_pb2.AnalyzeRequest(
            type=type_token,
            name=name,
            urn=urn(type_token, name, parent_types),
            properties=struct(properties),
        )
    )
    return [
        (d.policyName, LEVEL_NAMES[d.enforcementLevel], d.message) for d in response.diagnostics
    ]


def analyze_stack(
    stub: analyzer_pb2_grpc.AnalyzerStub,
    resources: list[tuple[str, str, Mapping[str, Any], list[str]]],
) -> list[tuple[str, str, str]]:
    """resources: (type, name, properties, dependency names)."""
    urns = {name: urn(type_token, name) for type_token, name, _, _ in resources}
    request = analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                type=type_token,
                name=name,
                urn=urns[name],
                properties=struct(props),
                dependencies=[urns[d] for d in deps],
            )
            for type_token, name, props, deps in resources
        ]
    )
    response = stub.AnalyzeStack(request)
    return [
        (d.policyName, LEVEL_NAMES[d.enforcementLevel], d.message) for d in response.diagnostics
    ]
