"""--apply: the stack file keeps comments and order; a policy-breaking change is refused."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest
from rightsizing_helpers import gpu

from finops import config as stack_config
from finops.rightsizing import GpuUsage, Kind, Recommendation, recommend
from finops.rightsizing.apply import (
    Finding,
    PreviewResult,
    apply,
    edit_stack_text,
    first_per_target,
    pull_request_body,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "rightsizing" / "Pulumi.rs.yaml"


def usages() -> list[GpuUsage]:
    found = [gpu(index=0, util=80, memory=12, instance_type="p3.8xlarge")]
    found += [gpu(index=i, util=1, memory=0.3, instance_type="p3.8xlarge") for i in (1, 2, 3)]
    found += [
        gpu("i-2", i, util=85, memory=12, instance_type="g4dn.12xlarge", fleet_name="train-b")
        for i in range(4)
    ]
    found.append(
        gpu("i-3", 0, util=60, memory=14, instance_type="ml.g5.xlarge", fleet_name="serve-a")
    )
    return found


def recommendations() -> list[Recommendation]:
    config = stack_config.load(FIXTURE)
    return first_per_target(recommend(config, usages()))


def test_recommendations_for_the_fixture_stack() -> None:
    assert [(r.target, r.kind) for r in recommendations()] == [
        ("serve-a", Kind.INFERENCE_ACCELERATOR),
        ("train-a", Kind.FEWER_ACCELERATORS),
        ("train-b", Kind.SPOT_WITH_FALLBACK),
    ]


def test_edit_keeps_comments_order_and_quotes_and_changes_only_the_named_keys() -> None:
    text = FIXTURE.read_text()
    edited = edit_stack_text(text, recommendations())
    diff = [
        line
        for line in difflib.unified_diff(text.splitlines(), edited.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert diff == [
        "-        - p3.8xlarge   # four V100s",
        "+        - g6e.xlarge   # four V100s",
        "-      capacity: on-demand",
        "+      capacity: spot-with-fallback",
        "+      onDemandBase: 0",
        "-      instanceType: ml.g5.xlarge  # A10G",
        "+      instanceType: ml.inf2.xlarge # A10G",  # the comment moves right, not away
    ]
    config = stack_config.parse(stack_config.read_stack_file(_write(edited)))
    assert config.training_fleets[0].instance_types == ["g6e.xlarge"]
    assert config.training_fleets[1].capacity.value == "spot-with-fallback"


def _write(text: str) -> Path:
    import tempfile

    folder = Path(tempfile.mkdtemp())
    path = folder / "Pulumi.rs.yaml"
    path.write_text(text)
    return path


def fake_preview(path: Path) -> PreviewResult:
    """A policy pack that forbids inf2 for serve-a (mandatory) and warns on spot (advisory)."""
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
    total = 0.0
    from finops import catalog

    for fleet in config.training_fleets:
        info = catalog.lookup((fleet.instance_types or [""])[0])
        total += (
            info.usd_per_hour(fleet.capacity.value != "on-demand")
            * fleet.nodes.desired
            * fleet.hours_per_month
        )
    return PreviewResult(round(total, 2), tuple(findings))


def test_apply_refuses_the_change_that_breaks_a_mandatory_policy_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    stack_file = tmp_path / "Pulumi.rs.yaml"
    shutil.copy(FIXTURE, stack_file)
    result = apply(stack_file, recommendations(), fake_preview)
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
    assert "- g6e.xlarge   # four V100s" in text
    assert "# A stack for the rightsizing tests" in text
    assert result.before is not None and result.after is not None
    assert result.before.total_monthly_usd == pytest.approx(12.24 * 2 * 730 + 3.912 * 730)
    assert result.cost_delta_usd == pytest.approx(
        (1.861 - 12.24) * 2 * 730 + (1.4083 - 3.912) * 730
    )
    body = pull_request_body(result, "rs")
    assert "### Refused" in body
    assert (
        "- serve-a inference-accelerator: breaks mandatory policy approved-instance-types" in body
    )
    assert "- **advisory** `spot-needs-checkpoints` train-b: checkpoint bucket unverified" in body
    assert "| train-a | fewer-accelerators: p3.8xlarge -> g6e.xlarge" in body


def test_apply_without_write_leaves_the_file_alone(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.rs.yaml"
    shutil.copy(FIXTURE, stack_file)
    result = apply(stack_file, recommendations(), fake_preview, write=False)
    assert not result.written
    assert stack_file.read_text() == FIXTURE.read_text()
    assert result.cost_delta_usd is not None and result.cost_delta_usd < 0
