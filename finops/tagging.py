"""Automatic tagging: a Pulumi stack transform that writes the stack's tags into the inputs of
every taggable resource.

Why inputs and not the provider's `default_tags`: the policy pack and checkov see a resource's
inputs, and `default_tags` reach neither; components also set `default_tags` on AWS providers
for resources created outside them.

The transform sees properties under their wire names (`tags`, `labels`, `tagSpecifications`),
exactly as the Pulumi engine passes them. Keys already on a resource win over the stack's
(a fleet's `ModelVersion` is more specific than the stack's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from aifinops import tags as tag_schema
from aifinops.taggability import tag_property

# Launch-template tag specifications that must carry the tags so they reach what the
# template launches (tags on the template or the ASG alone never reach volumes).
LAUNCH_TEMPLATE_TOKEN = "aws:ec2/launchTemplate:LaunchTemplate"
LAUNCH_TEMPLATE_TAGGED_RESOURCES = ("instance", "volume", "network-interface")


def _merge_map(existing: Any, stack_tags: Mapping[str, str]) -> Any:
    if isinstance(existing, pulumi.Output):
        return existing.apply(lambda value: {**stack_tags, **(value or {})})
    return {**stack_tags, **(existing or {})}


def _merge_list(existing: Any, stack_tags: Mapping[str, str]) -> Any:
    """AWS Auto Scaling group tags: [{key, value, propagateAtLaunch}]."""

    def merge(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        items = list(items or [])
        have = {item.get("key") for item in items}
        items.extend(
            {"key": key, "value": value, "propagateAtLaunch": True}
            for key, value in stack_tags.items()
            if key not in have
        )
        return items

    if isinstance(existing, pulumi.Output):
        return existing.apply(merge)
    return merge(existing)


def _merge_tag_specifications(existing: Any, stack_tags: Mapping[str, str]) -> Any:
    def merge(specs: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        specs = [dict(spec) for spec in (specs or [])]
        present = {spec.get("resourceType") for spec in specs}
        for spec in specs:
            spec["tags"] = _merge_map(spec.get("tags"), stack_tags)
        specs.extend(
            {"resourceType": kind, "tags": dict(stack_tags)}
            for kind in LAUNCH_TEMPLATE_TAGGED_RESOURCES
            if kind not in present
        )
        return specs

    if isinstance(existing, pulumi.Output):
        return existing.apply(merge)
    return merge(existing)


def _merged_at(props: Mapping[str, Any], path: list[str], merge: Any) -> dict[str, Any]:
    """`props` with the value at `path` (wire names, nested objects) replaced by
    `merge(old value)`; missing objects on the way are created (a GKE node pool's
    `nodeConfig.resourceLabels`)."""
    new_props = dict(props)
    head, rest = path[0], path[1:]
    if not rest:
        new_props[head] = merge(props.get(head))
        return new_props
    inner = props.get(head)
    if isinstance(inner, pulumi.Output):
        new_props[head] = inner.apply(lambda value: _merged_at(value or {}, rest, merge))
    else:
        new_props[head] = _merged_at(inner if isinstance(inner, Mapping) else {}, rest, merge)
    return new_props


def apply_tags(
    type_token: str, props: Mapping[str, Any], stack_tags: Mapping[str, str]
) -> dict[str, Any] | None:
    """New props with `stack_tags` (canonical keys) merged in, or None when the type cannot be tagged."""
    where = tag_property(type_token)
    cloud = tag_schema.cloud_of(type_token)
    if where is None or cloud is None:
        return None
    spelled = tag_schema.spell(stack_tags, cloud)
    merge = _merge_list if where.shape == "list" else _merge_map
    new_props = _merged_at(props, where.property.split("."), lambda old: merge(old, spelled))
    if type_token == LAUNCH_TEMPLATE_TOKEN:
        new_props["tagSpecifications"] = _merge_tag_specifications(
            props.get("tagSpecifications"), spelled
        )
    return new_props


def tagging_transform(stack_tags: Mapping[str, str]) -> pulumi.ResourceTransform:
    """A stack transform for `pulumi.runtime.register_resource_transform`."""
    frozen = dict(stack_tags)

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not args.custom:
            return None
        new_props = apply_tags(args.type_, args.props, frozen)
        if new_props is None:
            return None
        return pulumi.ResourceTransformResult(props=new_props, opts=args.opts)

    return transform
