"""Where a run's cost is logged: MLflow (the default) or Weights & Biases.

MLflow without a server is its local store: whatever `mlflow` resolves with no tracking URI
(`MLFLOW_TRACKING_URI`, else MLflow's own default: `sqlite:///mlflow.db` in the working folder
since MLflow 3, `./mlruns` before); with `--tracking-uri http://host:5000` the user's server.
Both libraries are imported only when a run is logged (`pip install 'aifinops[tracking]'`,
`'aifinops[wandb]'`), so `aifinops.track` costs nothing to import.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from aifinops.errors import FinopsError
from aifinops.track.cost import RunCost

PREFIX = "finops."
MAX_TAG_CHARS = 5000  # MLflow keeps 8000 characters of a tag value; W&B config has no limit


class TrackerError(FinopsError):
    """The tracker cannot be reached or used: names it and what to do."""


class Tracker(Protocol):
    """A run tracker: open a run, tell the job how to log into it, log the cost, close it."""

    name: str

    def open(self, *, experiment: str | None, run_name: str | None, start: float) -> str: ...

    def child_env(self, run_id: str) -> dict[str, str]: ...

    def log(self, run_id: str, metrics: Mapping[str, float], tags: Mapping[str, str]) -> None: ...

    def close(self, run_id: str, *, ok: bool, end: float) -> None: ...

    def span(self, run_id: str) -> tuple[float, float | None]: ...

    def where(self, run_id: str) -> str: ...


def metrics_and_tags(cost: RunCost) -> tuple[dict[str, float], dict[str, str]]:
    """The run metrics and tags a cost becomes (names under `finops.`; a figure that is None
    is left out, never logged as 0)."""
    metrics: dict[str, float] = {
        "instance_hours": cost.instance_hours,
        "gpu_hours": cost.gpu_hours,
        "interruptions": float(cost.interruptions),
        "unmeasured_seconds": cost.unmeasured_seconds,
    }
    for name, value in (
        ("cost_usd", cost.cost_usd),
        ("spot_share", cost.spot_share),
        ("gpu_util_mean_percent", cost.gpu_util_mean_percent),
        ("sm_active_mean_percent", cost.sm_active_mean_percent),
        ("waiting_on_data_share", cost.waiting_on_data_share),
    ):
        if value is not None:
            metrics[name] = value
    for unit, amount in cost.work_units.items():
        metrics[f"work.{unit}"] = amount
    for unit, usd in cost.usd_per_work_unit.items():
        metrics[f"usd_per.{unit}"] = usd
    lifecycles = {h.lifecycle for h in cost.hosts}
    tags = {
        "cost_basis": cost.basis,
        "instance_types": ",".join(cost.instance_types) or "unknown",
        "regions": ",".join(sorted({h.region for h in cost.hosts})) or "unknown",
        "lifecycle": lifecycles.pop()
        if len(lifecycles) == 1
        else "mixed"
        if lifecycles
        else "unknown",
        "hosts": str(len(cost.hosts)),
        "catalog_snapshot": _snapshot(),
    }
    if cost.notes:
        tags["notes"] = "; ".join(cost.notes)[:MAX_TAG_CHARS]
    return (
        {PREFIX + k: float(v) for k, v in metrics.items()},
        {PREFIX + k: v for k, v in tags.items()},
    )


def _snapshot() -> str:
    from aifinops import catalog

    return catalog.SNAPSHOT_DATE


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TrackerError(
            f"the {module} tracker needs the {module!r} package: pip install 'aifinops[{extra}]' "
            f"({exc})"
        ) from None


class MlflowTracker:
    """MLflow through its client API (no global state: the job keeps its own active run)."""

    name = "mlflow"

    def __init__(self, tracking_uri: str | None = None) -> None:
        mlflow = _need("mlflow", "tracking")
        self.uri = tracking_uri or mlflow.get_tracking_uri()
        self._client = mlflow.MlflowClient(tracking_uri=self.uri)
        self._entities = _need("mlflow.entities", "tracking")
        self._experiment_id: str | None = None

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # MlflowException, connection errors: one line for the user
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrackerError(f"mlflow {self.uri}: {what} failed: {first}") from None

    def open(self, *, experiment: str | None, run_name: str | None, start: float) -> str:
        experiment_id = "0"  # MLflow's "Default" experiment
        if experiment:
            found = self._call(
                f"get experiment {experiment!r}", self._client.get_experiment_by_name, experiment
            )
            experiment_id = (
                found.experiment_id
                if found is not None
                else self._call(
                    f"create experiment {experiment!r}", self._client.create_experiment, experiment
                )
            )
        self._experiment_id = experiment_id
        run = self._call(
            "create run",
            self._client.create_run,
            experiment_id,
            start_time=int(start * 1000),
            run_name=run_name,
        )
        return str(run.info.run_id)

    def child_env(self, run_id: str) -> dict[str, str]:
        """`mlflow.start_run()` in the job resumes this run (MLflow reads these variables)."""
        env = {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_RUN_ID": run_id}
        if self._experiment_id is not None:
            env["MLFLOW_EXPERIMENT_ID"] = self._experiment_id
        return env

    def log(self, run_id: str, metrics: Mapping[str, float], tags: Mapping[str, str]) -> None:
        Metric, RunTag = self._entities.Metric, self._entities.RunTag
        now = _millis()
        self._call(
            "log the cost",
            self._client.log_batch,
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )

    def close(self, run_id: str, *, ok: bool, end: float) -> None:
        self._call(
            "end the run",
            self._client.set_terminated,
            run_id,
            status="FINISHED" if ok else "FAILED",
            end_time=int(end * 1000),
        )

    def span(self, run_id: str) -> tuple[float, float | None]:
        run = self._call(f"read run {run_id}", self._client.get_run, run_id)
        end = run.info.end_time
        return run.info.start_time / 1000.0, None if end is None else end / 1000.0

    def where(self, run_id: str) -> str:
        return f"mlflow run {run_id} ({self.uri})"


class WandbTracker:
    """Weights & Biases: the job joins the run through WANDB_RUN_ID/WANDB_RESUME; the cost goes
    into the run's summary (metrics) and config (tags). Untested here (see docs/tracking.md)."""

    name = "wandb"

    def __init__(self, project: str | None = None, entity: str | None = None) -> None:
        self._wandb = _need("wandb", "wandb")
        self.project = project
        self.entity = entity
        self._names: dict[str, str | None] = {}

    def open(self, *, experiment: str | None, run_name: str | None, start: float) -> str:
        self.project = self.project or experiment
        run_id = uuid.uuid4().hex[:8]
        self._names[run_id] = run_name
        return run_id

    def child_env(self, run_id: str) -> dict[str, str]:
        env = {"WANDB_RUN_ID": run_id, "WANDB_RESUME": "allow"}
        if self.project:
            env["WANDB_PROJECT"] = self.project
        if self._names.get(run_id):
            env["WANDB_NAME"] = str(self._names[run_id])
        return env

    def log(self, run_id: str, metrics: Mapping[str, float], tags: Mapping[str, str]) -> None:
        try:
            run = self._wandb.init(
                id=run_id,
                resume="allow",
                project=self.project,
                entity=self.entity,
                name=self._names.get(run_id),
            )
            run.summary.update(dict(metrics))
            run.config.update(dict(tags), allow_val_change=True)
            run.finish()
        except Exception as exc:
            raise TrackerError(f"wandb run {run_id}: logging the cost failed: {exc}") from None

    def close(self, run_id: str, *, ok: bool, end: float) -> None:
        return None  # `finish()` in `log` ended it; W&B takes the exit code from the job

    def span(self, run_id: str) -> tuple[float, float | None]:
        raise TrackerError(
            "wandb: pricing an existing run by id is not supported; use finops track run"
        )

    def where(self, run_id: str) -> str:
        return f"wandb run {run_id} (project {self.project or 'default'})"


def _millis() -> int:
    import time

    return int(time.time() * 1000)


def make_tracker(kind: str, *, tracking_uri: str | None = None) -> Tracker:
    """`mlflow` (default) or `wandb`."""
    if kind == "mlflow":
        return MlflowTracker(tracking_uri)
    if kind == "wandb":
        return WandbTracker()
    raise TrackerError(f"unknown tracker {kind!r}: mlflow or wandb")
