"""The CrossGuard adapter: each policy of `aifinops.policies.registry` as a pulumi-policy policy.

- Resource policies normalise one resource's inputs (`aifinops.policies.normalize.wire`) and run the
  rule; stack policies normalise every resource, relate fleets to their templates through the
  engine's dependencies, price them with the cost model and run the stack rule.
- A value unknown during preview never crashes a policy: the rule says what it could not read
  and the pack reports it as the SDK reports unknowns, an advisory diagnostic.
- `required-tags` set to `remediate` adds the stack's `finops:tags` (spelled for the cloud)
  to the resource's tags, and to a launch template's tag specifications.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import proxy as policy_proxy

from aifinops import tagging
from aifinops.config import DEFAULT_REGION, REGION_KEYS
from aifinops.cost import price_resource
from aifinops.policies import pricing
from aifinops.policies import settings as policy_settings
from aifinops.policies.context import Context, endpoint_traffic
from aifinops.policies.model import Finding, Resource
from aifinops.policies.normalize.wire import UNKNOWN, normalize
from aifinops.policies.registry import POLICIES, Policy
from aifinops.policies.stack import TEMPLATE_TOKENS
from aifinops.tags import ENVIRONMENTS, cloud_of

PACK_NAME = "finops"
_SENTINELS = {
    policy_proxy.UNKNOWN_BOOLEAN_VALUE,
    policy_proxy.UNKNOWN_NUMBER_VALUE,
    policy_proxy.UNKNOWN_STRING_VALUE,
    policy_proxy.UNKNOWN_ARRAY_VALUE,
    policy_proxy.UNKNOWN_ASSET_VALUE,
    policy_proxy.UNKNOWN_ARCHIVE_VALUE,
    policy_proxy.UNKNOWN_OBJECT_VALUE,
}
_SEVERITY = {
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}
_LEVEL = {
    policy_settings.ADVISORY: EnforcementLevel.ADVISORY,
    policy_settings.MANDATORY: EnforcementLevel.MANDATORY,
    policy_settings.REMEDIATE: EnforcementLevel.REMEDIATE,
    policy_settings.DISABLED: EnforcementLevel.DISABLED,
}


class PreviewUnknown(policy_proxy.UnknownValueError):
    """A rule could not decide during preview; the SDK reports it as an advisory diagnostic."""

    def __init__(self, message: str):
        super().__init__(policy_proxy.UNKNOWN_STRING_VALUE, [])
        self.message = message


def plain(value: Any) -> Any:
    """Proxied inputs -> plain data, unknown sentinels -> `UNKNOWN` (nothing raises)."""
    if _is_proxy(value):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, str) and value in _SENTINELS:
        return UNKNOWN
    return value


def _is_proxy(value: Any) -> bool:
    return type(value).__name__ in ("_DictProxy", "_ListProxy")


def _stack_config(key: str) -> Any:
    value = pulumi.runtime.get_config(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def stack_tags() -> dict[str, str]:
    """The stack's `finops:tags` (the engine passes stack config to policy packs)."""
    tags = _stack_config("finops:tags")
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def context() -> Context:
    tags = stack_tags()
    environment = tags.get("Environment", "dev")
    ceiling = _stack_config("finops:costCeilingUsd")
    regions = {
        cloud: str(value)
        for cloud, key in REGION_KEYS.items()
        if (value := pulumi.runtime.get_config(key))
    }
    return Context(
        environment=environment if environment in ENVIRONMENTS else "dev",
        stack_tags=tags,
        cost_ceiling_usd=float(ceiling) if ceiling not in (None, "") else None,
        endpoint_traffic=endpoint_traffic(_stack_config("finops:inferenceEndpoints"), regions),
    )


def _region(type_token: str, provider: Any) -> str | None:
    cloud = cloud_of(type_token)
    if cloud is None:
        return None
    if provider is not None:
        props = plain(provider.props)
        for key in ("region", "location"):
            if isinstance(props.get(key), str):
                return str(props[key])
    configured = pulumi.runtime.get_config(REGION_KEYS[cloud])
    return str(configured) if configured else DEFAULT_REGION[cloud]


def _component(urn: str) -> str:
    """The nearest enclosing finops component's type, read from the URN's type chain."""
    parts = urn.split("::")
    chain = parts[2].split("$") if len(parts) > 3 else []
    components = [token for token in chain[:-1] if token.startswith("finops:")]
    return components[-1] if components else ""


def _report(findings: list[Finding], report_violation: ReportViolation) -> None:
    unknown = [f for f in findings if f.unknown]
    for finding in findings:
        if not finding.unknown:
            report_violation(finding.message, finding.urn or None)
    if unknown:
        raise PreviewUnknown("; ".join(f"{f.resource}: {f.message}" for f in unknown))


