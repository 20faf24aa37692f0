"""The agent's run loop: sample, window, spool, ship; watch for interruption and idleness.

Threads: the sampling loop (caller's thread), one shipper per sink, the metadata watcher,
the Prometheus and work-report HTTP servers. Sampling never waits on the network.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from aifinops.agents.config import AgentConfig, split_host_port
from aifinops.agents.hooks import run_hook
from aifinops.agents.hostload import (
    Diagnoser,
    HostSampler,
    ProcSnapshot,
    Thresholds,
    diagnose,
    load_between,
    read_proc,
)
from aifinops.agents.lifecycle import SCALE_IN, AwsLifecycleAction, see_off
from aifinops.agents.metadata import MetadataClient, Notice, make_client, resolve_host
from aifinops.agents.records import (
    GpuSample,
    HostInfo,
    Stats,
    WindowRecord,
    aggregate,
    is_idle_sample,
)
from aifinops.agents.rollup import RolledExport, Rollup
from aifinops.agents.shipping import ExportFile, Shipper, host_phase
from aifinops.agents.snapshot import GpuState, MetricsSnapshot, NoticeState, SinkState
from aifinops.agents.spool import Spool
from aifinops.agents.work import WorkCounter, WorkFileFollower, WorkServer

log = logging.getLogger("finops_agent")

AGENT_VERSION = "0.1.0"


class SampleSource(Protocol):
    driver_version: str

    def start(self) -> list[tuple[int, str, str]]: ...

    def sample(self, now: float | None = None) -> list[GpuSample]: ...

    def shutdown(self) -> None: ...


@dataclass
class IdleTracker:
    """When the idle condition started holding for one GPU (None: not holding)."""

    since: float | None = None

    def update(self, idle_now: bool, now: float) -> None:
        if not idle_now:
            self.since = None
        elif self.since is None:
            self.since = now

    def seconds(self, now: float) -> float:
        return 0.0 if self.since is None else now - self.since


@dataclass
class Counters:
    samples_total: int = 0
    samples_dropped_total: int = 0  # ticks skipped because a reading overran its interval
    windows_total: int = 0
    records_spooled_total: int = 0
    last_sample_seconds: float = 0.0
    hook_runs: dict[tuple[str, str], int] = field(default_factory=dict)


class Agent:
    def __init__(
        self,
        cfg: AgentConfig,
        source: SampleSource,
        *,
        metadata: MetadataClient | None = None,
        clock: Callable[[], float] = time.time,
        autoscaling_client: Any = None,
    ) -> None:
        self.cfg = cfg
        self.autoscaling_client = autoscaling_client  # tests: moto's; else made when needed
        self._seeing_off: dict[str, threading.Thread] = {}
        # the metadata watcher and callers (tests, the CLI) may hand in notices at once
        self._notices_lock = threading.Lock()
        self.source = source
        self.clock = clock
        self.metadata = metadata or make_client(cfg.metadata)
        self.host: HostInfo = HostInfo()
        self.counters = Counters()
        self.work = WorkCounter()
        self.latest: list[GpuSample] = []
        self.last_xid: dict[int, int] = {}  # GPU index -> last XID code seen
        self.latest_windows: dict[int, WindowRecord] = {}
        self.gpus: list[tuple[int, str, str]] = []
        self.idle: dict[int, IdleTracker] = {}
        self.notices: dict[str, Notice] = {}
        self.stop_event = threading.Event()
        self.shippers: list[Shipper] = []
        self.spool: Spool | None = None
        self._window: dict[int, list[GpuSample]] = {}
        self._window_notice: str | None = None
        self._idle_hook_fired = False
        self._work_server: WorkServer | None = None
        self._work_file: WorkFileFollower | None = None
        self._rolled: RolledExport | None = None
        self._prom_server: Any = None
        self.cloudwatch_publisher: Any = None
        self.prometheus_port = 0
        self.work_port = 0
        self._lock = threading.Lock()
        self.diagnoser: Diagnoser | None = None
        self._proc_before: ProcSnapshot | None = None
        self._host_sampler: HostSampler | None = None
        self._host_cpu: list[float] = []
        self._host_memory: list[float] = []

    # -- start / stop ----------------------------------------------------------------------
    def start(self) -> None:
        """Everything but the sampling loop. Raises NvmlUnavailable when NVML cannot be used."""
        self.gpus = self.source.start()
        self.idle = {index: IdleTracker() for index, _, _ in self.gpus}
        self.host = resolve_host(
            self.metadata, self.cfg.metadata, socket.gethostname(), dict(self.cfg.tags)
        )
        log.info(
            "agent starting",
            extra={
                "gpus": len(self.gpus),
                "instance_id": self.host.instance_id,
                "instance_type": self.host.instance_type,
                "lifecycle": self.host.lifecycle,
                "cloud": self.host.cloud,
            },
        )
        sinks = []
        if self.cfg.export.path:
            sinks.append("export")
        if self.cfg.cloudwatch.enabled:
            sinks.append("cloudwatch")
        sp = self.cfg.spool
        self.spool = Spool(
            sp.dir,
            max_bytes=sp.max_bytes,
            segment_bytes=sp.segment_bytes,
            sinks=sinks,
            fsync=sp.fsync,
        )
        if self.cfg.export.path:
            export = ExportFile(self.cfg.export.path, self.cfg.export.max_bytes, fsync=sp.fsync)
            deliver = export.deliver
            if self.cfg.export.rollup_seconds:
                state = Path(self.cfg.export.path + ".rollup.json")
                self._rolled = RolledExport(
                    export.deliver, Rollup(self.cfg.export.rollup_seconds, state), fsync=sp.fsync
                )
                deliver = self._rolled.deliver
            self.shippers.append(
                Shipper(
                    self.spool,
                    "export",
                    lambda r, lines: deliver(r, lines),
                    batch_records=500,
                    interval_seconds=1.0,
                    max_backoff_seconds=60.0,
                )
            )
        if self.cfg.cloudwatch.enabled:
            self.shippers.append(self._cloudwatch_shipper(self.spool))
        for shipper in self.shippers:
            shipper.start()
        if self.cfg.prometheus.enabled:
            self._start_prometheus()
        if self.cfg.work.listen:
            host, port = split_host_port(self.cfg.work.listen)
            self._work_server = WorkServer(self.work, host, port)
            self.work_port = self._work_server.port
            self._work_server.start()
        if self.cfg.work.file:
            self._work_file = WorkFileFollower(self.work, self.cfg.work.file)
        if self.cfg.metadata.provider != "none":
            threading.Thread(target=self._watch_metadata, name="metadata", daemon=True).start()
        if self.cfg.diagnosis.enabled:
            self._start_diagnosis()

    def _start_diagnosis(self) -> None:
        d = self.cfg.diagnosis
        self.diagnoser = Diagnoser(
            Thresholds(
                gpu_busy_percent=d.gpu_busy_percent,
                cpu_saturated_ratio=d.cpu_saturated_ratio,
                io_stalled_ratio=d.io_stalled_ratio,
                page_cache_misses_per_second=d.page_cache_misses_per_second,
                hysteresis=d.hysteresis,
            )
        )
        self._proc_before = read_proc(d.proc_root, self.clock())
        self._host_sampler = HostSampler(d.proc_root)
        self._host_sampler.sample()  # the first CPU reading is the baseline
        if self._proc_before.missing:
            log.warning(
                "input diagnosis: some host figures cannot be read",
                extra={"missing": dict(self._proc_before.missing)},
            )

    def _cloudwatch_shipper(self, spool: Spool) -> Shipper:
        from aifinops.agents.cloudwatch import CloudWatchPublisher, is_throttle

        cw = self.cfg.cloudwatch
        publisher = CloudWatchPublisher(
            cw, self.host.region if self.host.region != "unknown" else "us-east-1"
        )
        per_record = publisher.metrics_per_record()

        self.cloudwatch_publisher = publisher

        def deliver(records: list[dict[str, Any]], lines: list[str]) -> None:
            publisher.publish(records)

        host_key = self.host_key()
        return Shipper(
            spool,
            "cloudwatch",
            deliver,
            batch_records=max(1, cw.max_metrics_per_request // per_record),
            interval_seconds=cw.ship_interval_seconds,
            max_backoff_seconds=cw.max_backoff_seconds,
            is_throttle=is_throttle,
            # every host's windows close in the same second: each ships at its own moment
            # of the following ship interval
            phase_seconds=host_phase(host_key, "cloudwatch") * cw.ship_interval_seconds,
            jitter_seed=host_key,
        )

    def host_key(self) -> str:
        """What identifies this host to its fleet: the instance id, else the hostname."""
        if self.host.instance_id != "unknown":
            return self.host.instance_id
        return self.host.hostname or socket.gethostname()

    def _start_prometheus(self) -> None:
        from aifinops.agents.prom import MetricsServer, build_registry

        host, port = split_host_port(self.cfg.prometheus.listen)
        self._prom_server = MetricsServer(build_registry(self.snapshot), host, port)
        self.prometheus_port = self._prom_server.port
        self._prom_server.start()

    def stop(self) -> None:
        self.stop_event.set()

    def close(self, flush_seconds: float = 2.0) -> None:
        """Give the shippers a moment to deliver, then stop every thread and NVML."""
        deadline = time.monotonic() + flush_seconds
        for shipper in self.shippers:
            shipper.flush()
        while self.spool and self.spool.depth() and time.monotonic() < deadline:
            time.sleep(0.05)
        for shipper in self.shippers:
            shipper.stop()
        if self._rolled is not None:
            try:
                self._rolled.close()
            except OSError as exc:  # the spool still holds every window
                log.error("export roll-up: open intervals not written", extra={"error": str(exc)})
        if self._prom_server is not None:
            self._prom_server.stop()
        if self._work_server is not None:
            self._work_server.stop()
        self.source.shutdown()

    # -- the loop --------------------------------------------------------------------------
    def run(self, duration_seconds: float | None = None) -> None:
        """Sample until stopped (or for `duration_seconds`); closes the last partial window."""
        interval = self.cfg.agent.sample_interval_seconds
        window = self.cfg.agent.window_seconds
        started = time.monotonic()
        next_tick = started
        window_start = math.floor(self.clock() / window) * window
        while not self.stop_event.is_set():
            now = self.clock()
            if now >= window_start + window:
                self.close_window(window_start, window_start + window)
                window_start = math.floor(now / window) * window
            self.tick(now)
            if getattr(self.source, "exhausted", False):
                break
            if duration_seconds is not None and time.monotonic() - started >= duration_seconds:
                break
            next_tick += interval
            delay = next_tick - time.monotonic()
            if delay < 0:  # a reading overran: skip (and count) the ticks we cannot make up
                missed = math.floor(-delay / interval)
                self.counters.samples_dropped_total += missed
                next_tick += missed * interval
                delay = max(0.0, next_tick - time.monotonic())
            self.stop_event.wait(delay)
        end = self.clock()
        if end > window_start:
            self.close_window(window_start, end)

    def tick(self, now: float) -> None:
        """One reading of every GPU, into the current window."""
        t0 = time.perf_counter()
        samples = self.source.sample(now)
        self.counters.last_sample_seconds = time.perf_counter() - t0
        self.counters.samples_total += 1
        threshold = self.cfg.idle.activity_threshold_percent
        for s in samples:
            self._window.setdefault(s.gpu_index, []).append(s)
            if s.xid_events:
                self.last_xid[s.gpu_index] = s.xid_events[-1]
            self.idle.setdefault(s.gpu_index, IdleTracker()).update(
                is_idle_sample(s, threshold), now
            )
        with self._lock:
            self.latest = samples
        if self._host_sampler is not None:
            cpu, memory = self._host_sampler.sample()
            if cpu is not None:
                self._host_cpu.append(cpu)
            if memory is not None:
                self._host_memory.append(memory)
        if self._work_file is not None:
            self._work_file.poll()
        notices = list(self.notices.values())  # one snapshot: the watcher thread adds to it
        interruption = next((n for n in notices if n.kind == "interruption"), None)
        if interruption is not None:
            self._window_notice = interruption.action
        self._check_host_idle(now)

    def gpu_idle(self, index: int, now: float) -> bool:
        return (
            self.idle[index].seconds(now) >= self.cfg.idle.minutes * 60
            if index in self.idle
            else False
        )

    def close_window(self, start: float, end: float) -> list[WindowRecord]:
        """Aggregate the window's samples per GPU and spool the records."""
        work = self.work.take()
        records = [
            aggregate(
                samples,
                window_start=start,
                window_end=end,
                host=self.host,
                idle=self.gpu_idle(index, end),
                idle_threshold_percent=self.cfg.idle.activity_threshold_percent,
                work_units=work,
                interruption_action=self._window_notice,
            )
            for index, samples in sorted(self._window.items())
            if samples
        ]
        self._window = {}
        self._window_notice = None
        if not records:
            return []
        if self.diagnoser is not None:
            after = read_proc(self.cfg.diagnosis.proc_root, end)
            before, self._proc_before = self._proc_before, after
            load = None if before is None else load_between(before, after)
            records = diagnose(records, load, self.diagnoser)
            cpu, memory = Stats.of(self._host_cpu), Stats.of(self._host_memory)
            self._host_cpu, self._host_memory = [], []
            records = [
                replace(r, host_cpu_util_percent=cpu, host_memory_used_bytes=memory)
                for r in records
            ]
        assert self.spool is not None
        with self._lock:  # /metrics shows the window even when the disk refused it
            self.latest_windows = {r.gpu_index: r for r in records}
        if not self.spool.append([r.to_line() for r in records]):
            return records  # disk full: counted by the spool, tried again next window
        self.counters.windows_total += 1
        self.counters.records_spooled_total += len(records)
        for shipper in self.shippers:
            shipper.wake.set()
        return records

    # -- idle --------------------------------------------------------------------------------
    def _check_host_idle(self, now: float) -> None:
        alive = [s.gpu_index for s in self.latest if not s.lost]
        idle = [i for i in alive if self.gpu_idle(i, now)]
        all_idle = bool(alive) and len(idle) == len(alive)
        if not all_idle:
            self._idle_hook_fired = False
            return
        if self._idle_hook_fired:
            return
        self._idle_hook_fired = True
        log.warning("host idle", extra={"idle_gpus": idle, "minutes": self.cfg.idle.minutes})
        env = self._event_env("idle", "idle", "", 0.0)
        env["FINOPS_IDLE_GPUS"] = ",".join(str(i) for i in idle)
        self._run_hook("idle", self.cfg.idle.hook, env)

    # -- interruption ----------------------------------------------------------------------
    def _watch_metadata(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.handle_notices(self.metadata.poll())
            except Exception as exc:  # a metadata hiccup must never stop the agent
                log.warning("metadata poll failed", extra={"error": str(exc)})
            self.stop_event.wait(self.cfg.metadata.poll_seconds)

    def handle_notices(self, notices: Sequence[Notice]) -> None:
        """Export every notice; run the checkpoint hook once per notice that calls for it."""
        with self._notices_lock:
            self._handle_notices(notices)

    def _handle_notices(self, notices: Sequence[Notice]) -> None:
        for notice in notices:
            if notice.kind not in self.notices:
                log.warning(
                    "interruption notice"
                    if notice.kind == "interruption"
                    else "rebalance recommendation",
                    extra={
                        "action": notice.action,
                        "time": notice.time,
                        "deadline_seconds": round(notice.deadline_seconds, 1),
                    },
                )
            if notice.action == SCALE_IN:  # no cloud deadline: ours is the bound
                notice = replace(notice, deadline_seconds=self.cfg.lifecycle.max_wait_seconds)
            self.notices[notice.kind] = notice
            wanted = notice.kind == "interruption" or self.cfg.checkpoint.on_rebalance
            if not wanted or self.spool is None:
                continue
            fired = self.spool.get_state("hooks_fired")
            fired_keys = list(fired) if isinstance(fired, list) else []
            if notice.key in fired_keys:
                if notice.action == SCALE_IN:  # a restarted agent still sees the node off
                    self._see_off(notice, None)
                continue
            self.spool.set_state("hooks_fired", [*fired_keys, notice.key][-32:])
            env = self._event_env(notice.kind, notice.action, notice.time, notice.deadline_seconds)
            hook_done = threading.Event()
            self._run_hook(notice.kind, self.cfg.checkpoint.hook, env, hook_done)
            if notice.action == SCALE_IN:
                self._see_off(notice, hook_done)

    # -- a node the fleet removes (agents/lifecycle.py) ---------------------------------------
    def gpus_released(self) -> bool:
        """No compute process left on any GPU that still reports (the job saved and exited)."""
        with self._lock:
            alive = [s for s in self.latest if not s.lost]
        return bool(alive) and all(s.process_count == 0 for s in alive)

    def _see_off(self, notice: Notice, hook_done: threading.Event | None) -> None:
        """Wait for the checkpoint (bounded), then tell the cloud the node may go; once."""
        assert self.spool is not None
        answered = self.spool.get_state("lifecycle_answered")
        answered_keys = list(answered) if isinstance(answered, list) else []
        running = self._seeing_off.get(notice.key)
        if notice.key in answered_keys or (running is not None and running.is_alive()):
            return
        if hook_done is None:  # the hook ran before a restart
            hook_done = threading.Event()
            hook_done.set()
        hook = self.cfg.checkpoint.hook
        # a command hook is done when it exits; file and signal hooks when the job has gone
        released = self.gpus_released if hook.mode in ("file", "signal") else (lambda: True)
        life = self.cfg.lifecycle

        def work() -> None:
            aws = None
            if self.host.cloud == "aws" and life.aws_hook_name:
                try:
                    aws = AwsLifecycleAction(
                        life, self.host.region, self.host.instance_id, self.autoscaling_client
                    )
                except Exception as exc:  # botocore missing: the hook's timeout lets it go
                    log.error("cannot complete lifecycle actions", extra={"error": str(exc)})
            outcome = see_off(
                hook_done,
                released,
                max_wait_seconds=life.max_wait_seconds,
                heartbeat_seconds=life.heartbeat_seconds,
                heartbeat=aws.heartbeat if aws else None,
                stop=self.stop_event,
            )
            answered_ok = self._answer(notice, aws)
            log.warning(
                "node released to the fleet",
                extra={"outcome": outcome, "answered": answered_ok, "key": notice.key},
            )
            key = ("lifecycle", outcome if answered_ok else f"{outcome}_unanswered")
            self.counters.hook_runs[key] = self.counters.hook_runs.get(key, 0) + 1
            if answered_ok and self.spool is not None:
                done = self.spool.get_state("lifecycle_answered")
                keys = list(done) if isinstance(done, list) else []
                self.spool.set_state("lifecycle_answered", [*keys, notice.key][-32:])

        thread = threading.Thread(target=work, name=f"see-off-{notice.key}", daemon=True)
        self._seeing_off[notice.key] = thread
        thread.start()

    def _answer(self, notice: Notice, aws: AwsLifecycleAction | None) -> bool:
        """Complete the AWS lifecycle action / approve the Azure event (3 tries)."""
        for attempt in range(3):
            try:
                if aws is not None:
                    aws.complete()
                elif notice.event_id and self.cfg.lifecycle.azure_approve:
                    approve = getattr(self.metadata, "approve", None)
                    if approve is None or not approve(notice.event_id):
                        raise RuntimeError("the scheduled event was not approved")
                return True
            except Exception as exc:
                log.warning("lifecycle answer failed", extra={"error": str(exc), "try": attempt})
                self.stop_event.wait(1.0 + attempt)
        return False

    def _event_env(self, event: str, action: str, when: str, deadline: float) -> dict[str, str]:
        return {
            "FINOPS_EVENT": event,
            "FINOPS_INTERRUPTION_ACTION": action if event != "idle" else "",
            "FINOPS_INTERRUPTION_TIME": when,
            "FINOPS_INTERRUPTION_DEADLINE_SECONDS": f"{deadline:.0f}",
            "FINOPS_CLOUD": self.host.cloud,
            "FINOPS_INSTANCE_ID": self.host.instance_id,
        }

    def _run_hook(
        self, event: str, hook: Any, env: dict[str, str], finished: threading.Event | None = None
    ) -> None:
        def done(outcome: str) -> None:
            key = (event, outcome)
            self.counters.hook_runs[key] = self.counters.hook_runs.get(key, 0) + 1
            if finished is not None:
                finished.set()

        if run_hook(hook, env, on_done=done) is None:
            done("not_configured")

    # -- views for exporters ---------------------------------------------------------------
    def latest_samples(self) -> list[GpuSample]:
        with self._lock:
            return list(self.latest)

    def window_records(self) -> Iterator[WindowRecord]:
        with self._lock:
            yield from self.latest_windows.values()

    def snapshot(self) -> MetricsSnapshot:
        """Everything the exporters render, read once (called from the scrape thread)."""
        now = self.clock()
        c = self.counters
        spool = self.spool
        gpus = [
            GpuState(
                sample=s,
                idle=self.gpu_idle(s.gpu_index, now),
                idle_seconds=self.idle[s.gpu_index].seconds(now)
                if s.gpu_index in self.idle
                else 0.0,
                last_xid=self.last_xid.get(s.gpu_index, 0),
            )
            for s in self.latest_samples()
        ]
        sinks = []
        for shipper in self.shippers:
            rejected = shipper.rejected_records_total
            if shipper.sink == "cloudwatch" and self.cloudwatch_publisher is not None:
                rejected += self.cloudwatch_publisher.too_old_records_total
            sinks.append(
                SinkState(
                    sink=shipper.sink,
                    depth_records=spool.depth(shipper.sink) if spool is not None else 0,
                    delivered_records_total=shipper.delivered_records_total,
                    failures_total=shipper.failures_total,
                    throttled_total=shipper.throttled_total,
                    rejected_records_total=rejected,
                    last_success_unixtime=shipper.last_success_unixtime,
                )
            )
        return MetricsSnapshot(
            agent_version=AGENT_VERSION,
            driver_version=self.source.driver_version,
            host=self.host,
            gpus=gpus,
            windows=list(self.window_records()),
            sinks=sinks,
            spool_dropped_records_total=spool.dropped_records_total if spool is not None else 0,
            spool_unspooled_records_total=spool.unspooled_records_total if spool else 0,
            spool_save_failures_total=spool.save_failures_total if spool else 0,
            spool_bytes=spool.size_bytes() if spool is not None else 0,
            samples_total=c.samples_total,
            samples_dropped_total=c.samples_dropped_total,
            windows_total=c.windows_total,
            last_sample_seconds=c.last_sample_seconds,
            notices=[NoticeState(n.kind, n.action, n.time) for n in list(self.notices.values())],
            hook_runs=dict(c.hook_runs),
            work_units_total=self.work.totals(),
        )
