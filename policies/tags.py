"""`required-tags`: the tag schema's keys and values on every resource that can carry tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from finops import tags as schema
from policies.context import Context
from policies.model import INFERENCE, LAUNCH_TEMPLATE, TRAINING, Finding, Resource

NAME = "required-tags"


def _noun(cloud: str | None) -> str:
    return "labels" if cloud == "gcp" else "tags"


def _problems(
    present: Mapping[str, str], resource: Resource, config: Mapping[str, Any]
) -> list[str]:
    cloud = resource.cloud or "aws"
    workload = resource.workload in (TRAINING, INFERENCE)
    missing = schema.missing_keys(present, cloud, workload)
    missing += [
        key
        for key in config.get("extraRequiredKeys") or []
        if key not in missing and not str(present.get(schema.spell_key(key, cloud)) or "").strip()
    ]
    problems = []
    if missing:
        spelled = ", ".join(schema.spell_key(key, cloud) for key in missing)
        problems.append(f"missing {spelled}")
    problems += schema.invalid_values(present, cloud)
    for key, allowed in (config.get("allowedValues") or {}).items():
        value = present.get(schema.spell_key(key, cloud))
        if value is not None and str(value) not in [str(a) for a in allowed]:
            problems.append(f"{key}={value!r} is not one of {', '.join(map(str, allowed))}")
    return problems


def required_tags(resource: Resource, config: Mapping[str, Any], context: Context) -> list[Finding]:
    """Missing or invalid tags (labels on GCP) on a taggable resource; for launch templates, also
    on what the template launches (instances, volumes)."""
    if not resource.taggable:
        return []
    noun = _noun(resource.cloud)
    if "tags" in resource.unknown:
        return [Finding(NAME, resource.name, f"{noun} are unknown until apply", resource.urn, True)]
    messages = []
    problems = _problems(resource.tags, resource, config)
    if problems:
        messages.append(f"{noun}: " + "; ".join(problems))
    if resource.kind == LAUNCH_TEMPLATE and resource.cloud == "aws":
        if "launch_tags" in resource.unknown:
            return [
                Finding(
                    NAME,
                    resource.name,
                    "tagSpecifications are unknown until apply",
                    resource.urn,
                    True,
                )
            ]
        launched = resource.launch_tags or {}
        for kind in config.get("launchedResourceTypes") or []:
            if kind not in launched:
                messages.append(f"tags do not reach launched {kind}s (no tag specification)")
                continue
            launched_problems = _problems(launched[kind], resource, config)
            if launched_problems:
                messages.append(f"launched {kind}s: " + "; ".join(launched_problems))
    if not messages:
        return []
    return [Finding(NAME, resource.name, "; ".join(messages), resource.urn)]


def remediated_tags(
    existing: Mapping[str, Any] | None, stack_tags: Mapping[str, str], cloud: str
) -> dict[str, str]:
    """Existing tags with the stack's tags (spelled for `cloud`) added; existing keys win."""
    return {**schema.spell(stack_tags, cloud), **dict(existing or {})}
