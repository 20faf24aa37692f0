"""Input-bound diagnosis: /proc parsing on recorded snapshots, the levels' hysteresis, and the
verdict per GPU and window through the agent with stubbed NVML (tests/agents/proc/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aifinops.agents.agent import Agent
from aifinops.agents.config import parse_config
from aifinops.agents.hostload import (
    CPU,
    IO,
    PAGE_CACHE,
    Diagnoser,
    HostLoad,
    Level,
    ProcSnapshot,
    Thresholds,
    Verdict,
    load_between,
    parse_stat,
    read_proc,
)
from aifinops.agents.nvml import NvmlSampler
from aifinops.agents.prom import AgentCollector
from aifinops.agents.records import HostInfo

PROC = Path(__file__).resolve().parent / "proc"


def recorded(scenario: str, moment: str) -> ProcSnapshot:
    folder = PROC / scenario / moment
    return read_proc(folder, float((folder / "taken_at").read_text()))


def recorded_load(scenario: str) -> HostLoad:
    return load_between(recorded(scenario, "before"), recorded(scenario, "after"))


# -- /proc parsing, hand-computed from the recorded files --------------------------------------
def test_busy_host_recording() -> None:
    load = recorded_load("busy")
    # cpu line deltas: user 1735, nice 56, system 247, idle 0, iowait 0, softirq 3, steal 1
    assert load.cpu_busy_ratio == pytest.approx(2042 / 2042)
    assert load.iowait_ratio == 0.0
    assert load.cpus == 2
    seconds = 1796427911.533484186 - 1796427901.409485287  # taken_at: after - before
    assert load.seconds == pytest.approx(seconds, abs=1e-2)
    # PSI io some total: 176417706 - 176010425 = 407281 us
    assert load.io_pressure_ratio == pytest.approx(0.407281 / load.seconds)
    # vmstat: pgmajfault +27, workingset_refault_file +4039, pgpgin +15872 KiB
    assert load.major_faults_per_second == pytest.approx(27 / load.seconds)
    assert load.page_cache_refaults_per_second == pytest.approx(4039 / load.seconds)
    assert load.page_in_bytes_per_second == pytest.approx(15872 * 1024 / load.seconds)
    assert load.missing == {}


def test_io_and_page_cache_recordings() -> None:
    io = recorded_load("io")
    assert io.io_pressure_ratio == pytest.approx(1.207788 / io.seconds)  # 12 %
    assert io.major_faults_per_second == 0.0
    cache = recorded_load("cache")
    assert cache.major_faults_per_second == pytest.approx(55195 / cache.seconds)  # 5,471/s
    assert cache.page_cache_misses_per_second == pytest.approx((55195 + 736) / cache.seconds)


def test_old_kernel_without_psi_falls_back_to_iowait_and_reads_the_old_refault_name() -> None:
    load = recorded_load("old-kernel-io")
    assert load.io_pressure_ratio is None
    assert "not present" in load.missing["io_pressure"]
    assert load.io_stall_ratio == load.iowait_ratio == 0.0
    assert load.page_cache_refaults_per_second == pytest.approx(94 / load.seconds)


def test_unreadable_proc_is_missing_never_zero(tmp_path: Path) -> None:
    snap = read_proc(tmp_path / "nothing", 10.0)
    assert snap.cpu_total_ticks is None and snap.major_faults is None
    assert {name for name, _ in snap.missing} == {"cpu", "io_pressure", "vmstat"}
    load = load_between(snap, read_proc(tmp_path / "nothing", 20.0))
    assert load.cpu_busy_ratio is None and load.page_cache_misses_per_second is None
    host = Diagnoser().host(load)
    assert host.busy is None
    verdict, _ = Diagnoser().gpu("GPU-0", 10.0, True, host)
    assert verdict == Verdict.UNKNOWN


def test_counter_going_backwards_is_unknown_with_the_reason() -> None:
    before = ProcSnapshot(taken_at=0.0, cpu_busy_ticks=500, cpu_iowait_ticks=0, cpu_total_ticks=900)
    after = ProcSnapshot(taken_at=60.0, cpu_busy_ticks=10, cpu_iowait_ticks=0, cpu_total_ticks=20)
    load = load_between(before, after)
    assert load.cpu_busy_ratio is None
    assert "backwards" in load.missing["cpu"]


def test_parse_stat_old_kernel_with_four_columns() -> None:
    busy, iowait, total, cpus = parse_stat("cpu  10 2 3 85\ncpu0 10 2 3 85\nintr 1\n")
    assert (busy, iowait, total, cpus) == (15, 0, 100, 1)


# -- hysteresis ---------------------------------------------------------------------------------
def test_level_holds_its_state_inside_the_band() -> None:
    level = Level(0.90, 0.15)  # on at 0.90, off below 0.765
    noisy = [0.91, 0.85, 0.79, 0.74, 0.80, 0.89, 0.90]
    assert [level.update(v) for v in noisy] == [True, True, True, False, False, False, True]
    plain = Level(0.90, 0.0)  # without hysteresis the same noise flips it four times
    assert [plain.update(v) for v in noisy] == [True, False, False, False, False, False, True]
    assert level.update(None) is None and level.state is True  # unknown keeps the state


def test_gpu_busy_boundary_does_not_flap() -> None:
    diagnoser = Diagnoser(Thresholds(gpu_busy_percent=60.0, hysteresis=0.15))  # off below 51
    saturated = diagnoser.host(HostLoad(seconds=60, cpu_busy_ratio=0.95, iowait_ratio=0.0,
                                        io_pressure_ratio=0.0, major_faults_per_second=0.0,
                                        page_cache_refaults_per_second=0.0))  # fmt: skip
    activity = [62.0, 58.0, 55.0, 61.0, 50.0, 59.0, 60.0]
    verdicts = [diagnoser.gpu("GPU-0", a, True, saturated)[0] for a in activity]
    busy, waiting = Verdict.GPU_BUSY, Verdict.WAITING_ON_DATA
    assert verdicts == [busy, busy, busy, busy, waiting, waiting, busy]


def load(cpu: float, io: float = 0.0, faults: float = 0.0) -> HostLoad:
    return HostLoad(
        seconds=60.0,
        cpu_busy_ratio=cpu,
        iowait_ratio=0.0,
        io_pressure_ratio=io,
        major_faults_per_second=faults,
        page_cache_refaults_per_second=0.0,
    )


def test_each_cause_on_its_own_and_the_way_back_to_idle() -> None:
    d = Diagnoser()  # defaults: GPU 60 %, CPU 0.90, I/O 0.10, 1000 misses/s, hysteresis 0.15
    cases = [
        (load(0.95), (CPU,)),
        (load(0.80), (CPU,)),  # 0.80 >= 0.765: still saturated
        (load(0.70), ()),
        (load(0.30, io=0.25), (IO,)),
        (load(0.30, io=0.0), ()),
        (load(0.30, faults=4000.0), (PAGE_CACHE,)),
        (load(0.92, io=0.3, faults=4000.0), (CPU, IO, PAGE_CACHE)),
        (load(0.10), ()),
    ]
    for host_load, causes in cases:
        verdict, found = d.gpu("GPU-0", 20.0, True, d.host(host_load))
        assert found == causes
        assert verdict == (Verdict.WAITING_ON_DATA if causes else Verdict.IDLE)


def test_no_process_is_never_waiting_on_data() -> None:
    d = Diagnoser()
    assert d.gpu("GPU-7", 0.0, False, d.host(load(0.95)))[0] == Verdict.GPU_UNUSED
    assert d.gpu("GPU-7", 0.0, False, d.host(load(0.10)))[0] == Verdict.IDLE
    assert d.gpu("GPU-7", None, False, d.host(None))[0] == Verdict.UNKNOWN


# -- through the agent, stubbed NVML (healthy8: SM activity 0.8 x (10 i + 5) %, GPU 7 idle) -----
class Metadata:
    cloud = "aws"

    def host_info(self) -> HostInfo:
        return HostInfo("i-0123", "g6e.48xlarge", "us-east-1", "spot", "aws", "gpu-host-1")

    def poll(self) -> list:
        return []


def run_window(tmp_path: Path, fake_nvml, scenario: str) -> Agent:
    """One 5-tick window on healthy8 with `scenario`'s readings before and after it."""
    proc = tmp_path / "proc"
    shutil.copytree(PROC / scenario / "before", proc)
    before = float((proc / "taken_at").read_text())
    after = float((PROC / scenario / "after" / "taken_at").read_text())
    fake_nvml("healthy8")
    cfg = parse_config(
        {
            "agent": {"sample_interval_seconds": 0.1, "window_seconds": 60.0},
            "spool": {"dir": str(tmp_path / "spool"), "fsync": False},
            "export": {"path": str(tmp_path / "windows.jsonl")},
            "prometheus": {"enabled": False},
            # GPUs 4, 5, 6 (36, 44, 52 % SM activity) are busy; 0-3 are not; 7 has no process
            "diagnosis": {"proc_root": str(proc), "gpu_busy_percent": 30},
        },
        source="test",
    )
    agent = Agent(cfg, NvmlSampler(), metadata=Metadata(), clock=lambda: before)
    agent.start()
    for t in range(5):
        agent.tick(before + t)
    shutil.rmtree(proc)
    shutil.copytree(PROC / scenario / "after", proc)
    agent.close_window(before, after)
    agent.close()
    return agent


