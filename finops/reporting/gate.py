"""A deploy gate for training pipelines: is a retrained model worth deploying, and its cost?

`finops gate` compares one metric of the candidate with the deployed (baseline) model:

- gain = candidate - baseline (or baseline - candidate with `lower_is_better`, e.g. a loss),
  in the metric's own units;
- the candidate passes when gain >= `min_gain` and, when a cost is known and
  `min_gain_per_usd` is set, gain / cost >= `min_gain_per_usd` (gain per currency unit of the
  run's cost);
- the run's cost is a number, or summed from FOCUS billing data: every line carrying the run's
  tags (`--run ModelVersion=v42`), broken down by the `Stage` tag (prepare, train, ...).

Metric files: a JSON object of name -> number (optionally under "metrics"); MLflow's run JSON
(`mlflow runs describe`: data.metrics as an object; the REST GetRun answer: run.data.metrics
as a list of {key, value, timestamp, step}); an MLflow file-store run folder (`metrics/`
holds one file per metric, lines `timestamp value [step]`); or one such metric file. Of an
MLflow metric's history the latest counts, as MLflow's own: the largest (step, timestamp,
value).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from aifinops.errors import FinopsError, did_you_mean


class GateError(FinopsError):
    """A metric file or option the gate cannot use (names the file or option)."""


@dataclass(frozen=True)
class StageCost:
    stage: str
    cost: Decimal


@dataclass
class GateResult:
    metric: str
    baseline: float
    candidate: float
    lower_is_better: bool
    min_gain: float
    gain: float
    cost: Decimal | None
    min_gain_per_usd: float | None
    currency: str = "USD"
    stages: list[StageCost] = field(default_factory=list)
    cost_source: str = ""
    reasons: list[str] = field(default_factory=list)  # why it fails; empty when it passes

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def gain_per_usd(self) -> float | None:
        if self.cost is None or self.cost <= 0:
            return None
        return self.gain / float(self.cost)

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": "deploy" if self.passed else "skip",
            "metric": self.metric,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "lowerIsBetter": self.lower_is_better,
            "gain": self.gain,
            "minGain": self.min_gain,
            "cost": None if self.cost is None else float(round(self.cost, 2)),
            "currency": self.currency,
            "costSource": self.cost_source,
            "stages": [{"stage": s.stage, "cost": float(round(s.cost, 2))} for s in self.stages],
            "gainPerUsd": self.gain_per_usd,
            "minGainPerUsd": self.min_gain_per_usd,
            "reasons": self.reasons,
        }


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise GateError(f"{where}: not a number ({value!r})")
    try:
        number = float(value)
    except ValueError:
        raise GateError(f"{where}: not a number ({value!r})") from None
    if not math.isfinite(number):
        raise GateError(f"{where}: {value!r} is not a finite number")
    return number


def _latest(history: Sequence[tuple[int, int, float]]) -> float:
    """MLflow's latest value of a metric: the largest (step, timestamp, value)."""
    return max(history)[2]


def _mlflow_metric_file(path: Path, name: str) -> float:
    history = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) not in (2, 3):
            raise GateError(
                f"{path}:{number}: an MLflow metric line is 'timestamp value [step]' "
                f"(got {line.strip()!r})"
            )
        try:
            timestamp, value = int(parts[0]), float(parts[1])
            step = int(parts[2]) if len(parts) == 3 else 0
        except ValueError:
            raise GateError(
                f"{path}:{number}: not an MLflow metric line ({line.strip()!r})"
            ) from None
        history.append((step, timestamp, value))
    if not history:
        raise GateError(f"{path}: the MLflow metric {name!r} has no value")
    return _latest(history)


