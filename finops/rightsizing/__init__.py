"""Rightsizing: measured GPU usage -> priced, safe changes to the stack config.

    usages = spool.read_usage([Path("windows.jsonl")], lookback_days=14)
    recommendations = recommend(config, usages)

Sources: `spool` (the agent's files), `prometheus` (HTTP API, aggregated on the server),
`cloudwatch` (GetMetricData). `apply` edits `Pulumi.<stack>.yaml` in place. `spot` holds the
interruption model shared by the recommendations and the benchmarks.
"""

from __future__ import annotations

from finops.rightsizing.recommend import (
    Evidence,
    Kind,
    Plan,
    Recommendation,
    Settings,
    recommend,
    recommend_host,
)
from finops.rightsizing.usage import GpuUsage, IntervalPeak, summarise

__all__ = [
    "Evidence",
    "GpuUsage",
    "IntervalPeak",
    "Kind",
    "Plan",
    "Recommendation",
    "Settings",
    "recommend",
    "recommend_host",
    "summarise",
]
