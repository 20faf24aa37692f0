"""The agent-file source and `finops rightsize` end to end on a stack file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from rightsizing_helpers import ROOT, window_record

from aifinops.cli import main
from aifinops.rightsizing.spool import SkippedLinesWarning, SourceError, read_usage

FIXTURE = Path(__file__).parents[1] / "fixtures" / "rightsizing" / "Pulumi.rs.yaml"
T0 = 1_764_000_000.0 - (1_764_000_000 % 3600)
DAYS = 8
WINDOW = 300.0


def write_windows(path: Path, days: float = DAYS, window: float = WINDOW) -> None:
    """`days` of windows: train-a (p3.8xlarge) uses GPU 0 at 25% with 10 GiB and reports 100
    steps a window, on a host whose CPUs run at 20% with 20 GiB in use; serve-a
    (ml.g5.xlarge) runs at 60% with 14 GiB."""
    lines = []
    for k in range(int(days * 86400 / window)):
        start = T0 + k * window
        for index in range(4):
            busy = index == 0
            lines.append(
                window_record(
                    instance_id="i-aaa",
                    instance_type="p3.8xlarge",
                    fleet_name="train-a",
                    gpu_index=index,
                    start=start,
                    seconds=window,
                    util=25.0 if busy else 0.0,
                    memory_gib=10.0 if busy else 0.25,
                    work={"steps": 100.0},
                    host_cpu=20.0,
                    host_memory_gib=20.0,
                )
            )
        lines.append(
            window_record(
                instance_id="i-ccc",
                instance_type="ml.g5.xlarge",
                fleet_name="serve-a",
                gpu_index=0,
                start=start,
                seconds=window,
                util=60.0,
                memory_gib=14.0,
            )
        )
    text = "\n".join(json.dumps(r, separators=(",", ":")) for r in lines) + "\n"
    text += json.dumps(lines[0]) + "\n"  # delivered twice (at least once): counted once
    text += '{"schema_version":1,"record_id":"i-aaa/GPU-0/trunc'  # killed mid-line
    path.write_text(text)


def test_agent_files_fold_into_usage(tmp_path: Path) -> None:
    export = tmp_path / "windows.jsonl"
    write_windows(export, days=6 / 24, window=60.0)
    usages = {(u.host, u.gpu_index): u for u in read_usage([tmp_path])}
    assert sorted(usages) == [("i-aaa", i) for i in range(4)] + [("i-ccc", 0)]
    a0 = usages[("i-aaa", 0)]
    assert (a0.instance_type, a0.fleet, a0.region) == ("p3.8xlarge", "train-a", "us-east-1")
    assert a0.intervals == 6 * 12
    assert (a0.util_p95_percent, a0.util_mean_percent) == (25.0, 25.0)
    assert a0.memory_peak_gib == 10.0
    assert a0.memory_total_gib == 16.0
    assert a0.window_end - a0.window_start == 6 * 3600
    # 100 steps a one-minute window, host-wide: not multiplied by the four GPU records
    assert a0.work_per_hour == {"steps": pytest.approx(6000.0)}
    assert a0.work_hours == 6
    assert usages[("i-aaa", 1)].idle_hours_share == 1.0
    assert a0.idle_hours_share == 0.0
    assert (a0.host_cpu_p95_percent, a0.host_memory_peak_gib) == (20.0, 20.0)
    assert usages[("i-ccc", 0)].host_cpu_p95_percent is None  # not reported: unknown
    # the lookback window cuts the oldest hours
    recent = read_usage([export], lookback_days=1 / 24)
    assert {u.intervals for u in recent} == {12}


def test_the_mean_is_time_weighted_not_a_mean_of_peaks(tmp_path: Path) -> None:
    """Five one-minute windows per interval; one holds a 12 s burst (mean 20%, peak 100%)."""
    lines = []
    for minute in range(24 * 60):
        burst = minute % 5 == 0
        lines.append(
            window_record(
                instance_id="i-b",
                instance_type="g5.xlarge",
                fleet_name="b",
                gpu_index=0,
                start=T0 + minute * 60,
                util=20.0 if burst else 0.0,
                util_peak=100.0 if burst else 0.0,
                memory_gib=4.0,
            )
        )
    export = tmp_path / "windows.jsonl"
    export.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    (usage,) = read_usage([export])
    assert usage.util_p95_percent == 100.0  # the p95 of 5-minute peaks
    assert usage.util_mean_percent == pytest.approx(4.0)  # 12 s of every 300 s
    assert usage.util_mean_p95_percent == pytest.approx(4.0)


def test_a_broken_line_is_skipped_and_counted_naming_the_file_and_line(tmp_path: Path) -> None:
    export = tmp_path / "windows.jsonl"
    write_windows(export, days=6 / 24, window=60.0)
    good = read_usage([export])
    text = export.read_bytes()
    # a torn write glued to the next record, and a byte flipped by a disk error
    export.write_bytes(b'{"schema_version":1,"rec\n' + text.replace(b"train-a", b"tr\xffin-a", 1))
    with pytest.warns(
        SkippedLinesWarning, match=r"2 unreadable line\(s\).*windows.jsonl:1: not a JSON"
    ):
        usages = read_usage([export])
    assert {(u.host, u.gpu_index) for u in usages} == {(u.host, u.gpu_index) for u in good}
    with pytest.raises(SourceError, match="no such file or folder"):
        read_usage([tmp_path / "missing"])


def test_files_that_are_not_window_records_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aifinops.agents.records import GpuSample
    from aifinops.agents.replay import sample_to_json

    trace = tmp_path / "trace.jsonl"
    sample = GpuSample(timestamp=T0, gpu_index=0, gpu_uuid="GPU-0", gpu_name="NVIDIA A10G")
    trace.write_text(json.dumps(sample_to_json(sample)) + "\n")
    stack_file = tmp_path / "Pulumi.rs.yaml"
    shutil.copy(FIXTURE, stack_file)
    code = main(["rightsize", "--stack", str(stack_file), "--source", f"agent:{trace}"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: {trace}:1: a `finops-agent --record` trace (GPU readings with no host or "
        "instance type), not window records: give the agent's export file ([export] path) or "
        "its spool folder\n"
    )
    state = tmp_path / "state.json"
    state.write_text('{"dropped_records_total": 0}\n')
    with pytest.raises(SourceError, match=r"state.json:1: not an agent window record \(no "):
        read_usage([state])
    newer = tmp_path / "v3.jsonl"
    newer.write_text('{"schema_version": 3, "window_start": 0}\n')
    with pytest.raises(SourceError, match=r"v3.jsonl:1: window record schema_version 3"):
        read_usage([newer])
    typed = tmp_path / "typed.jsonl"
    record = window_record(
        instance_id="i",
        instance_type="g5.xlarge",
        fleet_name="f",
        gpu_index=0,
        start=T0,
        util=1.0,
        memory_gib=1.0,
    )
    record["window_start"] = "yesterday"
    typed.write_text(json.dumps(record) + "\n")
    with pytest.raises(SourceError, match=r"typed.jsonl:1: a window record with a malformed"):
        read_usage([typed])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--headroom", "1.5", "--headroom '1.5': a ratio from 0 to 1 (0.2 = 20%)"),
        ("--headroom", "abc", "--headroom 'abc': a ratio from 0 to 1 (0.2 = 20%)"),
        ("--lookback-days", "0.5", "--lookback-days '0.5': a number of days >= 1"),
        ("--memory-mb", "32", "--memory-mb '32': megabytes, at least 64"),
        (
            "--checkpoint-minutes",
            "-1",
            "--checkpoint-minutes '-1': minutes >= 0 (0: no checkpoints)",
        ),
    ],
)
def test_options_out_of_range_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    stack_file = tmp_path / "Pulumi.rs.yaml"
    shutil.copy(FIXTURE, stack_file)
    code = main(["rightsize", "--stack", str(stack_file), option, value])
    assert code == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def stack_copy(tmp_path: Path, days: float = DAYS) -> Path:
    stack_file = tmp_path / "Pulumi.rs.yaml"
    shutil.copy(FIXTURE, stack_file)
    write_windows(tmp_path / "windows.jsonl", days=days)
    return stack_file


def rightsize(stack_file: Path, folder: Path, *extra: str) -> list[str]:
    return [
        "rightsize",
        "--stack",
        str(stack_file),
        "--source",
        f"agent:{folder}",
        "--project-dir",
        str(ROOT),
        *extra,
    ]


def test_rightsize_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack_file = stack_copy(tmp_path)
    assert main(rightsize(stack_file, tmp_path, "--format", "json")) == 0
    found = {r["target"]: r for r in json.loads(capsys.readouterr().out)}
    assert found["train-b"]["status"] == "insufficient-data"
    assert found["train-b"]["missing"][0].startswith("no usage matched")
    a = found["train-a"]["recommendation"]
    assert a["kinds"][0] == "fewer-accelerators"
    assert a["work_unit"] == "steps"
    assert a["evidence"]["metrics"]["gpu_memory_peak_gib"] == 10.0
    assert a["evidence"]["metrics"]["host_cpu_p95_of_5min_peaks_vcpus"] == 6.4
    assert found["serve-a"]["recommendation"]["proposed"]["instance_types"] == ["ml.inf2.xlarge"]


def test_too_little_data_is_said_in_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = stack_copy(tmp_path, days=2)
    assert main(rightsize(stack_file, tmp_path)) == 0
    out = capsys.readouterr().out
    assert "train-a: insufficient data: 2.0 days covered (need at least 7)" in out
    assert "serve-a: insufficient data: 2.0 days covered (need at least 7)" in out


class _Violation:
    def __init__(self, policy: str, resource: str, level: str, message: str) -> None:
        self.policy, self.resource, self.urn, self.level, self.message = (
            policy,
            resource,
            "",
            level,
            message,
        )


def _forbid_inf2(monkeypatch: pytest.MonkeyPatch) -> None:
    from aifinops import policies

    def evaluate_stack(
        run: Any, config: Any, costs: Any = None, settings: Any = None
    ) -> list[_Violation]:
        if config.inference_endpoints[0].instance_type == "ml.inf2.xlarge":
            return [
                _Violation(
                    "approved-instance-types",
                    "serve-a",
                    "mandatory",
                    "ml.inf2.xlarge is not approved",
                )
            ]
        return []

    monkeypatch.setattr(policies, "evaluate_stack", evaluate_stack, raising=False)


def test_rightsize_apply_refuses_a_policy_breaking_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_inf2(monkeypatch)
    stack_file = stack_copy(tmp_path)
    body = tmp_path / "pr.md"
    code = main(rightsize(stack_file, tmp_path, "--apply", "--pr-body", str(body)))
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured.err
    assert f"applied: 1 change(s) to {stack_file}" in out
    assert (
        "refused serve-a:inference-accelerator: breaks mandatory policy approved-instance-types on "
        "serve-a: ml.inf2.xlarge is not approved" in out
    )
    text = stack_file.read_text()
    assert "- p3.8xlarge   # four V100s" not in text
    assert "instanceType: ml.g5.xlarge  # A10G" in text
    assert "| train-a | fewer-accelerators+spot-with-fallback: p3.8xlarge -> " in body.read_text()


def test_rightsize_apply_without_the_policy_pack_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aifinops import policies

    monkeypatch.delattr(policies, "evaluate_stack", raising=False)
    stack_file = stack_copy(tmp_path)
    before = stack_file.read_text()
    code = main(rightsize(stack_file, tmp_path, "--apply"))
    assert code == 2
    assert (
        "error: --apply needs the policy pack's policies.evaluate_stack" in capsys.readouterr().err
    )
    assert stack_file.read_text() == before


def test_bad_source_spec_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack_file = stack_copy(tmp_path, days=0.1)
    assert main(["rightsize", "--stack", str(stack_file), "--source", "graphite:x"]) == 2
    assert capsys.readouterr().err == (
        "error: --source 'graphite:x': expected agent:PATH, prometheus:URL or cloudwatch:REGION\n"
    )


def test_rightsize_apply_json_is_one_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_inf2(monkeypatch)
    stack_file = stack_copy(tmp_path)
    assert main(rightsize(stack_file, tmp_path, "--apply", "--format", "json")) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["applied"] == ["train-a:fewer-accelerators+spot-with-fallback"]
    assert document["refused"] == [
        {
            "ref": "serve-a:inference-accelerator",
            "reason": "breaks mandatory policy approved-instance-types on serve-a: ml.inf2.xlarge is not approved",
        }
    ]
    assert document["written"] is True
    saved = document["before"]["total_monthly_usd"] - document["after"]["total_monthly_usd"]
    assert saved == pytest.approx(sum(document["previewed_saving_usd"].values()))
    assert Path(document["pull_request_body"]) == tmp_path / "rightsize-rs.md"