def read_metrics(path: Path) -> dict[str, float]:
    """Metric name -> value from any of the formats in the module's docstring."""
    if path.is_dir():
        folder = path / "metrics" if (path / "metrics").is_dir() else path
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if not files:
            raise GateError(f"{path}: no MLflow metric files (expected a run folder with metrics/)")
        return {
            str(p.relative_to(folder)): _mlflow_metric_file(p, str(p.relative_to(folder)))
            for p in files
        }
    if not path.is_file():
        raise GateError(f"{path}: metrics file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GateError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError:
        # not JSON: one MLflow metric file, named by the file
        return {path.name: _mlflow_metric_file(path, path.name)}
    return _json_metrics(data, path)


def _json_metrics(data: Any, path: Path) -> dict[str, float]:
    if isinstance(data, dict) and isinstance(data.get("run"), dict):
        data = data["run"]
    if isinstance(data, dict) and isinstance(data.get("data"), dict):
        data = data["data"]
    if isinstance(data, dict) and "metrics" in data:
        data = data["metrics"]
    if isinstance(data, list):  # MLflow REST: [{key, value, timestamp, step}]
        histories: dict[str, list[tuple[int, int, float]]] = {}
        for i, item in enumerate(data):
            if not isinstance(item, dict) or "key" not in item or "value" not in item:
                raise GateError(
                    f"{path}: metrics[{i}] is not an MLflow metric ({{key, value, ...}})"
                )
            histories.setdefault(str(item["key"]), []).append(
                (
                    int(item.get("step", 0) or 0),
                    int(item.get("timestamp", 0) or 0),
                    _number(item["value"], f"{path}: metrics[{i}].value"),
                )
            )
        return {name: _latest(history) for name, history in histories.items()}
    if not isinstance(data, dict) or not data:
        raise GateError(
            f"{path}: expected a JSON object of metric name -> number, or MLflow run JSON"
        )
    return {
        str(k): _number(v, f"{path}: {k}")
        for k, v in data.items()
        if not isinstance(v, dict | list)
    }


def choose_metric(
    metric: str | None,
    baseline: Mapping[str, float],
    candidate: Mapping[str, float],
    paths: tuple[Path, Path],
) -> str:
    common = sorted(set(baseline) & set(candidate))
    if metric is None:
        if len(common) == 1:
            return common[0]
        raise GateError(
            f"--metric: {paths[0].name} and {paths[1].name} share "
            + (
                f"{len(common)} metrics ({', '.join(common[:8])}): name one"
                if common
                else "no metric"
            )
        )
    for name, values, path in ((metric, baseline, paths[0]), (metric, candidate, paths[1])):
        if name not in values:
            raise GateError(
                f"{path}: no metric {name!r}{did_you_mean(name, values)} (it has "
                f"{', '.join(sorted(values)[:8])})"
            )
    return metric


def decide(
    metric: str,
    baseline: float,
    candidate: float,
    min_gain: float,
    lower_is_better: bool = False,
    cost: Decimal | None = None,
    min_gain_per_usd: float | None = None,
) -> GateResult:
    """The decision, with the reasons a candidate is skipped."""
    gain = (baseline - candidate) if lower_is_better else (candidate - baseline)
    result = GateResult(
        metric, baseline, candidate, lower_is_better, min_gain, gain, cost, min_gain_per_usd
    )
    if gain < min_gain:
        result.reasons.append(f"gain {gain:+.6g} is below --min-gain {min_gain:g}")
    if min_gain_per_usd is not None:
        if cost is None:
            raise GateError("--min-gain-per-dollar needs --cost (a number or FOCUS billing data)")
        if cost <= 0:
            result.reasons.append(f"the run's cost is {cost}: gain per dollar is undefined")
        elif gain / float(cost) < min_gain_per_usd:
            result.reasons.append(
                f"gain per dollar {gain / float(cost):.6g} is below --min-gain-per-dollar "
                f"{min_gain_per_usd:g} (cost {float(cost):,.2f})"
            )
    return result


def stage_costs(
    paths: Sequence[Path],
    run: Mapping[str, str],
    aliases: Mapping[str, Sequence[str]],
    cost_column: str = "EffectiveCost",
) -> tuple[list[StageCost], str]:
    """Cost per `Stage` of the billing lines carrying every tag of `run` (key -> value), and
    the currency. No matching line is an error, never a cost of zero."""
    from aifinops.reporting import queries
    from aifinops.reporting.focus import Export
    from aifinops.reporting.report import resolve_keys

    with Export(paths) as export:
        export.build_daily(cost_column)
        present = [
            str(r[0])
            for r in export.query(
                "reading tag keys",
                "SELECT DISTINCT unnest(json_keys(CAST(tags AS JSON))) FROM daily WHERE tags <> '{}'",
            )
        ]
        keys = ["Stage", *run]
        spellings = resolve_keys(present, keys, aliases)
        export.query(
            "resolving tags", f"CREATE TEMP TABLE tagged AS {queries.tagged_sql(spellings)}"
        )
        for key in run:
            if not spellings[key]:
                raise GateError(
                    f"--run {key}={run[key]}: no {key} tag in the billing data"
                    f"{did_you_mean(key, present)}"
                )
        where = (
            " AND ".join(
                f"k{i} = {queries.quote(value)}" for i, value in enumerate(run.values(), start=1)
            )
            or "k0 IS NOT NULL"
        )
        rows = export.query("cost per stage", queries.by_column_sql("k0", where))
        currencies = [
            str(r[0]) for r in export.query("currency", "SELECT DISTINCT currency FROM daily")
        ]
    if not rows:
        selection = ", ".join(f"{k}={v}" for k, v in run.items()) or "a Stage tag"
        raise GateError(f"no billing line carries {selection}: the run's cost is unknown")
    stages = [StageCost("(no Stage tag)" if v is None else str(v), Decimal(c)) for v, c, *_ in rows]
    return stages, currencies[0] if len(currencies) == 1 and currencies[0] != "?" else "USD"
