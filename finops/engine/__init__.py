"""The offline engine: run a Pulumi program for a stack with no cloud and no Pulumi CLI.

It runs the program through the Pulumi SDK with `pulumi.runtime.Mocks` and stands in for the
parts of the engine the SDK's mock monitor leaves out:

- Resource transforms are applied as the engine's resource monitor applies them
  (pkg/resource/deploy/source_eval.go, `RegisterResource`): first the transforms declared on the
  resource, then those of each parent walking up to the stack, then every stack transform
  registered before the resource, in registration order. Each transform is called through the
  program's own callback server over gRPC with a `TransformRequest`, so it receives wire-named
  properties exactly as under `pulumi up`.
- Data-source calls are answered from `aifinops.engine.fixtures`; an unknown one is an error.

Every resource is recorded (type token, name, parent, inputs after transforms, options) for the
cost model, the policies and the tests. Runs are deterministic.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os

# gRPC core logs an INFO line on stderr when the program's callback server shuts down under
# the engine's open channel (GOAWAY); that is the normal end of a run, not news for a user.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
import runpy
import sys
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import callback_pb2, callback_pb2_grpc, resource_pb2

from aifinops.engine import contracts, fixtures, lean_imports
from aifinops.errors import FinopsError

PROJECT_NAME = "finops"
# The Pulumi SDK raises on `str(output)` when this is set (pulumi/output.py, Output.__str__)
STRICT_OUTPUT_STRING = "PULUMI_ERROR_OUTPUT_STRING"


class EngineError(FinopsError):
    """The program failed under the offline engine (the message names the resource or invoke)."""


@dataclass
class EngineResource:
    """One registered resource as the engine saw it, after transforms."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    @property
    def parent_name(self) -> str:
        return self.parent.rsplit("::", 1)[-1] if self.parent else ""


@dataclass
class StackRun:
    """What one program run produced."""

    project: str
    stack: str
    resources: list[EngineResource]
    invokes: list[str]
    exports: dict[str, Any]
    messages: list[tuple[str, str]] = field(default_factory=list)
    """(level, text) the program logged through `pulumi.log` (info, warning, error)."""

    def by_urn(self) -> dict[str, EngineResource]:
        return {r.urn: r for r in self.resources}

    def custom_resources(self) -> list[EngineResource]:
        return [r for r in self.resources if r.custom]

    def of_type(self, type_token: str) -> list[EngineResource]:
        return [r for r in self.resources if r.type == type_token]

    _components: dict[str, EngineResource | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def component_of(self, resource: EngineResource) -> EngineResource | None:
        """The nearest enclosing component resource (not the stack). Every resource's is
        found in one pass, at the first call: a finished run's resources do not change, and
        pricing, usage and the policies ask for each of them."""
        if self._components is None:
            urns = self.by_urn()
            self._components = {r.urn: self._enclosing(r, urns) for r in self.resources}
        if resource.urn in self._components:
            return self._components[resource.urn]
        return self._enclosing(resource, self.by_urn())

    @staticmethod
    def _enclosing(
        resource: EngineResource, urns: Mapping[str, EngineResource]
    ) -> EngineResource | None:
        parent = urns.get(resource.parent)
        while parent is not None and parent.custom:
            parent = urns.get(parent.parent)
        return parent


def _plain(value: Any) -> Any:
    """Deserialized property values -> JSON-able plain data (unknowns become None; assets
    and archives as `{"asset": kind, ...}` with their path, text or members)."""
    if isinstance(value, pulumi.FileAsset | pulumi.FileArchive):
        return {"asset": type(value).__name__, "path": str(value.path)}
    if isinstance(value, pulumi.StringAsset):
        return {"asset": "StringAsset", "text": value.text}
    if isinstance(value, pulumi.AssetArchive):
        return {"asset": "AssetArchive", "assets": {k: _plain(v) for k, v in value.assets.items()}}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, pulumi.output.Unknown):
        return None
    return str(value)


