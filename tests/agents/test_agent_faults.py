"""Faults a GPU host meets: a full disk, a torn export file. The agent keeps working."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from agent_procs import AgentProcess, FakeImds, agent_config, exported_records, wait_for
from test_agent_loop import FakeMetadata, config

import aifinops.agents.shipping as shipping_module
import aifinops.agents.spool as spool_module
from aifinops.agents.agent import Agent
from aifinops.agents.metadata import Notice
from aifinops.agents.nvml import NvmlSampler
from aifinops.agents.prom import build_registry, exposition
from aifinops.agents.shipping import ExportFile


@pytest.fixture
def agents_started() -> Any:
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.stop()


def no_space(fd: int, data: bytes) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def metric(text: str, name: str) -> float:
    line = next(ln for ln in text.splitlines() if ln.startswith(name + " "))
    return float(line.rsplit(" ", 1)[1])


def test_full_disk_keeps_sampling_metrics_and_the_interruption_hook(
    tmp_path: Path, fake_nvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml("healthy8")
    marker = tmp_path / "run" / "interruption.json"
    cfg = config(tmp_path, {"checkpoint": {"hook": {"mode": "file", "file": str(marker)}}})
    agent = Agent(cfg, NvmlSampler(), metadata=FakeMetadata())
    agent.start()
    monkeypatch.setattr(spool_module, "write_all", no_space)  # the spool's disk is full
    for t in range(3):
        agent.tick(1000.0 + t)
    records = agent.close_window(1000.0, 1003.0)  # must not raise
    assert len(records) == 8
    notice = Notice("interruption", "terminate", "2026-11-28T16:00:00Z", 118.0, "aws:i:t:1")
    agent.handle_notices([notice])  # the hook state cannot be saved: the hook runs anyway
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert json.loads(marker.read_text())["action"] == "terminate"
    text = exposition(build_registry(agent.snapshot)).decode()
    assert metric(text, "finops_agent_spool_unspooled_records_total") == 8.0
    assert metric(text, "finops_agent_spool_save_failures_total") >= 1.0
    assert "finops_agent_window{" in text  # the window is still shown
    assert metric(text, "finops_agent_samples_total") == 3.0

    monkeypatch.undo()  # space is back
    agent.tick(1003.0)
    assert len(agent.close_window(1003.0, 1004.0)) == 8
    agent.close()
    exported = [json.loads(ln) for ln in (tmp_path / "windows.jsonl").read_text().splitlines()]
    assert {r["window_start"] for r in exported} == {1003.0}
    assert agent.spool is not None and agent.spool.unspooled_records_total == 8


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A real 256 KiB tmpfs (needs root and mount permission; skipped otherwise)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the disk refuses: the disk is full afterwards."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


@pytest.mark.integration
def test_agent_on_a_really_full_disk_keeps_serving_and_recovers(
    tmp_path: Path, tiny_disk: Path, agents_started: list
) -> None:
    imds = FakeImds()
    marker = tmp_path / "interruption.json"
    cfg = agent_config(
        tmp_path,
        spool={"dir": str(tiny_disk / "spool"), "fsync": True},
        metadata={"provider": "aws", "endpoint": imds.url, "poll_seconds": 0.1},
        checkpoint={"hook": {"mode": "file", "file": str(marker)}},
    )
    try:
        agent = AgentProcess(tmp_path, cfg).start()
        agents_started.append(agent)
        export = tmp_path / "windows.jsonl"
        wait_for("first exported window", lambda: exported_records(export), timeout=15)
        filler = fill(tiny_disk)
        wait_for(
            "records refused by the full disk",
            lambda: (agent.metric("finops_agent_spool_unspooled_records_total") or 0) >= 16,
            timeout=15,
        )
        imds.spot_action = {"action": "terminate", "time": "2026-11-28T16:02:00Z"}
        wait_for("the checkpoint hook on a full disk", marker.exists, timeout=10)
        assert agent.metric("finops_agent_samples_total")  # still sampling, still serving
        refused = agent.metric("finops_agent_spool_unspooled_records_total") or 0
        filler.unlink()  # space returns
        before = len(exported_records(export))
        wait_for(
            "exports after space returned",
            lambda: len(exported_records(export)) >= before + 16,
            timeout=15,
        )
        assert agent.proc is not None and agent.proc.poll() is None  # never crashed
        later = agent.metric("finops_agent_spool_unspooled_records_total") or 0
        assert later - refused <= 8  # at most the window being written as space returned
    finally:
        imds.stop()


def test_export_file_cuts_a_torn_tail_before_appending(tmp_path: Path) -> None:
    export = tmp_path / "windows.jsonl"
    export.write_text('{"n": 0}\n{"n": 1}\n{"n": 2, "pad": "xx')  # the last writer died here
    ExportFile(export, max_bytes=1 << 20, fsync=True).deliver([], ['{"n": 3}\n'])
    assert [json.loads(ln)["n"] for ln in export.read_text().splitlines()] == [0, 1, 3]


def test_export_file_takes_back_a_partial_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "windows.jsonl"
    writer = ExportFile(export, max_bytes=1 << 20, fsync=False)
    writer.deliver([], ['{"n": 0}\n'])

    def half_then_full(fd: int, data: bytes) -> None:
        os.write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(shipping_module, "write_all", half_then_full)
    with pytest.raises(OSError):
        writer.deliver([], ['{"n": 1}\n', '{"n": 2}\n'])
    assert export.read_text() == '{"n": 0}\n'  # nothing torn is left for the retry to follow
    monkeypatch.undo()
    writer.deliver([], ['{"n": 1}\n', '{"n": 2}\n'])  # the shipper's retry
    assert [json.loads(ln)["n"] for ln in export.read_text().splitlines()] == [0, 1, 2]