def _config(policy: Policy, given: Mapping[str, Any]) -> dict[str, Any]:
    return policy_settings.resolve({policy.name: dict(given)})[policy.name]


def _resource_validator(policy: Policy) -> Any:
    rule = policy.resource_rule
    assert rule is not None

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = normalize(
            args.resource_type,
            args.name,
            plain(args.props),
            urn=args.urn,
            region=_region(args.resource_type, args.provider),
            component=_component(args.urn),
        )
        _report(rule(resource, _config(policy, args.get_config()), context()), report_violation)

    return validate


def _remediate_tags(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
    tags = stack_tags()
    if not tags:
        return None
    raw = dict(args.props["__target"]) if _is_proxy(args.props) else dict(args.props)
    for key in ("tags", "labels", "tagSpecifications"):
        if key in raw and isinstance(raw[key], str) and raw[key] in _SENTINELS:
            raise PreviewUnknown(f"{args.name}: {key} unknown until apply, cannot add tags")
    return tagging.apply_tags(args.resource_type, raw, tags)


def _stack_validator(policy: Policy) -> Any:
    rule = policy.stack_rule
    assert rule is not None

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        templates = {
            r.urn: (r.resource_type, plain(r.props))
            for r in args.resources
            if r.resource_type in TEMPLATE_TOKENS
        }
        resources = []
        for r in args.resources:
            depends = {d.urn for d in r.dependencies}
            for deps in r.property_dependencies.values():
                depends |= {d.urn for d in deps}
            related = [templates[urn] for urn in sorted(depends) if urn in templates]
            normalized = normalize(
                r.resource_type,
                r.name,
                plain(r.props),
                urn=r.urn,
                region=_region(r.resource_type, r.provider),
                component=_component(r.urn),
                related=related,
            )
            resources.append(_priced(normalized, r.resource_type, plain(r.props)))
        _report(rule(resources, _config(policy, args.get_config()), context()), report_violation)

    return validate


def _without_unknowns(value: Any) -> Any:
    if value is UNKNOWN:
        return None
    if isinstance(value, Mapping):
        return {k: _without_unknowns(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_unknowns(v) for v in value]
    return value


def _priced(resource: Resource, type_token: str, inputs: Mapping[str, Any]) -> Resource:
    """The resource with the cost model's monthly estimate (as `finops preview` prices it),
    or the catalog estimate of `aifinops.policies.pricing` when the cost model cannot price it."""
    try:
        priced = price_resource(
            type_token, _without_unknowns(inputs), region=resource.region or "us-east-1"
        )
    except Exception:  # the pack must never crash on a resource the cost model cannot read
        priced = None
    if priced is None or not priced.monthly_usd:
        return pricing.priced(resource)
    return replace(resource, monthly_usd=priced.monthly_usd)


def _schema(policy: Policy) -> PolicyConfigSchema:
    properties: dict[str, Any] = {}
    for key, default in policy_settings.DEFAULTS[policy.name].items():
        if key == "enforcementLevel":
            continue
        kind = {bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}
        entry: dict[str, Any] = {"default": default}
        if type(default) in kind:
            entry["type"] = kind[type(default)]
        properties[key] = entry
    return PolicyConfigSchema(properties=properties)


def build_policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """One pulumi-policy policy per registry entry, with its default level and config schema."""
    built: list[ResourceValidationPolicy | StackValidationPolicy] = []
    for policy in POLICIES:
        common: dict[str, Any] = {
            "name": policy.name,
            "description": policy.description,
            "enforcement_level": _LEVEL[policy_settings.DEFAULTS[policy.name]["enforcementLevel"]],
            "config_schema": _schema(policy),
            "severity": _SEVERITY[policy.severity],
            "remediation_steps": policy.remediation,
        }
        if policy.resource_rule is not None:
            remediate = _remediate_tags if policy.name == "required-tags" else None
            built.append(
                ResourceValidationPolicy(
                    validate=_resource_validator(policy),
                    # the SDK accepts a plain mapping too (its annotation says Awaitable)
                    remediate=remediate,  # type: ignore[arg-type]
                    **common,
                )
            )
        else:
            built.append(StackValidationPolicy(validate=_stack_validator(policy), **common))
    return built


def serve() -> None:
    """Start the pack's Analyzer server (prints its port, then serves until stopped)."""
    PolicyPack(
        name=PACK_NAME,
        policies=build_policies(),  # type: ignore[arg-type]
        enforcement_level=EnforcementLevel.ADVISORY,
        description="AI infrastructure cost policies",
    )
