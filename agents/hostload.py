"""Host load from /proc, and the verdict per GPU and window: busy, waiting on data, or idle.

A GPU that waits on its input pipeline shows low activity while the host is saturated: the
CPUs decode and augment at full tilt, or storage cannot deliver (tasks stall on I/O, pages the
loader needs are not in the page cache). The agent reads three files at each window's close
(Linux, any user, a few microseconds):

- `/proc/stat`, line `cpu`: CPU time of all CPUs together by state, in ticks (user nice
  system idle iowait irq softirq steal guest guest_nice; guest time is already counted in
  user and nice, so it is left out of the total);
- `/proc/pressure/io` (PSI, Linux 4.20+): `some ... total=<us>`, microseconds in which at
  least one task was stalled on I/O; where the kernel has no PSI the iowait share stands in;
- `/proc/vmstat`: `pgmajfault` (page faults that had to read from storage),
  `workingset_refault_file` (`workingset_refault` before Linux 5.9: file pages read again
  soon after the page cache evicted them) and `pgpgin` (KiB read from block devices).

A figure that cannot be read is None, with the reason in `missing`, never 0; a verdict that
needs it is "unknown". Each signal is a level with hysteresis (`Level`), so a figure that
hovers at a threshold does not flip the verdict every window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from aifinops.agents.records import NO_CONTEXT_MEMORY_BYTES, WindowRecord

# /proc/stat `cpu` columns, in order; guest and guest_nice are inside user and nice already
_CPU_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_BUSY_COLUMNS = ("user", "nice", "system", "irq", "softirq", "steal")
_REFAULT_KEYS = ("workingset_refault_file", "workingset_refault")  # Linux >= 5.9, older


@dataclass(frozen=True, slots=True)
class ProcSnapshot:
    """Cumulative counters read from /proc at one moment (None: could not be read)."""

    taken_at: float  # unix seconds
    cpus: int | None = None
    cpu_busy_ticks: int | None = None
    cpu_iowait_ticks: int | None = None
    cpu_total_ticks: int | None = None
    io_stall_microseconds: int | None = None  # PSI io "some" total
    major_faults: int | None = None
    page_cache_refaults: int | None = None
    page_in_kib: int | None = None
    missing: tuple[tuple[str, str], ...] = ()  # (figure, why)


def parse_stat(text: str) -> tuple[int, int, int, int]:
    """(busy ticks, iowait ticks, total ticks, CPU count) of /proc/stat's text."""
    values: dict[str, int] | None = None
    cpus = 0
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "cpu":
            numbers = [int(p) for p in parts[1 : 1 + len(_CPU_COLUMNS)]]
            numbers += [0] * (len(_CPU_COLUMNS) - len(numbers))  # old kernels: fewer columns
            values = dict(zip(_CPU_COLUMNS, numbers, strict=True))
        elif parts[0].startswith("cpu") and parts[0][3:].isdigit():
            cpus += 1
    if values is None:
        raise ValueError("no 'cpu' line")
    busy = sum(values[c] for c in _BUSY_COLUMNS)
    return busy, values["iowait"], sum(values.values()), cpus


def parse_pressure(text: str) -> int:
    """Microseconds stalled (`some` line's `total=`) of a /proc/pressure/* file."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "some":
            for item in parts[1:]:
                key, _, value = item.partition("=")
                if key == "total":
                    return int(value)
    raise ValueError("no 'some ... total=' line")


def parse_vmstat(text: str) -> dict[str, int]:
    """/proc/vmstat as {name: counter}."""
    counters: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit():
            counters[name] = int(value)
    return counters


def parse_meminfo(text: str) -> int:
    """Bytes in use of /proc/meminfo's text: MemTotal - MemAvailable (what the kernel says
    programs can still get without swapping; page cache it can drop counts as available)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    if "MemTotal" not in values or "MemAvailable" not in values:
        raise ValueError("no MemTotal/MemAvailable (Linux 3.14+)")
    return values["MemTotal"] - values["MemAvailable"]


