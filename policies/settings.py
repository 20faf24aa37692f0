"""Thresholds and enforcement levels: the defaults, and how a user's settings override them.

Settings have the shape of a Pulumi policy-pack config, so one file serves the CrossGuard pack
(`pulumi preview --policy-pack-config`), `finops check --policy-config` and the checkov checks
(`FINOPS_POLICY_CONFIG`)::

    {"gpu-instance-oversized": {"enforcementLevel": "advisory",
                                "limits": {"dev": {"maxAcceleratorsPerInstance": 2}}},
     "inference-on-cheaper-chip": "disabled"}

A policy's value is an enforcement level or an object with `enforcementLevel` and thresholds;
thresholds are merged key by key over the defaults (nested objects too).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from typing import Any

MANDATORY = "mandatory"
ADVISORY = "advisory"
DISABLED = "disabled"
REMEDIATE = "remediate"
LEVELS = (ADVISORY, MANDATORY, REMEDIATE, DISABLED)
CONFIG_ENV = "FINOPS_POLICY_CONFIG"  # a JSON file with settings, read by the checkov checks

# Accelerators too big for a dev box: p4d/p4de (A100), p5/p5e (H100/H200), a3 and
# ND H100 v5 (H100), Blackwell, TPU v5p pods.
_FLAGSHIP_ACCELERATORS = ["A100", "A100-80GB", "H100", "H200", "B200", "B300", "GB200", "TPU-v5p"]

# Instance families production may run (glob patterns over catalog instance type names).
_PROD_ALLOWED = [
    "g5.*", "g6.*", "g6e.*", "p4d.*", "p4de.*", "p5.*", "p5e.*", "p5en.*", "inf2.*", "trn1.*",
    "trn2.*", "ml.g5.*", "ml.g6.*", "ml.g6e.*", "ml.inf2.*", "ml.p4d.*", "ml.p5.*",
    "a2-*", "a3-*", "g2-*", "v5litepod-*", "v5p-*", "v6e-*",
    "Standard_NC*as_T4_v3", "Standard_NC*ads_A100_v4", "Standard_ND96isr_H100_v5",
]  # fmt: skip

DEFAULTS: dict[str, dict[str, Any]] = {
    "required-tags": {
        "enforcementLevel": MANDATORY,
        "extraRequiredKeys": [],
        "allowedValues": {},
        "launchedResourceTypes": ["instance", "volume"],
    },
    "gpu-instance-oversized": {
        "enforcementLevel": MANDATORY,
        "limits": {
            "dev": {
                "maxAcceleratorsPerInstance": 1,
                "maxAcceleratorsPerFleet": 4,
                "maxUsdPerHour": 5.0,
                "deniedAccelerators": _FLAGSHIP_ACCELERATORS,
                "allowedInstanceTypes": None,
            },
            "staging": {
                "maxAcceleratorsPerInstance": 4,
                "maxAcceleratorsPerFleet": 32,
                "maxUsdPerHour": 40.0,
                "deniedAccelerators": [],
                "allowedInstanceTypes": None,
            },
            "prod": {
                "maxAcceleratorsPerInstance": None,
                "maxAcceleratorsPerFleet": 512,
                "maxUsdPerHour": None,
                "deniedAccelerators": [],
                "allowedInstanceTypes": _PROD_ALLOWED,
            },
        },
    },
    "training-on-spot": {
        "enforcementLevel": MANDATORY,
        "maxOnDemandPercentAboveBase": 20.0,
        "exemptEnvironments": ["prod"],
    },
    "previous-generation-accelerator": {
        "enforcementLevel": ADVISORY,
        "hoursPerMonth": 730.0,
        "excludeFamilies": ["g5g"],
    },
    "inference-on-cheaper-chip": {
        "enforcementLevel": ADVISORY,
        "hoursPerMonth": 730.0,
        "minSavingPercent": 10.0,
    },
    "budget-required": {"enforcementLevel": MANDATORY},
    "stack-cost-ceiling": {
        "enforcementLevel": MANDATORY,
        "maxMonthlyUsd": None,
        "topResources": 10,
    },
    "imdsv2-required": {"enforcementLevel": MANDATORY},
}


class SettingsError(ValueError):
    """Settings name an unknown policy or level; the message says which and what is allowed."""


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve(settings: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Every policy's effective config (enforcementLevel + thresholds) given user settings."""
    resolved = copy.deepcopy(DEFAULTS)
    for name, value in (settings or {}).items():
        if name not in DEFAULTS:
            raise SettingsError(
                f"policy settings: unknown policy {name!r}; known: {', '.join(DEFAULTS)}"
            )
        if isinstance(value, str):
            value = {"enforcementLevel": value}
        if not isinstance(value, Mapping):
            raise SettingsError(
                f"policy settings: {name}: expected an enforcement level or an object"
            )
        resolved[name] = _merge(resolved[name], value)
        level = resolved[name]["enforcementLevel"]
        if level not in LEVELS:
            raise SettingsError(
                f"policy settings: {name}.enforcementLevel: {level!r} is not one of "
                f"{', '.join(LEVELS)}"
            )
    return resolved


def from_env() -> dict[str, dict[str, Any]]:
    """Settings from the JSON file named by FINOPS_POLICY_CONFIG (the checkov checks' way in)."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return resolve(None)
    with open(path, encoding="utf-8") as handle:
        return resolve(json.load(handle))
