"""`required-tags`: the tag schema's keys and values on every resource that can carry tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from finops import tags as schema
from policies.context import Context
from policies.model import INFERENCE, LAUNCH_TEMPLATE, TRAINING, Finding, Resource
from policies.normalize.wire import UNKNOWN_TAG_VALUE

NAME = "required-tags"


def _noun(cloud: str | None) -> str:
    return "labels" if cloud == "gcp" else "tags"


def _missing(
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
    return missing


def _problems(
    present: Mapping[str, str], resource: Resource, config: Mapping[str, Any]
) -> list[str]:
    cloud = resource.cloud or "aws"
    missing = _missing(present, resource, config)
    problems = []
    if missing:
        spelled = ", ".join(schema.spell_key(key, cloud) for key in missing)
        problems.append(f"missing {spelled}")
    readable = {k: v for k, v in present.items() if v != UNKNOWN_TAG_VALUE}
    problems += schema.invalid_values(readable, cloud)
    for key, allowed in (config.get("allowedValues") or {}).items():
        value = readable.get(schema.spell_key(key, cloud))
        if value is not None and str(value) not in [str(a) for a in allowed]:
            problems.append(f"{key}={value!r} is not one of {', '.join(map(str, allowed))}")
    return problems


def _unknown(resource: Resource, what: str, field_name: str) -> Finding:
    reason = resource.unknown_reasons.get(field_name)
    message = f"{what} cannot be read: {reason}" if reason else f"{what} unknown until apply"
    return Finding(NAME, resource.name, message, resource.urn, True)


def required_tags(resource: Resource, config: Mapping[str, Any], context: Context) -> list[Finding]:
    """Missing or invalid tags (labels on GCP) on a taggable resource; for launch templates, also
    on what the template launches (instances, volumes)."""
    if not resource.taggable:
        return []
    noun = _noun(resource.cloud)
    if "tags" in resource.unknown:
        if "tags" in resource.unknown_reasons:
            return [_unknown(resource, noun, "tags")]
        return [Finding(NAME, resource.name, f"{noun} are unknown until apply", resource.urn, True)]
    messages = []
    cloud = resource.cloud or "aws"
    unread = [
        k
        for k in _missing(resource.tags, resource, config)
        if resource.tag_key_prefixes is None
        or any(schema.spell_key(k, cloud).startswith(p) for p in resource.tag_key_prefixes)
    ]
    if not resource.tags_complete and unread:
        absent = ", ".join(schema.spell_key(k, cloud) for k in unread)
        reason = resource.unknown_reasons.get("tags")
        where = f"{reason}, which cannot be read" if reason else "what cannot be read yet"
        message = f"{noun}: {absent} not found; they may come from {where}"
        return [Finding(NAME, resource.name, message, resource.urn, True)]
    problems = _problems(resource.tags, resource, config)
    if problems:
        messages.append(f"{noun}: " + "; ".join(problems))
    if resource.kind == LAUNCH_TEMPLATE and resource.cloud == "aws":
        if "launch_tags" in resource.unknown:
            what = "tag_specifications" if resource.source != "pulumi" else "tagSpecifications"
            if resource.source == "cloudformation":
                what = "TagSpecifications"
            return [_unknown(resource, what, "launch_tags")]
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
