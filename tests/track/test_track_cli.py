"""`finops track cost|run|log`: output, errors (one line, exit 2), signals, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from track_helpers import T0, host_records, write

from aifinops.cli import main
from aifinops.track import TrackerError

START = T0 + 300
END = START + 3600
REPO = Path(__file__).resolve().parents[2]


def agent_file(tmp_path: Path) -> Path:
    records = host_records(
        instance_id="i-aaa", instance_type="g5.xlarge", lifecycle="spot", gpus=1, windows=7,
        util=40.0, steps_per_window=100.0,
    )  # fmt: skip
    return write(tmp_path / "w.jsonl", records)


def test_cost_table(tmp_path: Path, capsys) -> None:
    rc = main(
        [
            "track",
            "cost",
            "--from",
            str(START),
            "--to",
            str(END),
            "--agent",
            str(agent_file(tmp_path)),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert out.splitlines()[0] == (
        "cost $0.41 (measured): 1 host(s) g5.xlarge, 1.00 instance-h, 1.00 GPU-h, spot 100%, "
        "0 interruption(s), GPU use 40%, waiting on data 0%"
    )
    assert "  $0.0006875 per steps (600 steps)" in out  # 0.4125 / 600
    assert "i-aaa | g5.xlarge | us-east-1 | spot | 1.000 | 0.4125 | $0.41" in out


def test_cost_json_and_iso_times(tmp_path: Path, capsys) -> None:
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))  # noqa: E731
    rc = main(
        ["track", "cost", "--from", iso(START), "--to", iso(END), "--format", "json",
         "--agent", str(agent_file(tmp_path))]
    )  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert data["cost_usd"] == pytest.approx(0.4125)
    assert data["usd_per_work_unit"] == {"steps": pytest.approx(0.4125 / 600)}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["track", "run"], "error: no command: finops track run [options] -- COMMAND"),
        (
            ["track", "run", "--instance-type", "g5.xlarg", "--", "true"],
            "error: --instance-type 'g5.xlarg': unknown instance type 'g5.xlarg' (did you mean g5.xlarge",
        ),
        (["track", "cost", "--from", "yesterday", "--to", "1"], "error: --from 'yesterday': give"),
        (["track", "cost", "--from", "10", "--to", "5"], "error: --to (5) must be after --from"),
        (
            ["track", "cost", "--from", "1", "--to", "5", "--agent", "/nonexistent/dir/"],
            "",
        ),
    ],
)
def test_errors_are_one_line_exit_2(argv: list[str], message: str, capsys) -> None:
    rc = main(argv)
    err = capsys.readouterr().err
    if not message:  # a missing agent file is not an error: the cost is UNKNOWN, said loudly
        assert rc == 0
        return
    assert rc == 2
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1


def test_missing_agent_file_says_unknown(capsys) -> None:
    rc = main(["track", "cost", "--from", "1", "--to", "3601", "--agent", "/nonexistent/w.jsonl"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("cost UNKNOWN (unknown)")
    assert "note: UNKNOWN cost: no agent files at /nonexistent/w.jsonl" in out


class FailingTracker:
    """A tracker whose server went away while the job ran."""

    name = "mlflow"

    def open(self, **_: object) -> str:
        return "run-1"

    def child_env(self, run_id: str) -> dict[str, str]:
        return {}

    def log(self, *_: object) -> None:
        raise TrackerError("mlflow http://127.0.0.1:1: log the cost failed: connection refused")

    def close(self, *_: object, **__: object) -> None:
        raise AssertionError("not reached")

    def where(self, run_id: str) -> str:
        return f"fake run {run_id}"


def test_cost_is_saved_when_the_tracker_fails_at_the_end(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import aifinops.track as track

    monkeypatch.setattr(track, "make_tracker", lambda *a, **k: FailingTracker())
    monkeypatch.chdir(tmp_path)
    rc = main(
        ["track", "run", "--wait-seconds", "0", "--agent", str(tmp_path / "none.jsonl"),
         "--instance-type", "g5.xlarge", "--", sys.executable, "-c", "pass"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2  # the job succeeded, the cost could not be logged
    assert "error: mlflow http://127.0.0.1:1: log the cost failed" in err
    saved = json.loads((tmp_path / "finops-track-run-1.json").read_text())
    assert saved["basis"] == "estimated" and saved["cost_usd"] > 0


def test_command_not_found_is_127(tmp_path: Path, monkeypatch, capsys) -> None:
    import aifinops.track as track

    logged = []

    class Tracker(FailingTracker):
        def log(self, run_id: str, metrics: dict, tags: dict) -> None:
            logged.append(tags)

        def close(self, run_id: str, *, ok: bool, end: float) -> None:
            logged.append(ok)

    monkeypatch.setattr(track, "make_tracker", lambda *a, **k: Tracker())
    rc = main(["track", "run", "--wait-seconds", "0", "--", "no-such-command-xyz"])
    assert rc == 127
    assert "error: no-such-command-xyz: command not found" in capsys.readouterr().err
    assert logged[-1] is False  # the run is closed as failed


def test_log_prices_an_existing_run(tmp_path: Path, monkeypatch, capsys) -> None:
    mlflow = pytest.importorskip("mlflow")
    from aifinops.track import MlflowTracker

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    tracker = MlflowTracker(uri)
    run_id = tracker.open(experiment=None, run_name="earlier", start=START)
    tracker.close(run_id, ok=True, end=END)
    rc = main(
        ["track", "log", "--tracking-uri", uri, "--run-id", run_id,
         "--agent", str(agent_file(tmp_path))]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    metrics = mlflow.MlflowClient(uri).get_run(run_id).data.metrics
    assert metrics["finops.cost_usd"] == pytest.approx(0.4125)


@pytest.mark.slow
def test_sigterm_reaches_the_job_and_its_status_is_kept(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    uri = (tmp_path / "mlruns").as_uri()
    job = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))  # checkpoint, then exit\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_ALLOW_FILE_STORE="true", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "aifinops", "track", "run", "--tracking-uri", uri,
         "--wait-seconds", "0", "--agent", str(tmp_path / "none"), "--", sys.executable, "-c", job],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 7, err
    assert "cost UNKNOWN (unknown)" in err