class OfflineMocks(pulumi.runtime.Mocks):
    """Deterministic ids and provider-computed outputs; invokes from `fixtures.INVOKES`."""

    def __init__(self, regions: Mapping[str, str]):
        self.regions = dict(regions)
        self.invokes: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if not args.custom:
            return None, {}
        suffix = f"{zlib.crc32(f'{args.typ}::{args.name}'.encode()):08x}"[:7]
        resource_id = f"{args.name}-{suffix}"
        state = dict(args.inputs)
        for key, value in fixtures.synthetic_outputs(
            args.typ, args.name, resource_id, self.regions, args.inputs
        ).items():
            state.setdefault(key, value)
        state.setdefault("name", resource_id)
        return resource_id, fixtures.provider_shaped(args.typ, state)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        self.invokes.append(args.token)
        answer = fixtures.INVOKES.get(args.token)
        if answer is None:
            raise EngineError(
                f"the offline engine has no answer for data source {args.token!r}; "
                "add one to finops/engine/fixtures.py"
            )
        return answer(args.args, self.regions), []


class TransformingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor plus the engine's transform semantics and a full resource record."""

    def __init__(self, mocks: OfflineMocks):
        super().__init__(mocks)
        self.records: list[EngineResource] = []
        self._stack_callbacks: list[callback_pb2.Callback] = []
        self._own_callbacks: dict[str, list[callback_pb2.Callback]] = {}
        self._parents: dict[str, str] = {}
        self._stubs: dict[str, callback_pb2_grpc.CallbacksStub] = {}
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine leaves the root stack out of its children's type chain; the mock does not.
        if parent and parent.split("::")[2].split("$")[-1] == "pulumi:pulumi:Stack":
            parent = ""
        return super().make_urn(parent, type_, name)

    # --- transforms -------------------------------------------------------------------------
    def RegisterStackTransform(self, request: callback_pb2.Callback) -> Any:
        with self._lock:
            self._stack_callbacks.append(request)
        return pulumi_mocks.empty_pb2.Empty()

    def _stub(self, target: str) -> callback_pb2_grpc.CallbacksStub:
        with self._lock:
            stub = self._stubs.get(target)
            if stub is None:
                stub = callback_pb2_grpc.CallbacksStub(grpc.insecure_channel(target))
                self._stubs[target] = stub
            return stub

    def _chain(self, request: resource_pb2.RegisterResourceRequest) -> list[callback_pb2.Callback]:
        chain = list(request.transforms)
        with self._lock:
            current = request.parent
            while current:
                chain.extend(self._own_callbacks.get(current, []))
                current = self._parents.get(current, "")
            chain.extend(self._stack_callbacks)
        return chain

    @staticmethod
    def _options_of(
        request: resource_pb2.RegisterResourceRequest,
    ) -> resource_pb2.TransformResourceOptions:
        options = resource_pb2.TransformResourceOptions(
            depends_on=list(request.dependencies),
            ignore_changes=list(request.ignoreChanges),
            replace_on_changes=list(request.replaceOnChanges),
            version=request.version,
            provider=request.provider,
            plugin_download_url=request.pluginDownloadURL,
            additional_secret_outputs=list(request.additionalSecretOutputs),
            deleted_with=request.deletedWith,
        )
        if request.HasField("protect"):
            options.protect = request.protect
        if request.HasField("retainOnDelete"):
            options.retain_on_delete = request.retainOnDelete
        if request.deleteBeforeReplaceDefined:
            options.delete_before_replace = request.deleteBeforeReplace
        for key, value in request.providers.items():
            options.providers[key] = value
        if request.HasField("customTimeouts"):
            options.custom_timeouts.CopyFrom(request.customTimeouts)
        return options

    def _apply_transforms(
        self, request: resource_pb2.RegisterResourceRequest
    ) -> tuple[resource_pb2.RegisterResourceRequest, resource_pb2.TransformResourceOptions]:
        options = self._options_of(request)
        chain = self._chain(request)
        if not chain:
            return request, options
        properties = request.object
        for callback in chain:
            transform_request = resource_pb2.TransformRequest(
                type=request.type,
                name=request.name,
                custom=request.custom,
                parent=request.parent,
                properties=properties,
                options=options,
            )
            try:
                reply = self._stub(callback.target).Invoke(
                    callback_pb2.CallbackInvokeRequest(
                        token=callback.token, request=transform_request.SerializeToString()
                    )
                )
            except grpc.RpcError as exc:
                raise EngineError(
                    f"transform failed on {request.type} {request.name!r}: {exc.details()}"
                ) from None
            response = resource_pb2.TransformResponse.FromString(reply.response)
            properties = response.properties
            if response.HasField("options"):
                options = response.options
        transformed = resource_pb2.RegisterResourceRequest()
        transformed.CopyFrom(request)
        transformed.object.CopyFrom(properties)
        del transformed.transforms[:]
        transformed.ignoreChanges[:] = list(options.ignore_changes)
        transformed.protect = options.protect
        return transformed, options

    def RegisterResource(self, request: resource_pb2.RegisterResourceRequest) -> Any:
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        transformed, options = self._apply_transforms(request)
        response = super().RegisterResource(transformed)
        pulumi_mocks._ensure_event_loop()
        inputs = _plain(rpc.deserialize_properties(transformed.object))
        registration = self.resources.get(response.urn)
        record = EngineResource(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=bool(request.custom),
            inputs=inputs,
            outputs=_plain(registration.state) if registration else {},
            options=json_format.MessageToDict(options, preserving_proto_field_name=False),
            id=response.id,
        )
        with self._lock:
            self._parents[response.urn] = request.parent
            self._own_callbacks[response.urn] = list(request.transforms)
            self.records.append(record)
        return response


