"""The governance report: showback by tag, service, day and month; chargeback; top movers;
anomalies; idle-GPU cost. Built from FOCUS exports (`aifinops.reporting.focus`) with the
portable SQL of `aifinops.reporting.queries`; renderers live in `markdown.py` and `html.py`.

Money is exact: costs are DECIMAL(38,18) in DuckDB and `Decimal` here, rounded only when
shown. Shares of the total are of the chosen cost column (`EffectiveCost` by default: the
amortised cost, so a commitment is charged where it is used; `BilledCost` is what the
invoice says, shown beside it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from aifinops import tags as tag_schema
from aifinops.errors import did_you_mean
from aifinops.reporting import queries
from aifinops.reporting.anomalies import (
    Anomaly,
    AnomalySettings,
    find,
    reference_days,
    resources_behind,
)
from aifinops.reporting.chargeback import Chargeback, ChargebackRule, allocate
from aifinops.reporting.focus import (
    COST_COLUMNS,
    REQUIRED_COLUMNS,
    Export,
    Malformed,
    ProgressCallback,
    ReportError,
    check_month,
)
from aifinops.reporting.idle_gpu import IdleGpu, idle_gpu_cost
from aifinops.reporting.queries import UNTAGGED

DEFAULT_KEYS = ("Project", "Team", "Environment", "ModelVersion")
PROJECT_KEY = "Project"
TREND_SERIES = 7  # projects drawn in the trend; the rest is one "other" series
MOVER_DAYS = 7
ANOMALY_RESOURCE_LOOKUPS = 20  # anomalies whose resources are looked up (largest first)
OTHER = "(other)"


@dataclass(frozen=True)
class Line:
    """Cost of one value (a tag value, service, provider, month or day)."""

    value: str
    cost: Decimal  # the chosen cost column
    positive: Decimal  # ... of its charges above 0 (credits and refunds left out)
    effective: Decimal
    billed: Decimal

    def as_dict(self) -> dict[str, object]:
        return {
            "value": self.value,
            "cost": round(float(self.cost), 6),
            "effectiveCost": round(float(self.effective), 6),
            "billedCost": round(float(self.billed), 6),
        }


@dataclass
class KeyBreakdown:
    key: str
    matched_keys: list[str]  # spellings found in the export, in precedence order
    lines: list[Line]  # largest first; the untagged line among them
    total: Line

    @property
    def untagged(self) -> Line | None:
        return next((line for line in self.lines if line.value == UNTAGGED), None)

    @property
    def untagged_share(self) -> Decimal | None:
        """Share of the charges (credits and refunds left out, so that it stays within 0-1)
        that carry no value for the key; None when there are no charges above 0."""
        if self.total.positive == 0:
            return None
        untagged = self.untagged
        return (untagged.positive if untagged else Decimal(0)) / self.total.positive

    def as_dict(self) -> dict[str, object]:
        share = self.untagged_share
        return {
            "key": self.key,
            "matchedKeys": self.matched_keys,
            "untaggedShare": None if share is None else round(float(share), 6),
            "costs": [line.as_dict() for line in self.lines],
            "untaggedCost": round(float(self.untagged.cost), 6) if self.untagged else 0.0,
        }


@dataclass(frozen=True)
class Mover:
    project: str
    service: str
    previous: float  # cost over the previous MOVER_DAYS days
    current: float  # ... over the last MOVER_DAYS days of the period

    @property
    def change(self) -> float:
        return self.current - self.previous


@dataclass
class Report:
    sources: list[str]
    cost_column: str
    currency: str
    month: str | None
    first_day: dt.date
    last_day: dt.date
    data_last_day: dt.date
    row_count: int
    total: Line
    by_key: list[KeyBreakdown]
    by_service: list[Line]
    by_provider: list[Line]
    by_month: list[Line]
    by_day: list[Line]
    trend: list[tuple[str, list[tuple[dt.date, float]]]]
    movers: list[Mover]
    mover_window: tuple[dt.date, dt.date, dt.date, dt.date] | None
    malformed: list[Malformed]
    malformed_count: int
    chargeback: Chargeback | None = None
    anomalies: list[Anomaly] | None = None
    anomaly_settings: AnomalySettings | None = None
    idle_gpu: IdleGpu | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def open_anomalies(self) -> list[Anomaly]:
        return [a for a in self.anomalies or [] if a.open]

    def as_dict(self) -> dict[str, object]:
        return {
            "sources": self.sources,
            "costColumn": self.cost_column,
            "currency": self.currency,
            "month": self.month,
            "period": {"start": self.first_day.isoformat(), "end": self.last_day.isoformat()},
            "rows": self.row_count,
            "total": self.total.as_dict(),
            "malformedRows": self.malformed_count,
            "malformed": [
                {"file": m.file, "line": m.line, "problem": m.problem} for m in self.malformed
            ],
            "byTag": [b.as_dict() for b in self.by_key],
            "byService": [line.as_dict() for line in self.by_service],
            "byProvider": [line.as_dict() for line in self.by_provider],
            "byMonth": [line.as_dict() for line in self.by_month],
            "byDay": [line.as_dict() for line in self.by_day],
            "topMovers": [
                {
                    "project": m.project,
                    "service": m.service,
                    "previous": round(m.previous, 2),
                    "current": round(m.current, 2),
                    "change": round(m.change, 2),
                }
                for m in self.movers
            ],
            "chargeback": self.chargeback.as_dict() if self.chargeback else None,
            "anomalies": None
            if self.anomalies is None
            else {
                "rule": self.anomaly_settings.describe() if self.anomaly_settings else "",
                "open": len(self.open_anomalies),
                "episodes": [a.as_dict() for a in self.anomalies],
            },
            "idleGpu": self.idle_gpu.as_dict() if self.idle_gpu else None,
            "notes": self.notes,
        }


def parse_aliases(values: Sequence[str]) -> dict[str, list[str]]:
    """`--alias KEY=name[,name]` options -> {KEY: [name, ...]}."""
    aliases: dict[str, list[str]] = {}
    for value in values:
        key, sep, names = value.partition("=")
        if not sep or not key.strip() or not names.strip():
            raise ReportError(
                f"--alias {value!r}: expected KEY=name[,name...], e.g. Project=application"
            )
        aliases.setdefault(key.strip(), []).extend(n.strip() for n in names.split(",") if n.strip())
    return aliases


def resolve_keys(
    present: Sequence[str], wanted: Sequence[str], aliases: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Canonical key -> the spellings of it found in the export, in precedence order:
    the tag schema's billing spellings first, then the aliases in the order given."""
    resolved: dict[str, list[str]] = {}
    for key in wanted:
        forms = [
            *tag_schema.billing_spellings(key),
            *(tag_schema.billing_key_form(a) for a in aliases.get(key, ())),
        ]
        matched: list[str] = []
        for form in dict.fromkeys(forms):
            matched += sorted(
                k for k in present if tag_schema.billing_key_form(k) == form and k not in matched
            )
        resolved[key] = matched
    return resolved


