"""Prometheus HTTP API source: every figure aggregated on the server with PromQL.

One instant query per figure returns one number per GPU (or per host) for the whole window;
no raw samples leave the server, whatever the fleet's size. Metric names are the agent's
(dcgm-exporter's, plus `finops_agent_*`); hosts are told apart by the scrape target label
`instance`, joined to `finops_agent_info` for the instance type and id. A `fleet` target label
(from service discovery relabelling) names the fleet when present. The busy and observed clock
hours come from one range query at a 1-hour step (one point per GPU per hour).

Host CPU and memory are not read from Prometheus (the agent does not export them, and
node_exporter's targets carry another `instance` label): no rule moves such a fleet to fewer
vCPUs or less host memory.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aifinops.rightsizing.spool import SourceError
from aifinops.rightsizing.usage import IDLE_UTIL_PERCENT, INTERVAL_SECONDS, GpuUsage

MIB_PER_GIB = 1024.0


@dataclass(frozen=True)
class PrometheusSource:
    url: str
    """Base URL, e.g. http://127.0.0.1:9090."""
    host_label: str = "instance"
    fleet_label: str = "fleet"
    timeout_seconds: float = 30.0

    def query(self, promql: str, at: float) -> list[dict[str, Any]]:
        """Instant query at unix time `at`: the result vector."""
        return self._get("query", {"query": promql, "time": f"{at:.3f}"}, promql)

    def query_range(
        self, promql: str, start: float, end: float, step_seconds: float
    ) -> list[dict[str, Any]]:
        """Range query: the result matrix (`values` per series)."""
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step_seconds:g}",
        }
        return self._get("query_range", params, promql)

    def _get(self, path: str, params: dict[str, str], promql: str) -> list[dict[str, Any]]:
        url = f"{self.url.rstrip('/')}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_seconds) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise SourceError(
                f"prometheus {self.url}: HTTP {exc.code} for {promql!r}: {detail}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise SourceError(
                f"prometheus {self.url}: cannot connect ({exc}); check --source prometheus:URL"
            ) from None
        if body.get("status") != "success":
            raise SourceError(f"prometheus {self.url}: {body.get('error', body)} for {promql!r}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def _gpu_key(metric: Mapping[str, str], host_label: str) -> tuple[str, str]:
    return (metric.get(host_label, ""), metric.get("gpu", ""))


def queries(lookback_days: float, host_label: str = "instance") -> dict[str, str]:
    """Name -> PromQL of every figure read (documented in docs/rightsizing.md)."""
    r = f"{int(lookback_days * 86400)}s"
    step = f"{int(INTERVAL_SECONDS)}s"
    util_peak = f"max_over_time(DCGM_FI_DEV_GPU_UTIL[{step}])"
    return {
        "util_p95": f"quantile_over_time(0.95, {util_peak}[{r}:{step}])",
        "util_mean": f"avg_over_time(DCGM_FI_DEV_GPU_UTIL[{r}])",
        "util_mean_p95": (
            f"quantile_over_time(0.95, (avg_over_time(DCGM_FI_DEV_GPU_UTIL[{step}]) and "
            f"{util_peak} >= {IDLE_UTIL_PERCENT:g})[{r}:{step}])"
        ),
        "intervals": f"count_over_time({util_peak}[{r}:{step}])",
        "memory_peak_mib": f"max_over_time(DCGM_FI_DEV_FB_USED[{r}])",
        "memory_total_bytes": f"max_over_time(finops_agent_gpu_memory_total_bytes[{r}])",
        "sm_p95": f"quantile_over_time(0.95, max_over_time(DCGM_FI_PROF_SM_ACTIVE[{step}])[{r}:{step}])",
        "sm_mean": f"avg_over_time(DCGM_FI_PROF_SM_ACTIVE[{r}])",
        "hour_peaks": "max_over_time(DCGM_FI_DEV_GPU_UTIL[1h])",
        "info": (
            f"max by ({host_label}, instance_id, instance_type, lifecycle, cloud) "
            f"(last_over_time(finops_agent_info[{r}]))"
        ),
        "work": f"sum by ({host_label}, unit) (increase(finops_agent_work_units_total[{r}]))",
        "work_hours": f"sum by ({host_label}) (increase(finops_agent_work_units_total[1h]))",
    }


def read_usage(
    source: PrometheusSource, *, lookback_days: float = 14.0, end: float | None = None
) -> list[GpuUsage]:
    """One `GpuUsage` per GPU that reported utilisation in the window ending at `end`."""
    at = time.time() if end is None else end
    q = queries(lookback_days, source.host_label)
    host = source.host_label

    def per_gpu(name: str) -> dict[tuple[str, str], float]:
        return {
            _gpu_key(s["metric"], host): float(s["value"][1]) for s in source.query(q[name], at)
        }

    util_series = source.query(q["util_p95"], at)
    if not util_series:
        return []
    labels = {_gpu_key(s["metric"], host): s["metric"] for s in util_series}
    util_p95 = {_gpu_key(s["metric"], host): float(s["value"][1]) for s in util_series}
    util_mean, util_mean_p95 = per_gpu("util_mean"), per_gpu("util_mean_p95")
    intervals = per_gpu("intervals")
    memory_peak, memory_total = per_gpu("memory_peak_mib"), per_gpu("memory_total_bytes")
    sm_p95, sm_mean = per_gpu("sm_p95"), per_gpu("sm_mean")
    busy: dict[tuple[str, str], set[int]] = defaultdict(set)
    observed: dict[tuple[str, str], set[int]] = defaultdict(set)
    first_hour = at - lookback_days * 86400 + 3600
    for series in source.query_range(q["hour_peaks"], first_hour, at, 3600):
        key = _gpu_key(series["metric"], host)
        for stamp, value in series["values"]:
            hour = int((float(stamp) - 3600) // 3600)  # the point covers the hour before it
            observed[key].add(hour)
            if float(value) >= IDLE_UTIL_PERCENT:
                busy[key].add(hour)
    info = {s["metric"].get(host, ""): s["metric"] for s in source.query(q["info"], at)}
    hours = lookback_days * 24
    work: dict[str, dict[str, float]] = defaultdict(dict)
    for s in source.query(q["work"], at):
        work[s["metric"].get(host, "")][s["metric"].get("unit", "units")] = (
            float(s["value"][1]) / hours
        )
    work_hours: dict[str, int] = defaultdict(int)
    for series in source.query_range(q["work_hours"], first_hour, at, 3600):
        work_hours[series["metric"].get(host, "")] += sum(
            1 for _, value in series["values"] if float(value) > 0
        )
    usages = []
    for key, metric in sorted(labels.items()):
        target, gpu_index = key
        facts = info.get(target, {})
        count = int(intervals.get(key, 0))
        total = memory_total.get(key)
        usages.append(
            GpuUsage(
                host=facts.get("instance_id") or target,
                gpu_index=int(gpu_index or 0),
                instance_type=facts.get("instance_type", "unknown"),
                region=None,
                fleet=metric.get(source.fleet_label),
                window_start=at - count * INTERVAL_SECONDS,
                window_end=at,
                intervals=count,
                util_p95_percent=util_p95[key],
                util_mean_percent=util_mean.get(key),
                # no interval with work: no demand (when the mean itself is known)
                util_mean_p95_percent=util_mean_p95.get(key, 0.0 if key in util_mean else None),
                memory_peak_gib=memory_peak[key] / MIB_PER_GIB if key in memory_peak else None,
                memory_total_gib=None if total is None else total / 1024.0**3,
                sm_active_p95=sm_p95.get(key),
                sm_active_mean=sm_mean.get(key),
                busy_hours=frozenset(busy.get(key, ())),
                observed_hours=frozenset(observed.get(key, ())),
                work_per_hour=work.get(target, {}),
                work_hours=work_hours.get(target, 0),
                lifecycle=facts.get("lifecycle", "unknown"),
                source=f"prometheus {source.url}",
            )
        )
    return usages
