"""What the exporters render: one consistent picture of the agent, taken at scrape time.

The agent builds a `MetricsSnapshot` (agents/agent.py, `Agent.snapshot()`); the Prometheus
collector (agents/prom.py) only renders it. Neither reaches into the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aifinops.agents.records import GpuSample, HostInfo, WindowRecord


@dataclass(frozen=True)
class GpuState:
    """One GPU's latest reading and what the agent concluded from it."""

    sample: GpuSample
    idle: bool  # idle for the configured minutes
    idle_seconds: float  # how long the idle condition has held (s)
    last_xid: int  # last XID code seen (0: none)


@dataclass(frozen=True)
class SinkState:
    """Delivery figures of one sink (export file, CloudWatch)."""

    sink: str
    depth_records: int
    delivered_records_total: int
    failures_total: int
    throttled_total: int
    rejected_records_total: int
    last_success_unixtime: float


@dataclass(frozen=True)
class NoticeState:
    kind: str
    action: str
    time: str


@dataclass(frozen=True)
class MetricsSnapshot:
    agent_version: str
    driver_version: str
    host: HostInfo
    gpus: Sequence[GpuState]
    windows: Sequence[WindowRecord]  # the last completed window, one record per GPU
    sinks: Sequence[SinkState]
    spool_dropped_records_total: int
    spool_unspooled_records_total: int  # records a failed disk write kept out of the spool
    spool_save_failures_total: int  # cursor/state files that could not be saved
    spool_bytes: int
    samples_total: int
    samples_dropped_total: int
    windows_total: int
    last_sample_seconds: float
    notices: Sequence[NoticeState]
    hook_runs: Mapping[tuple[str, str], int] = field(default_factory=dict)
    work_units_total: Mapping[str, float] = field(default_factory=dict)
