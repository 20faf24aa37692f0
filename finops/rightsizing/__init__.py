"""Rightsizing: measured GPU usage -> changes to the stack config, priced by the preview.

    usages = spool.read_usage([Path("windows.jsonl")], lookback_days=14)
    pricer = pricing.stack_pricer(Path("Pulumi.dev.yaml"), project_dir)
    reports = recommend(config, usages, pricer)

Sources: `spool` (the agent's files), `prometheus` (HTTP API, aggregated on the server),
`cloudwatch` (GetMetricData); each ends in `usage.GpuUsage`, the one interface a new reader
has to produce. `evidence` folds a target's GPUs and judges whether they are enough;
`pricing` prices a candidate by running the program offline and pricing it with
`aifinops.cost`; `recommend` drives `rules` (the checks against the demand) and `choose`
(composing and comparing candidates) and returns `model` records; `apply` edits
`Pulumi.<stack>.yaml` in place. `spot` holds the interruption
model shared by the recommendations and the benchmarks.
"""

from __future__ import annotations

from aifinops.rightsizing.model import (
    Alternative,
    Evidence,
    Kind,
    Plan,
    Recommendation,
    Settings,
    Step,
    TargetReport,
)
from aifinops.rightsizing.pricing import PreviewPricer, PricedTarget, Pricer
from aifinops.rightsizing.recommend import recommend
from aifinops.rightsizing.usage import GpuUsage, HostInterval, IntervalPeak, summarise

__all__ = [
    "Alternative",
    "Evidence",
    "GpuUsage",
    "HostInterval",
    "IntervalPeak",
    "Kind",
    "Plan",
    "PreviewPricer",
    "PricedTarget",
    "Pricer",
    "Recommendation",
    "Settings",
    "Step",
    "TargetReport",
    "recommend",
    "summarise",
]
