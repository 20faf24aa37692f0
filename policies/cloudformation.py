"""Read CloudFormation templates (YAML or JSON) as a stack created from their defaults would be:
parameters at their `Default`, `Conditions` evaluated, intrinsic functions resolved where the
template alone decides them (`Ref` to a parameter, `Fn::Sub`, `Fn::If`, `Fn::FindInMap`,
`Fn::Join`, `Fn::Select`, `Fn::Split`), everything else (`Fn::GetAtt`, `Fn::ImportValue`,
pseudo parameters such as `AWS::Region`, a parameter without `Default`) UNKNOWN.

A resource whose `Condition` is false is not created: it is listed in `skipped`. YAML needs
ruamel.yaml (the project's virtualenv); JSON templates need only the standard library.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aifinops.policies.values import UNKNOWN

_NO_VALUE: Any = object()
_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{name: f"Fn::{name}" for name in (
        "Base64", "Cidr", "FindInMap", "GetAtt", "GetAZs", "ImportValue", "Join", "Select",
        "Split", "Sub", "Transform", "And", "Equals", "If", "Not", "Or", "ToJsonString",
        "Length", "ForEach",
    )},
}  # fmt: skip


class TemplateError(ValueError):
    """Not a CloudFormation template, or not valid YAML/JSON: `file:line: message`."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass
class TemplateResource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    file: str
    line: int
    created: bool | None = True
    created_source: str = ""
    references: list[str] = field(default_factory=list)
    unknown_sources: dict[str, str] = field(default_factory=dict)


@dataclass
class TemplateResult:
    resources: list[TemplateResource] = field(default_factory=list)
    skipped: list[tuple[str, str, int, str]] = field(default_factory=list)
    """(logical id, file, line, reason)."""


def looks_like_template(path: str) -> bool:
    """A YAML/JSON file with `AWSTemplateFormatVersion` or `Resources` of `AWS::` types."""
    if not path.endswith((".yaml", ".yml", ".json", ".template")):
        return False
    try:
        head = Path(path).read_text(encoding="utf-8", errors="replace")[:200_000]
    except OSError:
        return False
    return "AWSTemplateFormatVersion" in head or ("Resources" in head and "AWS::" in head)


def _load(path: str) -> tuple[dict[str, Any], dict[str, int]]:
    """(template, logical id -> line)."""
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        try:
            template = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TemplateError(path, exc.lineno, exc.msg) from None
        lines = {}
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            for logical_id in template.get("Resources") or {}:
                if stripped.startswith(f'"{logical_id}"') and logical_id not in lines:
                    lines[logical_id] = number
        return template, lines
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    yaml = YAML(typ="rt")
    try:
        loaded = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise TemplateError(path, (mark.line + 1) if mark else 0, str(exc.problem)) from None
    resources = loaded.get("Resources") if isinstance(loaded, Mapping) else None
    lines = {}
    if resources is not None and hasattr(resources, "lc"):
        for logical_id in resources:
            lines[str(logical_id)] = resources.lc.key(logical_id)[0] + 1
    return _plain(loaded), lines


def _plain(node: Any) -> Any:
    """ruamel's round-trip nodes -> dicts/lists, short-form intrinsics (`!Ref x`) -> long form."""
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(tag, str) and tag.startswith("!") and tag[1:] in _SHORT_TAGS:
        name = _SHORT_TAGS[tag[1:]]
        if isinstance(node, Mapping):
            inner: Any = {str(k): _plain(v) for k, v in node.items()}
        elif isinstance(node, list):
            inner = [_plain(v) for v in node]
        else:
            inner = str(node.value) if hasattr(node, "value") else str(node)
            if name == "Fn::GetAtt":
                inner = inner.split(".", 1)
        return {name: inner}
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if hasattr(node, "value") and not isinstance(node, str | int | float | bool):
        return node.value
    return node


class _Context:
    def __init__(self, template: Mapping[str, Any]) -> None:
        self.parameters = {
            name: _parameter_default(spec)
            for name, spec in (template.get("Parameters") or {}).items()
        }
        self.mappings = template.get("Mappings") or {}
        self.condition_specs = template.get("Conditions") or {}
        self.conditions: dict[str, Any] = {}
        self.resources = set((template.get("Resources") or {}).keys())
        self.references: set[str] = set()

    def condition(self, name: str) -> Any:
        if name not in self.conditions:
            self.conditions[name] = UNKNOWN  # cycle guard
            spec = self.condition_specs.get(name)
            self.conditions[name] = UNKNOWN if spec is None else _truth(resolve(spec, self))
        return self.conditions[name]


