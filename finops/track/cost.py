"""What one training run cost, measured from the agent's window records of the hosts it used.

For each host: the seconds of the run its windows cover (a window the run covers in part
counts in proportion) x the catalog's hourly price of the host's instance type in its region,
spot or on-demand by the lifecycle the agent read from the instance metadata. Then the run's
GPU-hours, mean GPU use, spot share, interruptions, the share of GPU time spent waiting on
data, and the work the job reported to the agent (cost per unit of work).

Where no agent ran, `estimate` prices the wall time of the run on a given instance type and
says so (`basis = "estimated"`); where neither is possible the cost is unknown, never 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aifinops import catalog
from aifinops.errors import CatalogError, FinopsError
from aifinops.track.records import host_of

MEASURED, ESTIMATED, UNKNOWN = "measured", "estimated", "unknown"
CLOUDS = ("aws", "gcp", "azure")
WAITING_ON_DATA = "waiting-on-data"  # agents/hostload.py Verdict value


class TrackError(FinopsError):
    """A run's cost cannot be worked out as asked: says what is missing and what to give."""


@dataclass(frozen=True)
class HostCost:
    """One host's part of a run."""

    host: str
    instance_type: str
    region: str
    lifecycle: str
    """"spot", "on-demand" or "unknown" (then priced on-demand, an upper bound)."""
    hours: float
    usd_per_hour: float | None
    usd: float | None
    gpus: int
    interruptions: int
    note: str = ""


@dataclass(frozen=True)
class RunCost:
    """A run's cost and use; None where a figure could not be measured or estimated."""

    basis: str
    """"measured" (the agent's records), "estimated" (wall time x catalog price) or "unknown"."""
    start: float
    end: float
    """Unix seconds: the run's span."""
    cost_usd: float | None
    instance_hours: float
    gpu_hours: float
    spot_share: float | None
    """Share of instance-hours bought on spot (None when no lifecycle is known)."""
    interruptions: int
    gpu_util_mean_percent: float | None
    sm_active_mean_percent: float | None
    waiting_on_data_share: float | None
    """Share of diagnosed GPU time the agent judged "GPU waiting on data" (None: no verdicts)."""
    work_units: dict[str, float] = field(default_factory=dict)
    hosts: tuple[HostCost, ...] = ()
    unmeasured_seconds: float = 0.0
    """Seconds of the run no agent window covers (the tail not yet written, a host that died)."""
    notes: tuple[str, ...] = ()

    @property
    def usd_per_work_unit(self) -> dict[str, float]:
        """USD per unit of work reported, by unit (only where both are known and positive)."""
        if self.cost_usd is None:
            return {}
        return {u: self.cost_usd / n for u, n in sorted(self.work_units.items()) if n > 0}

    @property
    def instance_types(self) -> tuple[str, ...]:
        return tuple(sorted({h.instance_type for h in self.hosts}))

    def to_json(self) -> dict[str, Any]:
        return {
            "basis": self.basis,
            "start": self.start,
            "end": self.end,
            "cost_usd": self.cost_usd,
            "instance_hours": self.instance_hours,
            "gpu_hours": self.gpu_hours,
            "spot_share": self.spot_share,
            "interruptions": self.interruptions,
            "gpu_util_mean_percent": self.gpu_util_mean_percent,
            "sm_active_mean_percent": self.sm_active_mean_percent,
            "waiting_on_data_share": self.waiting_on_data_share,
            "work_units": dict(self.work_units),
            "usd_per_work_unit": self.usd_per_work_unit,
            "unmeasured_seconds": self.unmeasured_seconds,
            "hosts": [h.__dict__ for h in self.hosts],
            "notes": list(self.notes),
            "catalog_snapshot": catalog.SNAPSHOT_DATE,
        }


def _overlap(start: float, end: float, window_start: float, window_end: float) -> float:
    return max(0.0, min(end, window_end) - max(start, window_start))


def _stat_mean(record: dict[str, Any], name: str) -> float | None:
    stats = record.get(name)
    if isinstance(stats, dict) and stats.get("mean") is not None:
        return float(stats["mean"])
    return None


