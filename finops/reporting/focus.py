"""FOCUS 1.0 billing exports, read in place with DuckDB and checked row by row.

One or more exports (CSV, CSV.gz or Parquet; AWS Data Exports, Azure Cost Management, GCP
and OCI all write FOCUS) become one view, `billing`, with the FOCUS column names and types:
timestamps in UTC, costs as DECIMAL(38,18) so that sums are exact to the cent, `Tags` as a
JSON object text. A row that cannot be read (a cost that is not a number, a start that is not
a date-time, `Tags` that is not a JSON object, a CSV line with the wrong number of fields) is
kept out of every figure and reported with its file and line (CSV: the physical line, the
header being line 1; Parquet: the row number, the first row being 1). Nothing else is dropped.

The queries that read `billing` are plain SQL (`aifinops.reporting.queries`), so the same
figures can be computed on Spark, Athena or BigQuery; only this module is DuckDB's.
"""

from __future__ import annotations

import csv
import gzip
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aifinops.errors import FinopsError, did_you_mean

COST_TYPE = "DECIMAL(38,18)"
COST_COLUMNS = ("EffectiveCost", "BilledCost", "ListCost", "ContractedCost")
REQUIRED_COLUMNS = (
    "ChargePeriodStart",
    "ProviderName",
    "ServiceName",
    "BilledCost",
    "EffectiveCost",
)
# Read when present; absent ones are NULL (a FOCUS export without Tags is all untagged).
OPTIONAL_COLUMNS = (
    "ChargePeriodEnd",
    "ChargeCategory",
    "BillingCurrency",
    "ResourceId",
    "ResourceName",
    "SubAccountName",
    "Tags",
    "ListCost",
    "ContractedCost",
)
TIME_COLUMNS = ("ChargePeriodStart", "ChargePeriodEnd")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# Malformed rows listed one by one; beyond this they are counted (all of them, always).
MALFORMED_LISTED = 1000


class ReportError(FinopsError):
    """A billing export or option cannot be used: names the file or option and what to do."""


@dataclass(frozen=True)
class Malformed:
    """A row kept out of every figure, and why."""

    file: str
    line: int  # CSV: physical line (header = 1); Parquet: row number (first row = 1)
    problem: str

    def where(self) -> str:
        unit = "row" if self.file.endswith(".parquet") else "line"
        return f"{Path(self.file).name} {unit} {self.line}"


# (what, percent 0-100 or -1 when unknown, seconds since this query started); called about
# every 0.25 s while a query runs, and once with 100 when it ends.
ProgressCallback = Callable[[str, float, float], None]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    raise ReportError(f"{path}: not a FOCUS export file: expected .csv, .csv.gz or .parquet")


def _csv_header(path: Path) -> list[str]:
    opener: Callable[..., Any] = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            first = handle.readline()
        return next(csv.reader([first.decode("utf-8-sig")]), [])
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not UTF-8 text; FOCUS CSV exports are UTF-8") from None
    except (OSError, EOFError) as exc:
        raise ReportError(f"{path}: cannot read: {exc}") from None


