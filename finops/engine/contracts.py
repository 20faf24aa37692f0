"""Resource inputs against the provider SDKs' input types: the contract the mock engine lacks.

`pulumi.runtime.Mocks` accepts any property; the provider under `pulumi up` does not. For every
custom resource the engine records, the inputs *after transforms* (what the provider would
receive) are checked recursively against the installed provider SDK:

- the resource's `*Args` class (the one its `_internal_init` builds; `*InitArgs` where the
  SDK renamed it) gives each input's wire name, type and whether it is required (its
  annotation does not admit None), exactly as the SDK's own codegen wrote them from the
  provider schema;
- nested objects are checked against their `*Args` input types the same way, lists and maps
  element by element;
- a key no input type knows is refused with a did-you-mean, a missing required input is
  refused, a value of the wrong kind (a dict where a JSON string goes, a string for a number)
  is refused.

Unknown values (None during a preview) pass: they are the provider's to compute. Types the SDK
leaves open (`Any`, assets, archives, JSON) pass. Kubernetes resources are checked against
pulumi_kubernetes' types like any other; a custom resource of a CRD's group (a `PodMonitoring`)
is checked as far as an SDK can know it: `apiVersion`/`kind` against its token, its
`metadata` as an ObjectMeta (its `spec` belongs to the CRD on the cluster). A type token no installed SDK registers is
itself a problem: a misspelt token fails as surely as a misspelt property.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import json
import math
import sys
import typing
from collections import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pulumi
from pulumi import _types as pulumi_types
from pulumi.runtime import rpc

from aifinops.errors import did_you_mean


@dataclass(frozen=True)
class InputProblem:
    """One input of one resource that its provider would refuse."""

    type: str
    name: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f".{self.path}" if self.path and not self.path.startswith("[") else self.path
        return f"{self.type} {self.name!r}: inputs{where}: {self.message}"


class UnknownResourceType(LookupError):
    """No installed provider SDK registers this type token."""


def _sdk_package(pkg: str) -> str:
    return "pulumi_" + pkg.replace("-", "_")


@functools.cache
def resource_class(type_token: str) -> type:
    """The SDK class of `type_token` (`aws:s3/bucket:Bucket`, `pulumi:providers:aws`)."""
    parts = type_token.split(":")
    if len(parts) != 3:
        raise UnknownResourceType(f"{type_token!r} is not a type token pkg:module:Type")
    pkg, mod, name = parts
    if pkg == "pulumi" and mod == "providers":
        try:
            return typing.cast(
                type[pulumi.Resource], importlib.import_module(_sdk_package(name)).Provider
            )
        except (ImportError, AttributeError):
            raise UnknownResourceType(f"no provider SDK {_sdk_package(name)} installed") from None
    try:
        importlib.import_module(_sdk_package(pkg))  # registers the package's resource modules
    except ImportError:
        raise UnknownResourceType(f"no provider SDK {_sdk_package(pkg)} installed") from None
    module = rpc.get_resource_module(pkg, mod, "")
    info = getattr(module, "mod_info", None) or {}
    class_name = (info.get("classes") or {}).get(type_token)
    if not class_name:
        known = sorted(
            token
            for key, modules in rpc._RESOURCE_MODULES.items()
            if key.startswith(f"{pkg}:")
            for registered in modules
            for token in (getattr(registered, "mod_info", None) or {}).get("classes", {})
        )
        raise UnknownResourceType(
            f"{_sdk_package(pkg)} has no resource {type_token!r}{did_you_mean(type_token, known)}"
        )
    return typing.cast(type, getattr(importlib.import_module(info["fqn"]), class_name))


@functools.cache
def args_class(resource: type) -> type:
    """The `@pulumi.input_type` class whose properties are `resource`'s inputs: the one its
    `_internal_init` builds (`__props__ = BucketArgs.__new__(BucketArgs)`)."""
    module = sys.modules[resource.__module__]
    found = [
        value
        for name in resource._internal_init.__code__.co_names  # type: ignore[attr-defined]
        if name.endswith("Args")
        and inspect.isclass(value := getattr(module, name, None))
        and pulumi_types.is_input_type(value)
    ]
    if len(found) != 1:
        raise UnknownResourceType(
            f"{resource.__qualname__}: no single *Args class in _internal_init"
        )
    return typing.cast(type, found[0])


@functools.cache
def _getters(input_type: type) -> dict[str, Any]:
    """Wire name -> property getter of an input type."""
    return {name: prop.fget for _, name, prop in pulumi_types._py_properties(input_type)}


@functools.cache
def _hint(input_type: type, key: str) -> Any:
    """The type of input `key` of `input_type`, forward references resolved in its module
    (only for the keys a resource uses: resolving every property costs a preview)."""
    hints = typing.get_type_hints(
        _getters(input_type)[key],
        globalns=sys.modules[input_type.__module__].__dict__,
        localns={"Output": pulumi.Output, "T": type(None)},
    )
    return hints.get("return", Any)


def _admits_none(annotation: Any) -> bool:
    if annotation is type(None):
        return True
    return any(_admits_none(arg) for arg in typing.get_args(annotation))


@functools.cache
def _required(input_type: type) -> frozenset[str]:
    """Wire names of the inputs whose annotation does not admit None."""
    return frozenset(
        key
        for key, getter in _getters(input_type).items()
        if not _admits_none(getter.__annotations__.get("return", type(None)))
    )


def _members(hint: Any) -> list[Any]:
    """The kinds of value `hint` admits on the wire: Input[T], Output[T], Optional[T],
    Awaitable[T] and InputType[T] (T or its dict spelling) all come down to T."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        members: list[Any] = []
        for arg in typing.get_args(hint):
            arg_origin = typing.get_origin(arg)
            if arg is type(None) or arg_origin in (abc.Awaitable, typing.Awaitable):
                continue
            if arg_origin is pulumi.Output or arg is pulumi.Output:
                continue
            members.extend(_members(arg))
        if any(pulumi_types.is_input_type(m) for m in members if inspect.isclass(m)):
            # InputType[T]: T or a plain mapping of T's wire names; checked as T
            members = [
                m
                for m in members
                if not (
                    typing.get_origin(m) in (dict, abc.Mapping, typing.Mapping)
                    or typing.is_typeddict(m)
                )
            ]
        return members
    if origin is pulumi.Output:
        return _members(typing.get_args(hint)[0])
    return [hint]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _describe(hint: Any) -> str:
    if inspect.isclass(hint) and pulumi_types.is_input_type(hint):
        return f"an object ({hint.__name__})"
    origin = typing.get_origin(hint)
    if origin in (abc.Sequence, list, typing.Sequence, typing.List):  # noqa: UP006
        return "a list"
    if origin in (abc.Mapping, dict, typing.Mapping, typing.Dict):  # noqa: UP006
        return "a map"
    names = {str: "a string", int: "an integer", float: "a number", bool: "a bool"}
    if hint in names:
        return names[hint]
    return getattr(hint, "__name__", str(hint))