def check_keys(
    keys: Sequence[str], present: Sequence[str], aliases: Mapping[str, Sequence[str]]
) -> None:
    """A `--by` key must be a tag-schema key, an aliased key or a key of the export."""
    known = {tag_schema.billing_key_form(k) for k in (*tag_schema.ALL_KEYS, *present, *aliases)}
    for key in keys:
        if tag_schema.billing_key_form(key) not in known:
            choices = sorted({*tag_schema.ALL_KEYS, *(k.strip() for k in present)})
            raise ReportError(
                f"--by {key!r}: not a tag key of the schema or the export"
                f"{did_you_mean(key, choices)}; give --alias {key}=<key in the export> to "
                "name another spelling"
            )


def build_report(
    paths: Sequence[Path],
    keys: Sequence[str] = DEFAULT_KEYS,
    aliases: Mapping[str, Sequence[str]] | None = None,
    cost_column: str = "EffectiveCost",
    month: str | None = None,
    *,
    chargeback: ChargebackRule | None = None,
    anomalies: AnomalySettings | None = None,
    agent_windows: Sequence[Path] = (),
    progress: ProgressCallback | None = None,
    memory_limit: str = "1GB",
) -> Report:
    """The report over FOCUS exports `paths` (see the module docstring)."""
    aliases = aliases or {}
    if cost_column not in COST_COLUMNS:
        raise ReportError(
            f"--cost {cost_column!r}: choose one of {', '.join(COST_COLUMNS)}"
            f"{did_you_mean(cost_column, COST_COLUMNS)}"
        )
    with Export(paths, progress=progress, memory_limit=memory_limit) as export:
        if cost_column not in export.columns and cost_column not in REQUIRED_COLUMNS:
            raise ReportError(f"--cost {cost_column}: the export has no {cost_column} column")
        return _build(
            export, keys, aliases, cost_column, month, chargeback, anomalies, agent_windows
        )


