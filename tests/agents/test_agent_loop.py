"""The run loop in-process: windows, idle detection and hook, interruption hook once,
work reporting, replay, and what Prometheus and CloudWatch are given."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from agent_procs import free_port

from aifinops.agents.agent import Agent
from aifinops.agents.cloudwatch import datums_for
from aifinops.agents.config import AgentConfig, CloudWatchSection, parse_config
from aifinops.agents.metadata import Notice
from aifinops.agents.nvml import NvmlSampler
from aifinops.agents.records import HostInfo
from aifinops.agents.replay import ReplaySource, sample_to_json
from aifinops.agents.rollup import GPU_COLUMNS


class FakeMetadata:
    cloud = "aws"

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def host_info(self) -> HostInfo:
        return HostInfo("i-0123", "p5.48xlarge", "us-east-1", "spot", "aws")

    def poll(self) -> list[Notice]:
        return list(self.notices)


def config(tmp_path: Path, extra: dict | None = None) -> AgentConfig:
    raw: dict = {
        "agent": {"sample_interval_seconds": 0.1, "window_seconds": 1.0},
        "spool": {"dir": str(tmp_path / "spool"), "fsync": False},
        "export": {"path": str(tmp_path / "windows.jsonl")},
        "prometheus": {"enabled": False},
        "tags": {"finops:fleet": "train-a"},
    }
    for section, values in (extra or {}).items():
        raw.setdefault(section, {}).update(values)
    return parse_config(raw, source="test")


def started_agent(tmp_path: Path, fake_nvml, scenario: str = "healthy8", **extra: dict) -> Agent:
    fake_nvml(scenario)
    agent = Agent(config(tmp_path, extra), NvmlSampler(), metadata=FakeMetadata())
    agent.start()
    return agent


def test_window_records_are_spooled_and_exported(tmp_path: Path, fake_nvml) -> None:
    agent = started_agent(tmp_path, fake_nvml)
    for t in range(5):
        agent.tick(1000.0 + t)
    agent.work.add_report({"units": {"steps": 4, "tokens": 1024}})
    records = agent.close_window(1000.0, 1005.0)
    assert [r.gpu_index for r in records] == list(range(8))
    rec = records[2]
    assert rec.host.instance_id == "i-0123" and rec.host.lifecycle == "spot"
    assert rec.sample_count == 5
    util = rec.stats["gpu_util_percent"]
    assert util is not None and util.p95 == 25.0
    assert rec.stats["tensor_active_ratio"] is not None  # GPM from the 2nd reading on
    assert rec.work_units == {"steps": 4.0, "tokens": 1024.0}
    agent.close()
    exported = [json.loads(line) for line in (tmp_path / "windows.jsonl").read_text().splitlines()]
    assert [r["gpu_index"] for r in exported] == list(range(8))
    assert exported[0]["tags"] == {"finops:fleet": "train-a"}
    assert agent.spool is not None and agent.spool.depth() == 0


def test_the_export_rolls_windows_up_into_one_record_per_gpu_per_5_minutes(
    tmp_path: Path, fake_nvml
) -> None:
    """Seven 1-minute windows: the first interval's five in one record, the last two
    written when the agent stops; the spool and the other sinks keep every window."""
    # no input diagnosis: its verdict may change window to window, and a run has one
    agent = started_agent(
        tmp_path, fake_nvml, export={"rollup_seconds": 300}, diagnosis={"enabled": False}
    )
    t0 = 1_764_000_000.0
    windows = []
    for w in range(7):
        for s in range(3):
            agent.tick(t0 + 60 * w + 20 * s)
        agent.work.add_report({"units": {"steps": 2}})
        windows += agent.close_window(t0 + 60 * w, t0 + 60 * w + 60)
    agent.close()
    exported = [json.loads(line) for line in (tmp_path / "windows.jsonl").read_text().splitlines()]
    # one line per host and interval: the host's fields once, an array of numbers per GPU
    spans = [
        (r["schema_version"], r["window_start"], r["window_end"], r["windows"]) for r in exported
    ]
    assert spans == [(2, t0, t0 + 300, 5), (2, t0 + 300, t0 + 420, 2)]
    assert all([gpu[0] for gpu in r["gpus"]] == list(range(8)) for r in exported)
    gpu2 = dict(zip(GPU_COLUMNS, exported[0]["gpus"][2], strict=True))
    first = [w for w in windows if w.gpu_index == 2][:5]
    util = [w.stats["gpu_util_percent"] for w in first]
    assert gpu2["gpu_util_percent_max"] == max(u.max for u in util if u)
    assert gpu2["gpu_util_percent_mean"] == pytest.approx(sum(u.mean for u in util if u) / 5)
    assert gpu2["sample_count"] == 15 and exported[0]["work_units"] == {"steps": 10.0}
    assert exported[0]["instance_id"] == "i-0123" and "gpu_uuid" not in exported[0]
    # 2 lines instead of 8 GPUs x 7 windows
    state = json.loads((tmp_path / "windows.jsonl.rollup.json").read_text())
    assert state["runs"] == {} and len(state["folded_until"]) == 8


def test_idle_gpu_is_flagged_after_n_minutes_and_host_idle_hook_runs_once(
    tmp_path: Path, fake_nvml
) -> None:
    marker = tmp_path / "idle.json"
    agent = started_agent(
        tmp_path,
        fake_nvml,
        idle={"minutes": 1.0, "hook": {"mode": "file", "file": str(marker)}},
    )
    t0 = 2000.0
    for t in range(0, 61, 5):
        agent.tick(t0 + t)
    assert agent.gpu_idle(7, t0 + 60) is True  # no process, 0 % for 60 s
    assert agent.gpu_idle(2, t0 + 60) is False
    assert not marker.exists()  # only one GPU idle: the host is busy
    records = agent.close_window(t0, t0 + 61)
    assert records[7].idle is True and records[7].idle_sample_ratio == 1.0
    assert records[2].idle is False and records[2].idle_sample_ratio == 0.0
    agent.close()


def test_host_idle_hook_runs_when_every_gpu_is_idle(tmp_path: Path, fake_nvml) -> None:
    marker = tmp_path / "idle.json"
    nv = fake_nvml("healthy8", gpus=8)
    nv.util_percent = lambda index: 0.0  # every GPU at 0 %...
    nv.nvmlDeviceGetComputeRunningProcesses_v3 = lambda handle: []  # ...and no process
    cfg = config(
        tmp_path, {"idle": {"minutes": 0.5, "hook": {"mode": "file", "file": str(marker)}}}
    )
    agent = Agent(cfg, NvmlSampler(), metadata=FakeMetadata())
    agent.start()
    for t in range(0, 40, 2):
        agent.tick(3000.0 + t)
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    event = json.loads(marker.read_text())
    assert event["event"] == "idle" and event["idle_gpus"] == "0,1,2,3,4,5,6,7"
    deadline = time.monotonic() + 5
    while not agent.counters.hook_runs and time.monotonic() < deadline:
        time.sleep(0.02)  # the hook thread counts its outcome just after writing the file
    assert agent.counters.hook_runs == {("idle", "ok"): 1}
    marker.unlink()
    for t in range(40, 60, 2):
        agent.tick(3000.0 + t)
    time.sleep(0.1)
    assert not marker.exists()  # once per idle episode
    agent.close()


def test_interruption_notice_runs_checkpoint_hook_once_even_after_restart(
    tmp_path: Path, fake_nvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "hook.out"
    hook = {
        "mode": "command",
        "command": [
            sys.executable,
            "-c",
            "import os; open(os.environ['OUT'], 'a').write("
            "os.environ['FINOPS_INTERRUPTION_ACTION'] + ' ' + os.environ['FINOPS_INTERRUPTION_TIME'] + '\\n')",
        ],
    }
    notice = Notice(
        "interruption",
        "terminate",
        "2026-11-28T16:00:00Z",
        118.0,
        "aws:i-0123:terminate:2026-11-28T16:00:00Z",
    )
    for _ in range(2):  # a restarted agent sees the same notice again
        agent = started_agent(tmp_path, fake_nvml, checkpoint={"hook": hook})
        monkeypatch.setenv("OUT", str(out))
        for _ in range(3):
            agent.handle_notices([notice])
        agent.tick(5000.0)
        assert agent.notices["interruption"].action == "terminate"
        records = agent.close_window(5000.0, 5001.0)
        assert records[0].interruption_action == "terminate"
        deadline = time.monotonic() + 5
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        agent.close()
    assert out.read_text() == "terminate 2026-11-28T16:00:00Z\n"


def test_rebalance_runs_the_hook_only_when_asked(tmp_path: Path, fake_nvml) -> None:
    marker = tmp_path / "ckpt.json"
    rebalance = Notice("rebalance", "rebalance", "2026-11-28T16:00:00Z", 120.0, "aws:i:rebalance:x")
    agent = started_agent(
        tmp_path, fake_nvml, checkpoint={"hook": {"mode": "file", "file": str(marker)}}
    )
    agent.handle_notices([rebalance])
    time.sleep(0.1)
    assert not marker.exists() and "rebalance" in agent.notices
    agent.close()
    agent = started_agent(
        tmp_path / "b",
        fake_nvml,
        checkpoint={"on_rebalance": True, "hook": {"mode": "file", "file": str(marker)}},
    )
    agent.handle_notices([rebalance])
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert json.loads(marker.read_text())["action"] == "rebalance"
    agent.close()


def test_work_reports_over_http_and_file(tmp_path: Path, fake_nvml) -> None:
    port = free_port()
    work_file = tmp_path / "work.jsonl"
    agent = started_agent(
        tmp_path, fake_nvml, work={"listen": f"127.0.0.1:{port}", "file": str(work_file)}
    )

    def post(body: bytes) -> int:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/work", data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert post(b'{"unit": "tokens", "amount": 4096}') == 204
    assert post(b'{"units": {"steps": 1, "tokens": 4096}}') == 204
    assert post(b'{"unit": "tokens", "amount": -1}') == 400
    assert post(b'{"unit": "Bad Unit", "amount": 1}') == 400
    work_file.write_text('{"unit": "steps", "amount": 2}\n{"unit": "steps", "amo')  # torn line
    agent.tick(6000.0)
    with open(work_file, "a") as f:
        f.write('unt": 3}\n')
    agent.tick(6001.0)
    records = agent.close_window(6000.0, 6002.0)
    assert records[0].work_units == {"tokens": 8192.0, "steps": 6.0}
    assert agent.close_window(6002.0, 6003.0) == []  # no samples: no record
    agent.tick(6003.0)
    assert agent.close_window(6003.0, 6004.0)[0].work_units == {}
    assert agent.work.totals() == {"tokens": 8192.0, "steps": 6.0}
    agent.close()


def test_lost_gpu_window_is_marked_and_the_rest_report(tmp_path: Path, fake_nvml) -> None:
    fake_nvml("lost_mid_run", lose_after=2)
    agent = Agent(config(tmp_path), NvmlSampler(), metadata=FakeMetadata())
    agent.start()
    for t in range(4):
        agent.tick(7000.0 + t)
    records = agent.close_window(7000.0, 7004.0)
    assert records[5].lost is True and records[5].sample_count == 2
    assert all(not r.lost and r.sample_count == 4 for r in records if r.gpu_index != 5)
    agent.close()


def test_replay_runs_a_recorded_trace_through_the_pipeline(tmp_path: Path, fake_nvml) -> None:
    fake_nvml("healthy8")
    sampler = NvmlSampler()
    sampler.start()
    trace = tmp_path / "trace.jsonl"
    with open(trace, "w") as f:
        for t in range(3):
            for s in sampler.sample(now=100.0 + t):
                f.write(json.dumps(sample_to_json(s)) + "\n")
    source = ReplaySource(trace)
    agent = Agent(config(tmp_path), source, metadata=FakeMetadata())
    agent.start()
    agent.run(duration_seconds=10)  # stops when the trace ends
    assert source.exhausted
    agent.close()  # waits for the export shipper to deliver
    exported = [json.loads(line) for line in (tmp_path / "windows.jsonl").read_text().splitlines()]
    assert sum(r["sample_count"] for r in exported if r["gpu_index"] == 4) == 3
    assert {r["gpu_util_percent"]["max"] for r in exported if r["gpu_index"] == 4} == {45.0}


def test_replay_rejects_a_file_that_is_not_a_trace(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"hello": 1}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: not a recorded sample"):
        ReplaySource(bad).start()


def test_prometheus_collector_uses_dcgm_names_and_agent_metrics(tmp_path: Path, fake_nvml) -> None:
    from aifinops.agents.prom import build_registry, exposition

    agent = started_agent(tmp_path, fake_nvml, "not_supported")
    agent.tick(8000.0)
    agent.tick(8001.0)
    agent.close_window(8000.0, 8002.0)
    text = exposition(build_registry(agent.snapshot)).decode()
    agent.close()

    def value(line_start: str) -> float:
        line = next(ln for ln in text.splitlines() if ln.startswith(line_start))
        return float(line.rsplit(" ", 1)[1])

    gpu0 = (
        f'DCGM_FI_DRIVER_VERSION="550.54.15",Hostname="{agent.host.hostname}",UUID="GPU-00000000-0000-0000-0000-'
        '000000000000",device="nvidia0",gpu="0",modelName="NVIDIA H100 80GB HBM3",'
        'pci_bus_id="00000000:18:00.0"'
    )
    assert value(f"DCGM_FI_DEV_GPU_UTIL{{{gpu0}}}") == 5.0  # dcgm-exporter's full label set
    gpu2 = 'gpu="2"'
    fb2 = next(
        ln for ln in text.splitlines() if ln.startswith("DCGM_FI_DEV_FB_USED{") and gpu2 in ln
    )
    assert float(fb2.rsplit(" ", 1)[1]) == 3 * 1024  # MiB, as dcgm-exporter; v2: no reservation
    assert value(f"DCGM_FI_DEV_FB_RESERVED{{{gpu0}}}") == 512.0
    assert value(f"DCGM_FI_DEV_FB_FREE{{{gpu0}}}") == 81559 - 1024 - 512
    power_lines = [ln for ln in text.splitlines() if ln.startswith("DCGM_FI_DEV_POWER_USAGE{")]
    assert len(power_lines) == 7 and not any(
        'gpu="3"' in ln for ln in power_lines
    )  # unsupported: absent
    assert "finops_agent_gpu_metric_unsupported{" in text and 'metric="power"' in text
    assert sum(ln.startswith("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{") for ln in text.splitlines()) == 7
    # ECC totals: counters under dcgm-exporter's exact names (no `_total` added)
    assert "# TYPE DCGM_FI_DEV_ECC_SBE_VOL_TOTAL counter\n" in text
    assert value(f"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{{{gpu0}}}") == 2.0
    assert "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL_total" not in text
    assert value("finops_agent_spool_dropped_records_total") == 0.0
    assert 'finops_agent_spool_depth_records{sink="export"}' in text
    assert value("finops_agent_samples_total") == 2.0
    assert "finops_agent_window{" in text and 'stat="p95"' in text
    assert "process_resident_memory_bytes" in text


def test_cloudwatch_datums_have_compute_optimizer_names_units_and_dimensions() -> None:
    record = json.loads(
        (Path(__file__).resolve().parents[2] / "agents" / "SPOOL_FORMAT.md")
        .read_text()
        .split("```json\n")[1]
        .split("```")[0]
        .replace("\n", "")
    )
    datums = datums_for(record, CloudWatchSection(tag_dimensions=("finops:fleet",)))
    by_name: dict[str, list[dict]] = {}
    for d in datums:
        by_name.setdefault(d["MetricName"], []).append(d)
    for name in (
        "nvidia_smi_utilization_gpu",
        "nvidia_smi_utilization_memory",
        "nvidia_smi_memory_used",
        "nvidia_smi_memory_total",
        "nvidia_smi_memory_free",
        "nvidia_smi_power_draw",
        "nvidia_smi_temperature_gpu",
    ):
        assert name in by_name, name
    util = by_name["nvidia_smi_utilization_gpu"]
    assert util[0]["Dimensions"] == [
        {"Name": "InstanceId", "Value": "i-0abc123"},
        {"Name": "index", "Value": "3"},
    ]
    assert util[1]["Dimensions"] == [  # what the CloudWatch agent emits for nvidia_smi
        {"Name": "host", "Value": "ip-10-0-0-5"},
        {"Name": "index", "Value": "3"},
        {"Name": "name", "Value": "NVIDIA H100 80GB HBM3"},
        {"Name": "InstanceId", "Value": "i-0abc123"},
    ]
    assert util[2]["Dimensions"] == [
        {"Name": "finops:fleet", "Value": "train-a"},
        {"Name": "InstanceType", "Value": "p5.48xlarge"},
    ]
    assert len(util) == 3 and all(d["StatisticValues"] == util[0]["StatisticValues"] for d in util)
    # the agent's own metrics do not pretend to come from the CloudWatch agent
    assert [len(d["Dimensions"]) for d in by_name["finops_gpu_idle"]] == [2, 2]
    no_cwagent = datums_for(record, CloudWatchSection(cwagent_dimensions=False))
    assert {len(d["Dimensions"]) for d in no_cwagent} == {2}
    assert util[0]["StatisticValues"] == {
        "SampleCount": 60.0,
        "Sum": pytest.approx(99.2 * 60),
        "Minimum": 97.0,
        "Maximum": 100.0,
    }
    used = by_name["nvidia_smi_memory_used"][0]["StatisticValues"]
    assert used["Maximum"] == pytest.approx(72000000000 / 2**20)  # MB, as the CloudWatch agent
    free = by_name["nvidia_smi_memory_free"][0]["StatisticValues"]
    # as nvidia-smi: neither processes nor the driver's reservation hold it
    assert free["Minimum"] == pytest.approx((85520809984 - 536870912 - 72000000000) / 2**20)
    assert datums_for({**record, "sample_count": 0}, CloudWatchSection()) == []
    mirrored = datums_for(record, CloudWatchSection(extra_dimensions=("name", "host")))[0]
    assert mirrored["Dimensions"] == [
        {"Name": "InstanceId", "Value": "i-0abc123"},
        {"Name": "index", "Value": "3"},
        {"Name": "name", "Value": "NVIDIA H100 80GB HBM3"},
        {"Name": "host", "Value": "ip-10-0-0-5"},
    ]


def test_spool_bound_drops_are_counted_and_exported(tmp_path: Path, fake_nvml) -> None:
    from aifinops.agents.prom import build_registry, exposition

    agent = started_agent(tmp_path, fake_nvml, spool={"max_bytes": 65536, "segment_bytes": 8192})
    for shipper in agent.shippers:  # the sink is down: nothing leaves the spool
        shipper.stop()
        shipper.join(timeout=5)
    for window in range(12):  # 12 windows x 8 records x ~1.4 kB > 64 kB
        agent.tick(9000.0 + window)
        agent.close_window(9000.0 + window, 9001.0 + window)
    assert agent.spool is not None
    dropped = agent.spool.dropped_records_total
    assert dropped > 0 and dropped + agent.spool.depth("export") == 96
    text = exposition(build_registry(agent.snapshot)).decode()
    assert f"finops_agent_spool_dropped_records_total {float(dropped)}" in text
    agent.close(flush_seconds=0)


def test_a_batch_botocore_refuses_is_rejected_for_good_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aifinops.agents.cloudwatch as cloudwatch
    from aifinops.agents.shipping import RejectedBatch

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    publisher = cloudwatch.CloudWatchPublisher(
        CloudWatchSection(endpoint_url="http://127.0.0.1:9"), "us-east-1"
    )
    record = {"window_start": time.time(), "sample_count": 1}
    bad = [{"MetricName": "x", "Dimensions": [{"Name": "team", "Value": ""}], "Value": 1.0}]
    monkeypatch.setattr(cloudwatch, "datums_for", lambda record, section: bad)
    with pytest.raises(RejectedBatch, match="Invalid length"):  # refused before any request
        publisher.publish([record])


def test_dimension_values_from_the_host_are_made_acceptable() -> None:
    from aifinops.agents.cloudwatch import dimension_value

    assert dimension_value("") == "unknown"
    assert dimension_value(None) == "unknown"
    assert dimension_value("gpu-\u00e9\n") == "gpu-??"
    assert len(dimension_value("x" * 2000)) == 1024


def test_prometheus_shows_mig_instances_and_why_utilisation_is_missing(
    tmp_path: Path, fake_nvml
) -> None:
    from aifinops.agents.prom import build_registry, exposition

    agent = started_agent(tmp_path, fake_nvml, "mig")
    agent.tick(8000.0)
    text = exposition(build_registry(agent.snapshot)).decode()
    agent.close()
    lines = text.splitlines()
    used = [ln for ln in lines if ln.startswith("DCGM_FI_DEV_FB_USED{") and 'gpu="0"' in ln]
    assert len(used) == 2 and all("GPU_I_ID=" in ln for ln in used)  # per GPU instance only
    by_instance = {ln.split('GPU_I_ID="')[1][0]: float(ln.rsplit(" ", 1)[1]) for ln in used}
    assert by_instance == {"1": 3 * 1024.0, "2": 0.0}
    assert not any(ln.startswith("DCGM_FI_DEV_GPU_UTIL{") and 'gpu="0"' in ln for ln in lines)
    unsupported = [
        ln
        for ln in lines
        if ln.startswith("finops_agent_gpu_metric_unsupported{") and 'gpu="0"' in ln
    ]
    assert any(
        'metric="utilization"' in ln and "not supported under MIG" in ln for ln in unsupported
    )
    mig = {
        ln.split('gpu="')[1].split('"')[0]: float(ln.rsplit(" ", 1)[1])
        for ln in lines
        if ln.startswith("finops_agent_gpu_mig_enabled{")
    }
    assert mig["0"] == 1.0 and mig["1"] == 0.0
    process_count = next(
        ln for ln in lines if ln.startswith("finops_agent_gpu_process_count{") and 'gpu="0"' in ln
    )
    assert float(process_count.rsplit(" ", 1)[1]) == 1.0  # from the instances' own lists
