"""The two fleets of issue 10, end to end through the agent's files, the real program, the
preview's cost model and the policies.

A mostly idle, bursty fleet (2 x g5.xlarge; each GPU busy 20 s of every 5 minutes from
08:00 to 22:00 UTC, idle at night; 14 days): the true time-weighted mean is 3.9 %, the p95 of
5-minute peaks is 100 %. It must get no larger type, and `--apply` must lower the previewed
cost by exactly the saving claimed.

A saturated fleet whose memory is nearly full (g5.xlarge, 97 % busy all the time, 23 of
24 GiB): no change may cut accelerator memory or GPUs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rightsizing_helpers import window_record

from aifinops.cli import main

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_764_000_000.0 - (1_764_000_000 % 86400)  # a midnight, UTC
DAYS = 14
WINDOW = 300.0
BURST_SECONDS = 20.0
DAY_HOURS = range(8, 22)
TRUE_MEAN = 100 * BURST_SECONDS / WINDOW * len(DAY_HOURS) / 24  # 3.89 %

STACK = """\
# bursty: two single-GPU hosts
config:
  aws:region: us-east-1
  finops:tags:
    Project: vision
    Team: ml-platform
    Environment: dev
  finops:trainingFleets:
    - name: {name}
      cloud: aws
      instanceTypes: [g5.xlarge]   # A10G
      nodes: {{min: 1, max: 4, desired: {nodes}}}
      capacity: on-demand
      modelVersion: v1
"""


def write_bursty(path: Path, name: str = "bursty") -> None:
    """Five-minute windows, as an agent with `window_seconds = 300` writes them."""
    lines = []
    for k in range(int(DAYS * 86400 / WINDOW)):
        start = T0 + k * WINDOW
        day = int(start % 86400 // 3600) in DAY_HOURS
        for host in ("i-a", "i-b"):
            lines.append(
                window_record(
                    instance_id=host,
                    instance_type="g5.xlarge",
                    fleet_name=name,
                    gpu_index=0,
                    start=start,
                    seconds=WINDOW,
                    util=100 * BURST_SECONDS / WINDOW if day else 0.0,
                    util_peak=100.0 if day else 0.0,
                    memory_gib=6.0,
                )
            )
    path.write_text("\n".join(json.dumps(r, separators=(",", ":")) for r in lines) + "\n")


def write_saturated(path: Path, name: str = "saturated") -> None:
    lines = []
    for k in range(int(DAYS * 86400 / WINDOW)):
        lines.append(
            window_record(
                instance_id="i-s",
                instance_type="g5.xlarge",
                fleet_name=name,
                gpu_index=0,
                start=T0 + k * WINDOW,
                seconds=WINDOW,
                util=97.0,
                util_peak=100.0,
                memory_gib=23.0,
            )
        )
    path.write_text("\n".join(json.dumps(r, separators=(",", ":")) for r in lines) + "\n")


def preview_total(stack_file: Path, capsys: pytest.CaptureFixture[str]) -> float:
    main(["preview", "--stack", str(stack_file), "--format", "json", "--project-dir", str(ROOT)])
    return float(json.loads(capsys.readouterr().out)["totals"]["monthlyUsd"])


def rightsize(stack_file: Path, folder: Path, *extra: str) -> list[str]:
    return [
        "rightsize",
        "--stack",
        str(stack_file),
        "--source",
        f"agent:{folder / 'windows.jsonl'}",
        "--project-dir",
        str(ROOT),
        *extra,
    ]


def test_bursty_idle_fleet_gets_no_larger_type_and_apply_saves_what_it_claims(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = tmp_path / "Pulumi.bursty.yaml"
    stack_file.write_text(STACK.format(name="bursty", nodes=2))
    write_bursty(tmp_path / "windows.jsonl")
    before = preview_total(stack_file, capsys)

    assert main(rightsize(stack_file, tmp_path, "--format", "json")) == 0
    (report,) = json.loads(capsys.readouterr().out)
    metrics = report["evidence"]["metrics"]
    # the honest mean, and the p95 of 5-minute peaks named as such
    assert metrics["gpu_util_time_weighted_mean_percent"] == pytest.approx(TRUE_MEAN, abs=0.01)
    assert metrics["gpu_util_p95_of_5min_peaks_percent"] == 100
    kinds = report["recommendation"]["kinds"]
    assert "larger-type" not in kinds
    claimed = report["recommendation"]["monthly_saving_usd"]
    assert claimed > 0
    assert report["current_monthly_usd"] == pytest.approx(before, abs=0.005)

    body = tmp_path / "pr.md"
    assert main(rightsize(stack_file, tmp_path, "--apply", "--pr-body", str(body))) == 0
    out = capsys.readouterr().out
    assert "refused" not in out, out
    after = preview_total(stack_file, capsys)
    # --apply lowers the previewed cost by exactly the saving claimed
    assert before - after == pytest.approx(claimed, abs=0.01)
    assert after < before
    text = stack_file.read_text()
    assert "g6e" not in text and "g5.xlarge" not in text
    assert text.startswith("# bursty: two single-GPU hosts")
    said = re.search(r"cost falls by \$([\d,]+)", body.read_text())
    assert said is not None
    assert float(said.group(1).replace(",", "")) == pytest.approx(claimed, abs=0.5)


def test_saturated_fleet_with_memory_nearly_full_gets_no_cut_in_memory_or_gpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aifinops import catalog

    stack_file = tmp_path / "Pulumi.saturated.yaml"
    stack_file.write_text(STACK.format(name="saturated", nodes=1))
    write_saturated(tmp_path / "windows.jsonl")
    before_text = stack_file.read_text()
    before = preview_total(stack_file, capsys)

    assert main(rightsize(stack_file, tmp_path, "--format", "json")) == 0
    (report,) = json.loads(capsys.readouterr().out)
    current = catalog.lookup("g5.xlarge")
    kept = [report["recommendation"]] if report["recommendation"] else []
    for rec in kept + report["on_request"]:
        for name in rec["proposed"]["instance_types"]:
            info = catalog.lookup(name)
            assert info.accelerator_memory_gib >= current.accelerator_memory_gib, name
            assert info.accelerator_count >= current.accelerator_count, name
    # more memory costs more: shown as a cost, with what it buys, never applied unasked
    (larger,) = report["on_request"]
    assert larger["kinds"] == ["larger-type"]
    assert larger["monthly_saving_usd"] < 0
    assert "memory peak 23.0 of 24 GiB" in larger["summary"]

    assert main(rightsize(stack_file, tmp_path, "--apply")) == 0
    capsys.readouterr()
    assert preview_total(stack_file, capsys) <= before + 0.005
    if report["recommendation"] is None:
        assert stack_file.read_text() == before_text
