"""Prometheus `/metrics`: dcgm-exporter's names where one exists, plus the agent's own.

Values are rendered at scrape time from a `MetricsSnapshot` the agent hands over (a custom
collector), so sampling costs nothing extra when nobody scrapes. dcgm-exporter's units are kept (framebuffer in MiB,
power in W, PROF_* as ratios 0-1) and its labels (`gpu`, `UUID`, `device`, `modelName`,
`Hostname`), so dashboards and alerts built for it work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agents.records import STAT_METRICS
from agents.snapshot import MetricsSnapshot

MIB = 1024 * 1024
GPU_LABELS = ["gpu", "UUID", "device", "modelName", "Hostname"]

# dcgm-exporter name -> (GpuSample field, scale, help)
DCGM_GAUGES: tuple[tuple[str, str, float, str], ...] = (
    ("DCGM_FI_DEV_GPU_UTIL", "gpu_util_percent", 1.0, "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "mem_util_percent", 1.0, "Memory utilization (in %)."),
    ("DCGM_FI_DEV_FB_USED", "memory_used_bytes", 1.0 / MIB, "Framebuffer memory used (in MiB)."),
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
    (
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        "ecc_corrected_volatile",
        1.0,
        "Total number of single-bit volatile ECC errors.",
    ),
    (
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "ecc_uncorrected_volatile",
        1.0,
        "Total number of double-bit volatile ECC errors.",
    ),
)


class AgentCollector(Collector):
    """Renders the snapshot `take_snapshot()` returns at each scrape."""

    def __init__(self, take_snapshot: Callable[[], MetricsSnapshot]) -> None:
        self.take_snapshot = take_snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.take_snapshot()
        samples = [g.sample for g in snap.gpus]
        host = snap.host.hostname

        def labels(index: int, uuid: str, name: str) -> list[str]:
            return [str(index), uuid, f"nvidia{index}", name, host]

        for metric, fld, scale, doc in DCGM_GAUGES:
            family = GaugeMetricFamily(metric, doc, labels=GPU_LABELS)
            for s in samples:
                value = getattr(s, fld)
                if value is not None and not s.lost:
                    family.add_metric(
                        labels(s.gpu_index, s.gpu_uuid, s.gpu_name), float(value) * scale
                    )
            yield family

        fb_free = GaugeMetricFamily(
            "DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", labels=GPU_LABELS
        )
        xid = GaugeMetricFamily(
            "DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", labels=GPU_LABELS
        )
        idle = GaugeMetricFamily(
            "finops_agent_gpu_idle",
            "1 when the GPU has had no compute process and activity under the threshold for the configured minutes.",
            labels=GPU_LABELS,
        )
        idle_s = GaugeMetricFamily(
            "finops_agent_gpu_idle_seconds",
            "How long the GPU has met the idle condition (s).",
            labels=GPU_LABELS,
        )
        lost = GaugeMetricFamily(
            "finops_agent_gpu_lost",
            "1 when NVML reports the GPU lost (fell off the bus).",
            labels=GPU_LABELS,
        )
        procs = GaugeMetricFamily(
            "finops_agent_gpu_process_count", "Running compute processes.", labels=GPU_LABELS
        )
        total = GaugeMetricFamily(
            "finops_agent_gpu_memory_total_bytes", "Framebuffer size (bytes).", labels=GPU_LABELS
        )
        for gpu in snap.gpus:
            s = gpu.sample
            lab = labels(s.gpu_index, s.gpu_uuid, s.gpu_name)
            xid.add_metric(lab, float(gpu.last_xid))
            lost.add_metric(lab, 1.0 if s.lost else 0.0)
            idle.add_metric(lab, 1.0 if gpu.idle else 0.0)
            idle_s.add_metric(lab, gpu.idle_seconds)
            if s.lost:
                continue
            if s.memory_total_bytes is not None and s.memory_used_bytes is not None:
                fb_free.add_metric(lab, (s.memory_total_bytes - s.memory_used_bytes) / MIB)
            if s.memory_total_bytes is not None:
                total.add_metric(lab, float(s.memory_total_bytes))
            if s.process_count is not None:
                procs.add_metric(lab, float(s.process_count))
        yield from (fb_free, xid, idle, idle_s, lost, procs, total)

        window = GaugeMetricFamily(
            "finops_agent_window",
            "Last completed window's aggregate per GPU: metric (record field), stat (min|mean|p95|max).",
            labels=[*GPU_LABELS, "metric", "stat"],
        )
        for r in snap.windows:
            for name in STAT_METRICS:
                st = r.stats.get(name)
                if st is None:
                    continue
                for stat in ("min", "mean", "p95", "max"):
                    window.add_metric(
                        [*labels(r.gpu_index, r.gpu_uuid, r.gpu_name), name, stat],
                        getattr(st, stat),
                    )
        yield window

        yield from _agent_metrics(snap)


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
