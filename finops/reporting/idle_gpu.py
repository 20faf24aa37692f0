"""Idle-GPU cost: what the GPUs that did nothing cost, per project and fleet.

The agent's window records (agents/SPOOL_FORMAT.md: one record per GPU per window, with
`instance_id`, `hostname`, `idle_sample_ratio` and the fleet tag `finops:fleet`) are joined
to the billing lines of the same instances:

- a billing line matches an instance when its `ResourceId`, or the last `/`-separated part
  of it (an ARN or an Azure/GCP resource path), equals the instance id (case-insensitive);
  on Azure and GCP, which bill a VM by its name while the agent knows the vmId or numeric
  id, also the host name, when exactly one instance of the windows had it (EC2 host names
  such as `ip-10-0-0-5` are reused, so they are never used);
- for each matched line (charge period [start, end)), the windows of that instance that
  overlap it give the GPU-seconds observed and the idle GPU-seconds (overlap x
  `idle_sample_ratio`, the share of the window's samples with no process and activity
  under the agent's threshold); windows of a lost GPU count for neither;
- the line's idle cost is its cost x idle GPU-seconds / observed GPU-seconds: the idle share
  of the GPU time the agent saw, applied to what the line cost;
- lines with no window and windows with no line are not guessed at: their cost and
  GPU-hours are reported as unobserved (UNKNOWN), never as zero idle; a window line that
  cannot be read (a flipped byte, a torn write) is skipped and reported with its line, as
  the rightsizing reader does.

Only usage lines count (`ChargeCategory` Usage, or no category): a purchase or credit on the
instance is not GPU time. Project is the billing line's `Project` tag (the tag schema's
spellings and aliases); fleet is the agent's `finops:fleet` tag.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aifinops.agentfiles import SourceError, record_files
from aifinops.reporting.focus import Export, ReportError
from aifinops.reporting.queries import UNTAGGED, quote, tag_value_sql
from aifinops.rightsizing.spool import FLEET_TAG

NO_FLEET = "(no fleet tag)"
WINDOW_COLUMNS = {
    "schema_version": "INTEGER",
    "record_id": "VARCHAR",
    "window_start": "DOUBLE",
    "window_end": "DOUBLE",
    "instance_id": "VARCHAR",
    "hostname": "VARCHAR",
    "cloud": "VARCHAR",
    "tags": "JSON",
    "gpu_uuid": "VARCHAR",
    "lost": "BOOLEAN",
    "idle_sample_ratio": "DOUBLE",
}


@dataclass(frozen=True)
class IdleRow:
    project: str
    fleet: str
    gpu_hours: float  # observed on billed lines
    idle_gpu_hours: float
    cost: float  # of the matched lines
    idle_cost: float

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "fleet": self.fleet,
            "gpuHours": round(self.gpu_hours, 3),
            "idleGpuHours": round(self.idle_gpu_hours, 3),
            "cost": round(self.cost, 2),
            "idleCost": round(self.idle_cost, 2),
        }


@dataclass
class IdleGpu:
    rows: list[IdleRow]  # by project and fleet, largest idle cost first
    instances: int  # instances seen in the windows
    matched_instances: int  # ... with at least one billing line
    unobserved_cost: float  # matched instances' lines with no window
    unbilled_gpu_hours: float  # windows with no billing line
    unmatched_instances: list[str] = field(default_factory=list)
    skipped_lines: list[str] = field(default_factory=list)  # unreadable window lines

    @property
    def idle_cost(self) -> float:
        return sum(r.idle_cost for r in self.rows)

    def as_dict(self) -> dict[str, object]:
        return {
            "idleCost": round(self.idle_cost, 2),
            "rows": [r.as_dict() for r in self.rows],
            "instances": self.instances,
            "matchedInstances": self.matched_instances,
            "unmatchedInstances": self.unmatched_instances,
            "unobservedCost": round(self.unobserved_cost, 2),
            "unbilledGpuHours": round(self.unbilled_gpu_hours, 3),
            "skippedWindowLines": self.skipped_lines,
        }


def load_windows(export: Export, paths: Sequence[Path]) -> list[str]:
    """The agent's records as the DuckDB table `windows` (deduplicated on record_id), and
    the lines skipped as unreadable (`path:line: reason`). The files are scanned once, into
    `window_lines`, which the skipped lines, the table and the version check are read from."""
    files: list[Path] = []
    for path in paths:
        try:
            files += record_files(path)
        except SourceError as exc:
            raise ReportError(f"--agent-windows {exc}") from None
    # Parquet files (the agent files' other form, agentfiles.record_files) have rows, not
    # lines: a row is read as the JSON object it holds, typed as a JSON line would be
    counted = [None if _is_parquet(path) else _count_lines(path) for path in files]
    columns = "{" + ", ".join(f"{quote(k)}: {quote(v)}" for k, v in WINDOW_COLUMNS.items()) + "}"
    structure = quote(json.dumps(WINDOW_COLUMNS))
    export.query(
        "reading agent windows",
        "CREATE OR REPLACE TEMP TABLE window_lines AS "
        + " UNION ALL BY NAME ".join(
            f"SELECT {number} AS file, unnest(json_transform(to_json(p), {structure})) "
            f"FROM read_parquet({quote(str(path))}) p"
            if _is_parquet(path)
            else f"SELECT {number} AS file, * FROM read_json({quote(str(path))}, "
            f"format = 'newline_delimited', columns = {columns}, ignore_errors = true)"
            for number, path in enumerate(files)
        ),
    )
    parsed = dict(
        export.query(
            "reading agent windows",
            "SELECT file, count(*) FROM window_lines WHERE record_id IS NOT NULL GROUP BY file",
        )
    )
    skipped: list[str] = []
    for number, (path, count) in enumerate(zip(files, counted, strict=True)):
        if count is None:
            rows = export.query(
                "reading agent windows", f"SELECT count(*) FROM window_lines WHERE file = {number}"
            )[0][0]
            if rows - int(parsed.get(number, 0)):
                skipped.append(
                    f"{path}: {rows - int(parsed.get(number, 0))} row(s) without a record_id"
                )
            continue
        lines, tail_unterminated = count
        skipped += _skipped_lines(path, lines, tail_unterminated, int(parsed.get(number, 0)))
    export.query(
        "reading agent windows",
        "CREATE OR REPLACE TEMP TABLE windows AS SELECT * EXCLUDE (file) FROM window_lines "
        "WHERE schema_version = 1 AND instance_id IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY window_start) = 1",
    )
    versions = export.query(
        "checking agent windows",
        "SELECT DISTINCT schema_version FROM window_lines "
        "WHERE record_id IS NOT NULL AND schema_version IS DISTINCT FROM 1",
    )
    export.query("reading agent windows", "DROP TABLE window_lines")
    if versions:
        found = ", ".join(str(v[0]) for v in versions)
        raise ReportError(
            f"--agent-windows: window records of schema_version {found}; this finops reads 1 "
            "(agents/SPOOL_FORMAT.md)"
        )
    return skipped


def _skipped_lines(path: Path, lines: int, tail_unterminated: bool, parsed: int) -> list[str]:
    """`path:line: reason` of the complete lines that are not window records (a flipped
    byte, a torn write), given the file's non-blank `lines` (`_count_lines`) and the
    `parsed` ones DuckDB read a record_id from: skipped, as the rightsizing reader skips
    them, and reported. An unterminated last line (the writer was killed mid-line) is not
    counted."""
    if lines - parsed <= (1 if tail_unterminated else 0):
        return []
    import json

    skipped = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip() or not line.endswith(b"\n"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                skipped.append(f"{path}:{number}: not a JSON window record")
                continue
            if not isinstance(record, dict) or "record_id" not in record:
                skipped.append(f"{path}:{number}: not a window record")
    if not skipped:  # JSON objects DuckDB could not read with the record's column types
        skipped.append(f"{path}: {lines - parsed} lines are not window records")
    return skipped


def _is_parquet(path: Path) -> bool:
    return path.suffix == ".parquet"


def _count_lines(path: Path) -> tuple[int, bool]:
    """Non-blank lines of a file, and whether the last one lacks its newline."""
    count, last = 0, b""
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                count += 1
            last = line
    return count, bool(last) and not last.endswith(b"\n")


def idle_gpu_cost(
    export: Export,
    paths: Sequence[Path],
    cost_column: str,
    project_spellings: Sequence[str],
    first: dt.date | None = None,
    last: dt.date | None = None,
) -> IdleGpu:
    """Idle-GPU cost per project and fleet (see the module's docstring for the rule), of the
    billing lines starting in [first, last] (UTC days) and the windows starting then."""
    skipped = load_windows(export, paths)
    if first is not None or last is not None:
        since = dt.datetime.combine(first or dt.date.min, dt.time(), tzinfo=dt.UTC)
        until = dt.datetime.combine(last or dt.date.max, dt.time.max, tzinfo=dt.UTC)
        export.query(
            "reading agent windows",
            f"DELETE FROM windows WHERE window_start < {since.timestamp()} "
            f"OR window_start > {until.timestamp()}",
        )
    project = tag_value_sql(project_spellings, "COALESCE(Tags, '{}')")
    export.query(
        "matching windows to billing",
        "CREATE OR REPLACE TEMP TABLE hosts AS "
        "SELECT DISTINCT lower(instance_id) AS match, instance_id FROM windows "
        "UNION SELECT lower(hostname), any_value(instance_id) FROM windows "
        "WHERE coalesce(hostname, '') <> '' AND cloud IN ('azure', 'gcp') "
        "GROUP BY 1 HAVING count(DISTINCT instance_id) = 1",
    )
    export.query(
        "matching windows to billing",
        "CREATE OR REPLACE TEMP TABLE lines AS "
        "SELECT row_number() OVER () AS line_id, h.instance_id, "
        "epoch(b.ChargePeriodStart) AS line_start, "
        "epoch(coalesce(b.ChargePeriodEnd, b.ChargePeriodStart + INTERVAL 1 HOUR)) AS line_end, "
        f"CAST(b.{cost_column} AS DOUBLE) AS cost, coalesce({project}, {quote(UNTAGGED)}) AS project "
        "FROM billing b JOIN hosts h "
        "ON lower(regexp_extract(b.ResourceId, '[^/]+$')) = h.match "
        "WHERE coalesce(b.ChargeCategory, 'Usage') = 'Usage' AND "
        f"CAST(b.ChargePeriodStart AS DATE) BETWEEN DATE {quote((first or dt.date.min).isoformat())} "
        f"AND DATE {quote((last or dt.date.max).isoformat())}",
    )
    export.query(
        "matching windows to billing",
        "CREATE OR REPLACE TEMP TABLE window_overlaps AS "
        "SELECT l.line_id, w.record_id, "
        f"coalesce(json_extract_string(w.tags, {quote('$.' + chr(34) + FLEET_TAG + chr(34))}), "
        f"{quote(NO_FLEET)}) AS fleet, "
        "greatest(0, least(w.window_end, l.line_end) - greatest(w.window_start, l.line_start)) "
        "AS seconds, w.idle_sample_ratio AS idle_ratio "
        "FROM windows w JOIN lines l ON w.instance_id = l.instance_id "
        "AND w.window_start < l.line_end AND w.window_end > l.line_start "
        "WHERE NOT coalesce(w.lost, false)",
    )
    rows = export.query(
        "idle-GPU cost",
        "WITH per_line AS (SELECT line_id, fleet, sum(seconds) AS gpu_seconds, "
        "sum(seconds * coalesce(idle_ratio, 0)) AS idle_seconds FROM window_overlaps "
        "GROUP BY 1, 2), line_total AS (SELECT line_id, sum(gpu_seconds) AS all_seconds "
        "FROM per_line GROUP BY 1) "
        "SELECT l.project, p.fleet, sum(p.gpu_seconds) / 3600, sum(p.idle_seconds) / 3600, "
        "sum(l.cost * p.gpu_seconds / t.all_seconds), "
        "sum(l.cost * p.idle_seconds / t.all_seconds) "
        "FROM per_line p JOIN line_total t USING (line_id) JOIN lines l USING (line_id) "
        "WHERE t.all_seconds > 0 GROUP BY 1, 2 ORDER BY 6 DESC, 1, 2",
    )
    summary: Mapping[str, Any] = dict(
        zip(
            ("instances", "matched", "unobserved", "unbilled"),
            export.query(
                "idle-GPU cost",
                "SELECT (SELECT count(DISTINCT instance_id) FROM windows), "
                "(SELECT count(DISTINCT instance_id) FROM lines), "
                "(SELECT coalesce(sum(cost), 0) FROM lines WHERE line_id NOT IN "
                "(SELECT line_id FROM window_overlaps WHERE seconds > 0)), "
                "(SELECT coalesce(sum(window_end - window_start), 0) / 3600 FROM windows w "
                "WHERE NOT coalesce(lost, false) AND record_id NOT IN "
                "(SELECT record_id FROM window_overlaps WHERE seconds > 0))",
            )[0],
            strict=True,
        )
    )
    unmatched = [
        str(r[0])
        for r in export.query(
            "idle-GPU cost",
            "SELECT DISTINCT instance_id FROM windows WHERE instance_id NOT IN "
            "(SELECT instance_id FROM lines) ORDER BY 1",
        )
    ]
    return IdleGpu(
        rows=[
            IdleRow(str(p), str(f), float(g), float(i), float(c), float(ic))
            for p, f, g, i, c, ic in rows
        ],
        instances=int(summary["instances"]),
        matched_instances=int(summary["matched"]),
        unobserved_cost=float(summary["unobserved"]),
        unbilled_gpu_hours=float(summary["unbilled"]),
        unmatched_instances=unmatched,
        skipped_lines=skipped,
    )
