"""GCP rows (filled in next)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from finops.catalog.models import AcceleratorInfo, InstanceInfo


def load_gcp(accelerators: Mapping[str, AcceleratorInfo]) -> Iterator[InstanceInfo]:
    return iter(())


def is_attached_type(name: str) -> bool:
    return "+" in name


def build_attached(name: str, accelerators: Mapping[str, AcceleratorInfo]) -> list[InstanceInfo]:
    return []
