"""The offline engine's stack run -> normalised resources -> violations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aifinops.policies import pricing
from aifinops.policies.context import Context, endpoint_traffic
from aifinops.policies.model import FLEET, LAUNCH_TEMPLATE, Resource
from aifinops.policies.normalize.wire import KINDS, normalize
from aifinops.policies.verdicts import Violation, evaluate
from aifinops.tags import cloud_of

if TYPE_CHECKING:
    from aifinops.config import StackConfig
    from aifinops.engine import EngineResource, StackRun

# What a fleet launches: the kinds whose inputs a group's instance types and capacity come from.
TEMPLATE_TOKENS = {token for token, kind in KINDS.items() if kind == LAUNCH_TEMPLATE}


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value, value.rsplit("/", 1)[-1]}
    if isinstance(value, Mapping):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


def related_templates(
    resource: EngineResource, templates: list[EngineResource]
) -> list[tuple[str, Mapping[str, Any]]]:
    """(type, inputs) of the templates `resource` launches (see `_related`)."""
    return [(t.type, t.inputs) for t in related_resources(resource, templates)]


def related_resources(
    resource: EngineResource, templates: list[EngineResource]
) -> list[EngineResource]:
    """Templates `resource` names by id, name or self-link; else its siblings in a component."""
    if not templates or resource.type in TEMPLATE_TOKENS:
        return []
    mentioned = _strings(resource.inputs)
    named = [
        t
        for t in templates
        if {t.id, t.name, str(t.outputs.get("id", "")), str(t.outputs.get("name", "")),
            str(t.outputs.get("selfLink", ""))} & mentioned
    ]  # fmt: skip
    if not named and resource.parent and "pulumi:pulumi:Stack" not in resource.parent:
        named = [t for t in templates if t.parent == resource.parent]
    return named


def resources_of(run: StackRun, config: StackConfig) -> list[Resource]:
    """The run's custom resources, normalised (unpriced). A template that names no instance
    type takes those of the fleets that launch it (EC2 fleets list types in overrides)."""
    custom = run.custom_resources()
    templates = [r for r in custom if r.type in TEMPLATE_TOKENS]
    launched_types: dict[str, list[str]] = {}
    found = []
    for resource in custom:
        cloud = cloud_of(resource.type)
        component = run.component_of(resource)
        found.append(
            normalize(
                resource.type,
                resource.name,
                resource.inputs,
                urn=resource.urn,
                region=config.region(cloud) if cloud else None,
                component=component.type if component is not None else "",
                related=related_templates(resource, templates),
            )
        )
        if found[-1].kind == FLEET:
            for template in related_resources(resource, templates):
                launched_types.setdefault(template.urn, []).extend(found[-1].instance_types)
    return [
        replace(r, instance_types=tuple(dict.fromkeys(launched_types[r.urn])))
        if r.urn in launched_types and not r.instance_types
        else r
        for r in found
    ]


def _costed(resources: list[Resource], costs: Any) -> list[Resource]:
    if costs is None:
        return [pricing.priced(r) for r in resources]
    by_urn = {c.urn: c.monthly_usd for c in costs.resources}
    return [replace(r, monthly_usd=by_urn[r.urn]) if by_urn.get(r.urn) else r for r in resources]


def _cost_report(run: StackRun, config: StackConfig) -> Any:
    try:
        from aifinops import cost
    except ImportError:
        return None
    return cost.estimate(run, config)


def evaluate_run(
    run: StackRun,
    config: StackConfig,
    costs: Any | None = None,
    settings: dict[str, Any] | None = None,
) -> list[Violation]:
    """See `policies.evaluate_stack`."""
    if costs is None:
        costs = _cost_report(run, config)
    tags = config.tags.as_dict()
    context = Context(
        environment=tags.get("Environment", "dev"),
        stack_tags=tags,
        cost_ceiling_usd=config.cost_ceiling_usd,
        endpoint_traffic=endpoint_traffic(
            [e.model_dump(mode="json", by_alias=True) for e in config.inference_endpoints],
            config.regions,
        ),
    )
    return evaluate(_costed(resources_of(run, config), costs), context, settings)
