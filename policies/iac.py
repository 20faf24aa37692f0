"""Terraform and CloudFormation paths -> normalised resources, what was not created, and what
could not be read.

- Folders: every Terraform root module under them (`aifinops.policies.terraform.load`) and every
  CloudFormation template (YAML/JSON with `AWS::` resources).
- Files: a `.tf` file (its folder is read as a root module), a CloudFormation template, or a
  Terraform plan (`terraform show -json`, `finops export --format tf-plan`).

Standard library only, except Terraform (python-hcl2, through `aifinops.policies.terraform.hcl`) and
YAML templates (ruamel.yaml, the project's virtualenv).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aifinops.policies import cloudformation
from aifinops.policies.model import TERRAFORM, Resource
from aifinops.policies.normalize.cloudformation import from_template
from aifinops.policies.normalize.terraform import from_loaded, terraform_pulumi_type
from aifinops.policies.normalize.wire import normalize
from aifinops.policies.terraform import load as terraform
from aifinops.policies.values import UNKNOWN

_SKIPPED_DIRECTORIES = terraform.SKIPPED_DIRECTORIES


@dataclass(frozen=True)
class NotCreated:
    """A resource block that creates nothing (`count = 0`, an empty `for_each`, a false
    CloudFormation `Condition`): never judged."""

    address: str
    location: str
    reason: str


@dataclass(frozen=True)
class NotRead:
    """A file or module that could not be read: its resources were not checked."""

    location: str
    message: str
    kind: str
    """"parse-error" or "not-loaded"."""


@dataclass
class Scan:
    resources: list[Resource] = field(default_factory=list)
    not_created: list[NotCreated] = field(default_factory=list)
    not_read: list[NotRead] = field(default_factory=list)
    terraform_roots: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)


def _relative(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _is_plan(path: str) -> bool:
    if not path.endswith(".json"):
        return False
    try:
        head = Path(path).read_text(encoding="utf-8", errors="replace")[:4000]
    except OSError:
        return False
    return '"format_version"' in head and (
        '"planned_values"' in head or '"terraform_version"' in head
    )


def _templates_under(path: str) -> Iterator[str]:
    for directory, subdirectories, names in os.walk(path):
        subdirectories[:] = sorted(
            d for d in subdirectories if d not in _SKIPPED_DIRECTORIES and not d.startswith(".")
        )
        for name in sorted(names):
            full = os.path.join(directory, name)
            if not _is_plan(full) and cloudformation.looks_like_template(full):
                yield full


def scan(paths: Sequence[str]) -> Scan:
    """Read every path; raises nothing for bad input (it is listed in `not_read`)."""
    result = Scan()
    terraform_paths: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            terraform_paths.append(path)
            result.templates += list(_templates_under(path))
        elif _is_plan(path):
            result.plans.append(path)
        elif path.endswith(".tf"):
            terraform_paths.append(path)
        elif cloudformation.looks_like_template(path):
            result.templates.append(path)
        else:
            result.not_read.append(
                NotRead(
                    path,
                    "neither Terraform, a Terraform plan nor a CloudFormation template",
                    "parse-error",
                )
            )
    if terraform_paths:
        _scan_terraform(terraform_paths, result)
    for template in result.templates:
        _scan_template(template, result)
    for plan in result.plans:
        _scan_plan(plan, result)
    return result


def scan_terraform(paths: Sequence[str]) -> Scan:
    """Terraform only (what the checkov adapter needs: no YAML library there)."""
    result = Scan()
    _scan_terraform(list(paths), result)
    return result


def _scan_terraform(paths: list[str], result: Scan) -> None:
    loaded = terraform.load(paths)
    result.terraform_roots = loaded.roots
    by_address: dict[str, list[Any]] = {}
    templates: dict[tuple[str, str], list[Any]] = {}  # (module, literal name) -> templates
    order = {id(item): index for index, item in enumerate(loaded.resources)}
    for item in loaded.resources:
        address = item.address
        by_address.setdefault(address.rsplit("[", 1)[0] if address.endswith("]") else address,
                              []).append(item)  # fmt: skip
        name = item.attributes.get("name")
        if item.type in _TEMPLATE_TYPES and isinstance(name, str):
            templates.setdefault((item.module, name), []).append(item)

    def related_to(item: Any) -> Any:
        def related(addresses: Sequence[str]) -> list[Any]:
            found = [r for a in addresses for r in by_address.get(a, [])]
            # and what those use: a resize request -> its group -> the group's template
            found += [t for r in list(found) for a in r.references for t in by_address.get(a, [])]
            if found:
                return found
            # a template named by its literal name (`instance_template = "train"`)
            mentioned = _strings(item.attributes)
            named = {id(r): r for n in mentioned for r in templates.get((item.module, n), [])}
            named.pop(id(item), None)
            return sorted(named.values(), key=lambda r: order[id(r)])  # as the files list them

        return related

    for item in loaded.resources:
        resource = from_loaded(item, related_to(item))
        if resource is None:
            continue
        result.resources.append(resource)
    result.not_created += [
        NotCreated(s.address, f"{_relative(s.file)}:{s.line}", s.reason) for s in loaded.skipped
    ]
    result.not_read += [
        NotRead(f"{_relative(n.file)}:{n.line}" if n.line else _relative(n.file), n.message, n.kind)
        for n in loaded.notices
    ]


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value, value.rsplit("/", 1)[-1]}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


_TEMPLATE_TYPES = {"aws_launch_template", "google_compute_instance_template",
                   "google_compute_region_instance_template"}  # fmt: skip


def _scan_template(path: str, result: Scan) -> None:
    try:
        loaded = cloudformation.load_template(path)
    except cloudformation.TemplateError as exc:
        result.not_read.append(NotRead(f"{_relative(exc.path)}:{exc.line}", exc.message,
                                       "parse-error"))  # fmt: skip
        return
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        result.not_read.append(NotRead(_relative(path), str(exc), "parse-error"))
        return
    by_id = {r.logical_id: r for r in loaded.resources}
    for item in loaded.resources:
        resource = from_template(item, lambda ids: [by_id[i] for i in ids if i in by_id])
        if resource is None:
            continue
        result.resources.append(resource)
    result.not_created += [
        NotCreated(f"{logical_id}", f"{file}:{line}", reason)
        for logical_id, file, line, reason in loaded.skipped
    ]


def _with_unknowns(values: Any, unknown: Any) -> Any:
    """Plan `values` with every attribute `after_unknown` marks replaced by UNKNOWN."""
    if unknown is True:
        return UNKNOWN
    if isinstance(values, dict):
        keyed = unknown if isinstance(unknown, dict) else {}
        merged = {k: _with_unknowns(v, keyed.get(k)) for k, v in values.items()}
        for key, mark in keyed.items():
            if key not in merged and mark is True:
                merged[key] = UNKNOWN
        return merged
    if isinstance(values, list):
        listed = unknown if isinstance(unknown, list) else []
        return [_with_unknowns(v, listed[i] if i < len(listed) else None)
                for i, v in enumerate(values)]  # fmt: skip
    return values


def _plan_resources(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from module.get("resources") or []
    for child in module.get("child_modules") or []:
        yield from _plan_resources(child)


def _scan_plan(path: str, result: Scan) -> None:
    from aifinops.export.terraform_names import from_terraform
    from aifinops.policies.normalize.terraform import tag_location

    try:
        plan = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        result.not_read.append(NotRead(_relative(path), str(exc), "parse-error"))
        return
    after_unknown = {
        change.get("address"): (change.get("change") or {}).get("after_unknown")
        for change in plan.get("resource_changes") or []
    }
    root = (plan.get("planned_values") or {}).get("root_module") or {}
    for item in _plan_resources(root):
        if item.get("mode", "managed") != "managed":
            continue
        tf_type, address = str(item.get("type")), str(item.get("address"))
        token = terraform_pulumi_type(tf_type)
        if token is None:
            continue
        values = _with_unknowns(item.get("values") or {}, after_unknown.get(address))
        if "tags_all" in values:  # the provider's default_tags included
            values["tags"] = values.pop("tags_all")
        resource = normalize(token, address, from_terraform(tf_type, values), urn=address,
                             tag_location=tag_location(tf_type), source=TERRAFORM)  # fmt: skip
        result.resources.append(replace(resource, type=tf_type, location=_relative(path)))