def price_of(
    instance_type: str, region: str | None, cloud: str | None, lifecycle: str
) -> tuple[float, str]:
    """USD per hour of one node, and a note when the price is not the lifecycle's own.
    `region` None: the cloud's default region. Raises CatalogError when the catalog does not
    know the type (in the region)."""
    info = catalog.lookup(instance_type, region, cloud=cloud if cloud in CLOUDS else None)
    if lifecycle == "spot":
        if info.spot_usd_per_hour is None:
            return info.on_demand_usd_per_hour, (
                f"{instance_type}: no spot price in the catalog, priced on-demand"
            )
        return info.spot_usd_per_hour, ""
    if lifecycle == "on-demand":
        return info.on_demand_usd_per_hour, ""
    return info.on_demand_usd_per_hour, (
        f"{instance_type}: purchase option unknown (no instance metadata), priced on-demand "
        "(an upper bound)"
    )


def measure(records: Sequence[dict[str, Any]], start: float, end: float) -> RunCost:
    """The run's cost from the window records of its hosts that overlap [start, end)."""
    if end <= start:
        raise TrackError(f"the run's end ({end}) is not after its start ({start})")
    by_host: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_host[host_of(record)].append(record)
    hosts: list[HostCost] = []
    notes: list[str] = []
    work: dict[str, float] = defaultdict(float)
    gpu_seconds = 0.0
    util_weighted = util_seconds = sm_weighted = sm_seconds = 0.0
    diagnosed_seconds = waiting_seconds = 0.0
    covered_max = 0.0
    for host, rows in sorted(by_host.items()):
        windows: dict[tuple[float, float], dict[str, Any]] = {}
        gpus: set[str] = set()
        for r in rows:
            span = (float(r["window_start"]), float(r["window_end"]))
            windows.setdefault(span, r)  # one record per window carries the host-wide fields
            seconds = _overlap(start, end, *span)
            if not r.get("sample_count") or seconds <= 0:
                continue
            gpus.add(str(r.get("gpu_uuid")))
            gpu_seconds += seconds
            util = _stat_mean(r, "gpu_util_percent")
            if util is not None:
                util_weighted += util * seconds
                util_seconds += seconds
            sm = _stat_mean(r, "sm_active_ratio")
            if sm is not None:
                sm_weighted += sm * 100.0 * seconds
                sm_seconds += seconds
            verdict = r.get("input_verdict")
            if verdict not in (None, "unknown"):
                diagnosed_seconds += seconds
                if verdict == WAITING_ON_DATA:
                    waiting_seconds += seconds
        covered = 0.0
        interruptions = 0
        active = False
        for (window_start, window_end), r in sorted(windows.items()):
            seconds = _overlap(start, end, window_start, window_end)
            covered += seconds
            length = window_end - window_start
            for unit, amount in (r.get("work_units") or {}).items():
                if length > 0:
                    work[str(unit)] += float(amount) * seconds / length
            notice = r.get("interruption_action") is not None
            interruptions += 1 if notice and not active else 0
            active = notice
        covered_max = max(covered_max, covered)
        last = rows[-1]
        instance_type = str(last.get("instance_type") or "unknown")
        region = str(last.get("region") or "unknown")
        lifecycle = str(last.get("lifecycle") or "unknown")
        hours = covered / 3600.0
        try:
            if instance_type == "unknown":
                raise CatalogError("the agent read no instance type (no instance metadata)")
            price, note = price_of(
                instance_type,
                None if region == "unknown" else region,
                str(last.get("cloud")),
                lifecycle,
            )
            if region == "unknown":
                note = "; ".join(
                    n
                    for n in (note, f"{host}: region unknown, priced in the cloud's default region")
                    if n
                )
        except CatalogError as exc:
            price, note = None, f"{host}: UNKNOWN cost: {exc}"
        if note:
            notes.append(note)
        hosts.append(
            HostCost(
                host=host,
                instance_type=instance_type,
                region=region,
                lifecycle=lifecycle,
                hours=hours,
                usd_per_hour=price,
                usd=None if price is None else price * hours,
                gpus=len(gpus),
                interruptions=interruptions,
                note=note,
            )
        )
    instance_hours = sum(h.hours for h in hosts)
    known = [h for h in hosts if h.lifecycle in ("spot", "on-demand")]
    known_hours = sum(h.hours for h in known)
    unmeasured = max(0.0, (end - start) - covered_max) if hosts else end - start
    if hosts and unmeasured > 1.0:
        notes.append(
            f"{unmeasured:.0f} s of the run are in no agent window (not yet written, or the "
            "host stopped reporting): not in the cost"
        )
    return RunCost(
        basis=MEASURED,
        start=start,
        end=end,
        cost_usd=None if any(h.usd is None for h in hosts) else sum(h.usd or 0.0 for h in hosts),
        instance_hours=instance_hours,
        gpu_hours=gpu_seconds / 3600.0,
        spot_share=sum(h.hours for h in known if h.lifecycle == "spot") / known_hours
        if known_hours > 0
        else None,
        interruptions=sum(h.interruptions for h in hosts),
        gpu_util_mean_percent=util_weighted / util_seconds if util_seconds else None,
        sm_active_mean_percent=sm_weighted / sm_seconds if sm_seconds else None,
        waiting_on_data_share=waiting_seconds / diagnosed_seconds if diagnosed_seconds else None,
        work_units={u: v for u, v in sorted(work.items())},
        hosts=tuple(hosts),
        unmeasured_seconds=unmeasured,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class Assumed:
    """What the run is assumed to have used where no agent reported: the estimate's inputs."""

    instance_type: str
    region: str | None = None
    cloud: str | None = None
    lifecycle: str = "on-demand"
    nodes: int = 1


def estimate(assumed: Assumed, start: float, end: float) -> RunCost:
    """Wall time x nodes x the catalog price of the assumed type: an estimate, marked as such."""
    if end <= start:
        raise TrackError(f"the run's end ({end}) is not after its start ({start})")
    try:
        info = catalog.lookup(assumed.instance_type, assumed.region, cloud=assumed.cloud)
        price, note = price_of(info.instance_type, info.region, info.cloud, assumed.lifecycle)
    except CatalogError as exc:
        raise TrackError(f"--instance-type {assumed.instance_type!r}: {exc}") from None
    hours = (end - start) / 3600.0 * assumed.nodes
    notes = [
        f"ESTIMATED: no agent records for the run; {assumed.nodes} x {info.instance_type} "
        f"({assumed.lifecycle}) for the run's wall time at ${price:.4f}/h "
        f"(catalog {catalog.SNAPSHOT_DATE}); no interruptions, GPU use or work measured"
    ]
    if note:
        notes.append(note)
    host = HostCost(
        host="(assumed)",
        instance_type=info.instance_type,
        region=info.region,
        lifecycle=assumed.lifecycle,
        hours=hours,
        usd_per_hour=price,
        usd=price * hours,
        gpus=math.ceil(info.accelerator_count * assumed.nodes),
        interruptions=0,
        note=note,
    )
    return RunCost(
        basis=ESTIMATED,
        start=start,
        end=end,
        cost_usd=price * hours,
        instance_hours=hours,
        gpu_hours=hours * info.accelerator_count,
        spot_share=1.0 if assumed.lifecycle == "spot" else 0.0,
        interruptions=0,
        gpu_util_mean_percent=None,
        sm_active_mean_percent=None,
        waiting_on_data_share=None,
        hosts=(host,),
        notes=tuple(notes),
    )


def unknown(start: float, end: float, why: str) -> RunCost:
    """No agent records and nothing to estimate from: every money figure None, said loudly."""
    return RunCost(
        basis=UNKNOWN,
        start=start,
        end=end,
        cost_usd=None,
        instance_hours=0.0,
        gpu_hours=0.0,
        spot_share=None,
        interruptions=0,
        gpu_util_mean_percent=None,
        sm_active_mean_percent=None,
        waiting_on_data_share=None,
        unmeasured_seconds=end - start,
        notes=(f"UNKNOWN cost: {why}",),
    )
