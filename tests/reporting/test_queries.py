"""The report's SQL transpiled for Athena (Trino) and BigQuery: it parses in the target
dialect, and DuckDB-only functions are translated (JSON paths keep odd tag keys)."""

from __future__ import annotations

import sqlglot

from aifinops.reporting import queries

SPELLINGS = {"Project": ["Project", "user:Project", "project"], "Team": [" org", "Team"]}


def test_transpiled_sql_parses_in_each_dialect() -> None:
    statements = (
        queries.daily_sql("EffectiveCost"),
        queries.tagged_sql(SPELLINGS),
        queries.series_sql("k0"),
        queries.by_column_sql("k1", "day >= DATE '2026-01-01'"),
    )
    for dialect, reader in (("athena", "trino"), ("bigquery", "bigquery"), ("spark", "spark")):
        for sql in statements:
            text = queries.transpile(sql, dialect)
            sqlglot.parse_one(text, read=reader)
            assert "json_extract_string" not in text.lower()


def test_json_paths_keep_keys_with_colons_and_blanks() -> None:
    tagged = queries.tagged_sql(SPELLINGS)
    assert "JSON_EXTRACT_SCALAR(tags, '$[\"user:Project\"]')" in queries.transpile(tagged, "athena")
    assert "GET_JSON_OBJECT(tags, '$[\\' org\\']')" in queries.transpile(tagged, "spark")
    assert queries.json_path('a"b') == '$."a\\"b"'
