"""The cost in a real MLflow: a file store, MLflow's default local store, and a real tracking
server started on 127.0.0.1; `finops track run` around a job that logs into the same run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from track_helpers import T0, WINDOW, host_records, write

from aifinops.track import MlflowTracker, log_cost, run_cost

mlflow = pytest.importorskip("mlflow")

START = T0 + 300
END = START + 3600
REPO = Path(__file__).resolve().parents[2]
JOB = """
import sys, mlflow
with mlflow.start_run():           # joins the run finops opened (MLFLOW_RUN_ID)
    mlflow.log_metric("loss", 0.25)
sys.exit(int(sys.argv[1]))
"""


def measured_cost(tmp_path: Path):
    records = host_records(
        instance_id="i-aaa", instance_type="g5.xlarge", lifecycle="spot", gpus=1, windows=7,
        util=40.0, steps_per_window=100.0, verdicts={0: "waiting-on-data"},
    )  # fmt: skip
    return run_cost(START, END, agent=[write(tmp_path / "w.jsonl", records)])


def test_cost_as_run_metrics_and_tags_in_a_file_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps file stores behind it
    uri = (tmp_path / "mlruns").as_uri()
    tracker = MlflowTracker(uri)
    run_id = tracker.open(experiment="resnet50", run_name="lr3e-4", start=START)
    cost = measured_cost(tmp_path)
    log_cost(tracker, run_id, cost)
    tracker.close(run_id, ok=True, end=END)

    run = mlflow.MlflowClient(uri).get_run(run_id)
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics["finops.cost_usd"] == pytest.approx(0.4125)  # 1 h of spot g5.xlarge
    assert metrics["finops.gpu_hours"] == pytest.approx(1.0)
    assert metrics["finops.spot_share"] == 1.0
    assert metrics["finops.interruptions"] == 0.0
    assert metrics["finops.gpu_util_mean_percent"] == pytest.approx(40.0)
    assert metrics["finops.waiting_on_data_share"] == pytest.approx(300 / 3600)
    assert metrics["finops.work.steps"] == pytest.approx(600.0)  # 50 + 5 x 100 + 50
    assert metrics["finops.usd_per.steps"] == pytest.approx(0.4125 / 600)
    assert "finops.sm_active_mean_percent" not in metrics  # not measured: absent, never 0
    assert tags["finops.cost_basis"] == "measured"
    assert tags["finops.instance_types"] == "g5.xlarge"
    assert tags["finops.lifecycle"] == "spot"
    assert run.info.status == "FINISHED"
    assert run.info.start_time == int(START * 1000) and run.info.end_time == int(END * 1000)
    experiment = mlflow.MlflowClient(uri).get_experiment(run.info.experiment_id)
    assert experiment.name == "resnet50"


def job_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(extra)
    env["PYTHONPATH"] = str(REPO)
    return env


def agent_file_around_now(tmp_path: Path) -> Path:
    """Records of one spot g5.xlarge covering the next 20 minutes (the run is inside)."""
    first = (time.time() // WINDOW) * WINDOW - WINDOW
    records = host_records(
        instance_id="i-aaa", instance_type="g5.xlarge", lifecycle="spot", gpus=1, windows=3,
        util=70.0, first=first,
    )  # fmt: skip
    return write(tmp_path / "w.jsonl", records)


def track_run(tmp_path: Path, env: dict[str, str], *options: str, exit_code: int = 0):
    job = tmp_path / "job.py"
    job.write_text(JOB)
    command = [
        sys.executable, "-m", "aifinops", "track", "run", "--experiment", "exp",
        "--agent", str(agent_file_around_now(tmp_path)), "--wait-seconds", "0",
        *options, "--", sys.executable, str(job), str(exit_code),
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )


def single_run(uri: str):
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("exp")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1  # the job joined the run finops opened, it did not start its own
    return runs[0]


def test_hook_logs_into_the_jobs_own_run_and_keeps_its_exit_status(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    env = job_env(tmp_path, MLFLOW_TRACKING_URI=uri, MLFLOW_ALLOW_FILE_STORE="true")
    proc = track_run(tmp_path, env, exit_code=3)
    assert proc.returncode == 3, proc.stderr
    assert "finops track: cost $" in proc.stderr and "(measured)" in proc.stderr
    run = single_run(uri)
    metrics = run.data.metrics
    assert metrics["loss"] == 0.25  # the job's own metric, same run
    hours = metrics["finops.instance_hours"]
    assert 0 < hours < 240 / 3600
    assert metrics["finops.cost_usd"] == pytest.approx(hours * 0.4125)
    assert run.info.status == "FAILED"  # the job exited 3


@pytest.mark.slow
def test_default_store_is_mlflows_local_store(tmp_path: Path, monkeypatch) -> None:
    """No URI: MLflow's own default (sqlite:///mlflow.db in the working folder since 3.x)."""
    for name in list(os.environ):
        if name.startswith("MLFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    tracker = MlflowTracker()
    assert tracker.uri == mlflow.get_tracking_uri()
    run_id = tracker.open(experiment=None, run_name=None, start=START)
    log_cost(tracker, run_id, measured_cost(tmp_path))
    tracker.close(run_id, ok=True, end=END)
    if tracker.uri.startswith("sqlite"):
        assert (tmp_path / "mlflow.db").is_file()
    run = mlflow.MlflowClient(tracker.uri).get_run(run_id)
    assert run.data.metrics["finops.cost_usd"] == pytest.approx(0.4125)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """A real `mlflow server` on 127.0.0.1 with a SQLite backend store; its URL."""
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--default-artifact-root",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its uvicorn and job-runner children go with it
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 200
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.mark.integration
@pytest.mark.slow
def test_tracking_server(tmp_path: Path, mlflow_server: str) -> None:
    env = job_env(tmp_path)
    proc = track_run(tmp_path, env, "--tracking-uri", mlflow_server)
    assert proc.returncode == 0, proc.stderr
    run = single_run(mlflow_server)
    assert run.data.metrics["loss"] == 0.25
    assert run.data.metrics["finops.cost_usd"] == pytest.approx(
        run.data.metrics["finops.instance_hours"] * 0.4125
    )
    assert run.data.tags["finops.cost_basis"] == "measured"
    assert run.info.status == "FINISHED"


def test_unreachable_server_stops_before_the_command_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    env = job_env(tmp_path, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="3")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "aifinops",
            "track",
            "run",
            "--tracking-uri",
            f"http://127.0.0.1:{free_port()}",
            "--",
            sys.executable,
            "-c",
            f"open({str(marker)!r}, 'w')",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: mlflow http://127.0.0.1:")
    assert "create run failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists()