def exported(tmp_path: Path) -> list[dict]:
    lines = (tmp_path / "windows.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize(
    ("scenario", "low_gpus", "causes", "no_process"),
    [
        ("busy", "waiting-on-data", ["cpu"], "gpu-unused"),
        ("io", "waiting-on-data", ["cpu", "io"], "gpu-unused"),
        ("cache", "waiting-on-data", ["cpu", "io", "page-cache"], "gpu-unused"),
        ("idle", "gpu-and-host-idle", [], "gpu-and-host-idle"),
    ],
)
def test_verdict_per_gpu_in_the_export_file(
    tmp_path: Path, fake_nvml, scenario: str, low_gpus: str, causes: list, no_process: str
) -> None:
    run_window(tmp_path, fake_nvml, scenario)
    records = {r["gpu_index"]: r for r in exported(tmp_path)}
    assert [records[i]["input_verdict"] for i in range(8)] == [low_gpus] * 4 + ["gpu-busy"] * 3 + [
        no_process
    ]
    assert records[0]["input_causes"] == causes
    assert records[4]["input_causes"] == []
    host = records[0]["host_load"]
    assert host == records[7]["host_load"]  # host-wide, in every GPU's record
    assert host["cpus"] == 2 and host["missing"] == {}


def test_prometheus_renders_the_verdicts_and_host_load(tmp_path: Path, fake_nvml) -> None:
    agent = run_window(tmp_path, fake_nvml, "cache")
    families = {f.name: f for f in AgentCollector(agent.snapshot).collect()}
    verdict = families["finops_agent_input_verdict"]
    on = {(s.labels["gpu"], s.labels["verdict"]) for s in verdict.samples if s.value == 1.0}
    assert ("0", "waiting-on-data") in on and ("5", "gpu-busy") in on and ("7", "gpu-unused") in on
    assert len(verdict.samples) == 8 * len(Verdict)  # every state, 0 or 1, for stable series
    causes = {s.labels["cause"] for s in families["finops_agent_input_wait_cause"].samples}
    assert causes == {"cpu", "io", "page-cache"}
    faults = families["finops_agent_host_major_faults_per_second"].samples[0].value
    assert faults == pytest.approx(55195 / 10.088, rel=1e-3)


