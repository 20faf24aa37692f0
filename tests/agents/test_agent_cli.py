"""`finops-agent` command: --check, --once, exit codes, --record then --replay."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from aifinops.agents.cli import EXIT_CONFIG, EXIT_NO_GPU, main


def write_config(tmp_path: Path, **extra: object) -> Path:
    config = {
        "agent": {"sample_interval_seconds": 0.1, "window_seconds": 0.3, "log_format": "text"},
        "spool": {"dir": str(tmp_path / "spool"), "fsync": False},
        "export": {"path": str(tmp_path / "windows.jsonl")},
        "prometheus": {"enabled": False},
        **extra,
    }
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(config))
    return path


def test_check_prints_the_effective_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(write_config(tmp_path)), "--check"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["agent"]["window_seconds"] == 0.3
    assert printed["cloudwatch"]["namespace"] == "CWAgent"


def test_bad_config_exits_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[spool]\nmax_byte = 1\n")
    assert main(["--config", str(path), "--check"]) == EXIT_CONFIG
    assert (
        f"{path}: [spool] 'max_byte' is not a known key; did you mean 'max_bytes'?"
        in capsys.readouterr().err
    )


def test_once_prints_every_gpu(
    tmp_path: Path, fake_nvml, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_nvml("not_supported")
    assert main(["--config", str(write_config(tmp_path)), "--once"]) == 0
    snapshot = json.loads(capsys.readouterr().out)
    assert len(snapshot["gpus"]) == 8
    assert snapshot["gpm_gpus"] == [0, 1, 2, 4, 5, 6, 7]
    assert snapshot["gpus"][3]["power_watts"] is None
    assert snapshot["gpus"][4]["tensor_active_ratio"] == pytest.approx(0.225)


def test_no_driver_exits_3_with_a_clear_message(
    tmp_path: Path, fake_nvml, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_nvml("no_driver")
    config = str(write_config(tmp_path))
    assert main(["--config", config, "--once"]) == EXIT_NO_GPU
    assert "NVIDIA driver not usable" in capsys.readouterr().err
    assert main(["--config", config, "--duration", "1"]) == EXIT_NO_GPU
    assert "NVIDIA driver not usable" in capsys.readouterr().err


def test_record_then_replay_gives_the_same_windows(tmp_path: Path, fake_nvml) -> None:
    fake_nvml("healthy8")
    trace = tmp_path / "trace.jsonl"
    live = tmp_path / "live"
    live.mkdir()
    assert (
        main(["--config", str(write_config(live)), "--record", str(trace), "--duration", "0.5"])
        == 0
    )
    readings = trace.read_text().splitlines()
    assert len(readings) >= 16 and len(readings) % 8 == 0
    demo = tmp_path / "demo"
    demo.mkdir()
    assert main(["--config", str(write_config(demo)), "--replay", str(trace)]) == 0
    replayed = [json.loads(line) for line in (demo / "windows.jsonl").read_text().splitlines()]
    assert sum(r["sample_count"] for r in replayed) == len(readings)
    assert {r["gpu_index"]: r["gpu_util_percent"]["max"] for r in replayed} == {
        i: (0.0 if i == 7 else 10.0 * i + 5) for i in range(8)
    }


def test_cloudwatch_without_botocore_exits_2_saying_what_to_install(
    tmp_path: Path, fake_nvml, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_nvml("healthy8")
    monkeypatch.setitem(sys.modules, "botocore.session", None)  # not installed
    config = write_config(tmp_path, cloudwatch={"enabled": True, "region": "us-east-1"})
    assert main(["--config", str(config), "--duration", "1"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "botocore is not installed: pip install botocore (the agent extra brings it)" in err
    assert "Traceback" not in err


def test_once_reports_a_gpu_that_cannot_be_opened(
    tmp_path: Path, fake_nvml, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_nvml("healthy8", broken=(6,))
    assert main(["--config", str(write_config(tmp_path)), "--once"]) == 0
    snapshot = json.loads(capsys.readouterr().out)
    assert snapshot["failed_gpus"] == {"6": "Unknown Error"}
    assert snapshot["gpus"][6]["lost"] is True and snapshot["gpus"][5]["lost"] is False
