"""Test helpers for the tests beside this file: run Azure components under the offline engine
with the stack tags transform registered as infra/__main__.py registers it."""

from __future__ import annotations

import base64
import re
import tomllib
from collections.abc import Callable

import pulumi

from aifinops.engine import EngineResource, StackRun, run_program
from aifinops.tagging import tagging_transform

STACK_TAGS = {"Project": "vision", "Team": "ml-platform", "Environment": "dev"}
REGIONS = {"azure": "eastus"}
CONFIG = {"azure-native:location": "eastus"}
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyForTheOfflineEngine test"


def run_components(body: Callable[[], object]) -> StackRun:
    def program() -> None:
        pulumi.runtime.register_resource_transform(tagging_transform(STACK_TAGS))
        body()

    return run_program(program, "test", CONFIG, REGIONS)


def one(run: StackRun, name: str) -> EngineResource:
    found = [r for r in run.resources if r.name == name]
    assert len(found) == 1, f"{name}: {[r.name for r in run.resources]}"
    return found[0]


def custom_data_script(scale_set_inputs: dict) -> str:
    """The boot script in a scale set's custom data (base64)."""
    encoded = scale_set_inputs["virtualMachineProfile"]["osProfile"]["customData"]
    return base64.b64decode(encoded).decode()


def toml_in_script(script: str) -> dict:
    match = re.search(r"<<'FINOPS_AGENT_TOML'\n(.*?)\nFINOPS_AGENT_TOML\n", script, re.S)
    assert match, script
    return tomllib.loads(match.group(1))