class Export:
    """One or more FOCUS exports in DuckDB: `checked` (every row, with `_problem`), and after
    `build_daily` the table `daily` and the view `billing` (readable rows only)."""

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        memory_limit: str = "1GB",
        progress: ProgressCallback | None = None,
    ) -> None:
        import duckdb

        if not paths:
            raise ReportError("no billing export given")
        self.paths = [Path(p) for p in paths]
        self.progress = progress
        for path in self.paths:
            if not path.is_file():
                raise ReportError(f"{path}: billing export not found")
        self._tmp = tempfile.TemporaryDirectory(prefix="finops-report-")
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute(f"SET memory_limit = {_quote(memory_limit)}")
        self.con.execute(f"SET temp_directory = {_quote(self._tmp.name)}")
        # query_progress() needs the progress bar on; DuckDB must not print it itself
        self.con.execute("SET enable_progress_bar = true")
        self.con.execute("SET enable_progress_bar_print = false")
        self.columns: set[str] = set(REQUIRED_COLUMNS)
        # CSV records DuckDB could not split into the header's fields: (its record count,
        # problem) per file; their physical lines are found with the csv module.
        self._structural: dict[int, list[tuple[int, str]]] = {}
        self._raw: dict[int, str] = {}  # per file: its rows as read, with `_row`
        self._typed: list[str] = []  # per file: FOCUS types, no checks
        self._csv_columns: dict[int, list[str]] = {}
        sources = [self._source(i, path) for i, path in enumerate(self.paths)]
        self.con.execute("CREATE TEMP VIEW checked AS " + " UNION ALL ".join(sources))
        self._malformed: list[Malformed] | None = None
        self._malformed_count = 0
        self._bad_rows: int | None = None

    def build_daily(self, cost_column: str) -> None:
        """Create `daily` (queries.daily_sql over the readable rows) and the view `billing`,
        checking every row once: casts in the aggregation's own scan, `Tags` once per
        distinct tag set (a JSON parse per row would double the scan); later scans of
        `billing` skip the checks (an anti-join on the few bad rows' ids, if any)."""
        from aifinops.reporting import queries

        self.query(
            "aggregating charges",
            "CREATE TEMP TABLE daily_all AS "
            + queries.daily_sql(cost_column, source="checked", flag="_problem IS NULL"),
        )
        self.query(
            "checking tags",
            "CREATE TEMP TABLE bad_tags AS SELECT DISTINCT tags FROM daily_all "
            "WHERE ok AND tags <> '{}' AND coalesce(TRY(json_type(tags)), '') <> 'OBJECT'",
        )
        self.con.execute(
            "CREATE TEMP VIEW daily AS SELECT * EXCLUDE (ok) FROM daily_all "
            "WHERE ok AND tags NOT IN (SELECT tags FROM bad_tags)"
        )
        self.con.execute(
            "CREATE TEMP VIEW problems AS SELECT _file, _row, _line, "
            "coalesce(_problem, 'Tags is not a JSON object') AS problem FROM checked "
            "WHERE _problem IS NOT NULL OR coalesce(Tags, '{}') IN (SELECT tags FROM bad_tags)"
        )
        self._bad_rows = int(
            self.query(
                "counting malformed rows",
                "SELECT coalesce(sum(line_count), 0) FROM daily_all "
                "WHERE NOT ok OR tags IN (SELECT tags FROM bad_tags)",
            )[0][0]
        )
        typed = " UNION ALL ".join(self._typed)
        if self._bad_rows:
            self.query(
                "setting malformed rows aside",
                "CREATE TEMP TABLE bad_rows AS SELECT _file, _row FROM problems",
            )
            typed = f"SELECT * FROM ({typed}) ANTI JOIN bad_rows USING (_file, _row)"
        self.con.execute(
            f"CREATE TEMP VIEW billing AS SELECT * EXCLUDE (_file, _row) FROM ({typed})"
        )

    # -- reading ---------------------------------------------------------------------------

    def _source(self, index: int, path: Path) -> str:
        """SELECT of one file's rows with FOCUS types and a `_problem` per row."""
        kind = _kind(path)
        if kind == "csv":
            header = _csv_header(path)
            present = set(header)
            self._check_columns(path, present)
            wanted = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in present]
            columns = "{" + ", ".join(f"{_quote(c)}: 'VARCHAR'" for c in header) + "}"
            table = f"raw_{index}"
            self._run(
                f"reading {path.name}",
                f"CREATE TEMP TABLE {table} AS SELECT "
                + ", ".join(_ident(c) for c in wanted)
                + f", row_number() OVER () AS _row FROM read_csv({_quote(str(path))}, header = true, "
                "auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
                f"nullstr = 'NULL', columns = {columns}, store_rejects = true, "
                f"rejects_table = 'rejects_{index}', rejects_scan = 'rejects_scan_{index}')",
            )
            self._structural[index] = [
                (int(line), f"{error_type.lower()}: {message}")
                for line, error_type, message in self.con.execute(
                    f"SELECT line, error_type, error_message FROM rejects_{index} "
                    "QUALIFY row_number() OVER (PARTITION BY line ORDER BY column_idx) = 1 "
                    "ORDER BY line"
                ).fetchall()
            ]
            relation, line_sql = table, "NULL::BIGINT"  # CSV lines: found for bad rows only
            self._csv_columns[index] = wanted
        else:
            try:
                described = self.con.execute(
                    f"DESCRIBE SELECT * FROM read_parquet({_quote(str(path))})"
                ).fetchall()
            except Exception as exc:  # duckdb.Error: not Parquet, truncated...
                raise ReportError(
                    f"{path}: cannot read as Parquet: {str(exc).splitlines()[0]}"
                ) from None
            types = {str(row[0]): str(row[1]) for row in described}
            present = set(types)
            self._check_columns(path, present)
            # AWS writes Tags as a map in Parquet; everything downstream reads JSON text.
            replace = (
                "REPLACE (CAST(to_json(Tags) AS VARCHAR) AS Tags)"
                if types.get("Tags", "").startswith("MAP")
                else ""
            )
            relation = (
                f"(SELECT * {replace}, file_row_number + 1 AS _row "
                f"FROM read_parquet({_quote(str(path))}, file_row_number = true))"
            )
            line_sql = "_row"
        self.columns |= present & set(OPTIONAL_COLUMNS)
        self._raw[index] = relation
        self._typed.append(_typed_select(relation, present, index))
        return _checked_select(relation, present, index, line_sql)

    def _check_columns(self, path: Path, present: set[str]) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in present]
        if missing:
            hints = "".join(did_you_mean(c, present) for c in missing)
            raise ReportError(
                f"{path}: not a FOCUS 1.0 export: missing column(s) {', '.join(missing)}{hints}"
            )

    # -- running with progress -------------------------------------------------------------

    def _run(self, what: str, sql: str, params: Sequence[object] = ()) -> Any:
        """Execute `sql`, reporting DuckDB's progress on queries that take a while."""
        import duckdb

        if self.progress is None:
            try:
                return self.con.execute(sql, list(params))
            except duckdb.Error as exc:
                raise self._duckdb_error(what, exc) from None
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["cursor"] = self.con.execute(sql, list(params))
            except BaseException as exc:
                result["error"] = exc

        started = time.monotonic()
        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.25)
            if worker.is_alive():
                self.progress(what, float(self.con.query_progress()), time.monotonic() - started)
        self.progress(what, 100.0, time.monotonic() - started)
        if "error" in result:
            failure = result["error"]
            if isinstance(failure, duckdb.Error):
                raise self._duckdb_error(what, failure) from None
            raise failure
        return result["cursor"]

    def _duckdb_error(self, what: str, exc: Exception) -> ReportError:
        names = ", ".join(str(p) for p in self.paths)
        return ReportError(f"{names}: {what}: {str(exc).splitlines()[0]}")

    def query(self, what: str, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of `sql` over the `billing` view (and tables made from it)."""
        return list(self._run(what, sql, params).fetchall())

    # -- what was kept out ------------------------------------------------------------------

    def malformed(self) -> tuple[list[Malformed], int]:
        """Rows kept out of the figures: up to MALFORMED_LISTED of them, and how many
        (after `build_daily`)."""
        if self._bad_rows is None:
            raise RuntimeError("Export.malformed() before build_daily()")
        if self._malformed is None:
            count = self._bad_rows + sum(len(v) for v in self._structural.values())
            listed: list[Malformed] = []
            if count:
                rows = self.query(
                    "listing malformed rows",
                    f"SELECT _file, _line, problem FROM problems ORDER BY _file, _line "
                    f"LIMIT {MALFORMED_LISTED}",
                )
                listed = [
                    Malformed(str(self.paths[int(f)]), int(line), str(problem))
                    for f, line, problem in rows
                    if line is not None
                ]
                csv_files = {int(f) for f, line, _ in rows if line is None}
                csv_files |= {i for i, found in self._structural.items() if found}
                for index in sorted(csv_files):
                    listed += self._csv_malformed(index)
            listed.sort(key=lambda m: (self.paths.index(Path(m.file)), m.line))
            self._malformed = listed[:MALFORMED_LISTED]
            self._malformed_count = count
        return self._malformed, self._malformed_count

    def _csv_malformed(self, index: int) -> list[Malformed]:
        """One CSV's malformed records with their physical lines (csv module pass)."""
        columns = self._csv_columns[index]
        bad: dict[tuple[str | None, ...], list[str]] = {}
        for *values, problem in self.query(
            "finding malformed lines",
            f"SELECT {', '.join('r.' + _ident(c) for c in columns)}, p.problem "
            f"FROM {self._raw[index]} r JOIN problems p ON p._file = {index} AND p._row = r._row "
            f"ORDER BY r._row LIMIT {MALFORMED_LISTED}",
        ):
            bad.setdefault(tuple(values), []).append(str(problem))
        return _csv_lines(self.paths[index], columns, bad, self._structural.get(index, []))

    def close(self) -> None:
        self.con.close()
        self._tmp.cleanup()

    def __enter__(self) -> Export:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


TEXT_COLUMNS = (
    "ProviderName",
    "ServiceName",
    "ChargeCategory",
    "BillingCurrency",
    "ResourceId",
    "ResourceName",
    "SubAccountName",
    "Tags",
)


def _typed_columns(present: set[str]) -> list[tuple[str, str]]:
    """(FOCUS column, SQL giving it its type from the raw column) for every column read."""

    def col(name: str) -> str:
        return _ident(name) if name in present else "NULL"

    typed = [(n, f"TRY_CAST({col(n)} AS TIMESTAMPTZ)") for n in TIME_COLUMNS]
    typed += [
        (n, f"TRY_CAST({col(n)} AS {COST_TYPE})")
        if n in REQUIRED_COLUMNS
        else (n, f"TRY_CAST(nullif(trim(CAST({col(n)} AS VARCHAR)), '') AS {COST_TYPE})")
        for n in COST_COLUMNS
    ]
    typed += [(n, f"nullif(trim(CAST({col(n)} AS VARCHAR)), '')") for n in TEXT_COLUMNS]
    return typed


def _typed_select(relation: str, present: set[str], index: int) -> str:
    """One file's rows with the FOCUS types (UTC timestamps, exact decimals, trimmed text),
    the file's index and the row id."""
    columns = ", ".join(f"{sql} AS {name}" for name, sql in _typed_columns(present))
    return f"SELECT {columns}, {index} AS _file, _row FROM {relation}"


def _checked_select(relation: str, present: set[str], index: int, line_sql: str) -> str:
    """`_typed_select` plus the reportable line and `_problem`: why the row cannot be read
    (NULL when it can). Each value is cast once; `Tags` is checked per distinct tag set in
    `Export.build_daily`."""
    typed = _typed_columns(present)
    inner = ", ".join(f'{sql} AS "t:{name}"' for name, sql in typed)

    def raw(name: str) -> str:
        return f"CAST({_ident(name)} AS VARCHAR)"

    start = "ChargePeriodStart"
    problems = [
        f"WHEN \"t:{start}\" IS NULL THEN CASE WHEN nullif(trim({raw(start)}), '') IS NULL "
        f"THEN '{start} is empty' ELSE '{start} ' || {raw(start)} || ' is not a date-time' END"
    ]
    for name in COST_COLUMNS:
        if name in REQUIRED_COLUMNS:
            problems.append(
                f"WHEN \"t:{name}\" IS NULL THEN CASE WHEN nullif(trim({raw(name)}), '') IS NULL "
                f"THEN '{name} is empty' ELSE '{name} ' || {raw(name)} || ' is not a number' END"
            )
        elif name in present:
            problems.append(
                f"WHEN \"t:{name}\" IS NULL AND nullif(trim({raw(name)}), '') IS NOT NULL "
                f"THEN '{name} ' || {raw(name)} || ' is not a number'"
            )
    outer = ", ".join(f'"t:{name}" AS {name}' for name, _ in typed)
    return (
        f"SELECT {outer}, {index} AS _file, _row, {line_sql} AS _line, "
        f"CASE {' '.join(problems)} END AS _problem "
        f"FROM (SELECT *, {inner} FROM {relation})"
    )


def _csv_lines(
    path: Path,
    columns: Sequence[str],
    bad: dict[tuple[str | None, ...], list[str]],
    structural: Sequence[tuple[int, str]],
) -> list[Malformed]:
    """Physical lines of a CSV's malformed records.

    DuckDB neither numbers a CSV's records nor counts the lines of a quoted field that spans
    several, so the malformed records (few, by nature) are found again with the csv module,
    which counts physical lines: records with the wrong number of fields (in order, as
    DuckDB rejected them) and records whose `columns` values are the keys of `bad` (compared
    raw, as DuckDB read them; `NULL` is None).
    """
    opener: Callable[..., Any] = gzip.open if path.name.lower().endswith(".gz") else open
    remaining = {key: list(problems) for key, problems in bad.items()}
    pending = list(structural)
    found: list[Malformed] = []
    # errors="replace": a line that is not UTF-8 is one DuckDB rejected (invalid unicode)
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        positions = [header.index(c) for c in columns]
        line = reader.line_num + 1
        for record in reader:
            if len(record) != len(header) or any("\ufffd" in field for field in record):
                if pending:
                    found.append(Malformed(str(path), line, pending.pop(0)[1]))
            else:
                key = tuple(None if record[i] == "NULL" else record[i] for i in positions)
                problems = remaining.get(key)
                if problems:
                    found.append(Malformed(str(path), line, problems.pop(0)))
            if not pending and not any(remaining.values()):
                break
            line = reader.line_num + 1
    # Not found again (a quoting the two readers split differently): DuckDB's record count.
    found += [Malformed(str(path), n, f"{p} (record {n} as DuckDB counts)") for n, p in pending]
    return found


def check_month(month: str, available: Sequence[str]) -> None:
    """`--month` must be YYYY-MM and a month the export covers."""
    covered = ", ".join(available) or "no charges"
    if not MONTH.match(month):
        raise ReportError(
            f"--month {month!r}: expected YYYY-MM, e.g. {available[-1] if available else '2024-09'}"
            f" (the export covers {covered})"
        )
    if month not in available:
        raise ReportError(
            f"--month {month}: no charges in that month (the export covers {covered})"
        )
