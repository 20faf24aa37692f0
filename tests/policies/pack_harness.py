"""Drive the CrossGuard pack as the Pulumi engine does, over gRPC.

`aifinops.policies.analyzer.running_pack` starts a tiny fake engine (the Engine service's `Log`, which
the pack calls for diagnostics) and the pack as the engine starts it
(`python -u -m pulumi.policy <engine-address> .` in the pack folder); the tests then build
the protocol's own requests and call `pulumi.runtime.proto`'s `AnalyzerStub` directly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from google.protobuf import struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from aifinops.policies import analyzer

LEVELS = analyzer.LEVELS
LEVEL_NAMES = analyzer.LEVEL_NAMES


def struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(value))
    return message


def urn(type_token: str, name: str, parent_types: tuple[str, ...] = ()) -> str:
    chain = "$".join((*parent_types, type_token))
    return f"urn:pulumi:dev::finops::{chain}::{name}"


@contextmanager
def running_pack(stack_config: Mapping[str, Any]) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """Start a fake engine and the pack (`aifinops.policies.analyzer`); yield the raw Analyzer stub."""
    with analyzer.running_pack(stack_config) as client:
        yield client.stub


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
