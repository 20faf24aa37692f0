"""Azure rows (filled in next)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from finops.catalog.models import AcceleratorInfo, InstanceInfo


def load_azure(accelerators: Mapping[str, AcceleratorInfo]) -> Iterator[InstanceInfo]:
    return iter(())
