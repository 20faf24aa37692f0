"""Cost per experiment run, logged where ML teams look: the run's metrics and tags.

In a training script (MLflow's active run is used when there is one)::

    from aifinops import track

    with track.run(experiment="resnet50", run_name="lr3e-4") as tracked:
        train()
    print(tracked.cost.cost_usd, tracked.cost.usd_per_work_unit)

From the shell, around any command: ``finops track run -- python train.py``.

The cost is measured from the agent's window records of the hosts the run used
(`aifinops.track.cost.measure`); where no agent ran it is estimated from the catalog and tagged
`finops.cost_basis=estimated`; where neither is possible it is `unknown`, never 0.
Standard library and `aifinops.catalog` only; the tracker's package is imported when used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from aifinops.track.cost import (
    ESTIMATED,
    MEASURED,
    UNKNOWN,
    Assumed,
    HostCost,
    RunCost,
    TrackError,
    estimate,
    measure,
    unknown,
)
from aifinops.track.records import DEFAULT_EXPORT, host_of, read_run_records
from aifinops.track.trackers import (
    MlflowTracker,
    Tracker,
    TrackerError,
    WandbTracker,
    make_tracker,
    metrics_and_tags,
)

__all__ = [
    "DEFAULT_EXPORT",
    "ESTIMATED",
    "MEASURED",
    "UNKNOWN",
    "Assumed",
    "HostCost",
    "MlflowTracker",
    "RunCost",
    "TrackError",
    "TrackedRun",
    "Tracker",
    "TrackerError",
    "WandbTracker",
    "log_cost",
    "make_tracker",
    "metrics_and_tags",
    "run",
    "run_cost",
]

DEFAULT_WAIT_SECONDS = 75.0
"""How long to wait for the agent to write the window holding the run's end: one default
window (60 s) plus the export file's shipping interval and slack."""


def run_cost(
    start: float,
    end: float,
    *,
    agent: Iterable[str | Path] = (DEFAULT_EXPORT,),
    hosts: Iterable[str] = (),
    assumed: Assumed | None = None,
    wait_seconds: float = 0.0,
    poll_seconds: float = 1.0,
    on_wait: Callable[[float], None] | None = None,
) -> RunCost:
    """The cost of the run [start, end) (unix seconds) on `hosts` (all in the files when
    empty), from the agent's export files or spool folders `agent`.

    Waits up to `wait_seconds` for every host's window holding `end` to be written
    (`on_wait(seconds_left)` is called while waiting). No agent file, or no record of the
    span: estimated from `assumed` when given, else unknown.
    """
    paths = [Path(p) for p in agent]
    present = [p for p in paths if p.exists()]
    wanted = tuple(hosts)
    if not present:
        why = f"no agent files at {', '.join(str(p) for p in paths) or '(none given)'}"
        return _fallback(start, end, assumed, why)
    deadline = time.monotonic() + wait_seconds
    while True:
        window = read_run_records(present, start, end, hosts=wanted)
        if _complete(window.records, window.newest_end, end):
            break
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if on_wait is not None:
            on_wait(left)
        time.sleep(min(poll_seconds, left))
    if not window.records:
        where = ", ".join(str(p) for p in present)
        return _fallback(
            start, end, assumed, f"the agent files ({where}) hold no window of the run"
        )
    cost = measure(window.records, start, end)
    if window.skipped:
        note = f"{len(window.skipped)} unreadable line(s) skipped, first: {window.skipped[0]}"
        cost = _with_note(cost, note)
    return cost


def _complete(records: Sequence[dict], newest_end: float | None, end: float) -> bool:
    """Every host's window holding `end` is written (or the files go past `end`)."""
    if not records:
        return newest_end is not None and newest_end >= end
    latest: dict[str, float] = {}
    for r in records:
        host = host_of(r)
        latest[host] = max(latest.get(host, 0.0), float(r["window_end"]))
    return all(value >= end for value in latest.values())


def _fallback(start: float, end: float, assumed: Assumed | None, why: str) -> RunCost:
    if assumed is not None:
        return _with_note(estimate(assumed, start, end), why)
    return unknown(start, end, f"{why}, and no instance type to estimate from (--instance-type)")


def _with_note(cost: RunCost, note: str) -> RunCost:
    return replace(cost, notes=(*cost.notes, note))


def log_cost(tracker: Tracker, run_id: str, cost: RunCost) -> None:
    """Log `cost` to the tracker's run as `finops.*` metrics and tags."""
    metrics, tags = metrics_and_tags(cost)
    tracker.log(run_id, metrics, tags)


@dataclass
class TrackedRun:
    """The run `run()` tracks; `cost` is set when the block ends."""

    tracker: Tracker
    run_id: str
    start: float
    cost: RunCost | None = None


def _active_mlflow_run() -> str | None:
    try:
        import mlflow
    except ImportError:
        return None
    active = mlflow.active_run()
    return None if active is None else str(active.info.run_id)


@contextmanager
def run(
    *,
    tracker: str | Tracker = "mlflow",
    tracking_uri: str | None = None,
    run_id: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    agent: Iterable[str | Path] = (DEFAULT_EXPORT,),
    hosts: Iterable[str] = (),
    assumed: Assumed | None = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> Iterator[TrackedRun]:
    """Track the block as one run: on exit, measure its cost and log it to the run.

    The run is `run_id`, else MLflow's active run, else a new run (then ended with the
    block: FINISHED, or FAILED when the block raised). The cost is logged even when the block
    raises: the hours were paid for.
    """
    backend = (
        make_tracker(tracker, tracking_uri=tracking_uri) if isinstance(tracker, str) else tracker
    )
    start = time.time()
    opened = False
    if run_id is None and backend.name == "mlflow":
        run_id = _active_mlflow_run()
    if run_id is None:
        run_id = backend.open(experiment=experiment, run_name=run_name, start=start)
        opened = True
    tracked = TrackedRun(tracker=backend, run_id=run_id, start=start)
    ok = False
    try:
        yield tracked
        ok = True
    finally:
        end = time.time()
        tracked.cost = run_cost(
            start, end, agent=agent, hosts=hosts, assumed=assumed, wait_seconds=wait_seconds
        )
        log_cost(backend, run_id, tracked.cost)
        if opened:
            backend.close(run_id, ok=ok, end=end)