def _check_value(hint: Any, value: Any, path: str) -> list[tuple[str, str]]:
    """Problems (path, message) of `value` against `hint`; [] when any member admits it."""
    if value is None:
        return []  # unknown during a preview, or left to the provider
    members = _members(hint)
    if not members:
        return []
    best: list[tuple[str, str]] | None = None
    for member in members:
        problems = _check_member(member, value, path)
        if not problems:
            return []
        # keep the deepest explanation: a right-kind value with a bad key says more
        if best is None or (problems[0][0] != path and best[0][0] == path):
            best = problems
    if best is not None and len(members) > 1 and all(p[0] == path for p in best):
        expected = " or ".join(dict.fromkeys(_describe(m) for m in members))
        return [(path, f"{_kind(value)} where {expected} goes")]
    return best or []


def _check_member(member: Any, value: Any, path: str) -> list[tuple[str, str]]:
    wrong = [(path, f"{_kind(value)} where {_describe(member)} goes")]
    if member is Any or member is object:
        return []
    if inspect.isclass(member):
        if pulumi_types.is_input_type(member):
            if not isinstance(value, Mapping):
                return wrong
            return _check_object(member, value, path)
        if issubclass(member, Enum):
            allowed = [str(m.value) for m in member]
            if isinstance(value, str) and value not in allowed:
                return [(path, f"{value!r} is not one of {', '.join(allowed)}")]
            return [] if isinstance(value, str | int | float) else wrong
        if member is bool:
            return [] if isinstance(value, bool) else wrong
        if member is int:
            whole = isinstance(value, int) or (
                isinstance(value, float) and math.isfinite(value) and value.is_integer()
            )
            return [] if whole and not isinstance(value, bool) else wrong
        if member is float:
            return [] if isinstance(value, int | float) and not isinstance(value, bool) else wrong
        if member is str:
            return [] if isinstance(value, str) else wrong
        return []  # assets, archives, resources: the SDK serialises them itself
    origin = typing.get_origin(member)
    args = typing.get_args(member)
    if origin in (abc.Sequence, list, typing.Sequence, typing.List) and args:  # noqa: UP006
        if not isinstance(value, list | tuple):
            return wrong
        problems: list[tuple[str, str]] = []
        for index, item in enumerate(value):
            problems += _check_value(args[0], item, f"{path}[{index}]")
        return problems
    if origin in (abc.Mapping, dict, typing.Mapping, typing.Dict) and len(args) == 2:  # noqa: UP006
        if not isinstance(value, Mapping):
            return wrong
        problems = []
        for key, item in value.items():
            problems += _check_value(args[1], item, f"{path}.{key}" if path else str(key))
        return problems
    return []


