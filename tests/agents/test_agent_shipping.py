"""Shipping to a failing or shared sink: backoff holds, hosts do not ship in step."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

from aifinops.agents.shipping import Shipper, host_phase
from aifinops.agents.spool import Spool


def spool_with_records(tmp_path: Path, count: int = 3) -> Spool:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1 << 16, sinks=["cw"], fsync=False)
    spool.append([json.dumps({"n": n}) + "\n" for n in range(count)])
    return spool


def test_backoff_holds_while_windows_keep_closing(tmp_path: Path) -> None:
    """A dead endpoint is retried on the backoff schedule, not on every window close."""
    attempts: list[float] = []

    def dead_endpoint(records: list[dict[str, Any]], lines: list[str]) -> None:
        attempts.append(time.monotonic())
        raise ConnectionError("endpoint down")

    spool = spool_with_records(tmp_path)
    shipper = Shipper(
        spool,
        "cw",
        dead_endpoint,
        batch_records=10,
        interval_seconds=0.05,
        max_backoff_seconds=300.0,
    )
    shipper.start()
    try:
        deadline = time.monotonic() + 5
        while not attempts and time.monotonic() < deadline:
            time.sleep(0.01)
        assert attempts, "the shipper never tried"
        # the first backoff is 1-2 s; windows close every 50 ms meanwhile
        for _ in range(16):
            spool.append(['{"n": 99}\n'])
            shipper.wake.set()
            time.sleep(0.05)
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert all(gap >= 0.99 for gap in gaps), f"retried after {gaps} s, inside the backoff"
    finally:
        shipper.stop()
        shipper.join(timeout=5)
    assert spool.depth("cw") == 19  # nothing acked: every record still waits
    assert shipper.failures_total == len(attempts)


def test_host_phase_is_stable_per_host_and_spread_across_a_fleet() -> None:
    fleet = [f"i-{n:017x}" for n in range(1000)]
    phases = [host_phase(instance, "cloudwatch") for instance in fleet]
    assert phases == [host_phase(instance, "cloudwatch") for instance in fleet]  # stable
    assert all(0.0 <= p < 1.0 for p in phases)
    tenths = [sum(1 for p in phases if k / 10 <= p < (k + 1) / 10) for k in range(10)]
    assert min(tenths) >= 60 and max(tenths) <= 140, tenths  # about 100 hosts each
    assert host_phase("i-0abc", "cloudwatch") != host_phase("i-0abc", "export")


def test_first_attempt_after_new_records_waits_for_the_host_phase(tmp_path: Path) -> None:
    delivered_at: list[float] = []
    done = threading.Event()

    def sink(records: list[dict[str, Any]], lines: list[str]) -> None:
        delivered_at.append(time.monotonic())
        done.set()

    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1 << 16, sinks=["cw"], fsync=False)
    shipper = Shipper(
        spool,
        "cw",
        sink,
        batch_records=10,
        interval_seconds=30.0,
        max_backoff_seconds=60.0,
        phase_seconds=1.5,
    )
    shipper.start()
    try:
        time.sleep(1.6)  # past the start-up phase, now idle for 30 s
        spool.append(['{"n": 1}\n'])
        woken = time.monotonic()
        shipper.wake.set()  # a window closed
        assert done.wait(10)
        assert delivered_at[0] - woken >= 1.45  # shipped at this host's phase, not at once
        done.clear()
        spool.append(['{"n": 2}\n'])
        flushed = time.monotonic()
        shipper.flush()  # the agent is closing: no phase wait
        assert done.wait(10)
        assert delivered_at[1] - flushed < 1.0
    finally:
        shipper.stop()
        shipper.join(timeout=5)
