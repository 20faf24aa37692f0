"""The agent as a process, against real local services on 127.0.0.1 that the tests start:
moto_server (CloudWatch), a fake EC2 metadata server, Debian's prometheus; plus an outage of
the metrics endpoint and a SIGKILL, after which nothing spooled may be missing."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from agent_procs import (
    AgentProcess,
    FakeImds,
    MotoServer,
    TcpProxy,
    agent_config,
    cloudwatch_windows,
    exported_records,
    free_port,
    spooled_records,
    wait_for,
)

pytestmark = pytest.mark.integration

needs_moto = pytest.mark.skipif(
    MotoServer.binary() is None, reason="moto_server not installed (pip install 'moto[server]')"
)


@pytest.fixture
def moto() -> Any:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def imds() -> Any:
    server = FakeImds()
    yield server
    server.stop()


@pytest.fixture
def agents_started() -> Any:
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.stop()


def cloudwatch_section(endpoint: str) -> dict[str, Any]:
    return {
        "enabled": True,
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "ship_interval_seconds": 0.2,
        "max_backoff_seconds": 0.5,
        "storage_resolution_seconds": 1,
    }


@needs_moto
def test_cloudwatch_gets_compute_optimizer_names_and_dimensions(
    tmp_path: Path, moto: MotoServer, imds: FakeImds, agents_started: list
) -> None:
    config = agent_config(
        tmp_path,
        metadata={"provider": "aws", "endpoint": imds.url, "poll_seconds": 0.5},
        cloudwatch=cloudwatch_section(moto.url),
    )
    agent = AgentProcess(tmp_path, config).start()
    agents_started.append(agent)
    client = moto.client()

    def gpu_series() -> list[dict[str, Any]]:
        metrics = client.list_metrics(Namespace="CWAgent", MetricName="nvidia_smi_utilization_gpu")[
            "Metrics"
        ]
        with_instance = [
            m for m in metrics if {d["Name"] for d in m["Dimensions"]} == {"InstanceId", "index"}
        ]
        return with_instance if len(with_instance) == 8 else []

    series = wait_for("8 GPU series in CloudWatch", gpu_series, timeout=60)
    assert {d["Value"] for m in series for d in m["Dimensions"] if d["Name"] == "InstanceId"} == {
        imds.instance_id
    }
    assert sorted(
        int(d["Value"]) for m in series for d in m["Dimensions"] if d["Name"] == "index"
    ) == list(range(8))
    names = {m["MetricName"] for m in client.list_metrics(Namespace="CWAgent")["Metrics"]}
    assert {
        "nvidia_smi_utilization_gpu",
        "nvidia_smi_utilization_memory",
        "nvidia_smi_memory_used",
        "nvidia_smi_memory_total",
        "nvidia_smi_memory_free",
        "nvidia_smi_power_draw",
        "nvidia_smi_temperature_gpu",
    } <= names
    now = time.time()

    def stat(name: str, index: int, statistic: str) -> float | None:
        import datetime as dt

        points = client.get_metric_statistics(
            Namespace="CWAgent",
            MetricName=name,
            Dimensions=[
                {"Name": "InstanceId", "Value": imds.instance_id},
                {"Name": "index", "Value": str(index)},
            ],
            StartTime=dt.datetime.fromtimestamp(now - 120, dt.UTC),
            EndTime=dt.datetime.fromtimestamp(now + 60, dt.UTC),
            Period=300,
            Statistics=[statistic],
        )["Datapoints"]
        return points[0][statistic] if points else None

    assert stat("nvidia_smi_utilization_gpu", 2, "Maximum") == 25.0
    assert stat("nvidia_smi_utilization_gpu", 2, "Average") == pytest.approx(25.0)
    assert stat("nvidia_smi_memory_used", 2, "Maximum") == pytest.approx(3 * 1024)  # MB
    assert stat("nvidia_smi_memory_total", 2, "Maximum") == pytest.approx(85520809984 / 2**20)
    assert stat("nvidia_smi_power_draw", 2, "Maximum") == 120.0
    assert imds.unauthorised == 0  # every metadata read used the IMDSv2 token

    # the CloudWatch agent's own dimension set, so its dashboards see the same series
    def cwagent_series() -> list[dict[str, Any]]:
        metrics = client.list_metrics(Namespace="CWAgent", MetricName="nvidia_smi_utilization_gpu")
        found = [
            m
            for m in metrics["Metrics"]
            if {d["Name"] for d in m["Dimensions"]} == {"host", "index", "name", "InstanceId"}
        ]
        return found if len(found) == 8 else []

    series = wait_for("8 GPU series with the CloudWatch agent's dimensions", cwagent_series, 60)
    dims = {d["Name"]: d["Value"] for d in series[0]["Dimensions"]}
    assert dims["name"] == "NVIDIA H100 80GB HBM3" and dims["InstanceId"] == imds.instance_id
    assert dims["host"] == socket.gethostname()
    idle = client.list_metrics(Namespace="CWAgent", MetricName="finops_gpu_idle")["Metrics"]
    assert {len(m["Dimensions"]) for m in idle} == {2}  # finops' own metrics: one set


def test_spot_notice_runs_the_checkpoint_hook_exactly_once(
    tmp_path: Path, imds: FakeImds, agents_started: list
) -> None:
    runs = tmp_path / "hook-runs.txt"
    hook_command = [
        "/bin/sh",
        "-c",
        f'echo "$FINOPS_EVENT $FINOPS_INTERRUPTION_ACTION $FINOPS_INTERRUPTION_TIME $FINOPS_INSTANCE_ID" >> {runs}',
    ]
    config = agent_config(
        tmp_path,
        metadata={"provider": "aws", "endpoint": imds.url, "poll_seconds": 0.1},
        checkpoint={"hook": {"mode": "command", "command": hook_command, "timeout_seconds": 5}},
    )
    agent = AgentProcess(tmp_path, config).start()
    agents_started.append(agent)
    assert agent.metric("finops_agent_interruption_notice") is None
    imds.spot_action = {"action": "terminate", "time": "2026-11-28T16:02:00Z"}
    wait_for("the checkpoint hook", lambda: runs.exists() and runs.read_text(), timeout=10)
    wait_for(
        "the exported notice",
        lambda: (
            agent.metric(
                "finops_agent_interruption_notice", kind="interruption", action="terminate"
            )
            == 1.0
        ),
        timeout=5,
    )
    time.sleep(1.0)  # ~10 more polls see the same notice
    assert runs.read_text() == f"interruption terminate 2026-11-28T16:02:00Z {imds.instance_id}\n"
    assert agent.metric("finops_agent_hook_runs_total", event="interruption", outcome="ok") == 1.0
    # a restarted agent (same spool dir) sees the notice again but does not re-run the hook
    agent.kill(signal.SIGTERM)
    again = AgentProcess(tmp_path, config).start()
    agents_started.append(again)
    wait_for(
        "the notice after restart",
        lambda: again.metric("finops_agent_interruption_notice", kind="interruption") == 1.0,
        timeout=5,
    )
    time.sleep(0.5)
    assert runs.read_text().count("\n") == 1


@pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="Debian's prometheus not installed (./dev setup installs it)",
)
def test_prometheus_scrapes_the_agent_and_quantile_over_time_answers(
    tmp_path: Path, agents_started: list
) -> None:
    agent = AgentProcess(tmp_path, agent_config(tmp_path)).start()
    agents_started.append(agent)
    prom_port = free_port()
    target = agent.metrics_url.split("/")[2]
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 500ms, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: finops-agent\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    prom = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def query(expr: str) -> dict[str, float]:
            url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode(
                {"query": expr}
            )
            with urllib.request.urlopen(url, timeout=3) as resp:
                body = json.load(resp)
            assert body["status"] == "success", body
            return {
                r["metric"].get("gpu", ""): float(r["value"][1]) for r in body["data"]["result"]
            }

        wait_for(
            "4 scrapes of every GPU",
            lambda: (
                len(counts := query("count_over_time(DCGM_FI_DEV_GPU_UTIL[1m])")) == 8
                and min(counts.values()) >= 4
            ),
            timeout=25,
            every=0.5,
        )
        p95 = query("quantile_over_time(0.95, DCGM_FI_DEV_GPU_UTIL[1m])")
        assert p95 == {str(i): (0.0 if i == 7 else 10.0 * i + 5) for i in range(8)}
        memory = query('quantile_over_time(0.95, DCGM_FI_DEV_FB_USED{gpu="2"}[1m])')
        assert memory == {"2": 3 * 1024.0}
        tensor = query('quantile_over_time(0.5, DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{gpu="4"}[1m])')
        assert tensor == {"4": pytest.approx(0.225)}
        window_p95 = query(
            'quantile_over_time(0.95, finops_agent_window{metric="power_watts",stat="p95"}[1m])'
        )
        assert window_p95["2"] == 120.0
        assert query("up") == {"": 1.0}
        # dcgm-exporter's labels and metric types, as Prometheus itself parsed them
        by_bus = query(
            'DCGM_FI_DEV_GPU_UTIL{pci_bus_id="00000000:1A:00.0",DCGM_FI_DRIVER_VERSION="550.54.15"}'
        )
        assert by_bus == {"2": 25.0}
        url = f"http://127.0.0.1:{prom_port}/api/v1/metadata"
        with urllib.request.urlopen(url, timeout=3) as resp:
            metadata = json.load(resp)["data"]
        assert metadata["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"][0]["type"] == "counter"
        assert metadata["DCGM_FI_DEV_GPU_UTIL"][0]["type"] == "gauge"
        assert query("increase(DCGM_FI_DEV_ECC_SBE_VOL_TOTAL[1m])")["0"] == 0.0
    finally:
        prom.terminate()
        prom.wait(timeout=10)


@needs_moto
def test_metrics_endpoint_outage_then_every_spooled_record_arrives(
    tmp_path: Path, moto: MotoServer, agents_started: list
) -> None:
    proxy = TcpProxy(moto.port).up()
    config = agent_config(tmp_path, cloudwatch=cloudwatch_section(f"http://127.0.0.1:{proxy.port}"))
    agent = AgentProcess(tmp_path, config).start()
    agents_started.append(agent)
    try:
        wait_for(
            "first deliveries",
            lambda: (
                (agent.metric("finops_agent_delivered_records_total", sink="cloudwatch") or 0) >= 8
            ),
            timeout=15,
        )
        proxy.down()
        wait_for(
            "records piling up in the spool during the outage",
            lambda: (
                (agent.metric("finops_agent_spool_depth_records", sink="cloudwatch") or 0) >= 24
            ),
            timeout=15,
        )
        assert (agent.metric("finops_agent_delivery_failures_total", sink="cloudwatch") or 0) >= 1
        proxy.up()
        wait_for(
            "the spool to drain after the outage",
            lambda: agent.metric("finops_agent_spool_depth_records", sink="cloudwatch") == 0,
            timeout=20,
        )
        agent.kill(signal.SIGTERM)
    finally:
        proxy.down()
    records = exported_records(tmp_path / "windows.jsonl")  # every record the agent spooled
    assert len(records) >= 32
    starts = [r["window_start"] for r in records]
    got = cloudwatch_windows(moto.client(), "i-test", range(8), min(starts), max(starts))
    for gpu in range(8):
        expected = {
            r["window_start"] for r in records if r["gpu_index"] == gpu and r["sample_count"]
        }
        assert expected - got[gpu] == set(), f"GPU {gpu}: windows missing in CloudWatch"
    assert agent.proc is not None and agent.proc.returncode == 0


@needs_moto
def test_sigkill_and_restart_lose_nothing_spooled(
    tmp_path: Path, moto: MotoServer, agents_started: list
) -> None:
    proxy = TcpProxy(moto.port)  # down: CloudWatch unreachable while the first agent runs
    config = agent_config(tmp_path, cloudwatch=cloudwatch_section(f"http://127.0.0.1:{proxy.port}"))
    first = AgentProcess(tmp_path, config).start()
    agents_started.append(first)
    wait_for(
        "three windows spooled",
        lambda: (first.metric("finops_agent_spool_depth_records", sink="cloudwatch") or 0) >= 24,
        timeout=15,
    )
    first.kill(signal.SIGKILL)
    spooled = spooled_records(tmp_path / "spool")
    assert len(spooled) >= 24
    proxy.up()
    try:
        second = AgentProcess(tmp_path, config).start()
        agents_started.append(second)
        wait_for(
            "the restarted agent to deliver the spool",
            lambda: second.metric("finops_agent_spool_depth_records", sink="cloudwatch") == 0,
            timeout=20,
        )
        second.kill(signal.SIGTERM)
    finally:
        proxy.down()
    starts = [r["window_start"] for r in spooled]
    got = cloudwatch_windows(moto.client(), "i-test", range(8), min(starts), max(starts))
    for gpu in range(8):
        expected = {
            r["window_start"] for r in spooled if r["gpu_index"] == gpu and r["sample_count"]
        }
        assert expected and expected - got[gpu] == set(), f"GPU {gpu}: spooled windows lost"
    exported = {r["record_id"] for r in exported_records(tmp_path / "windows.jsonl")}
    assert {r["record_id"] for r in spooled} <= exported