def test_diagnosis_off_leaves_the_fields_null(tmp_path: Path, fake_nvml) -> None:
    fake_nvml("healthy8")
    cfg = parse_config(
        {
            "spool": {"dir": str(tmp_path / "spool"), "fsync": False},
            "export": {"path": ""},
            "prometheus": {"enabled": False},
            "diagnosis": {"enabled": False},
        },
        source="test",
    )
    agent = Agent(cfg, NvmlSampler(), metadata=Metadata())
    agent.start()
    agent.tick(1000.0)
    records = agent.close_window(1000.0, 1060.0)
    agent.close()
    assert all(r.input_verdict is None and r.host_load is None for r in records)


def test_config_errors_name_the_key() -> None:
    from aifinops.agents.config import ConfigError

    with pytest.raises(ConfigError, match=r"\[diagnosis\] hysteresis must be in \[0, 1\)"):
        parse_config({"diagnosis": {"hysteresis": 1.5}}, source="f.toml")
    with pytest.raises(ConfigError, match="did you mean 'gpu_busy_percent'"):
        parse_config({"diagnosis": {"gpu_busy_percnt": 50}}, source="f.toml")


def test_host_cpu_and_memory_stats_per_tick(tmp_path: Path, fake_nvml) -> None:
    """Each tick reads /proc/stat's cpu line and /proc/meminfo; the window gets their stats
    (the host CPU and memory rightsizing reads as host_cpu_util_percent / _memory_used_bytes)."""
    proc = tmp_path / "proc"
    proc.mkdir()
    shutil.copy(PROC / "meminfo", proc / "meminfo")

    def cpu(user: int, system: int, idle: int) -> None:
        (proc / "stat").write_text(f"cpu  {user} 0 {system} {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0\n")

    cpu(1000, 0, 1000)  # the baseline read at start
    fake_nvml("healthy8", gpus=1)
    cfg = parse_config(
        {
            "spool": {"dir": str(tmp_path / "spool"), "fsync": False},
            "export": {"path": ""},
            "prometheus": {"enabled": False},
            "diagnosis": {"proc_root": str(proc)},
        },
        source="test",
    )
    agent = Agent(cfg, NvmlSampler(), metadata=Metadata(), clock=lambda: 1000.0)
    agent.start()
    # busy / total ticks since the previous read: 100/100, 50/200, 0/100, 300/400
    for t, (user, system, idle) in enumerate(
        [(1100, 0, 1000), (1130, 20, 1150), (1130, 20, 1250), (1330, 120, 1350)]
    ):
        cpu(user, system, idle)
        agent.tick(1000.0 + t)
    records = agent.close_window(1000.0, 1060.0)
    agent.close()
    stats = records[0].host_cpu_util_percent
    assert stats is not None
    assert (stats.min, stats.max) == (0.0, 100.0)
    assert stats.mean == pytest.approx((100 + 25 + 0 + 75) / 4)
    used = (24683664 - 20716444) * 1024  # MemTotal - MemAvailable of the recorded meminfo
    memory = records[0].host_memory_used_bytes
    assert memory is not None and memory.max == used
    line = json.loads(records[0].to_line())
    assert line["host_cpu_util_percent"]["max"] == 100.0  # what aifinops.rightsizing reads