def _check_object(input_type: type, value: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
    getters = _getters(input_type)
    problems: list[tuple[str, str]] = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key not in getters:
            problems.append(
                (
                    where,
                    f"not an input of {input_type.__name__}{did_you_mean(key, sorted(getters))}",
                )
            )
            continue
        problems += _check_value(_hint(input_type, key), item, where)
    for key in sorted(_required(input_type) - set(value)):
        where = f"{path}.{key}" if path else key
        problems.append((where, f"required by {input_type.__name__} but missing"))
    return problems


def _custom_resource_problems(
    type_token: str, inputs: Mapping[str, Any]
) -> list[tuple[str, str]] | None:
    """A Kubernetes custom resource (`kubernetes:<group>/<version>:<Kind>` of a group the
    pulumi_kubernetes SDK does not type, made with `apiextensions.CustomResource`): its
    `apiVersion` and `kind` must spell the token and its `metadata` is an ObjectMeta; its
    `spec` is typed by the CRD on the cluster, which no SDK holds. None for other tokens."""
    pkg, _, rest = type_token.partition(":")
    api_version, _, kind = rest.partition(":")
    group = api_version.rpartition("/")[0]
    if pkg != "kubernetes" or "." not in group or group.endswith(".k8s.io"):
        return None
    from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

    problems = []
    if inputs.get("apiVersion") != api_version or inputs.get("kind") != kind:
        given = f"{inputs.get('apiVersion')}/{inputs.get('kind')}"
        problems.append(("", f"apiVersion/kind {given} do not spell {api_version}/{kind}"))
    for key in sorted(set(inputs) - {"apiVersion", "kind", "metadata", "spec"}):
        problems.append((key, "not an input of CustomResource (apiVersion, kind, metadata, spec)"))
    metadata = inputs.get("metadata")
    if isinstance(metadata, Mapping):
        problems += _check_object(ObjectMetaArgs, metadata, "metadata")
    return problems


def input_problems(type_token: str, name: str, inputs: Mapping[str, Any]) -> list[InputProblem]:
    """What the provider of `type_token` would refuse in `inputs` (wire names, after
    transforms); a type token no SDK registers is one problem."""
    custom = _custom_resource_problems(type_token, inputs)
    if custom is not None:
        return [InputProblem(type_token, name, path, message) for path, message in custom]
    try:
        input_type = args_class(resource_class(type_token))
    except UnknownResourceType as exc:
        return [InputProblem(type_token, name, "", str(exc))]
    if type_token.startswith("pulumi:providers:"):
        inputs = _provider_inputs(input_type, inputs)
    return [
        InputProblem(type_token, name, path, message)
        for path, message in _check_object(input_type, inputs, "")
    ]


def _provider_inputs(input_type: type, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """A provider's inputs as its schema types them: the SDK sends every provider input that
    is not a string as JSON text (`"true"`, `"{\"tags\": ...}"`)."""
    getters = _getters(input_type)
    decoded = dict(inputs)
    for key, value in inputs.items():
        if (
            isinstance(value, str)
            and key in getters
            and str not in _members(_hint(input_type, key))
        ):
            with contextlib.suppress(json.JSONDecodeError):  # left as text: the check names it
                decoded[key] = json.loads(value)
    return decoded


class ResourceRecord(typing.Protocol):
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any]


def check_resources(resources: Sequence[ResourceRecord]) -> list[InputProblem]:
    """`input_problems` of every custom resource (components have no provider to refuse)."""
    problems: list[InputProblem] = []
    for resource in resources:
        if resource.custom:
            problems += input_problems(resource.type, resource.name, resource.inputs)
    return problems