def _build(
    export: Export,
    keys: Sequence[str],
    aliases: Mapping[str, Sequence[str]],
    cost_column: str,
    month: str | None,
    chargeback: ChargebackRule | None,
    anomaly_settings: AnomalySettings | None,
    agent_windows: Sequence[Path],
) -> Report:
    export.build_daily(cost_column)
    malformed, malformed_count = export.malformed()
    count, first, last = export.query(
        "aggregating charges", "SELECT sum(line_count), min(day), max(day) FROM daily"
    )[0]
    if not count:
        raise ReportError(
            f"{', '.join(str(p) for p in export.paths)}: no readable charges"
            + (
                f" ({malformed_count} malformed rows, e.g. {malformed[0].where()}: "
                f"{malformed[0].problem})"
                if malformed
                else ""
            )
        )
    currencies = [
        str(r[0])
        for r in export.query("checking currency", "SELECT DISTINCT currency FROM daily ORDER BY 1")
    ]
    if len(currencies) > 1:
        raise ReportError(
            f"the export mixes currencies {', '.join(currencies)}: report one billing "
            "account's currency at a time"
        )
    months = [
        str(r[0])
        for r in export.query(
            "listing months", "SELECT DISTINCT strftime(day, '%Y-%m') FROM daily ORDER BY 1"
        )
    ]
    period_first, period_last = first, last
    if month is not None:
        check_month(month, months)
        period_first = dt.date.fromisoformat(month + "-01")
        period_last = min(_month_end(period_first), last)
        period_first = max(period_first, first)
    present = [
        str(r[0])
        for r in export.query(
            "reading tag keys",
            "SELECT DISTINCT unnest(json_keys(CAST(tags AS JSON))) FROM daily WHERE tags <> '{}'",
        )
    ]
    check_keys(keys, present, aliases)
    extra = [PROJECT_KEY] + ([chargeback.key] if chargeback else [])
    if chargeback:
        check_keys([chargeback.key], present, aliases)
    wanted = list(dict.fromkeys([*keys, *extra]))
    spellings = resolve_keys(present, wanted, aliases)
    column = {key: f"k{i}" for i, key in enumerate(spellings)}
    export.query("resolving tags", f"CREATE TEMP TABLE tagged AS {queries.tagged_sql(spellings)}")
    where = queries.period_filter(period_first, period_last)

    def lines(group: str, label_nulls: bool = True) -> list[Line]:
        return [
            Line(
                UNTAGGED if v is None and label_nulls else str(v),
                Decimal(c),
                Decimal(p),
                Decimal(e),
                Decimal(b),
            )
            for v, c, p, e, b in export.query("summing", queries.by_column_sql(group, where))
        ]

    total_row = export.query(
        "summing",
        "SELECT coalesce(sum(cost), 0), coalesce(sum(positive), 0), coalesce(sum(effective), 0), "
        f"coalesce(sum(billed), 0), coalesce(sum(line_count), 0) FROM tagged WHERE {where}",
    )[0]
    total = Line("total", *(Decimal(v) for v in total_row[:4]))
    by_key = [KeyBreakdown(key, spellings[key], lines(column[key]), total) for key in keys]
    report = Report(
        sources=[str(p) for p in export.paths],
        cost_column=cost_column,
        currency=currencies[0] if currencies and currencies[0] != "?" else "USD",
        month=month,
        first_day=period_first,
        last_day=period_last,
        data_last_day=last,
        row_count=int(total_row[4]),
        total=total,
        by_key=by_key,
        by_service=lines("service"),
        by_provider=lines("provider"),
        by_month=lines("strftime(day, '%Y-%m')"),
        by_day=sorted(lines("CAST(day AS VARCHAR)"), key=lambda line: line.value),
        trend=_trend(export, column[PROJECT_KEY], where),
        movers=[],
        mover_window=None,
        malformed=malformed,
        malformed_count=malformed_count,
    )
    report.by_month.sort(key=lambda line: line.value)
    if "BillingCurrency" not in export.columns:
        report.notes.append("no BillingCurrency column: amounts assumed to be USD")
    if not spellings[PROJECT_KEY]:
        report.notes.append(
            f"no {PROJECT_KEY} tag in the export: trends, movers and anomalies are per "
            f"service only (give --alias {PROJECT_KEY}=<your key>)"
        )
    report.movers, report.mover_window = _movers(
        export, column[PROJECT_KEY], period_first, period_last
    )
    if chargeback is not None:
        costs: dict[str | None, Decimal] = {
            (None if line.value == UNTAGGED else line.value): line.cost
            for line in lines(column[chargeback.key])
        }
        report.chargeback = allocate(costs, chargeback)
    if anomaly_settings is not None:
        report.anomaly_settings = anomaly_settings
        report.anomalies = _anomalies(
            export,
            column[PROJECT_KEY],
            spellings[PROJECT_KEY],
            cost_column,
            anomaly_settings,
            first,
            period_first,
            period_last,
        )
    if agent_windows:
        report.idle_gpu = idle_gpu_cost(
            export, agent_windows, cost_column, spellings[PROJECT_KEY], period_first, period_last
        )
    return report