def _config_strings(raw_config: Mapping[str, Any]) -> dict[str, str]:
    """Stack-file values as the Pulumi CLI hands them to a program: objects as JSON strings."""
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in raw_config.items()
        if not isinstance(value, dict) or "secure" not in value
    }


_RUN_LOCK = threading.Lock()


def _program_line(exc: BaseException) -> str:
    """`file:line` of the innermost frame of `exc` outside the Pulumi SDK and the installed
    packages: the program's line that raised."""
    found = "the program"
    frame = exc.__traceback__
    while frame is not None:
        filename = frame.tb_frame.f_code.co_filename
        if "site-packages" not in filename and not filename.startswith("<"):
            found = f"{filename}:{frame.tb_lineno}"
        frame = frame.tb_next
    return found


def _drop_aliases(
    args: pulumi.ResourceTransformationArgs,
) -> pulumi.ResourceTransformationResult | None:
    if args.opts is None or not args.opts.aliases:
        return None
    opts = args.opts._copy()
    opts.aliases = None
    return pulumi.ResourceTransformationResult(args.props, opts)


def _without_aliases(program: Callable[[], None]) -> None:
    """Run `program` with every resource's aliases dropped before the SDK sees them.

    Aliases only match a resource to its state under an older name or type; an offline run has
    no state, so they cannot change what it creates or costs. They are not free: azure-native
    gives each resource one alias per past API version (about 45), and the SDK turns each into
    a URN through Outputs in `Resource.__init__`. Without them a 200-resource Azure stack
    previews in 1.2 s of CPU instead of 4.2 s and 117 MiB instead of 291 MiB. A (legacy)
    stack transformation is the one hook that runs before `Resource.__init__` reads them.
    """
    pulumi.runtime.register_stack_transformation(_drop_aliases)
    program()


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.messages: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelname.lower(), record.getMessage()))


