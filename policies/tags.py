"""`required-tags`: the tag schema's keys and values on every resource that can carry tags."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from aifinops import tags as schema
from aifinops.policies.context import Context
from aifinops.policies.model import INFERENCE, LAUNCH_TEMPLATE, TRAINING, Finding, Resource
from aifinops.policies.normalize.wire import UNKNOWN_TAG_VALUE

NAME = "required-tags"


def _noun(cloud: str | None) -> str:
    return "labels" if cloud == "gcp" else "tags"


@lru_cache(maxsize=4096)
def _check(
    cloud: str,
    workload: bool,
    present: tuple[tuple[Any, Any], ...],
    extra: tuple[str, ...],
    allowed: tuple[tuple[str, tuple[str, ...]], ...],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(missing keys, problems) of one set of tags: a pure function of hashable inputs, so the
    many resources of a stack that share their tags are checked once."""
    tags = {str(k): str(v) for k, v in present}
    missing = schema.missing_keys(tags, cloud, workload)
    missing += [
        key
        for key in extra
        if key not in missing and not str(tags.get(schema.spell_key(key, cloud)) or "").strip()
    ]
    problems = []
    if missing:
        spelled = ", ".join(schema.spell_key(key, cloud) for key in missing)
        problems.append(f"missing {spelled}")
    readable = {k: v for k, v in tags.items() if v != UNKNOWN_TAG_VALUE}
    problems += schema.invalid_values(readable, cloud)
    for key, values in allowed:
        value = readable.get(schema.spell_key(key, cloud))
        if value is not None and str(value) not in values:
            problems.append(f"{key}={value!r} is not one of {', '.join(values)}")
    return tuple(missing), tuple(problems)


_SETTINGS: dict[int, tuple[Mapping[str, Any], tuple[Any, ...]]] = {}


def _frozen_settings(config: Mapping[str, Any]) -> tuple[Any, ...]:
    """(extra keys, allowed values) of a policy config, hashable; kept per config object (one
    per `evaluate` call), so the many resources of a stack do not rebuild them."""
    cached = _SETTINGS.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    allowed = config.get("allowedValues") or {}
    frozen = (
        tuple(config.get("extraRequiredKeys") or ()),
        tuple(sorted((str(k), tuple(str(a) for a in v)) for k, v in allowed.items())),
    )
    if len(_SETTINGS) > 64:
        _SETTINGS.clear()
    _SETTINGS[id(config)] = (config, frozen)
    return frozen


def _checked(
    present: Mapping[str, str], resource: Resource, config: Mapping[str, Any]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(missing keys, problems) of `present` on `resource` (see `_check`)."""
    extra, allowed = _frozen_settings(config)
    items = tuple(present.items())
    try:
        hash(items)
    except TypeError:
        items = tuple((str(k), str(v)) for k, v in items)
    return _check(
        resource.cloud or "aws", resource.workload in (TRAINING, INFERENCE), items, extra, allowed
    )


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
    missing, problems = _checked(resource.tags, resource, config)
    unread = [
        k
        for k in missing
        if resource.tag_key_prefixes is None
        or any(schema.spell_key(k, cloud).startswith(p) for p in resource.tag_key_prefixes)
    ]
    if not resource.tags_complete and unread:
        absent = ", ".join(schema.spell_key(k, cloud) for k in unread)
        reason = resource.unknown_reasons.get("tags")
        where = f"{reason}, which cannot be read" if reason else "what cannot be read yet"
        message = f"{noun}: {absent} not found; they may come from {where}"
        return [Finding(NAME, resource.name, message, resource.urn, True)]
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
            launched_problems = _checked(launched[kind], resource, config)[1]
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
