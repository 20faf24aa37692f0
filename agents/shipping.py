"""Shippers: one thread per sink moves records from the spool to the sink, acking after
each delivery, backing off exponentially while the sink fails.

Windows close on the same second on every host of a fleet (they align to the clock), so a
shipper that sent on every window close would make the whole fleet call CloudWatch in the
same second, and retry a dead endpoint once per window. Instead each host ships at its own
phase after new records (`host_phase`), and a backoff, once started, holds until it expires
whatever closes in the meantime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aifinops.agents.spool import Spool, fsync_directory, write_all

log = logging.getLogger("finops_agent.shipping")

Deliver = Callable[[list[dict[str, Any]], list[str]], object]  # return value ignored


class RejectedBatch(Exception):
    """The sink refused the batch for good (e.g. a 400 for a too-old timestamp).

    Retrying would block every later record behind it, so the shipper acks the batch,
    counts it in `rejected_records_total` and logs an error.
    """


def host_phase(host_key: str, sink: str) -> float:
    """A stable fraction in [0, 1) for this host and sink, spread evenly across hosts.

    `host_key` is the instance id (or the hostname without metadata); the same host always
    gets the same phase, so its shipping time is predictable from its logs.
    """
    digest = hashlib.sha256(f"{host_key}\0{sink}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class Shipper(threading.Thread):
    """Delivers `sink`'s undelivered spool records in batches of `batch_records`.

    `phase_seconds`: how long to wait after new records (and at start) before shipping, so
    hosts whose windows close together do not call the sink together. `jitter_seed` seeds
    the backoff jitter (the host key: retries are spread across hosts, reproducible on one).
    """

    def __init__(
        self,
        spool: Spool,
        sink: str,
        deliver: Deliver,
        *,
        batch_records: int,
        interval_seconds: float,
        max_backoff_seconds: float,
        is_throttle: Callable[[BaseException], bool] = lambda exc: False,
        phase_seconds: float = 0.0,
        jitter_seed: str = "",
    ) -> None:
        super().__init__(name=f"ship-{sink}", daemon=True)
        self.spool = spool
        self.sink = sink
        self.deliver = deliver
        self.batch_records = max(1, batch_records)
        self.interval = interval_seconds
        self.max_backoff = max_backoff_seconds
        self.is_throttle = is_throttle
        self.phase_seconds = max(0.0, phase_seconds)
        self.wake = threading.Event()  # new records were spooled
        self.stopping = threading.Event()
        self._hurry = threading.Event()  # the agent is closing: ship without the phase wait
        self._rng = random.Random(f"{jitter_seed}\0{sink}")
        self.delivered_records_total = 0
        self.failures_total = 0
        self.throttled_total = 0
        self.rejected_records_total = 0
        self.last_success_unixtime = 0.0
        self._failures_in_a_row = 0

    def run(self) -> None:
        self._hurry.wait(self.phase_seconds)  # a fleet restarted together starts spread out
        while not self.stopping.is_set():
            try:
                delay = self.ship_once()
            except Exception:  # a bug or a disk error must not end shipping for good
                log.exception("shipper error", extra={"sink": self.sink})
                self.failures_total += 1
                delay = self._backoff(throttled=False)
            if delay is None:
                continue  # more is waiting: go on at once
            if self._failures_in_a_row:
                # backing off: new records must not cut the wait short (a dead endpoint
                # would otherwise be retried on every window close)
                self.stopping.wait(delay)
                continue
            if self.wake.wait(delay):
                self.wake.clear()
                self._hurry.wait(self.phase_seconds)

    def _backoff(self, *, throttled: bool) -> float:
        """The wait before the next attempt after a failure: exponential, capped, jittered."""
        self._failures_in_a_row += 1
        delay = min(
            self.max_backoff,
            (4.0 if throttled else 1.0) * 2 ** min(self._failures_in_a_row, 16),
        )
        return delay * self._rng.uniform(0.5, 1.0)  # jitter: a fleet must not retry in step

    def ship_once(self) -> float | None:
        """Deliver one batch. Returns how long to wait, or None when more is waiting."""
        lines, position, undecodable = self.spool.read(self.sink, self.batch_records)
        if undecodable:  # a disk error flipped a byte: skip the line rather than block the queue
            self.rejected_records_total += undecodable
            log.error(
                "spool line that is not UTF-8 skipped",
                extra={"sink": self.sink, "lines": undecodable},
            )
        if not lines:
            if undecodable:
                self.spool.ack(self.sink, position)
                return None
            return self.interval
        records = []
        good_lines = []
        for line in lines:
            try:
                records.append(json.loads(line))
                good_lines.append(line)
            except ValueError:  # a damaged line (disk error): skip it rather than block the queue
                self.rejected_records_total += 1
                log.error(
                    "unreadable spool line skipped", extra={"sink": self.sink, "line": line[:200]}
                )
        try:
            self.deliver(records, good_lines)
        except RejectedBatch as exc:
            self.spool.ack(self.sink, position)
            self.rejected_records_total += len(good_lines)
            log.error(
                "sink rejected a batch for good: skipped",
                extra={"sink": self.sink, "records": len(good_lines), "error": str(exc)[:300]},
            )
            return None
        except Exception as exc:
            self.failures_total += 1
            throttled = self.is_throttle(exc)
            self.throttled_total += int(throttled)
            delay = self._backoff(throttled=throttled)
            log.warning(
                "delivery failed, will retry",
                extra={
                    "sink": self.sink,
                    "error": str(exc)[:300],
                    "retry_in_s": round(delay, 2),
                    "throttled": throttled,
                    "pending": self.spool.depth(self.sink),
                },
            )
            return delay
        self.spool.ack(self.sink, position)
        self.delivered_records_total += len(good_lines)
        self._failures_in_a_row = 0
        self.last_success_unixtime = time.time()
        return None if len(lines) + undecodable >= self.batch_records else self.interval

    def flush(self) -> None:
        """Ship what is spooled now, without the phase wait (backoff still holds)."""
        self._hurry.set()
        self.wake.set()

    def stop(self) -> None:
        self.stopping.set()
        self._hurry.set()
        self.wake.set()


class ExportFile:
    """Appends delivered records to the JSON Lines export file, rotating at `max_bytes`.

    The file only ever holds complete lines: a write that fails part-way (full disk) is
    taken back at once, and a torn last line left by a crash is cut off before the next
    append, as the spool does with its segments (readers would otherwise refuse the file).
    """

    def __init__(self, path: str | Path, max_bytes: int, fsync: bool = True) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tail_checked = False

    def deliver(self, records: list[dict[str, Any]], lines: list[str]) -> None:
        data = "".join(lines).encode("utf-8")
        if not self._tail_checked:
            truncate_torn_tail(self.path)
            self._tail_checked = True
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(data) > self.max_bytes:
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            if self.fsync:
                fsync_directory(self.path.parent)
            size = 0
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            try:
                write_all(fd, data)
                if self.fsync:
                    os.fsync(fd)
            except OSError:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    self._tail_checked = False  # cut it before the next append instead
                raise
        finally:
            os.close(fd)


def truncate_torn_tail(path: Path) -> int:
    """Cut a last line that has no newline (its writer died mid-line); returns bytes cut."""
    try:
        f = open(path, "r+b")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return 0
    with f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            chunk = f.read(end - start)
            if end == size and chunk.endswith(b"\n"):
                return 0
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        f.truncate(end)
    log.warning(
        "export file: cut an incomplete last line", extra={"file": str(path), "bytes": size - end}
    )
    return size - end