def _month_end(first: dt.date) -> dt.date:
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


def _trend(
    export: Export, project: str, where: str
) -> list[tuple[str, list[tuple[dt.date, float]]]]:
    """Daily cost of the largest projects (the rest as one series), largest first."""
    rows = export.query("trend", queries.by_day_sql(project, where))
    totals: dict[str, float] = {}
    series: dict[str, dict[dt.date, float]] = {}
    for value, day, cost in rows:
        name = UNTAGGED if value is None else str(value)
        totals[name] = totals.get(name, 0.0) + float(cost)
        series.setdefault(name, {})[day] = series.get(name, {}).get(day, 0.0) + float(cost)
    ranked = sorted(totals, key=lambda n: (-totals[n], n))
    shown = [n for n in ranked if n != UNTAGGED][:TREND_SERIES]
    out = [(n, sorted(series[n].items())) for n in shown]
    rest = [n for n in ranked if n not in shown and n != UNTAGGED]
    if rest:
        merged: dict[dt.date, float] = {}
        for name in rest:
            for day, cost in series[name].items():
                merged[day] = merged.get(day, 0.0) + cost
        out.append((OTHER, sorted(merged.items())))
    if UNTAGGED in series:
        out.append((UNTAGGED, sorted(series[UNTAGGED].items())))
    return out


def _movers(
    export: Export, project: str, first: dt.date, last: dt.date
) -> tuple[list[Mover], tuple[dt.date, dt.date, dt.date, dt.date] | None]:
    """(project, service) pairs whose cost changed most: the last MOVER_DAYS days of the
    period against the MOVER_DAYS before (none when the period is shorter than both)."""
    current_first = last - dt.timedelta(days=MOVER_DAYS - 1)
    previous_first = current_first - dt.timedelta(days=MOVER_DAYS)
    previous_last = current_first - dt.timedelta(days=1)
    if previous_first < first:
        return [], None
    rows = export.query(
        "top movers",
        f"SELECT {project} AS value, service, "
        f"SUM(CASE WHEN day >= DATE {queries.quote(current_first.isoformat())} THEN cost ELSE 0 END), "
        f"SUM(CASE WHEN day < DATE {queries.quote(current_first.isoformat())} THEN cost ELSE 0 END) "
        f"FROM tagged WHERE {queries.period_filter(previous_first, last)} GROUP BY 1, 2",
    )
    movers = [
        Mover(UNTAGGED if v is None else str(v), str(s), float(prev), float(cur))
        for v, s, cur, prev in rows
    ]
    movers.sort(key=lambda m: (-abs(m.change), m.project, m.service))
    return [m for m in movers if m.change != 0], (
        previous_first,
        previous_last,
        current_first,
        last,
    )


def _anomalies(
    export: Export,
    project: str,
    project_spellings: Sequence[str],
    cost_column: str,
    settings: AnomalySettings,
    data_first: dt.date,
    period_first: dt.date,
    period_last: dt.date,
) -> list[Anomaly]:
    """Anomaly episodes in the period, judged with the history before it."""
    rows = export.query(
        "anomalies", queries.series_sql(project, queries.period_filter(None, period_last))
    )
    series: dict[tuple[str, str], dict[dt.date, float]] = {}
    for value, service, day, cost in rows:
        name = UNTAGGED if value is None else str(value)
        series.setdefault((name, str(service)), {})[day] = float(cost)
    found = find(series, data_first, period_last, settings, report_first=period_first)
    looked_up = found[:ANOMALY_RESOURCE_LOOKUPS]
    if not looked_up:
        return found
    references = [reference_days(a, settings, data_first) for a in looked_up]
    lookups = [
        (
            i,
            None if a.project == UNTAGGED else a.project,
            a.service,
            min([*reference, a.first_day]),
            a.last_day,
        )
        for i, (a, reference) in enumerate(zip(looked_up, references, strict=True))
    ]
    export.query(
        "resources behind anomalies",
        f"CREATE OR REPLACE TEMP TABLE lookups AS {queries.lookups_sql(lookups)}",
    )
    costs: dict[int, dict[tuple[str, dt.date], Decimal]] = {}
    for i, resource, day, cost in export.query(
        "resources behind anomalies", queries.resources_sql(cost_column, project_spellings)
    ):
        costs.setdefault(int(i), {})[(str(resource), day)] = cost
    for i, (anomaly, reference) in enumerate(zip(looked_up, references, strict=True)):
        anomaly.resources = resources_behind(anomaly, costs.get(i, {}), reference)
    return found
