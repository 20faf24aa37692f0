"""`finops estimate PROPOSAL.yaml`: policies decide the first option; errors as the stack file's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from aifinops.cli import main
from aifinops.cli.estimate import policy_checker, resources_of
from aifinops.estimate import parse, plan


def write(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    path = tmp_path / "proposal.yaml"
    if isinstance(data, str):
        path.write_text(data)
    else:
        with path.open("w") as handle:
            YAML().dump(data, handle)
    return path


def proposal(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "small-lm",
        "months": 2,
        "environment": "staging",
        "tags": {"Project": "vision", "Team": "ml-platform"},
        "clouds": ["aws"],
        "capacity": ["spot"],
        "training": {"tokens": 1e10, "modelParams": 1e8, "accelerators": ["Trainium1"]},
    }
    base.update(changes)
    return base


def judged(data: dict[str, Any]):
    p = parse(data)
    return plan(p, check=policy_checker(p, None))


def test_cheapest_option_that_passes_the_policies_comes_first() -> None:
    result = judged(proposal())
    by_type = {o.training.instance_type: o for o in result.options if o.training}
    big, small = by_type["trn1.32xlarge"], by_type["trn1.2xlarge"]
    # 16 chips on spot are the cheapest work, but staging allows 4 accelerators per instance
    assert big.total_usd < small.total_usd
    assert not big.passes
    assert [(v.policy, v.level) for v in big.verdicts] == [("gpu-instance-oversized", "mandatory")]
    assert "16 accelerators > 4 allowed" in big.verdicts[0].message
    assert result.best is small and small.passes and small.verdicts == ()
    assert result.options.index(small) < result.options.index(big)


def test_on_demand_training_outside_prod_breaks_training_on_spot() -> None:
    result = judged(proposal(capacity=["on-demand"], training={
        "tokens": 1e10, "modelParams": 1e8, "accelerators": ["A10G"], "acceleratorsPerNode": 1}))  # fmt: skip
    assert result.best is None
    assert all(any(v.policy == "training-on-spot" for v in o.verdicts) for o in result.options)


def test_budget_ceiling_and_the_budget_resource() -> None:
    data = proposal(budgetMonthlyUsd=1.0)
    result = judged(data)
    assert result.best is None  # every option costs more than $1 a month
    verdict = next(v for v in result.options[0].verdicts if v.policy == "stack-cost-ceiling")
    assert "exceeds the stack ceiling (finops:costCeilingUsd) of $1.00/month" in verdict.message
    kinds = [r.kind for r in resources_of(result.options[0], parse(data))]
    assert kinds == ["fleet", "budget"]  # the project's budget is part of every option


def test_required_tags_are_the_stack_transforms(tmp_path: Path) -> None:
    result = judged(proposal())
    assert result.best is not None
    tags = resources_of(result.best, parse(proposal()))[0].tags
    assert tags == {
        "Project": "vision",
        "Team": "ml-platform",
        "Environment": "staging",
        "ModelVersion": "small-lm",
    }


def test_table_output(tmp_path: Path, capsys) -> None:
    rc = main(["estimate", str(write(tmp_path, proposal())), "--top", "3"])
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("small-lm: ") and "options priced (staging)" in lines[0]
    assert lines[1] == (
        "cheapest option that passes the policies: aws us-east-1: train 1 x trn1.2xlarge spot"
    )
    assert "rank | passes policies | fits months | option | total USD | USD/month" in out
    assert "mandatory gpu-instance-oversized small-lm-training" in out
    assert "assumptions:" in out and "6 x 1e+08 params x 1e+10 tokens = 6e+18 FLOPs" in out


def test_json_output(tmp_path: Path, capsys) -> None:
    rc = main(["estimate", str(write(tmp_path, proposal())), "--format", "json", "--top", "2"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert data["best"]["training"]["instance_type"] == "trn1.2xlarge"
    assert data["best"]["passes_policies"] is True
    assert len(data["options"]) == 2
    assert "1M training tokens" in data["best"]["usd_per_unit"]
    assert data["assumptions"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"trainng": {}},
            "proposal.yaml: trainng: unknown key (did you mean training?); allowed: name, months,",
        ),
        ({"environment": "qa"}, "proposal.yaml: environment: 'qa' is not one of 'dev', 'staging'"),
        (
            {"training": {"tokens": 1e9, "modelParams": 1e8, "accelerators": ["H10"]}},
            "proposal.yaml: training.accelerators: unknown accelerator 'H10' (did you mean",
        ),
        (
            {"training": {"tokens": 1e9, "gpuHours": 5, "gpuHoursOn": "A100"}},
            "proposal.yaml: training: give either gpuHours (+ gpuHoursOn) or tokens",
        ),
        ({"months": -1}, "proposal.yaml: months: Input should be greater than 0 (got -1)"),
        ({"capacity": ["spto"]}, "proposal.yaml: capacity[0]: 'spto' is not one of"),
        ({"training": None}, "proposal.yaml: (top level): give training, inference or both"),
    ],
)
def test_schema_errors_name_the_key_and_exit_2(
    tmp_path: Path, capsys, change: dict[str, Any], expected: str
) -> None:
    data = proposal(**change)
    data = {k: v for k, v in data.items() if v is not None}
    rc = main(["estimate", str(write(tmp_path, data))])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"error: {tmp_path / expected}") or err.startswith(
        f"error: {tmp_path}/{expected}"
    ), err
    assert "Traceback" not in err


def test_missing_key_and_yaml_errors(tmp_path: Path, capsys) -> None:
    data = proposal()
    del data["months"]
    assert main(["estimate", str(write(tmp_path, data))]) == 2
    assert "proposal.yaml: months: required key is missing" in capsys.readouterr().err
    assert main(["estimate", str(write(tmp_path, "name: [unclosed\n"))]) == 2
    assert "proposal.yaml:2: not valid YAML" in capsys.readouterr().err
    assert main(["estimate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: proposal file not found" in capsys.readouterr().err
