"""--apply: the stack file keeps comments and order; a change is refused when it breaks a
mandatory policy, raises the previewed cost unasked, or does not save what it claims."""

from __future__ import annotations

import dataclasses
import difflib
import shutil
import tempfile
from pathlib import Path

import pytest
from rightsizing_helpers import PRICES, ROOT, gpu

from aifinops import config as stack_config
from aifinops import cost
from aifinops.engine.stack import run_stack
from aifinops.errors import ConfigError
from aifinops.rightsizing import (
    GpuUsage,
    Kind,
    PreviewPricer,
    Recommendation,
    TargetReport,
    recommend,
)
from aifinops.rightsizing.apply import (
    Finding,
    PreviewResult,
    apply,
    edit_stack_text,
    pull_request_body,
    to_apply,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "rightsizing" / "Pulumi.rs.yaml"
HOST = {"cpu": 20.0, "host_memory": 10.0}


def usages() -> list[GpuUsage]:
    found = [gpu(index=0, util=80, mean=40, memory=12, instance_type="p3.8xlarge", **HOST)]
    found += [
        gpu(index=i, util=1, memory=0.3, instance_type="p3.8xlarge", **HOST) for i in (1, 2, 3)
    ]
    found += [
        gpu(
            "i-2",
            i,
            util=95,
            mean=85,
            memory=12,
            instance_type="g4dn.12xlarge",
            fleet_name="train-b",
            **HOST,
        )
        for i in range(4)
    ]
    found.append(
        gpu(
            "i-3",
            0,
            util=60,
            mean=30,
            memory=14,
            instance_type="ml.g5.xlarge",
            fleet_name="serve-a",
        )
    )
    return found


def reports(stack_file: Path = FIXTURE) -> list[TargetReport]:
    config = stack_config.load(stack_file)
    pricer = PreviewPricer(stack_config.read_stack_file(stack_file), ROOT, cache=PRICES)
    return recommend(config, usages(), pricer)


def recommendations() -> list[Recommendation]:
    return to_apply(reports())


def test_recommendations_for_the_fixture_stack() -> None:
    assert [(r.target, r.kinds) for r in recommendations()] == [
        ("train-a", (Kind.FEWER_ACCELERATORS, Kind.SPOT_WITH_FALLBACK)),
        ("train-b", (Kind.SPOT_WITH_FALLBACK,)),
        ("serve-a", (Kind.INFERENCE_ACCELERATOR,)),
    ]


def test_edit_keeps_comments_order_and_quotes_and_changes_only_the_named_keys() -> None:
    text = FIXTURE.read_text()
    recs = recommendations()
    edited = edit_stack_text(text, recs)
    diff = [
        line
        for line in difflib.unified_diff(text.splitlines(), edited.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    names = recs[0].changes["instanceTypes"]
    assert diff[:2] == [
        "-        - p3.8xlarge   # four V100s",
        f"+        - {names[0]}   # four V100s",
    ]
    assert [f"+        - {name}" for name in names[1:]] == diff[2 : 1 + len(names)]
    assert diff[1 + len(names) :] == [
        "-      capacity: on-demand",
        "+      capacity: spot-with-fallback",
        "+      onDemandBase: 0",
        "-      capacity: on-demand",
        "+      capacity: spot-with-fallback",
        "+      onDemandBase: 0",
        "-      instanceType: ml.g5.xlarge  # A10G",
        "+      instanceType: ml.inf2.xlarge # A10G",  # the comment moves right, not away
    ]
    config = stack_config.parse(stack_config.read_stack_file(_write(edited)))
    assert config.training_fleets[0].instance_types == names
    assert config.training_fleets[1].capacity.value == "spot-with-fallback"


def _write(text: str) -> Path:
    folder = Path(tempfile.mkdtemp())
    path = folder / "Pulumi.rs.yaml"
    path.write_text(text)
    return path


def preview(path: Path) -> PreviewResult:
    """The real offline program and cost model; a policy pack that forbids inf2 for serve-a
    (mandatory) and warns on spot (advisory)."""
    text = path.read_text()
    if text not in _TOTALS:
        _, config, run = run_stack(str(path), ROOT)
        _TOTALS[text] = cost.estimate(run, config).total_monthly_usd
    config = stack_config.load(path)
    findings = []
    if config.inference_endpoints[0].instance_type == "ml.inf2.xlarge":
        findings.append(
            Finding(
                "approved-instance-types", "serve-a", "mandatory", "ml.inf2.xlarge is not approved"
            )
        )
    if config.training_fleets[1].capacity.value != "on-demand":
        findings.append(
            Finding("spot-needs-checkpoints", "train-b", "advisory", "checkpoint bucket unverified")
        )
    return PreviewResult(_TOTALS[text], tuple(findings))


_TOTALS: dict[str, float] = {}
"""Stack text -> previewed total (the same text previews the same)."""


def test_apply_refuses_the_change_that_breaks_a_mandatory_policy_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    stack_file = tmp_path / "Pulumi.rs.yaml"
    shutil.copy(FIXTURE, stack_file)
    recs = recommendations()
    result = apply(stack_file, recs, preview)
    assert [r.target for r in result.applied] == ["train-a", "train-b"]
    assert [(r.target, reason) for r, reason in result.refused] == [
        (
            "serve-a",
            "breaks mandatory policy approved-instance-types on serve-a: ml.inf2.xlarge is not approved",
        )
    ]
    assert result.written
    text = stack_file.read_text()
    assert "instanceType: ml.g5.xlarge  # A10G" in text
    assert "# A stack for the rightsizing tests" in text
    # the preview's total falls by exactly what the kept changes claimed
    assert result.cost_delta_usd == pytest.approx(
        -sum(r.monthly_saving_usd for r in result.applied), abs=0.01
    )
    assert result.previewed_saving_usd == {
        r.ref: pytest.approx(r.monthly_saving_usd, abs=0.01) for r in result.applied
    }
    body = pull_request_body(result, "rs")
    assert "### Refused" in body
    assert (
        "- serve-a:inference-accelerator: breaks mandatory policy approved-instance-types" in body
    )
    assert "- **advisory** `spot-needs-checkpoints` train-b: checkpoint bucket unverified" in body
    assert "| train-a | fewer-accelerators+spot-with-fallback: p3.8xlarge -> " in body


def test_apply_refuses_a_change_whose_claim_the_preview_does_not_show(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.rs.yaml"
    shutil.copy(FIXTURE, stack_file)
    rec = recommendations()[1]
    inflated = dataclasses.replace(rec, monthly_saving_usd=rec.monthly_saving_usd + 186.0)
    result = apply(stack_file, [inflated], preview)
    assert result.applied == [] and not result.written
    ((_, reason),) = result.refused
    assert reason.startswith("the preview changes by ")
    assert stack_file.read_text() == FIXTURE.read_text()


def test_a_change_that_costs_more_is_applied_only_when_named(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.rs.yaml"
    shutil.copy(FIXTURE, stack_file)
    found = reports(stack_file)
    train_b = next(r for r in found if r.target == "train-b")
    (larger,) = train_b.on_request
    assert larger.monthly_saving_usd < 0
    refused = apply(stack_file, [larger], preview, write=False)
    assert refused.applied == []
    assert refused.refused[0][1].startswith("raises the previewed cost by ")
    assert refused.refused[0][1].endswith("--accept train-b:larger-type")
    chosen = to_apply(found, ["train-b:larger-type"])
    assert larger in chosen and train_b.recommendation not in chosen
    accepted = apply(stack_file, [larger], preview, accepted=["train-b:larger-type"], write=False)
    assert accepted.applied == [larger]
    with pytest.raises(ConfigError, match=r"--accept train-b:larger: no change that costs more"):
        to_apply(found, ["train-b:larger"])


def test_apply_without_write_leaves_the_file_alone(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.rs.yaml"
    shutil.copy(FIXTURE, stack_file)
    result = apply(stack_file, recommendations(), preview, write=False)
    assert not result.written
    assert stack_file.read_text() == FIXTURE.read_text()
    assert result.cost_delta_usd is not None and result.cost_delta_usd < 0
