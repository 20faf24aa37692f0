"""Prometheus `/metrics`: dcgm-exporter's names where one exists, plus the agent's own.

Values are rendered at scrape time from a `MetricsSnapshot` the agent hands over (a custom
collector), so sampling costs nothing extra when nobody scrapes. dcgm-exporter's units are
kept (framebuffer in MiB, power in W, PROF_* as ratios 0-1), its labels (`gpu`, `UUID`,
`pci_bus_id`, `device`, `modelName`, `Hostname`, `DCGM_FI_DRIVER_VERSION`; `GPU_I_ID` on a
MIG instance's series) and its metric types: the ECC totals are counters under their
exact names, which prometheus_client would suffix with `_total`, so the exposition is
written here (`exposition`) and served by `MetricsServer`, in the text format 0.0.4 that
dcgm-exporter serves. Dashboards and alerts built for dcgm-exporter work unchanged.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aifinops.agents.hostload import Verdict
from aifinops.agents.records import STAT_METRICS, GpuSample
from aifinops.agents.snapshot import MetricsSnapshot

MIB = 1024 * 1024
GPU_LABELS = (
    "gpu",
    "UUID",
    "pci_bus_id",
    "device",
    "modelName",
    "Hostname",
    "DCGM_FI_DRIVER_VERSION",
)

# dcgm-exporter name -> (GpuSample field, scale, help); default-counters.csv's help texts
DCGM_GAUGES: tuple[tuple[str, str, float, str], ...] = (
    ("DCGM_FI_DEV_GPU_UTIL", "gpu_util_percent", 1.0, "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "mem_util_percent", 1.0, "Memory utilization (in %)."),
    ("DCGM_FI_DEV_POWER_USAGE", "power_watts", 1.0, "Power draw (in W)."),
    ("DCGM_FI_DEV_GPU_TEMP", "temperature_celsius", 1.0, "GPU temperature (in C)."),
    ("DCGM_FI_DEV_SM_CLOCK", "sm_clock_mhz", 1.0, "SM clock frequency (in MHz)."),
    (
        "DCGM_FI_PROF_SM_ACTIVE",
        "sm_active_ratio",
        1.0,
        "The ratio of cycles an SM has at least 1 warp assigned (NVML GPM SM utilisation).",
    ),
    (
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "tensor_active_ratio",
        1.0,
        "Ratio of cycles the tensor pipes are active (NVML GPM any-tensor utilisation).",
    ),
)
# counters dcgm-exporter declares without a `_total` suffix of its own
DCGM_COUNTERS: tuple[tuple[str, str, str], ...] = (
    (
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        "ecc_corrected_volatile",
        "Total number of single-bit volatile ECC errors.",
    ),
    (
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "ecc_uncorrected_volatile",
        "Total number of double-bit volatile ECC errors.",
    ),
)


def _family(name: str, doc: str, kind: str = "gauge") -> Metric:
    return Metric(name, doc, kind)


class AgentCollector(Collector):
    """Renders the snapshot `take_snapshot()` returns at each scrape."""

    def __init__(self, take_snapshot: Callable[[], MetricsSnapshot]) -> None:
        self.take_snapshot = take_snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.take_snapshot()

        def labels(s: GpuSample, **extra: str) -> dict[str, str]:
            values = (
                str(s.gpu_index),
                s.gpu_uuid,
                s.pci_bus_id,
                f"nvidia{s.gpu_index}",
                s.gpu_name,
                snap.host.hostname,
                snap.driver_version,
            )
            return {**dict(zip(GPU_LABELS, values, strict=True)), **extra}

        readable = [g.sample for g in snap.gpus if not g.sample.lost]
        for name, fld, scale, doc in DCGM_GAUGES:
            family = _family(name, doc)
            for s in readable:
                value = getattr(s, fld)
                if value is not None:
                    family.add_sample(name, labels(s), float(value) * scale)
            yield family
        for name, fld, doc in DCGM_COUNTERS:
            family = _family(name, doc, "counter")
            for s in readable:
                value = getattr(s, fld)
                if value is not None:
                    family.add_sample(name, labels(s), float(value))
            yield family
        yield from _memory_families(readable, labels)

        xid = _family("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.")
        idle = _family(
            "finops_agent_gpu_idle",
            "1 when the GPU has had no compute process and activity under the threshold for "
            "the configured minutes.",
        )
        idle_s = _family(
            "finops_agent_gpu_idle_seconds", "How long the GPU has met the idle condition (s)."
        )
        lost = _family(
            "finops_agent_gpu_lost",
            "1 when NVML reports the GPU lost (fell off the bus) or it could not be opened.",
        )
        procs = _family("finops_agent_gpu_process_count", "Running compute processes.")
        mig = _family("finops_agent_gpu_mig_enabled", "1 when the GPU is in MIG mode.")
        unsupported = _family(
            "finops_agent_gpu_metric_unsupported",
            "1 for each NVML metric the GPU cannot report (metric), with the reason (why).",
        )
        for gpu in snap.gpus:
            s = gpu.sample
            xid.add_sample(xid.name, labels(s), float(gpu.last_xid))
            lost.add_sample(lost.name, labels(s), 1.0 if s.lost else 0.0)
            idle.add_sample(idle.name, labels(s), 1.0 if gpu.idle else 0.0)
            idle_s.add_sample(idle_s.name, labels(s), gpu.idle_seconds)
            if s.lost:
                continue
            if s.process_count is not None:
                procs.add_sample(procs.name, labels(s), float(s.process_count))
            if s.mig_enabled is not None:
                mig.add_sample(mig.name, labels(s), 1.0 if s.mig_enabled else 0.0)
            for metric, why in s.unsupported:
                unsupported.add_sample(unsupported.name, labels(s, metric=metric, why=why), 1.0)
        yield from (xid, idle, idle_s, lost, procs, mig, unsupported)

        window = GaugeMetricFamily(
            "finops_agent_window",
            "Last completed window's aggregate per GPU: metric (record field), stat (min|mean|p95|max).",
            labels=["gpu", "UUID", "device", "modelName", "Hostname", "metric", "stat"],
        )
        for r in snap.windows:
            for name in STAT_METRICS:
                st = r.stats.get(name)
                if st is None:
                    continue
                for stat in ("min", "mean", "p95", "max"):
                    window.add_metric(
                        [
                            str(r.gpu_index),
                            r.gpu_uuid,
                            f"nvidia{r.gpu_index}",
                            r.gpu_name,
                            snap.host.hostname,
                            name,
                            stat,
                        ],
                        getattr(st, stat),
                    )
        yield window
        yield from _diagnosis_metrics(snap)

        yield from _agent_metrics(snap)


# HostLoad field -> (metric, help); the last window's figures, absent when not read
HOST_LOAD_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("cpu_busy_ratio", "finops_agent_host_cpu_busy_ratio", "Share of all CPUs' time busy."),
    ("iowait_ratio", "finops_agent_host_iowait_ratio", "Share of all CPUs' time in iowait."),
    (
        "io_pressure_ratio",
        "finops_agent_host_io_pressure_ratio",
        "Share of wall time some task was stalled on I/O (PSI io some).",
    ),
    (
        "major_faults_per_second",
        "finops_agent_host_major_faults_per_second",
        "Page faults that read from storage, per second (vmstat pgmajfault).",
    ),
    (
        "page_cache_refaults_per_second",
        "finops_agent_host_page_cache_refaults_per_second",
        "File pages read again soon after the page cache evicted them, per second.",
    ),
    (
        "page_in_bytes_per_second",
        "finops_agent_host_page_in_bytes_per_second",
        "Bytes read from block devices per second (vmstat pgpgin).",
    ),
)


def _diagnosis_metrics(snap: MetricsSnapshot) -> Iterator[Metric]:
    """The last window's verdict per GPU (one series per verdict, 1 for the current one) and
    the host load it was drawn from."""
    labels = ["gpu", "UUID", "device", "modelName", "Hostname"]
    verdict = GaugeMetricFamily(
        "finops_agent_input_verdict",
        "Last window's verdict per GPU: 1 for the verdict it got, 0 for the others "
        "(gpu-busy, waiting-on-data, gpu-and-host-idle, gpu-unused, unknown).",
        labels=[*labels, "verdict"],
    )
    cause = GaugeMetricFamily(
        "finops_agent_input_wait_cause",
        "1 for each cause of a waiting-on-data verdict in the last window (cpu, io, page-cache).",
        labels=[*labels, "cause"],
    )
    host_load = None
    for r in snap.windows:
        if r.input_verdict is None:
            continue
        host_load = host_load or r.host_load
        gpu = [str(r.gpu_index), r.gpu_uuid, f"nvidia{r.gpu_index}", r.gpu_name, snap.host.hostname]
        for state in Verdict:
            verdict.add_metric([*gpu, state.value], 1.0 if r.input_verdict == state.value else 0.0)
        for name in r.input_causes:
            cause.add_metric([*gpu, name], 1.0)
    yield from (verdict, cause)
    for key, name, doc in HOST_LOAD_GAUGES:
        family = GaugeMetricFamily(name, doc)
        figure = None if host_load is None else host_load.get(key)
        if figure is not None:
            family.add_metric([], float(figure))
        yield family


def _memory_families(
    samples: list[GpuSample], labels: Callable[..., dict[str, str]]
) -> Iterator[Metric]:
    """FB_USED/FREE/RESERVED/TOTAL in MiB; a MIG GPU's per GPU instance (label GPU_I_ID), as
    dcgm-exporter reports MIG instances, and its reservation on the GPU."""
    used = _family("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).")
    free = _family("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).")
    reserved = _family("DCGM_FI_DEV_FB_RESERVED", "Framebuffer memory reserved (in MiB).")
    total = _family("DCGM_FI_DEV_FB_TOTAL", "Framebuffer memory total (in MiB).")
    total_bytes = _family("finops_agent_gpu_memory_total_bytes", "Framebuffer size (bytes).")
    for s in samples:
        if s.memory_total_bytes is not None:
            total.add_sample(total.name, labels(s), s.memory_total_bytes / MIB)
            total_bytes.add_sample(total_bytes.name, labels(s), float(s.memory_total_bytes))
        if s.memory_reserved_bytes is not None:
            reserved.add_sample(reserved.name, labels(s), s.memory_reserved_bytes / MIB)
        if s.mig_enabled:
            for m in s.mig_instances:
                instance = labels(s, GPU_I_ID=str(m.gpu_instance_id))
                if m.memory_used_bytes is not None:
                    used.add_sample(used.name, instance, m.memory_used_bytes / MIB)
                    if m.memory_total_bytes is not None:
                        left = (m.memory_total_bytes - m.memory_used_bytes) / MIB
                        free.add_sample(free.name, instance, left)
            continue
        if s.memory_used_bytes is not None:
            used.add_sample(used.name, labels(s), s.memory_used_bytes / MIB)
            if s.memory_total_bytes is not None:
                left = s.memory_total_bytes - s.memory_used_bytes - (s.memory_reserved_bytes or 0)
                free.add_sample(free.name, labels(s), left / MIB)
    yield from (used, free, reserved, total, total_bytes)


def _agent_metrics(snap: MetricsSnapshot) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "finops_agent_spool_depth_records",
        "Window records spooled and not yet delivered, per sink.",
        labels=["sink"],
    )
    delivered = CounterMetricFamily(
        "finops_agent_delivered_records", "Window records delivered, per sink.", labels=["sink"]
    )
    failures = CounterMetricFamily(
        "finops_agent_delivery_failures", "Failed delivery attempts, per sink.", labels=["sink"]
    )
    throttled = CounterMetricFamily(
        "finops_agent_delivery_throttled",
        "Delivery attempts refused for throttling, per sink.",
        labels=["sink"],
    )
    last_ok = GaugeMetricFamily(
        "finops_agent_last_delivery_timestamp_seconds",
        "Unix time of the last successful delivery, per sink.",
        labels=["sink"],
    )
    rejected = CounterMetricFamily(
        "finops_agent_delivery_rejected_records",
        "Records a sink refused for good (e.g. older than CloudWatch accepts), skipped.",
        labels=["sink"],
    )
    for sink in snap.sinks:
        depth.add_metric([sink.sink], float(sink.depth_records))
        delivered.add_metric([sink.sink], float(sink.delivered_records_total))
        failures.add_metric([sink.sink], float(sink.failures_total))
        throttled.add_metric([sink.sink], float(sink.throttled_total))
        last_ok.add_metric([sink.sink], sink.last_success_unixtime)
        rejected.add_metric([sink.sink], float(sink.rejected_records_total))
    yield from (depth, delivered, failures, throttled, last_ok, rejected)
    yield CounterMetricFamily(
        "finops_agent_spool_dropped_records",
        "Spooled records deleted before delivery because the spool hit its bound (oldest first).",
        value=float(snap.spool_dropped_records_total),
    )
    yield CounterMetricFamily(
        "finops_agent_spool_unspooled_records",
        "Window records a failed disk write (full disk, I/O error) kept out of the spool: lost.",
        value=float(snap.spool_unspooled_records_total),
    )
    yield CounterMetricFamily(
        "finops_agent_spool_save_failures",
        "Cursor or state files the spool could not save (kept in memory; a restart may resend).",
        value=float(snap.spool_save_failures_total),
    )
    yield GaugeMetricFamily(
        "finops_agent_spool_bytes", "Bytes on disk in the spool.", value=float(snap.spool_bytes)
    )
    yield CounterMetricFamily(
        "finops_agent_samples",
        "GPU readings taken (one per tick, all GPUs).",
        value=float(snap.samples_total),
    )
    yield CounterMetricFamily(
        "finops_agent_samples_dropped",
        "Ticks skipped because a reading overran its interval.",
        value=float(snap.samples_dropped_total),
    )
    yield CounterMetricFamily(
        "finops_agent_windows", "Windows closed and spooled.", value=float(snap.windows_total)
    )
    yield GaugeMetricFamily(
        "finops_agent_sample_duration_seconds",
        "Duration of the last reading of all GPUs (s).",
        value=snap.last_sample_seconds,
    )
    notice = GaugeMetricFamily(
        "finops_agent_interruption_notice",
        "1 while a spot interruption / preemption (kind=interruption) or rebalance notice is active.",
        labels=["kind", "action", "time"],
    )
    for n in snap.notices:
        notice.add_metric([n.kind, n.action, n.time], 1.0)
    yield notice
    hooks = CounterMetricFamily(
        "finops_agent_hook_runs", "Hook runs by event and outcome.", labels=["event", "outcome"]
    )
    for (event, outcome), count in sorted(snap.hook_runs.items()):
        hooks.add_metric([event, outcome], float(count))
    yield hooks
    work = CounterMetricFamily(
        "finops_agent_work_units",
        "Units of work reported by the job since the agent started.",
        labels=["unit"],
    )
    for unit, amount in sorted(snap.work_units_total.items()):
        work.add_metric([unit], amount)
    yield work
    info = GaugeMetricFamily(
        "finops_agent_info",
        "Agent and host facts (value 1).",
        labels=["version", "driver", "instance_id", "instance_type", "lifecycle", "cloud"],
    )
    h = snap.host
    info.add_metric(
        [
            snap.agent_version,
            snap.driver_version,
            h.instance_id,
            h.instance_type,
            h.lifecycle,
            h.cloud,
        ],
        1.0,
    )
    yield info


def build_registry(take_snapshot: Callable[[], MetricsSnapshot]) -> CollectorRegistry:
    """A registry with the agent's collector and the process collector (CPU, RSS)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(take_snapshot))
    ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format 0.0.4, dcgm-exporter's counters unrenamed.

    prometheus_client declares every counter as `<name>_total`; dcgm-exporter's own names
    already end in `_TOTAL` and its samples carry no suffix, so their HELP/TYPE lines are
    put back to the name the samples have.
    """
    text = generate_latest(registry).decode("utf-8")
    for name, _field, _doc in DCGM_COUNTERS:
        text = text.replace(f"# HELP {name}_total ", f"# HELP {name} ", 1)
        text = text.replace(f"# TYPE {name}_total counter\n", f"# TYPE {name} counter\n", 1)
    return text.encode("utf-8")


class MetricsServer:
    """`GET /metrics` on a loopback address, in a daemon thread."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                    self._answer(404, b"GET /metrics\n", "text/plain")
                    return
                self._answer(200, exposition(registry), CONTENT_TYPE_LATEST)

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # no per-scrape access log

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        self.httpd = Server((host, port), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="metrics-http", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
