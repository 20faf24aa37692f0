"""The tag schema: which keys every resource carries, and how each cloud spells them.

One fact, one place: the keys and their per-cloud spelling live here; the rules, the
components and the cost report ask this module.

- AWS tags and Azure tags use the keys as given (`Project`, `ModelVersion`).
- GCP labels must be lower case, at most 63 characters of `[a-z0-9_-]`, and keys must start
  with a letter, so `ModelVersion` becomes `model-version` and values are sanitised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REQUIRED_KEYS: tuple[str, ...] = ("Project", "Team", "Environment")
WORKLOAD_KEYS: tuple[str, ...] = ("ModelVersion",)  # training and inference resources
OPTIONAL_KEYS: tuple[str, ...] = ("CostCenter",)
# A training pipeline's step (`prepare`, `train`, `evaluate`...) on the resources it starts:
# `finops gate` prices a pipeline run per stage from billing data by this key.
PIPELINE_KEYS: tuple[str, ...] = ("Stage",)
ALL_KEYS: tuple[str, ...] = REQUIRED_KEYS + WORKLOAD_KEYS + OPTIONAL_KEYS + PIPELINE_KEYS
ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
CLOUDS: tuple[str, ...] = ("aws", "gcp", "azure")

_GCP_MAX = 63
_GCP_INVALID = re.compile(r"[^a-z0-9_-]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def cloud_of(type_token: str) -> str | None:
    """The cloud of a Pulumi type token (`aws:...`, `aws-native:...`, `gcp:...`, `azure-native:...`)."""
    package = type_token.split(":", 1)[0]
    if package in ("aws", "aws-native"):
        return "aws"
    if package in ("gcp", "google-native"):
        return "gcp"
    if package in ("azure-native", "azure"):
        return "azure"
    return None


def gcp_label_key(key: str) -> str:
    """`ModelVersion` -> `model-version`; keys must start with a lower-case letter."""
    spelled = _GCP_INVALID.sub("-", _CAMEL_BOUNDARY.sub("-", key).lower()).strip("-")
    if not spelled or not spelled[0].isalpha():
        spelled = "k-" + spelled
    return spelled[:_GCP_MAX]


def gcp_label_value(value: str) -> str:
    """Lower-case, invalid characters to `-`, at most 63 characters (`v1.2` -> `v1-2`)."""
    return _GCP_INVALID.sub("-", str(value).lower())[:_GCP_MAX]


def spell_key(key: str, cloud: str) -> str:
    """How `key` is written on `cloud`."""
    return gcp_label_key(key) if cloud == "gcp" else key


# How billing exports prefix a resource's own tag keys: AWS writes user-defined cost
# allocation tags as `user:Project` and, in CUR 2.0's `tags` column, `resourceTags/...`
# (docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2-tag-columns.html).
# Provider-generated keys (`aws:createdBy`, Azure's `ms:`) are other tags, not prefixes.
BILLING_TAG_PREFIXES: tuple[str, ...] = ("resourceTags/user:", "resourceTags/", "user:")


def billing_spellings(key: str) -> tuple[str, ...]:
    """How `key` can appear in a billing export's tags, canonical spelling first.

    Compare with `billing_key_form` of the key found: AWS and Azure keep the key as given
    (Azure exports may change its case), GCP labels use `gcp_label_key`.
    """
    spellings = [key, gcp_label_key(key)]
    return tuple(dict.fromkeys(billing_key_form(s) for s in spellings))


def billing_key_form(found: str) -> str:
    """A tag key from a billing export, reduced for matching: the export's prefix for a
    resource's own tags removed, surrounding blanks trimmed, lower case (`' user:Team'` ->
    `team`)."""
    text = found.strip()
    for prefix in BILLING_TAG_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return text.strip().lower()


def spell(tags: Mapping[str, str], cloud: str) -> dict[str, str]:
    """Tags as `cloud` stores them: keys spelled and, on GCP, values sanitised."""
    if cloud == "gcp":
        return {gcp_label_key(k): gcp_label_value(v) for k, v in tags.items()}
    return {k: str(v) for k, v in tags.items()}


def required_keys(workload: bool) -> tuple[str, ...]:
    """Keys every taggable resource must carry; `workload` adds ModelVersion."""
    return REQUIRED_KEYS + WORKLOAD_KEYS if workload else REQUIRED_KEYS


def missing_keys(present: Mapping[str, Any], cloud: str, workload: bool) -> list[str]:
    """Required keys (canonical spelling) absent or empty in `present` (cloud spelling)."""
    return [
        key
        for key in required_keys(workload)
        if not str(present.get(spell_key(key, cloud)) or "").strip()
    ]


def invalid_values(present: Mapping[str, Any], cloud: str) -> list[str]:
    """Messages for values outside the schema (Environment not dev|staging|prod)."""
    problems = []
    env = present.get(spell_key("Environment", cloud))
    if env is not None and str(env) not in ENVIRONMENTS:
        problems.append(f"Environment={env!r} is not one of {', '.join(ENVIRONMENTS)}")
    if cloud == "gcp":
        for key, value in present.items():
            if gcp_label_value(str(value)) != str(value) or gcp_label_key(str(key)) != str(key):
                problems.append(
                    f"label {key}={value!r} is not a valid GCP label (lower case [a-z0-9_-], "
                    f"at most {_GCP_MAX} characters)"
                )
    return problems
