"""The report's SQL, transpiled by sqlglot, on Spark SQL in local mode: the same figures as
DuckDB, to the cent, on the same Parquet export (synthetic, three clouds' tag spellings).

Opt-in, as it takes a minute or more on 2 cores: pyspark (with Java 17) is about 450 MB and
not in requirements.lock. Install it and run it with

    .venv/bin/uv pip install --python .venv/bin/python 'pyspark>=3.5'
    FINOPS_TEST_SPARK=1 ./dev test tests/reporting/test_spark.py

Otherwise the module is skipped with that reason.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aifinops.reporting import queries
from aifinops.reporting.anomalies import AnomalySettings, find
from aifinops.reporting.focus import Export
from aifinops.reporting.report import DEFAULT_KEYS, PROJECT_KEY, resolve_keys

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from focus_synth import write_focus

pyspark = pytest.importorskip(
    "pyspark", reason="pyspark not installed (opt-in: uv pip install 'pyspark>=3.5'; needs Java 17)"
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (17)"),
    pytest.mark.skipif(
        os.environ.get("FINOPS_TEST_SPARK") != "1",
        reason="opt-in, about a minute: FINOPS_TEST_SPARK=1 (with pyspark installed)",
    ),
]
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def export_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spark") / "focus.parquet"
    write_focus(path, rows=60_000, days=35)
    return path


@pytest.fixture(scope="module")
def spark(export_path: Path) -> Iterator[Any]:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("finops-report-test")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    session.read.parquet(str(export_path)).createOrReplaceTempView("billing")
    yield session
    session.stop()


def statements(export: Export) -> tuple[dict[str, list[str]], dict[str, str]]:
    export.build_daily("EffectiveCost")
    present = [
        str(r[0])
        for r in export.query(
            "keys",
            "SELECT DISTINCT unnest(json_keys(CAST(tags AS JSON))) FROM daily WHERE tags <> '{}'",
        )
    ]
    spellings = resolve_keys(present, list(DEFAULT_KEYS), {})
    export.query("tagged", f"CREATE TEMP TABLE tagged AS {queries.tagged_sql(spellings)}")
    project = f"k{list(spellings).index(PROJECT_KEY)}"
    where = queries.period_filter(dt.date(2026, 1, 12), dt.date(2026, 2, 8))
    named = {f"by {key}": queries.by_column_sql(f"k{i}", where) for i, key in enumerate(spellings)}
    named["by service"] = queries.by_column_sql("service")
    named["by month"] = queries.by_column_sql("strftime(day, '%Y-%m')")
    named["series"] = queries.series_sql(project)
    return spellings, named


def _cents(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [
        tuple(Decimal(v).quantize(CENT) if isinstance(v, Decimal | float) else v for v in row)
        for row in rows
    ]


def _order(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in row)


def test_spark_sql_gives_duckdbs_figures_to_the_cent(export_path: Path, spark: Any) -> None:
    with Export([export_path]) as export:
        spellings, named = statements(export)
        expected = {name: _cents(export.query(name, sql)) for name, sql in named.items()}
    # every key has spellings from several clouds: AWS user:Project, GCP project, ...
    assert len(spellings[PROJECT_KEY]) >= 2
    spark.sql(
        queries.transpile(queries.daily_sql("EffectiveCost"), "spark")
    ).createOrReplaceTempView("daily")
    spark.sql(queries.transpile(queries.tagged_sql(spellings), "spark")).createOrReplaceTempView(
        "tagged"
    )
    for name, sql in named.items():
        transpiled = queries.transpile(sql, "spark")
        got = _cents([tuple(row) for row in spark.sql(transpiled).collect()])
        if name == "series":
            got = [(v, s, d if isinstance(d, dt.date) else d.date(), c) for v, s, d, c in got]
        assert sorted(got, key=_order) == sorted(expected[name], key=_order), name
    # and the anomaly rule finds the same episodes from Spark's series
    series: dict[tuple[str, str], dict[dt.date, float]] = {}
    for value, service, day, cost in got:
        series.setdefault((str(value), service), {})[day] = float(cost)
    found = find(series, dt.date(2026, 1, 5), dt.date(2026, 2, 8), AnomalySettings())
    assert ("llm-finetune", "Amazon Elastic Compute Cloud") in {
        (a.project, a.service) for a in found if a.open
    }