def run_program(
    program: Callable[[], None] | Path,
    stack: str,
    raw_config: Mapping[str, Any],
    regions: Mapping[str, str] | None = None,
    project: str = PROJECT_NAME,
    check_inputs: bool = True,
) -> StackRun:
    """Run a Pulumi program (a callable, or a directory with `__main__.py`) for `stack`.

    `raw_config` is the stack file's `config:` mapping. With `check_inputs` (the default),
    every custom resource's inputs after transforms are held to its provider SDK's input
    types (`aifinops.engine.contracts`): a property the provider would refuse is an
    `EngineError` naming the resource and the key path, as `pulumi up` would fail. One run at
    a time per process: the Pulumi SDK keeps its settings in process-wide state.
    """
    regions = dict(regions or {})
    if isinstance(program, Path):
        main = program / "__main__.py"
        if not main.exists():
            raise EngineError(f"{main}: Pulumi program not found")

        def body() -> None:
            sys.path.insert(0, str(program))
            try:
                runpy.run_path(str(main), run_name="__main__")
            finally:
                sys.path.remove(str(program))

        run_body: Callable[[], None] = body
    else:
        run_body = program

    lean_imports.install()
    # `str(output)` is a bug the real engine lets through: the SDK logs a warning and the
    # resource receives the text "Calling __str__ on an Output[T] is not supported..." as its
    # input (a GCP fleet's instance templates once got it as their network). The SDK raises
    # instead when PULUMI_ERROR_OUTPUT_STRING is set, so the stand-in sets it for the run and a
    # program that stringifies an Output fails here, at the line that does it.
    strict_outputs = os.environ.get(STRICT_OUTPUT_STRING)
    os.environ[STRICT_OUTPUT_STRING] = "true"
    # A run builds hundreds of thousands of long-lived objects (the provider SDKs' classes, each
    # resource's state) and little cyclic garbage, so the collector's passes over them cost
    # about a third of a preview (three-cloud stack: 5.4 s -> 3.8 s of CPU). It is paused for
    # the run only; peak memory was within 3 % either way at 500 resources.
    collecting = gc.isenabled()
    gc.disable()
    with _RUN_LOCK:
        mocks = OfflineMocks(regions)
        monitor = TransformingMonitor(mocks)
        capture = _Capture()
        logger = logging.getLogger(f"finops.engine.program.{stack}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.handlers = [capture]
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            pulumi.runtime.settings.ROOT.set(None)
            pulumi.runtime.set_all_config(_config_strings(raw_config))
            pulumi_mocks.set_mocks(
                mocks, project=project, stack=stack, preview=True, monitor=monitor, logger=logger
            )
            # set_mocks keeps the process-wide set of output tasks the SDK awaits before a
            # program ends; a run that failed leaves tasks of its closed loop there, and the
            # next run would wait for them forever.
            pulumi.runtime.settings.SETTINGS.outputs = set()
            exports: dict[str, Any] = {}
            loop.run_until_complete(
                pulumi.runtime.stack.run_pulumi_func(lambda: _without_aliases(run_body))
            )
            root = pulumi.runtime.settings.get_root_resource()
            if root is not None and hasattr(root, "outputs"):
                exports = {k: v for k, v in getattr(root, "outputs", {}).items()}
        except FinopsError:
            raise
        except Exception as exc:  # the program's own error, shown as the engine would
            if type(exc).__name__ == "_OutputToStringError":
                raise EngineError(
                    f"the Pulumi program failed for stack {stack!r}: {_program_line(exc)} "
                    "calls str() on an Output: under `pulumi up` the resource would receive "
                    "the text of a warning as its input; pass the Output itself, or build "
                    "the string with .apply()"
                ) from exc
            raise EngineError(f"the Pulumi program failed for stack {stack!r}: {exc}") from exc
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            pulumi.runtime.settings.ROOT.set(None)
            if collecting:
                gc.enable()
            if strict_outputs is None:
                os.environ.pop(STRICT_OUTPUT_STRING, None)
            else:
                os.environ[STRICT_OUTPUT_STRING] = strict_outputs
    if check_inputs:
        problems = contracts.check_resources(monitor.records)
        if problems:
            raise EngineError(
                f"stack {stack!r}: {len(problems)} resource input(s) their providers would "
                "refuse:\n" + "\n".join(f"  {problem}" for problem in problems)
            )
    return StackRun(
        project=project,
        stack=stack,
        resources=monitor.records,
        invokes=mocks.invokes,
        exports=exports,
        messages=capture.messages,
    )
