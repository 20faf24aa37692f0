"""FinOps reporting: cost by Project/Team/Environment/ModelVersion from billing exports.

Reads FOCUS 1.0 exports (CSV or Parquet; AWS Data Exports, Azure Cost Management, GCP and OCI
all produce FOCUS) with DuckDB, which scans them in place without loading whole months into
Python. Tags are the FOCUS `Tags` column (a JSON object). A canonical key matches the same key
in any case, its GCP label spelling (`model-version`) and any aliases given
(`--alias Project=application`), so exports from several clouds and older tagging schemes
roll up together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from finops import tags as tag_schema
from finops.errors import FinopsError

COST_COLUMNS = ("EffectiveCost", "BilledCost", "ListCost", "ContractedCost")
DEFAULT_KEYS = ("Project", "Team", "Environment", "ModelVersion")
UNTAGGED = "(untagged)"
REQUIRED_COLUMNS = ("ChargePeriodStart", "ProviderName", "ServiceName", "Tags")


class ReportError(FinopsError):
    """A billing export cannot be read as FOCUS (names the file and what is missing)."""


@dataclass
class KeyBreakdown:
    key: str
    matched_keys: list[str]
    rows: list[tuple[str, float]]  # (tag value or UNTAGGED, cost), largest first
    tagged_share: float  # share of positive (usage) cost carrying this key; credits excluded

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "matchedKeys": self.matched_keys,
            "taggedShare": round(self.tagged_share, 4),
            "costs": [{"value": v, "cost": round(c, 6)} for v, c in self.rows],
        }


@dataclass
class Report:
    source: str
    cost_column: str
    currency: str
    total: float
    row_count: int
    period: tuple[str, str]
    by_key: list[KeyBreakdown]
    by_provider: list[tuple[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "costColumn": self.cost_column,
            "currency": self.currency,
            "total": round(self.total, 6),
            "rows": self.row_count,
            "period": {"start": self.period[0], "end": self.period[1]},
            "byProvider": [{"provider": p, "cost": round(c, 6)} for p, c in self.by_provider],
            "byTag": [b.as_dict() for b in self.by_key],
        }


def _candidates(key: str, aliases: Mapping[str, Sequence[str]]) -> set[str]:
    names = {key, tag_schema.gcp_label_key(key), *aliases.get(key, ())}
    return {n.strip().lower() for n in names}


def _relation(path: Path) -> str:
    quoted = str(path).replace("'", "''")
    if path.suffix.lower() == ".parquet":
        return f"read_parquet('{quoted}')"
    return f"read_csv('{quoted}', header=true, nullstr='NULL', sample_size=-1)"


def _tagged_share(con: object, matched: list[str]) -> float:
    """Share of positive charges (usage, not credits) that carry one of `matched` keys."""
    if not matched:
        return 0.0
    condition = " OR ".join(
        "nullif(trim(json_extract_string(tags, '$.\"' || ? || '\"')), '') IS NOT NULL"
        for _ in matched
    )
    tagged, positive = con.execute(  # type: ignore[attr-defined]
        f"SELECT coalesce(sum(cost) FILTER (WHERE {condition}), 0), coalesce(sum(cost), 0) "
        "FROM charges WHERE cost > 0",
        matched,
    ).fetchone()
    return float(tagged) / float(positive) if positive else 0.0


def build_report(
    path: Path,
    keys: Sequence[str] = DEFAULT_KEYS,
    aliases: Mapping[str, Sequence[str]] | None = None,
    cost_column: str = "EffectiveCost",
    month: str | None = None,
) -> Report:
    """Cost of one FOCUS export by each tag key (and by provider)."""
    import duckdb

    aliases = aliases or {}
    if cost_column not in COST_COLUMNS:
        raise ReportError(f"--cost {cost_column!r}: choose one of {', '.join(COST_COLUMNS)}")
    if not path.is_file():
        raise ReportError(f"{path}: billing export not found")
    con = duckdb.connect()
    try:
        con.execute(f"CREATE VIEW billing AS SELECT * FROM {_relation(path)}")
    except duckdb.Error as exc:
        raise ReportError(
            f"{path}: cannot read as CSV/Parquet: {str(exc).splitlines()[0]}"
        ) from None
    columns = {row[0] for row in con.execute("DESCRIBE billing").fetchall()}
    missing = [c for c in (*REQUIRED_COLUMNS, cost_column) if c not in columns]
    if missing:
        raise ReportError(f"{path}: not a FOCUS 1.0 export: missing column(s) {', '.join(missing)}")
    where = "TRUE"
    params: list[object] = []
    if month:
        where = "strftime(CAST(ChargePeriodStart AS TIMESTAMP), '%Y-%m') = ?"
        params.append(month)
    currency_sql = "BillingCurrency" if "BillingCurrency" in columns else "'USD'"
    con.execute(
        f"CREATE TEMP TABLE charges AS SELECT ProviderName AS provider, "
        f"CAST({cost_column} AS DOUBLE) AS cost, "
        f"CASE WHEN Tags IS NULL OR trim(CAST(Tags AS VARCHAR)) IN ('', 'NULL') THEN NULL "
        f"ELSE CAST(Tags AS JSON) END AS tags, CAST(ChargePeriodStart AS TIMESTAMP) AS start, "
        f"{currency_sql} AS currency "
        f"FROM billing WHERE {where}",
        params,
    )
    total, count, first, last, currency = con.execute(
        "SELECT coalesce(sum(cost), 0), count(*), min(start), max(start), any_value(currency) FROM charges"
    ).fetchone()  # type: ignore[misc]
    present_keys = [
        row[0]
        for row in con.execute(
            "SELECT DISTINCT unnest(json_keys(tags)) FROM charges WHERE tags IS NOT NULL"
        ).fetchall()
    ]
    breakdowns = []
    for key in keys:
        wanted = _candidates(key, aliases)
        matched = sorted(k for k in present_keys if k.strip().lower() in wanted)
        if matched:
            extract = ", ".join(
                "nullif(trim(json_extract_string(tags, '$.\"' || ? || '\"')), '')" for _ in matched
            )
            value_sql = f"coalesce({extract}, '{UNTAGGED}')"
            rows = con.execute(
                f"SELECT {value_sql} AS v, sum(cost) AS c FROM charges GROUP BY v ORDER BY c DESC, v",
                matched,
            ).fetchall()
        else:
            rows = [(UNTAGGED, float(total))] if count else []
        breakdowns.append(
            KeyBreakdown(
                key, matched, [(str(v), float(c)) for v, c in rows], _tagged_share(con, matched)
            )
        )
    providers = con.execute(
        "SELECT provider, sum(cost) c FROM charges GROUP BY provider ORDER BY c DESC"
    ).fetchall()
    con.close()
    return Report(
        source=str(path),
        cost_column=cost_column,
        currency=str(currency or "USD"),
        total=float(total),
        row_count=int(count),
        period=(str(first or ""), str(last or "")),
        by_key=breakdowns,
        by_provider=[(str(p), float(c)) for p, c in providers],
    )