def _parameter_default(spec: Any) -> Any:
    if not isinstance(spec, Mapping) or "Default" not in spec:
        return UNKNOWN
    value = spec["Default"]
    kind = str(spec.get("Type", "String"))
    if kind == "Number":
        try:
            return float(value) if "." in str(value) else int(value)
        except (TypeError, ValueError):
            return value
    if kind == "CommaDelimitedList" or kind.startswith("List<"):
        return [v.strip() for v in str(value).split(",")] if value != "" else []
    if kind.startswith("AWS::SSM::Parameter::Value"):
        return UNKNOWN  # the default names an SSM parameter; its value is read at deploy time
    return value


def _truth(value: Any) -> Any:
    if value is UNKNOWN:
        return UNKNOWN
    if isinstance(value, bool):
        return value
    return str(value).lower() == "true"


def _equal(a: Any, b: Any) -> Any:
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    return str(a) == str(b)


def resolve(value: Any, ctx: _Context) -> Any:
    """A property value with intrinsic functions resolved (UNKNOWN where they cannot be)."""
    if isinstance(value, list):
        resolved = [resolve(v, ctx) for v in value]
        return [v for v in resolved if v is not _NO_VALUE]
    if not isinstance(value, Mapping):
        return value
    if len(value) == 1:
        ((name, arg),) = value.items()
        function = _FUNCTIONS.get(str(name))
        if function is not None:
            return function(arg, ctx)
        if str(name).startswith("Fn::"):
            return UNKNOWN
    out = {}
    for key, item in value.items():
        resolved = resolve(item, ctx)
        if resolved is not _NO_VALUE:
            out[str(key)] = resolved
    return out


def _ref(arg: Any, ctx: _Context) -> Any:
    name = str(arg)
    if name == "AWS::NoValue":
        return _NO_VALUE
    if name in ctx.parameters:
        return ctx.parameters[name]
    if name in ctx.resources:
        ctx.references.add(name)
    return UNKNOWN  # a resource's id, or a pseudo parameter (AWS::Region, AWS::AccountId...)


def _get_att(arg: Any, ctx: _Context) -> Any:
    target = arg[0] if isinstance(arg, list) and arg else str(arg).split(".", 1)[0]
    if str(target) in ctx.resources:
        ctx.references.add(str(target))
    return UNKNOWN


def _sub(arg: Any, ctx: _Context) -> Any:
    template, variables = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
    if not isinstance(template, str):
        return UNKNOWN
    variables = {k: resolve(v, ctx) for k, v in (variables or {}).items()}
    out, position = [], 0
    while True:
        start = template.find("${", position)
        if start < 0:
            out.append(template[position:])
            break
        out.append(template[position:start])
        end = template.find("}", start)
        if end < 0:
            return UNKNOWN
        name = template[start + 2 : end]
        if name.startswith("!"):
            out.append("${" + name[1:] + "}")
        else:
            value = variables[name] if name in variables else (
                _get_att(name.split("."), ctx) if "." in name else _ref(name, ctx)
            )  # fmt: skip
            if value is UNKNOWN or value is _NO_VALUE or isinstance(value, Mapping | list):
                return UNKNOWN
            out.append(str(value))
        position = end + 1
    return "".join(out)


def _join(arg: Any, ctx: _Context) -> Any:
    if not isinstance(arg, list) or len(arg) != 2:
        return UNKNOWN
    delimiter, items = resolve(arg[0], ctx), resolve(arg[1], ctx)
    if items is UNKNOWN or not isinstance(items, list) or UNKNOWN in items:
        return UNKNOWN
    return str(delimiter).join(str(i) for i in items)


def _select(arg: Any, ctx: _Context) -> Any:
    index, items = resolve(arg[0], ctx), resolve(arg[1], ctx)
    if index is UNKNOWN or not isinstance(items, list):
        return UNKNOWN
    try:
        return items[int(index)]
    except (ValueError, IndexError):
        return UNKNOWN


def _split(arg: Any, ctx: _Context) -> Any:
    delimiter, text = resolve(arg[0], ctx), resolve(arg[1], ctx)
    if not isinstance(text, str):
        return UNKNOWN
    return text.split(str(delimiter))


