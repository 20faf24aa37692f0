"""The component provider host: the schema of every hosted component can be inferred."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from pulumi.provider.experimental import host
from pulumi.provider.experimental.analyzer import Analyzer

from aifinops.components._hosting import type_token
from aifinops.components.aws import AwsGpuTrainingFleet, AwsInferenceEndpoint, AwsProjectBudget

MAIN = Path(__file__).resolve().parents[3] / "components" / "__main__.py"


def load_host() -> ModuleType:
    spec = importlib.util.spec_from_file_location("finops_components_host", MAIN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the host starts only under __main__
    return module


def test_every_hosted_component_has_an_inferable_schema() -> None:
    hosted = load_host().hosted_components()
    assert {AwsGpuTrainingFleet, AwsInferenceEndpoint, AwsProjectBudget} <= set(hosted)
    result = Analyzer("finops").analyze(hosted)
    fleet = result["component_definitions"]["AwsGpuTrainingFleet"]
    assert {"nodesMax", "modelVersion", "tags", "capacity", "instanceTypes"} <= set(fleet.inputs)
    assert fleet.inputs["nodesMax"].description
    assert {"groupName", "onDemandGroupName", "checkpointBucket"} <= set(fleet.outputs)
    assert "Capacity" in result["type_definitions"]  # the str enum of aifinops.config
    budget = result["component_definitions"]["AwsProjectBudget"]
    assert {"project", "monthlyLimitUsd", "notifyEmails", "enforce"} <= set(budget.inputs)


def test_type_token_follows_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    assert type_token(AwsGpuTrainingFleet, "finops:aws:GpuTrainingFleet") == (
        "finops:aws:GpuTrainingFleet"
    )
    monkeypatch.setattr(host, "is_hosting", True)
    assert type_token(AwsGpuTrainingFleet, "finops:aws:GpuTrainingFleet") == (
        "finops:index:AwsGpuTrainingFleet"
    )