class HostSampler:
    """The host's CPU and memory at every tick, for the window's host stats.

    CPU is the busy share of all CPUs since the previous tick (percent); memory is
    MemTotal - MemAvailable (bytes). A file that cannot be read gives None for its figure,
    once logged by the caller through `missing`."""

    def __init__(self, root: str | Path = "/proc") -> None:
        self.root = Path(root)
        self._last: tuple[int, int] | None = None  # (busy, total) ticks
        self.missing: dict[str, str] = {}

    def sample(self) -> tuple[float | None, float | None]:
        cpu = memory = None
        try:
            with open(self.root / "stat", encoding="ascii") as handle:
                busy, _, total, _ = parse_stat(handle.readline())
        except (OSError, ValueError) as exc:
            self.missing["host_cpu"] = f"{self.root / 'stat'}: {_why(exc)}"
        else:
            if self._last is not None and total > self._last[1] and busy >= self._last[0]:
                cpu = 100.0 * (busy - self._last[0]) / (total - self._last[1])
            self._last = (busy, total)
        try:
            memory = float(parse_meminfo((self.root / "meminfo").read_text()))
        except (OSError, ValueError) as exc:
            self.missing["host_memory"] = f"{self.root / 'meminfo'}: {_why(exc)}"
        return cpu, memory


