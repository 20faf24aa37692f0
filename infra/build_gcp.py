"""Compose the GCP components a stack's config asks for."""

from __future__ import annotations

from typing import Any

from finops.config import StackConfig


def build(config: StackConfig) -> dict[str, Any]:
    """Create the GCP resources of `config`; returns the stack exports."""
    return {}
