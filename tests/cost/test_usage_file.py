"""The usage file: generated, edited, read back; mistakes named by file and key path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from aifinops.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEV_KEYS = {
    "vision-train-checkpoints": {"storage_gb"},
    "vision-train-fallback-logs": {"ingested_gb"},
    "vision-train-fallback": {"mean_duration_ms", "invocations_per_month"},
    "vision-budget-enforcer-logs": {"ingested_gb"},
    "vision-budget-cost-tags-logs": {"ingested_gb"},
    "vision-budget-cost-tags": {"mean_duration_ms", "invocations_per_month"},
    "vision-budget-enforcer": {"mean_duration_ms", "invocations_per_month"},
    "vision-serve-endpoint": {"data_processed_gb"},
}


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    """The dev stack file in a folder of its own (its usage file goes beside it)."""
    shutil.copy(ROOT / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    return tmp_path / "Pulumi.dev.yaml"


def finops(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args])
    out, err = capsys.readouterr()
    return code, out, err


def preview_json(capsys: pytest.CaptureFixture[str], stack: Path, *extra: str) -> dict:
    code, out, err = finops(
        capsys, "preview", "--stack", str(stack), "--project-dir", str(ROOT), "--format",
        "json", "--no-policies", *extra,
    )  # fmt: skip
    assert code == 0, err
    return json.loads(out)


def test_init_edit_read_back_and_init_again(
    stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = finops(
        capsys, "usage", "init", "--stack", str(stack), "--project-dir", str(ROOT)
    )
    usage_file = stack.parent / "finops-usage.yml"
    assert code == 0 and out.startswith(f"wrote {usage_file}: 11 usage key(s) added at 0")
    text = usage_file.read_text()
    assert "storage_gb: 0" in text and "# GB kept in the bucket on average" in text
    document = YAML().load(text)
    assert document["version"] == 1
    assert {k: set(v) for k, v in document["resource_usage"].items()} == DEV_KEYS
    assert all(v == 0 for keys in document["resource_usage"].values() for v in keys.values())

    # nothing read yet: every key is still 0
    before = preview_json(capsys, stack)
    assert before["usage"]["file"] == str(usage_file)
    assert len(before["usage"]["zeroKeys"]) == 11

    # edit as a user would (a value and a comment of their own), then read back
    edited = text.replace("    storage_gb: 0 ", "    storage_gb: 500 ").replace(
        "    ingested_gb: 0 ", "    ingested_gb: 2 ", 1
    )
    edited = edited.replace("version: 1", "version: 1  # ours, keep it")
    usage_file.write_text(edited)
    after = preview_json(capsys, stack)
    lines = {r["name"]: r for r in after["resources"]}
    assert lines["vision-train-checkpoints/storage"]["monthlyUsd"] == round(500 * 0.023, 2)
    # 2 GB a month ingested at $0.50, kept 30 days: 2 x 30/30.4167 GB stored at $0.03
    assert lines["vision-train-fallback-logs/logs"]["monthlyUsd"] == round(
        2 * 0.50 + 2 * 30 / (730 / 24) * 0.03, 2
    )
    assert "vision-train-checkpoints.storage_gb" not in after["usage"]["zeroKeys"]
    assert len(after["usage"]["zeroKeys"]) == 9
    assert after["totals"]["monthlyUsd"] == pytest.approx(
        before["totals"]["monthlyUsd"] + 11.50 + 1.00 + 0.06, abs=0.01
    )

    # init again: the edits and the user's comment stay, nothing is added
    code, out, _ = finops(
        capsys, "usage", "init", "--stack", str(stack), "--project-dir", str(ROOT)
    )
    assert code == 0 and out.startswith(f"updated {usage_file}: 0 usage key(s) added")
    again = usage_file.read_text()
    assert "storage_gb: 500" in again and "# ours, keep it" in again


def test_unknown_keys_and_bad_values_are_one_line_each(
    stack: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    usage_file = tmp_path / "usage.yml"
    usage_file.write_text(
        "version: 1\n"
        "resource_usage:\n"
        "  vision-train-checkpoint:\n"
        "    storage_gb: 10\n"
        "  vision-train-fallback-logs:\n"
        "    ingest_gb: 3\n"
        "  vision-serve-endpoint:\n"
        "    data_processed_gb: -1\n"
        "extra: 1\n"
    )
    code, out, err = finops(
        capsys, "preview", "--stack", str(stack), "--project-dir", str(ROOT),
        "--usage-file", str(usage_file), "--no-policies",
    )  # fmt: skip
    assert code == 2 and out == ""
    assert "Traceback" not in err
    assert err.splitlines() == [
        f"error: {usage_file}: extra: unknown key",
        f"error: {usage_file}: resource_usage.vision-train-checkpoint: no resource of this "
        "stack has usage keys by this name (did you mean vision-train-checkpoints, "
        "vision-train-fallback, vision-train-fallback-logs?)",
        f"error: {usage_file}: resource_usage.vision-train-fallback-logs.ingest_gb: unknown "
        "key (did you mean ingested_gb?)",
        f"error: {usage_file}: resource_usage.vision-serve-endpoint.data_processed_gb: -1 is "
        "not a number >= 0",
    ]


def test_a_named_usage_file_must_exist_and_a_broken_one_is_not_rewritten(
    stack: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.yml"
    code, _, err = finops(
        capsys, "preview", "--stack", str(stack), "--project-dir", str(ROOT),
        "--usage-file", str(missing),
    )  # fmt: skip
    assert code == 2 and err.startswith(f"error: {missing}: no such usage file")
    broken = stack.parent / "finops-usage.yml"
    broken.write_text("version: 1\nresource_usage:\n  vision-train-checkpoints: {storage_gb: [\n")
    code, _, err = finops(
        capsys, "usage", "init", "--stack", str(stack), "--project-dir", str(ROOT)
    )
    assert code == 2 and err.startswith(f"error: {broken} (line")
    assert broken.read_text().endswith("[\n")  # left as it was


def test_check_shows_the_delta_of_the_charge_lines(
    stack: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # the base: the same stack with one node less
    base = tmp_path / "base" / "Pulumi.dev.yaml"
    base.parent.mkdir()
    base.write_text(stack.read_text().replace("desired: 2\n", "desired: 1\n"))
    assert base.read_text() != stack.read_text()
    code, out, err = finops(
        capsys, "check", "--stack", str(stack), "--project-dir", str(ROOT),
        "--base-stack", str(base),
    )  # fmt: skip
    assert code == 0, err
    # one more node: one more 200 GB gp3 volume; 20 more metrics for its GPU and one more
    # instance type in use for the per-fleet copy (12), 43,800 more requests
    assert "| `vision-train-group/volumes` | 16.00 | 32.00 | +16.00 |" in out.splitlines()
    (telemetry,) = [line for line in out.splitlines() if "`vision-train-group/telemetry`" in line]
    old, new, delta = (float(c.strip().replace(",", "")) for c in telemetry.split("|")[2:5])
    assert delta == pytest.approx(new - old, abs=0.01)
    assert delta == pytest.approx((20 + 12) * 0.30 + 43_800 * 0.01 / 1000, abs=0.02)