def _find_in_map(arg: Any, ctx: _Context) -> Any:
    keys = [resolve(k, ctx) for k in arg[:3]] if isinstance(arg, list) else []
    if len(keys) != 3 or UNKNOWN in keys:
        return UNKNOWN
    try:
        return ctx.mappings[str(keys[0])][str(keys[1])][str(keys[2])]
    except (KeyError, TypeError):
        return UNKNOWN


def _if(arg: Any, ctx: _Context) -> Any:
    if not isinstance(arg, list) or len(arg) != 3:
        return UNKNOWN
    truth = ctx.condition(str(arg[0]))
    if truth is UNKNOWN:
        a, b = resolve(arg[1], ctx), resolve(arg[2], ctx)
        return a if a is not UNKNOWN and a == b else UNKNOWN
    return resolve(arg[1] if truth else arg[2], ctx)


def _equals(arg: Any, ctx: _Context) -> Any:
    return _equal(resolve(arg[0], ctx), resolve(arg[1], ctx))


def _not(arg: Any, ctx: _Context) -> Any:
    value = _truth(resolve(arg[0] if isinstance(arg, list) else arg, ctx))
    return UNKNOWN if value is UNKNOWN else not value


def _and(arg: Any, ctx: _Context) -> Any:
    values = [_truth(resolve(a, ctx)) for a in arg]
    if False in values:
        return False
    return UNKNOWN if UNKNOWN in values else True


def _or(arg: Any, ctx: _Context) -> Any:
    values = [_truth(resolve(a, ctx)) for a in arg]
    if True in values:
        return True
    return UNKNOWN if UNKNOWN in values else False


_FUNCTIONS = {
    "Ref": _ref,
    "Fn::GetAtt": _get_att,
    "Fn::Sub": _sub,
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::FindInMap": _find_in_map,
    "Fn::If": _if,
    "Fn::Equals": _equals,
    "Fn::Not": _not,
    "Fn::And": _and,
    "Fn::Or": _or,
    "Condition": lambda arg, ctx: ctx.condition(str(arg)),
}


def _unknown_sources(raw: Any, resolved: Any, path: str, found: dict[str, str]) -> None:
    if resolved is UNKNOWN:
        text = json.dumps(raw, default=str)
        found[path] = (
            f"{path.rsplit('.', 1)[-1]}: {text if len(text) < 120 else text[:117] + '...'}"
        )
        return
    if isinstance(raw, Mapping) and isinstance(resolved, Mapping):
        for key, value in raw.items():
            if key in resolved:
                _unknown_sources(value, resolved[key], f"{path}.{key}".lstrip("."), found)
    elif isinstance(raw, list) and isinstance(resolved, list) and len(raw) == len(resolved):
        for raw_item, item in zip(raw, resolved, strict=True):
            _unknown_sources(raw_item, item, path, found)


def load_template(path: str) -> TemplateResult:
    """Every resource of one template, with its properties resolved. Raises `TemplateError`."""
    template, lines = _load(path)
    if not isinstance(template, Mapping) or not isinstance(template.get("Resources"), Mapping):
        raise TemplateError(path, 1, "no Resources section")
    result = TemplateResult()
    ctx = _Context(template)
    shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    for logical_id, spec in template["Resources"].items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("Type"), str):
            continue
        line = lines.get(str(logical_id), 0)
        created: Any = True
        created_source = ""
        if "Condition" in spec:
            created = ctx.condition(str(spec["Condition"]))
            if created is False:
                result.skipped.append(
                    (str(logical_id), shown, line, f"Condition {spec['Condition']} is false")
                )
                continue
            if created is UNKNOWN:
                created, created_source = None, f"Condition {spec['Condition']}"
        ctx.references = set()
        raw = spec.get("Properties") or {}
        properties = resolve(raw, ctx)
        sources: dict[str, str] = {}
        _unknown_sources(raw, properties, "", sources)
        result.resources.append(
            TemplateResource(
                logical_id=str(logical_id),
                type=str(spec["Type"]),
                properties=properties if isinstance(properties, dict) else {},
                file=shown,
                line=line,
                created=created,
                created_source=created_source,
                references=sorted(ctx.references),
                unknown_sources=sources,
            )
        )
    return result
