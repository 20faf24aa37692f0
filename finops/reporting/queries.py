"""The report's SQL, written once (DuckDB's dialect) and transpiled for other engines.

Every figure of `finops report` comes from these statements over a table `billing` with the
FOCUS 1.0 column names. DuckDB runs them on exports in place; `transpile` turns them into
Spark SQL, Trino (Athena) or BigQuery with sqlglot, a maintained SQL transpiler, so that
users with billions of rows get the same figures from the engine they already have
(tests/reporting/test_spark.py runs them on Spark SQL in local mode; docs/reporting.md shows
Athena and BigQuery). Keep to plain SQL here: GROUP BY by position, no DuckDB-only syntax.

Tag keys are resolved to their canonical names by `tag_value_sql`: the first non-empty
value among the spellings found in the export, in the order given (canonical spelling
first, then cloud spellings, then aliases).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

DIALECTS = ("duckdb", "spark", "trino", "athena", "bigquery")
COST_TYPE = "DECIMAL(38, 18)"  # exact sums; 20 integer digits
UNTAGGED = "(untagged)"


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def json_path(key: str) -> str:
    """A JSONPath to the top-level member `key`, whatever characters it holds."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tag_value_sql(spellings: Sequence[str], tags: str = "tags") -> str:
    """SQL: the first non-empty value of `spellings` in the JSON object `tags`, or NULL."""
    if not spellings:
        return "CAST(NULL AS VARCHAR)"
    values = [
        f"NULLIF(TRIM(json_extract_string({tags}, {quote(json_path(s))})), '')" for s in spellings
    ]
    return values[0] if len(values) == 1 else f"COALESCE({', '.join(values)})"


def daily_sql(cost_column: str, source: str = "billing", flag: str | None = None) -> str:
    """`source` (the FOCUS table `billing`) summed per day, provider, service, tag set and
    currency: one row per combination.

    Everything by tag, service, day and month is computed from this table, which is small
    (days x services x distinct tag sets) whatever the export's size. `flag` (DuckDB's
    reader: whether the row is readable) adds one more grouping column, `ok`.
    """
    extra = f", {flag} AS ok" if flag else ""
    return (
        "SELECT CAST(ChargePeriodStart AS DATE) AS day, "
        "COALESCE(ProviderName, '(no provider)') AS provider, "
        "COALESCE(ServiceName, '(no service)') AS service, "
        "COALESCE(Tags, '{}') AS tags, COALESCE(BillingCurrency, '?') AS currency, "
        f"SUM(CAST({cost_column} AS {COST_TYPE})) AS cost, "
        f"SUM(CASE WHEN {cost_column} > 0 THEN CAST({cost_column} AS {COST_TYPE}) ELSE 0 END) "
        "AS positive, "
        f"SUM(CAST(EffectiveCost AS {COST_TYPE})) AS effective, "
        f"SUM(CAST(BilledCost AS {COST_TYPE})) AS billed, COUNT(*) AS line_count{extra} "
        f"FROM {source} GROUP BY 1, 2, 3, 4, 5{', 11' if flag else ''}"
    )


def tagged_sql(keys: Mapping[str, Sequence[str]]) -> str:
    """`daily` with one column per canonical key (k0, k1, ... in `keys` order)."""
    columns = [f"{tag_value_sql(spellings)} AS k{i}" for i, spellings in enumerate(keys.values())]
    return (
        "SELECT day, provider, service, cost, positive, effective, billed, line_count"
        + "".join(f", {c}" for c in columns)
        + " FROM daily"
    )


def period_filter(first: dt.date | None, last: dt.date | None) -> str:
    """SQL condition on `day` (inclusive dates), or TRUE."""
    conditions = []
    if first is not None:
        conditions.append(f"day >= DATE {quote(first.isoformat())}")
    if last is not None:
        conditions.append(f"day <= DATE {quote(last.isoformat())}")
    return " AND ".join(conditions) or "TRUE"


def by_column_sql(column: str, where: str = "TRUE") -> str:
    """Costs of `tagged` grouped by one column (a key column kN, service, provider...)."""
    return (
        f"SELECT {column} AS value, SUM(cost) AS cost, SUM(positive) AS positive, "
        f"SUM(effective) AS effective, SUM(billed) AS billed FROM tagged WHERE {where} "
        "GROUP BY 1 ORDER BY 2 DESC, 1"
    )


def by_day_sql(column: str | None, where: str = "TRUE") -> str:
    """Cost per day, and per value of `column` when given (for trends and anomalies)."""
    group = f"{column}, " if column else ""
    return (
        f"SELECT {group}day, SUM(cost) AS cost FROM tagged WHERE {where} "
        f"GROUP BY {'1, 2' if column else '1'} ORDER BY {'1, 2' if column else '1'}"
    )


def series_sql(key_column: str, where: str = "TRUE") -> str:
    """Cost per (key value, service, day): the series anomalies are judged on."""
    return (
        f"SELECT {key_column} AS value, service, day, SUM(cost) AS cost FROM tagged "
        f"WHERE {where} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )


def lookups_sql(rows: Sequence[tuple[int, str | None, str, dt.date, dt.date]]) -> str:
    """A VALUES table `(id, value, service, first_day, last_day)` of (key value, service,
    day range) to look resources up for; value None is the untagged lines."""
    values = ", ".join(
        f"({i}, {quote(UNTAGGED if v is None else v)}, {quote(s)}, "
        f"DATE {quote(f.isoformat())}, DATE {quote(t.isoformat())})"
        for i, v, s, f, t in rows
    )
    return f"SELECT * FROM (VALUES {values}) AS v(id, value, service, first_day, last_day)"


def resources_sql(cost_column: str, key_spellings: Sequence[str]) -> str:
    """Cost per resource and day for each row of `lookups` (one (key value, service, day
    range) each): the resources behind anomalies, in one pass over `billing`. Tag values
    come from `daily`'s distinct tag sets, joined on the Tags text, so no row's JSON is
    parsed again."""
    key = tag_value_sql(key_spellings, "tags")
    return (
        f"WITH tagmap AS (SELECT DISTINCT tags, COALESCE({key}, {quote(UNTAGGED)}) AS value "
        "FROM daily), candidates AS (SELECT ResourceId, CAST(ChargePeriodStart AS DATE) AS day, "
        "COALESCE(Tags, '{}') AS tags, COALESCE(ServiceName, '(no service)') AS service, "
        f"{cost_column} AS cost FROM billing "
        "WHERE CAST(ChargePeriodStart AS DATE) >= (SELECT MIN(first_day) FROM lookups) "
        "AND CAST(ChargePeriodStart AS DATE) <= (SELECT MAX(last_day) FROM lookups) "
        "AND COALESCE(ServiceName, '(no service)') IN (SELECT service FROM lookups)) "
        "SELECT l.id, COALESCE(c.ResourceId, '(no resource id)') AS resource, c.day, "
        f"SUM(CAST(c.cost AS {COST_TYPE})) AS cost "
        "FROM candidates c JOIN tagmap t ON c.tags = t.tags "
        "JOIN lookups l ON c.service = l.service AND t.value = l.value "
        "AND c.day >= l.first_day AND c.day <= l.last_day "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )


def transpile(sql: str, dialect: str) -> str:
    """`sql` (DuckDB) in `dialect`: spark, trino/athena, bigquery (sqlglot)."""
    import sqlglot

    if dialect == "duckdb":
        return sql
    target = "trino" if dialect == "athena" else dialect
    return str(sqlglot.transpile(sql, read="duckdb", write=target, pretty=True)[0])
