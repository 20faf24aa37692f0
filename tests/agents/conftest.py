"""Shared fixtures for the agent tests: the stubbed `pynvml` and free loopback ports."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

FAKE_NVML_DIR = Path(__file__).resolve().parent / "fake_nvml"
REPO = Path(__file__).resolve().parents[2]


def _load_fake(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("pynvml", FAKE_NVML_DIR / "pynvml.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pynvml", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """Install the fake `pynvml` for this test; call it with a scenario name."""

    def install(scenario: str = "healthy8", **options: int) -> ModuleType:
        module = _load_fake(monkeypatch)
        module.configure(scenario, **options)
        return module

    return install
