"""checkov's Terraform resource conf (HCL or plan) -> `Resource`.

checkov hands every attribute wrapped in a list (`{"instance_type": ["p5.48xlarge"]}`) and
nested blocks as lists of such dicts; unresolved references stay strings with `${...}`. The
conf is unwrapped, renamed to Pulumi wire names (`finops.export.terraform_names`) and read
by the wire normaliser, so Terraform and Pulumi resources meet the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from finops.export.terraform_names import from_terraform, pulumi_type
from finops.taggability import known_type
from policies.model import Resource
from policies.normalize.wire import UNKNOWN, normalize


def unwrap(value: Any) -> Any:
    """checkov conf -> plain values: one-element wrappers dropped, `__x__` keys dropped,
    unresolved `${...}` references -> UNKNOWN."""
    if isinstance(value, list):
        if len(value) == 1 and not isinstance(value[0], Mapping):
            return unwrap(value[0])
        return [unwrap(item) for item in value]
    if isinstance(value, Mapping):
        return {
            str(k): unwrap(v)
            for k, v in value.items()
            if not (str(k).startswith("__") and str(k).endswith("__"))
        }
    if isinstance(value, str) and "${" in value:
        return UNKNOWN
    return value


def normalize_terraform(
    tf_type: str, conf: Mapping[str, Any], name: str | None = None
) -> Resource | None:
    """The `Resource` for one Terraform resource, or None for a type with no Pulumi counterpart
    known to the taggability registry (nothing to say about it)."""
    token = pulumi_type(tf_type, known_type)
    if token is None:
        return None
    address = conf.get("__address__") or name or tf_type
    inputs = from_terraform(tf_type, unwrap(conf))
    return normalize(token, str(address), inputs, urn=str(address))
