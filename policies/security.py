"""`imdsv2-required`: GPU launch templates and instances accept only IMDSv2 tokens.

Stolen instance credentials on a GPU host are spent on GPUs: a cost incident as much as a
security one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aifinops.policies.compute import accelerator_types
from aifinops.policies.context import Context
from aifinops.policies.model import (
    INFERENCE,
    INSTANCE,
    LAUNCH_TEMPLATE,
    TRAINING,
    Finding,
    Resource,
)

NAME = "imdsv2-required"


def imdsv2_required(
    resource: Resource, config: Mapping[str, Any], context: Context
) -> list[Finding]:
    """A GPU launch template or instance (an accelerator type, or part of a training or inference
    component) must set metadata httpTokens to "required"."""
    if resource.cloud != "aws" or resource.kind not in (LAUNCH_TEMPLATE, INSTANCE):
        return []
    accelerated = bool(accelerator_types(resource)) or resource.workload in (TRAINING, INFERENCE)
    if "instance_types" not in resource.unknown and not accelerated:
        return []
    if "http_tokens" in resource.unknown or "instance_types" in resource.unknown:
        reasons = [resource.unknown_reasons[f] for f in ("instance_types", "http_tokens")
                   if f in resource.unknown and f in resource.unknown_reasons]  # fmt: skip
        message = (
            f"instance type or metadata options cannot be read: {'; '.join(reasons)}"
            if reasons
            else "instance type or metadata options unknown until apply"
        )
        return [Finding(NAME, resource.name, message, resource.urn, True)]
    if resource.http_tokens == "required":
        return []
    found = f"is {resource.http_tokens!r}" if resource.http_tokens else "is not set"
    spelled = _SPELLING.get(resource.source, "metadata httpTokens")
    return [
        Finding(
            NAME,
            resource.name,
            f'{spelled} {found}, so IMDSv1 is allowed; set it to "required"',
            resource.urn,
        )
    ]


_SPELLING = {
    "terraform": "metadata_options.http_tokens",
    "cloudformation": "MetadataOptions.HttpTokens",
}