def read_proc(root: str | Path = "/proc", now: float = 0.0) -> ProcSnapshot:
    """Read /proc/stat, /proc/pressure/io and /proc/vmstat under `root`; `now` is recorded as
    the moment of the reading (unix seconds). Never raises: what fails is named in `missing`."""
    base = Path(root)
    missing: list[tuple[str, str]] = []
    busy = iowait = total = cpus = None
    try:
        busy, iowait, total, cpus = parse_stat((base / "stat").read_text())
    except (OSError, ValueError) as exc:
        missing.append(("cpu", f"{base / 'stat'}: {_why(exc)}"))
    stall = None
    try:
        stall = parse_pressure((base / "pressure" / "io").read_text())
    except (OSError, ValueError) as exc:
        missing.append(("io_pressure", f"{base / 'pressure' / 'io'}: {_why(exc)}"))
    faults = refaults = page_in = None
    try:
        counters = parse_vmstat((base / "vmstat").read_text())
    except OSError as exc:
        missing.append(("vmstat", f"{base / 'vmstat'}: {_why(exc)}"))
    else:
        faults = counters.get("pgmajfault")
        page_in = counters.get("pgpgin")
        refaults = next((counters[k] for k in _REFAULT_KEYS if k in counters), None)
        for name, value in (
            ("major_faults", faults),
            ("page_cache_refaults", refaults),
            ("page_in", page_in),
        ):
            if value is None:
                missing.append((name, f"{base / 'vmstat'}: no such counter"))
    return ProcSnapshot(
        taken_at=now,
        cpus=cpus or None,
        cpu_busy_ticks=busy,
        cpu_iowait_ticks=iowait,
        cpu_total_ticks=total,
        io_stall_microseconds=stall,
        major_faults=faults,
        page_cache_refaults=refaults,
        page_in_kib=page_in,
        missing=tuple(missing),
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "not present (kernel without it, or /proc not mounted)"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"unreadable ({exc})"


@dataclass(frozen=True, slots=True)
class HostLoad:
    """What the host did between two readings; ratios 0-1, rates per second (None: unknown)."""

    seconds: float
    cpus: int | None = None
    cpu_busy_ratio: float | None = None  # non-idle, non-iowait CPU time / all CPU time
    iowait_ratio: float | None = None  # iowait CPU time / all CPU time
    io_pressure_ratio: float | None = None  # share of wall time some task was stalled on I/O
    major_faults_per_second: float | None = None
    page_cache_refaults_per_second: float | None = None
    page_in_bytes_per_second: float | None = None
    missing: Mapping[str, str] = field(default_factory=dict)

    @property
    def io_stall_ratio(self) -> float | None:
        """PSI where the kernel has it, else the iowait share (which undercounts on big hosts:
        one stalled task on 96 idle CPUs is 1 % iowait)."""
        return self.io_pressure_ratio if self.io_pressure_ratio is not None else self.iowait_ratio

    @property
    def page_cache_misses_per_second(self) -> float | None:
        """Major faults plus page-cache refaults per second (None when neither is known)."""
        known = [
            v
            for v in (self.major_faults_per_second, self.page_cache_refaults_per_second)
            if v is not None
        ]
        return sum(known) if known else None

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "cpus": self.cpus,
            "cpu_busy_ratio": self.cpu_busy_ratio,
            "iowait_ratio": self.iowait_ratio,
            "io_pressure_ratio": self.io_pressure_ratio,
            "major_faults_per_second": self.major_faults_per_second,
            "page_cache_refaults_per_second": self.page_cache_refaults_per_second,
            "page_in_bytes_per_second": self.page_in_bytes_per_second,
            "missing": dict(self.missing),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> HostLoad:
        def num(key: str) -> float | None:
            value = raw.get(key)
            return None if value is None else float(value)

        return cls(
            seconds=float(raw.get("seconds") or 0.0),
            cpus=None if raw.get("cpus") is None else int(raw["cpus"]),
            cpu_busy_ratio=num("cpu_busy_ratio"),
            iowait_ratio=num("iowait_ratio"),
            io_pressure_ratio=num("io_pressure_ratio"),
            major_faults_per_second=num("major_faults_per_second"),
            page_cache_refaults_per_second=num("page_cache_refaults_per_second"),
            page_in_bytes_per_second=num("page_in_bytes_per_second"),
            missing={str(k): str(v) for k, v in (raw.get("missing") or {}).items()},
        )


def load_between(before: ProcSnapshot, after: ProcSnapshot) -> HostLoad:
    """The host's load from `before` to `after` (counters are cumulative)."""
    seconds = after.taken_at - before.taken_at
    missing = dict(before.missing) | dict(after.missing)

    def delta(name: str, a: int | None, b: int | None) -> int | None:
        if a is None or b is None:
            return None
        if b < a:
            missing[name] = "counter went backwards (host rebooted or counter wrapped)"
            return None
        return b - a

    busy = delta("cpu", before.cpu_busy_ticks, after.cpu_busy_ticks)
    iowait = delta("cpu", before.cpu_iowait_ticks, after.cpu_iowait_ticks)
    total = delta("cpu", before.cpu_total_ticks, after.cpu_total_ticks)
    cpu_ok = busy is not None and iowait is not None and total
    if busy is not None and iowait is not None and total == 0:
        missing["cpu"] = "no CPU time elapsed between the readings"

    def rate(name: str, a: int | None, b: int | None, scale: float = 1.0) -> float | None:
        d = delta(name, a, b)
        if d is None:
            return None
        if seconds <= 0:
            missing[name] = "no time elapsed between the readings"
            return None
        return d * scale / seconds

    stall = rate("io_pressure", before.io_stall_microseconds, after.io_stall_microseconds, 1e-6)
    return HostLoad(
        seconds=seconds,
        cpus=after.cpus,
        cpu_busy_ratio=busy / total if cpu_ok and busy is not None and total else None,
        iowait_ratio=iowait / total if cpu_ok and iowait is not None and total else None,
        io_pressure_ratio=None if stall is None else min(stall, 1.0),
        major_faults_per_second=rate("major_faults", before.major_faults, after.major_faults),
        page_cache_refaults_per_second=rate(
            "page_cache_refaults", before.page_cache_refaults, after.page_cache_refaults
        ),
        page_in_bytes_per_second=rate("page_in", before.page_in_kib, after.page_in_kib, 1024.0),
        missing=missing,
    )


class Verdict(StrEnum):
    """What one GPU did in one window, and why."""

    GPU_BUSY = "gpu-busy"
    WAITING_ON_DATA = "waiting-on-data"
    IDLE = "gpu-and-host-idle"
    GPU_UNUSED = "gpu-unused"
    UNKNOWN = "unknown"


VERDICT_TEXT = {
    Verdict.GPU_BUSY: "GPU busy",
    Verdict.WAITING_ON_DATA: "GPU waiting on data",
    Verdict.IDLE: "GPU idle, host idle",
    Verdict.GPU_UNUSED: "GPU unused (no process), host busy with other work",
    Verdict.UNKNOWN: "unknown (a figure the verdict needs could not be read)",
}

# causes of a "waiting-on-data" verdict
CPU, IO, PAGE_CACHE = "cpu", "io", "page-cache"


@dataclass(frozen=True)
class Thresholds:
    """Where each level switches on; it switches off below `on x (1 - hysteresis)`."""

    gpu_busy_percent: float = 60.0
    """GPU activity (SM activity where the GPU has GPM, else utilisation), window mean."""
    cpu_saturated_ratio: float = 0.90
    """Share of all CPUs' time spent busy (user, system, irq, softirq, steal)."""
    io_stalled_ratio: float = 0.10
    """Share of wall time some task was stalled on I/O (PSI), else the iowait share."""
    page_cache_misses_per_second: float = 1000.0
    """Major faults plus page-cache refaults per second (1000 x 4 KiB = 4 MiB/s re-read)."""
    hysteresis: float = 0.15


class Level:
    """A threshold with hysteresis: on at `on`, off again only below `on x (1 - hysteresis)`.

    Unknown (None) leaves the state as it was and reads as unknown.
    """

    def __init__(self, on: float, hysteresis: float) -> None:
        self.on_at = on
        self.off_below = on * (1.0 - hysteresis)
        self.state = False

    def update(self, value: float | None) -> bool | None:
        if value is None or math.isnan(value):
            return None
        self.state = value >= self.off_below if self.state else value >= self.on_at
        return self.state


@dataclass(frozen=True)
class HostSignals:
    """The host's levels for one window (None: not known)."""

    cpu_saturated: bool | None
    io_stalled: bool | None
    page_cache_missing: bool | None

    @property
    def causes(self) -> tuple[str, ...]:
        return tuple(
            name
            for name, on in (
                (CPU, self.cpu_saturated),
                (IO, self.io_stalled),
                (PAGE_CACHE, self.page_cache_missing),
            )
            if on
        )

    @property
    def busy(self) -> bool | None:
        """True when any signal is on; False when all are known and off; else None."""
        values = (self.cpu_saturated, self.io_stalled, self.page_cache_missing)
        if any(values):
            return True
        return None if any(v is None for v in values) else False


class Diagnoser:
    """Keeps the levels between windows: one per host signal, one per GPU for activity."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        t = self.thresholds = thresholds or Thresholds()
        self.cpu = Level(t.cpu_saturated_ratio, t.hysteresis)
        self.io = Level(t.io_stalled_ratio, t.hysteresis)
        self.cache = Level(t.page_cache_misses_per_second, t.hysteresis)
        self.gpus: dict[str, Level] = {}

    def host(self, load: HostLoad | None) -> HostSignals:
        """Update the host levels with one window's load (call once per window)."""
        if load is None:
            return HostSignals(None, None, None)
        return HostSignals(
            cpu_saturated=self.cpu.update(load.cpu_busy_ratio),
            io_stalled=self.io.update(load.io_stall_ratio),
            page_cache_missing=self.cache.update(load.page_cache_misses_per_second),
        )

    def gpu(
        self,
        gpu: str,
        activity_percent: float | None,
        has_process: bool | None,
        host: HostSignals,
    ) -> tuple[Verdict, tuple[str, ...]]:
        """The verdict for one GPU's window and, when it waits on data, the causes."""
        t = self.thresholds
        level = self.gpus.setdefault(gpu, Level(t.gpu_busy_percent, t.hysteresis))
        busy = level.update(activity_percent)
        if has_process is False:  # nothing runs on it: its activity says nothing of a pipeline
            if host.busy is None:
                return Verdict.UNKNOWN, ()
            return (Verdict.GPU_UNUSED if host.busy else Verdict.IDLE), ()
        if busy is None:
            return Verdict.UNKNOWN, ()
        if busy:
            return Verdict.GPU_BUSY, ()
        if host.busy is None:
            return Verdict.UNKNOWN, ()
        if host.busy:
            return Verdict.WAITING_ON_DATA, host.causes
        return Verdict.IDLE, ()


def window_activity_percent(record: WindowRecord) -> float | None:
    """The window's mean GPU activity: SM activity where the GPU has GPM (utilisation reads
    100 % for a kernel that merely waits), else utilisation; None when neither was read."""
    sm = record.stats.get("sm_active_ratio")
    if sm is not None:
        return sm.mean * 100.0
    util = record.stats.get("gpu_util_percent")
    return None if util is None else util.mean


def window_has_process(record: WindowRecord) -> bool | None:
    """Whether a compute process ran on the GPU in the window (None: cannot tell). Where the
    process list needs privileges, a GPU that never held a CUDA context's worth of memory
    (v2 reading) ran none, as in the idle rule."""
    procs = record.stats.get("process_count")
    if procs is not None:
        return procs.max > 0
    used = record.stats.get("memory_used_bytes")
    if record.memory_reserved_bytes is not None and used is not None:
        return False if used.max < NO_CONTEXT_MEMORY_BYTES else None
    return None


def diagnose(
    records: Sequence[WindowRecord], load: HostLoad | None, diagnoser: Diagnoser
) -> list[WindowRecord]:
    """The window's records with the host load and each GPU's verdict filled in."""
    host = diagnoser.host(load)
    load_json = None if load is None else load.to_json()
    out = []
    for record in records:
        causes: tuple[str, ...]
        if record.lost and not record.sample_count:
            verdict, causes = Verdict.UNKNOWN, ()
        else:
            verdict, causes = diagnoser.gpu(
                record.gpu_uuid,
                window_activity_percent(record),
                window_has_process(record),
                host,
            )
        out.append(
            replace(record, host_load=load_json, input_verdict=verdict.value, input_causes=causes)
        )
    return out
