"""CloudWatch publisher in the shape AWS Compute Optimizer reads for GPU instances.

Compute Optimizer reads the CloudWatch agent's NVIDIA metrics: namespace `CWAgent`, names
`nvidia_smi_*` (memory in MB, as nvidia-smi reports it), one series per GPU. Two dimension
sets are published for them (agents/README.md says which is which and quotes the sources):

* `InstanceId, index` (+ `extra_dimensions`): one series per GPU, the finops set;
* `host, index, name, InstanceId` (`cwagent_dimensions`): exactly what the CloudWatch agent
  emits for `nvidia_smi` (its telegraf tags minus uuid/pstate/compute_mode, plus the
  `append_dimensions` InstanceId), so existing dashboards and Compute Optimizer see them.

Each window record becomes one datum per metric and set with StatisticValues (SampleCount,
Sum, Minimum, Maximum), so CloudWatch's Average and Maximum over any period are exact.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aifinops.agents.config import CloudWatchSection

log = logging.getLogger("finops_agent.cloudwatch")

MIB = 1024 * 1024
# PutMetricData refuses data points older than two weeks; keep a day of margin
MAX_AGE_SECONDS = 13 * 86400
# error codes that mean "this batch will never be accepted", as opposed to outage/throttling
PERMANENT_ERRORS = ("InvalidParameterValue", "InvalidParameterCombination", "MissingParameter")
# the dimension names the CloudWatch agent puts on nvidia_smi_* (amazon-cloudwatch-agent:
# translator/.../gpu/nvidiaSmi.go keeps telegraf's name/index/host tags, drops
# compute_mode/pstate/uuid; append_dimensions adds InstanceId)
CWAGENT_DIMENSIONS = ("host", "index", "name", "InstanceId")

# CloudWatch agent metric name -> (record field, scale applied to the stats)
CO_METRICS: tuple[tuple[str, str, float], ...] = (
    ("nvidia_smi_utilization_gpu", "gpu_util_percent", 1.0),
    ("nvidia_smi_utilization_memory", "mem_util_percent", 1.0),
    ("nvidia_smi_memory_used", "memory_used_bytes", 1.0 / MIB),
    ("nvidia_smi_power_draw", "power_watts", 1.0),
    ("nvidia_smi_temperature_gpu", "temperature_celsius", 1.0),
    ("nvidia_smi_clocks_current_sm", "sm_clock_mhz", 1.0),
)
# the agent's own figures, same namespace and dimensions (no CloudWatch agent equivalent)
OWN_METRICS: tuple[tuple[str, str, float], ...] = (
    ("finops_gpu_sm_active_ratio", "sm_active_ratio", 1.0),
    ("finops_gpu_tensor_active_ratio", "tensor_active_ratio", 1.0),
    ("finops_gpu_process_count", "process_count", 1.0),
)
NVIDIA_SMI_METRICS: tuple[str, ...] = (
    *(name for name, _, _ in CO_METRICS),
    "nvidia_smi_memory_total",
    "nvidia_smi_memory_free",
)
"""Every nvidia_smi_* name the agent publishes (the CloudWatch agent's set gets these only)."""
ALL_METRICS: tuple[str, ...] = (
    *NVIDIA_SMI_METRICS,
    *(name for name, _, _ in OWN_METRICS),
    "finops_gpu_idle",
)
"""Every metric name one GPU's window record can produce."""


@dataclass(frozen=True)
class SeriesLayout:
    """How many CloudWatch metrics (name + dimension set: each one billed per month) the
    agent keeps, as configured. The cost model prices the agent's telemetry from this."""

    per_gpu: int
    """Metrics keyed by InstanceId and GPU index (the finops set, the CloudWatch agent's
    set): new ones for every new instance."""
    per_tag_set: int
    """Metrics keyed by the tag dimensions and InstanceType (the per-fleet copy): shared by
    every GPU of the fleet on one instance type; 0 without tag_dimensions."""
    datums_per_record: int
    """MetricData entries one GPU's window record produces at most."""


def series_layout(section: CloudWatchSection) -> SeriesLayout:
    """The metrics `section` makes the agent publish (see `datums_for`)."""
    cwagent = len(NVIDIA_SMI_METRICS) if section.cwagent_dimensions else 0
    per_tag_set = len(ALL_METRICS) if section.tag_dimensions else 0
    per_gpu = len(ALL_METRICS) + cwagent
    return SeriesLayout(per_gpu, per_tag_set, per_gpu + per_tag_set)


def datums_for(record: Mapping[str, Any], section: CloudWatchSection) -> list[dict[str, Any]]:
    """The MetricData entries for one window record (a parsed JSON line)."""
    count = int(record.get("sample_count") or 0)
    if count == 0:
        return []  # lost for the whole window: nothing measured, nothing to say
    timestamp = dt.datetime.fromtimestamp(float(record["window_start"]), dt.UTC)
    values = {
        "InstanceId": dimension_value(record.get("instance_id")),
        "index": dimension_value(record.get("gpu_index")),
        "name": dimension_value(record.get("gpu_name")),
        "host": dimension_value(record.get("hostname")),
        "InstanceType": dimension_value(record.get("instance_type")),
    }

    def dims(names: Iterable[str]) -> list[dict[str, str]]:
        return [{"Name": name, "Value": values[name]} for name in names]

    finops_set = dims(("InstanceId", "index", *section.extra_dimensions))
    cwagent_set = dims(CWAGENT_DIMENSIONS) if section.cwagent_dimensions else None
    fleet_set = None
    if section.tag_dimensions:
        tags = record.get("tags") or {}
        fleet_set = [
            {"Name": key, "Value": dimension_value(tags.get(key))} for key in section.tag_dimensions
        ] + dims(("InstanceType",))
    out: list[dict[str, Any]] = []

    def add(name: str, statistics: dict[str, float]) -> None:
        sets = [finops_set]
        if cwagent_set is not None and name.startswith("nvidia_smi_"):
            sets.append(cwagent_set)
        if fleet_set is not None:
            sets.append(fleet_set)
        for dimensions in sets:
            out.append(
                {
                    "MetricName": name,
                    "Dimensions": dimensions,
                    "Timestamp": timestamp,
                    "StatisticValues": statistics,
                    "StorageResolution": section.storage_resolution_seconds,
                }
            )

    for name, field, scale in CO_METRICS + OWN_METRICS:
        stats = record.get(field)
        if stats is not None:
            add(name, _statistic_values(stats, count, scale))
    total = record.get("memory_total_bytes")
    used = record.get("memory_used_bytes")
    if total is not None:
        total_mib = total / MIB
        add("nvidia_smi_memory_total", _constant(total_mib, count))
        if used is not None:  # as nvidia-smi: what neither processes nor the driver hold
            available = total - (record.get("memory_reserved_bytes") or 0)
            free = {
                "min": available - used["max"],
                "mean": available - used["mean"],
                "max": available - used["min"],
            }
            add("nvidia_smi_memory_free", _statistic_values(free, count, 1.0 / MIB))
    add("finops_gpu_idle", _constant(1.0 if record.get("idle") else 0.0, count))
    return out


def dimension_value(value: object) -> str:
    """A value CloudWatch accepts: ASCII, no control characters, 1..1024 characters.

    Host facts come from the machine (hostname, GPU name); a value CloudWatch would refuse
    becomes "unknown" rather than a batch refused for good.
    """
    text = "" if value is None else str(value)
    text = "".join(c if c.isascii() and c.isprintable() else "?" for c in text)[:1024]
    return text if text.strip() else "unknown"


def _statistic_values(stats: Mapping[str, float], count: int, scale: float) -> dict[str, float]:
    return {
        "SampleCount": float(count),
        "Sum": float(stats["mean"]) * scale * count,
        "Minimum": float(stats["min"]) * scale,
        "Maximum": float(stats["max"]) * scale,
    }


def _constant(value: float, count: int) -> dict[str, float]:
    return {"SampleCount": float(count), "Sum": value * count, "Minimum": value, "Maximum": value}


class CloudWatchUnavailable(ValueError):
    """[cloudwatch] enabled = true, but botocore is not installed."""


class CloudWatchPublisher:
    """Sends datums with PutMetricData; raises on failure so the shipper backs off and retries."""

    def __init__(self, section: CloudWatchSection, region: str) -> None:
        # botocore (boto3's engine) directly: boto3's resource layer is not needed here and
        # costs ~1.5 MB of RSS on every GPU host
        try:
            import botocore.session
            from botocore.config import Config
        except ImportError as exc:
            raise CloudWatchUnavailable(
                "[cloudwatch] enabled = true but botocore is not installed: "
                "pip install botocore (the agent extra brings it), or set "
                "[cloudwatch] enabled = false"
            ) from exc

        self.section = section
        self.too_old_records_total = 0
        self.client: Any = botocore.session.get_session().create_client(
            "cloudwatch",
            region_name=section.region or region,
            endpoint_url=section.endpoint_url or None,
            config=Config(
                connect_timeout=3,
                read_timeout=10,
                retries={"mode": "standard", "max_attempts": 2},
            ),
        )
        release_freed_memory()

    def metrics_per_record(self) -> int:
        """Upper bound of datums one record produces (sizes a batch to one request)."""
        return series_layout(self.section).datums_per_record

    def publish(self, records: Iterable[Mapping[str, Any]], now: float | None = None) -> int:
        """PutMetricData for the records, in requests of at most max_metrics_per_request.

        Records older than CloudWatch accepts are skipped (counted in `too_old_records_total`);
        a permanent refusal raises RejectedBatch, anything else propagates for a retry.
        """
        from botocore.exceptions import ClientError, ParamValidationError

        from aifinops.agents.shipping import RejectedBatch

        records = list(records)
        oldest = (time.time() if now is None else now) - MAX_AGE_SECONDS
        fresh = [r for r in records if float(r["window_start"]) >= oldest]
        self.too_old_records_total += sum(1 for r in records if float(r["window_start"]) < oldest)
        datums = [d for record in fresh for d in datums_for(record, self.section)]
        limit = self.section.max_metrics_per_request
        for start in range(0, len(datums), limit):
            try:
                self.client.put_metric_data(
                    Namespace=self.section.namespace, MetricData=datums[start : start + limit]
                )
            except ParamValidationError as exc:  # refused before sending: it never will be accepted
                raise RejectedBatch(str(exc)) from exc
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in PERMANENT_ERRORS:
                    raise RejectedBatch(str(exc)) from exc
                raise
        return len(datums)


def release_freed_memory() -> None:
    """Return the heap freed after loading botocore's JSON models to the OS (glibc only).

    Creating the client parses several MB of JSON that is dropped right after; without
    this the agent keeps ~2.5 MB more RSS for its whole life.
    """
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def is_throttle(exc: BaseException) -> bool:
    """A throttling answer (back off harder) rather than an outage."""
    response = getattr(exc, "response", None)
    code = (response or {}).get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
    return code in (
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    )
