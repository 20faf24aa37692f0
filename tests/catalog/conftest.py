"""Catalog tests run on the shipped data only: a user's refresh overlay must not leak in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aifinops import catalog
from aifinops.catalog.overlay import OVERLAY_ENV


@pytest.fixture(autouse=True)
def shipped_data_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(OVERLAY_ENV, "")
    catalog.reload()
    yield
    catalog.reload()
