"""`finops rightsize --apply` with nothing stood in: the real Pulumi program under the offline
engine, the real cost model and the real policies decide what is applied."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_spool_and_cli import FIXTURE, write_windows

from aifinops.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_apply_through_the_real_preview_cuts_cost_and_keeps_comments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = tmp_path / "Pulumi.rs.yaml"
    shutil.copy(FIXTURE, stack_file)
    write_windows(tmp_path / "windows.jsonl")
    before = json.loads(_preview(stack_file, capsys))

    code = main(
        [
            "rightsize",
            "--stack",
            str(stack_file),
            "--source",
            f"agent:{tmp_path}",
            "--apply",
            "--format",
            "json",
            "--project-dir",
            str(ROOT),
            "--pr-body",
            str(tmp_path / "pr.md"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    assert any(ref.startswith("train-a:fewer-accelerators") for ref in document["applied"])
    text = stack_file.read_text()
    assert "- p3.8xlarge   # four V100s" not in text  # replaced, the comment kept
    assert "# four V100s" in text
    assert text.startswith("# A stack for the rightsizing tests")

    after = json.loads(_preview(stack_file, capsys))
    assert after["totals"]["monthlyUsd"] < before["totals"]["monthlyUsd"]
    # the preview falls by exactly the savings claimed for what was applied
    claimed = sum(document["previewed_saving_usd"].values())
    kept = {
        t["recommendation"]["target"]: t["recommendation"]["monthly_saving_usd"]
        for t in document["targets"]
        if t["recommendation"]
    }
    assert claimed == pytest.approx(
        sum(kept[r.split(":")[0]] for r in document["applied"]), abs=0.01
    )
    assert before["totals"]["monthlyUsd"] - after["totals"]["monthlyUsd"] == pytest.approx(
        claimed, abs=0.01
    )
    # what was applied added no mandatory violation (dev's on-demand fleets already break
    # training-on-spot before the change, and still do)
    assert _mandatory(after) <= _mandatory(before)
    assert "train-a" in (tmp_path / "pr.md").read_text()


def _mandatory(preview: dict) -> set[tuple[str, str]]:
    return {
        (v["policy"], v["resource"]) for v in preview["violations"] if v["level"] == "mandatory"
    }


def _preview(stack_file: Path, capsys: pytest.CaptureFixture[str]) -> str:
    main(["preview", "--stack", str(stack_file), "--format", "json", "--project-dir", str(ROOT)])
    return capsys.readouterr().out
