"""A fleet's agent files in bounded memory: DuckDB over JSON Lines and Parquet.

`finops rightsize --source agent:PATH` reads here. The files are scanned by DuckDB (its JSON
and Parquet readers, in parallel, spilling to a temporary folder beyond `memory_limit_mb`)
a batch of host folders at a time (`_batches`), so that memory follows the largest host's
files and the number of GPUs x 5-minute intervals, never the number of records:

1. a batch's records, deduplicated on `record_id` where the batch holds copies (delivery is
   at least once: copies are in the same host's files); a rolled-up line (agents/
   SPOOL_FORMAT.md, `schema_version` 2) is a record per GPU summary in it;
2. folded into partial figures per GPU and 5-minute interval (peaks, weighted sums,
   seconds, counts: `spool._Slot`'s), per host and interval, per host window, per GPU
   (first and last values with their start) that merge exactly across batches; batches
   holding one GPU's windows over overlapping time (a spool read beside its export in
   another folder) are dropped and read again as one, so a copy still counts once;
3. merged, then per GPU: the figures of `usage.summarise` (nearest-rank p95s,
   time-weighted means, busy and observed hours), and per host the work and host figures.

Steps 2 and 3 are `spool`'s fold and `usage.summarise` written in SQL: the two readers are
held to the same `GpuUsage` on the same files by tests/rightsizing/test_stream_reader.py.

Input it cannot read is treated as `spool` treats it: an unterminated last line is skipped,
a line that is not a JSON object is skipped and counted (`spool.SkippedLinesWarning`), and
a JSON object that is not a window record stops the read; for the message, `spool` reads the
file that holds it (`spool.check_files`), so both readers say the same line.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from aifinops.agentfiles import GPU_COLUMNS
from aifinops.rightsizing.spool import (
    FLEET_TAG,
    HOST_CPU,
    HOST_MEMORY,
    WAITING_ON_DATA,
    SkippedLinesWarning,
    SourceError,
    check_files,
    record_files,
)
from aifinops.rightsizing.usage import GIB, IDLE_UTIL_PERCENT, INTERVAL_SECONDS, GpuUsage

MEMORY_LIMIT_MB = 256
"""DuckDB's own memory (its buffers and hash tables); beyond it DuckDB spills to disk."""

Progress = Callable[[float], None]
"""Told the share of the scan done, 0-1, as the files are read."""

# What is read of each record, as DuckDB's `from_json` structure; every other field is
# ignored. A value of another type reads as NULL (a number given as a string is converted).
_STATS = {"max": "DOUBLE", "mean": "DOUBLE"}
STRUCTURE: dict[str, Any] = {
    "schema_version": "VARCHAR",
    "record_id": "VARCHAR",
    "rollup_seconds": "DOUBLE",
    "window_start": "DOUBLE",
    "window_end": "DOUBLE",
    "instance_id": "VARCHAR",
    "hostname": "VARCHAR",
    "instance_type": "VARCHAR",
    "region": "VARCHAR",
    "lifecycle": "VARCHAR",
    "tags": {FLEET_TAG: "VARCHAR"},
    "gpu_index": "DOUBLE",
    "sample_count": "DOUBLE",
    "memory_total_bytes": "DOUBLE",
    "gpu_util_percent": _STATS,
    "memory_used_bytes": {"max": "DOUBLE"},
    "sm_active_ratio": _STATS,
    "process_count": {"max": "DOUBLE"},
    HOST_CPU: {"max": "DOUBLE"},
    HOST_MEMORY: {"max": "DOUBLE"},
    "work_units": "MAP(VARCHAR, DOUBLE)",
    "input_verdict": "VARCHAR",
    "input_causes": "VARCHAR[]",
    # a rolled-up line (`schema_version` 2): a host's GPUs over the same seconds
    "gpus": "DOUBLE[][]",
    f"{HOST_CPU}_max": "DOUBLE",
    f"{HOST_MEMORY}_max": "DOUBLE",
}


def _missing(field: str) -> str:
    """SQL: the record has no `field` key (NULL alone cannot tell a null from no key; CASE
    parses the line again only where the field is NULL)."""
    return f"(CASE WHEN j.{field} IS NULL THEN NOT json_exists(line, '$.{field}') ELSE false END)"


def _lines_sql(json_files: Sequence[Path], parquet_files: Sequence[Path]) -> str:
    """(filename, line) of every line: JSON Lines read as one text column per line (JSON
    strings cannot hold the 0x1f delimiter unescaped); Parquet rows turned into JSON."""
    parts = []
    if json_files:
        parts.append(
            "SELECT filename, line FROM read_csv($json_files, columns = {'line': 'VARCHAR'}, "
            "delim = '\\x1f', quote = '', escape = '', header = false, auto_detect = false, "
            "new_line = '\\n', filename = true, store_rejects = true, strict_mode = false, "
            "max_line_size = 1048576, buffer_size = 8388608)"
        )
    if parquet_files:
        parts.append(
            "SELECT filename, to_json(p)::VARCHAR AS line "
            "FROM read_parquet($parquet_files, union_by_name = true, filename = true) p"
        )
    return " UNION ALL ".join(parts)


def _records_sql(lines: str) -> str:
    """One row per record: status `ok`, `skip` (not a JSON object: counted) or `bad` (a JSON
    object that is not a readable window record: the read stops). A rolled-up line
    (`schema_version` 2) is one row per GPU summary in it, as `agentfiles.gpu_summaries`.

    Copies of a record have the same key (`key`, `key_gpu`, `key_start`): its `record_id`;
    for a rolled-up GPU summary, of either version, its host, GPU and start
    (`agentfiles.record_key`). A batch holding copies is deduplicated on it
    (`_DEDUPLICATED_SQL`); most hold none and are not."""
    structure = json.dumps(STRUCTURE).replace("'", "''")
    counted = "coalesce(j.sample_count, 0) <> 0"
    in_window = f"({counted} AND ($end IS NULL OR j.window_end <= $end))"
    bad = " OR ".join(
        [
            "coalesce(j.schema_version, '') NOT IN ('1', '1.0')",
            *(
                _missing(field)
                for field in ("window_start", "gpu_index", "instance_type", "sample_count")
            ),
            "j.window_end IS NULL",
            f"({in_window} AND (j.window_start IS NULL OR j.gpu_index IS NULL))",
        ]
    )
    # a rolled-up line: its GPUs arrays of the GPU_COLUMNS numbers, a GPU index in each
    bad_rolled = " OR ".join(
        [
            _missing("instance_type"),
            "j.window_start IS NULL OR j.window_end IS NULL OR j.gpus IS NULL",
            "list_bool_or(list_transform(j.gpus, lambda g: g IS NULL OR len(g) <> "
            f"{len(GPU_COLUMNS)} OR g[1] IS NULL))",
        ]
    )
    gpu_columns = {name: f"g[{n}]" for n, name in enumerate(GPU_COLUMNS, start=1)}
    return f"""
    WITH lines AS ({lines}),
    parsed AS (
        SELECT filename, line, TRY(from_json(line, '{structure}')) AS j FROM lines
    ),
    classified AS (
        SELECT *, CASE
            WHEN j IS NULL AND (line IS NULL OR regexp_full_match(line, '\\s*')) THEN 'blank'
            WHEN j IS NULL THEN 'skip'
            -- from_json reads `[1, 2]` or `"text"` as an object with no fields
            WHEN CASE WHEN starts_with(line, '{{') THEN false
                      ELSE NOT starts_with(ltrim(line, ' \t\r'), '{{') END THEN 'skip'
            WHEN j.schema_version IN ('2', '2.0') THEN CASE WHEN {bad_rolled} THEN 'bad'
                                                            ELSE 'rolled' END
            WHEN {bad} THEN 'bad'
            ELSE 'ok' END AS status
        FROM parsed
    ),
    -- what a line says of its host and window, once per line (a rolled-up line's GPUs share it)
    described AS (
        SELECT filename, line, status, j,
            CASE WHEN coalesce(j.instance_id, 'unknown') NOT IN ('', 'unknown')
                 THEN j.instance_id ELSE coalesce(j.hostname, 'None') END AS host,
            coalesce(j.instance_type, 'None') AS instance_type,
            CASE WHEN j.region IN ('', 'unknown') THEN NULL ELSE j.region END AS region,
            j.tags."{FLEET_TAG}" AS fleet,
            coalesce(j.lifecycle, 'unknown') AS lifecycle,
            CASE WHEN list_aggregate(map_values(j.work_units), 'count') > 0
                 THEN j.work_units::JSON::VARCHAR END AS work,
            j.input_verdict AS verdict,
            -- joined by a character JSON text cannot hold raw
            array_to_string(j.input_causes, chr(31)) AS causes,
            j.window_start AS ws, j.window_end AS we,
            status = 'rolled' OR j.rollup_seconds IS NOT NULL AS summary
        FROM classified WHERE status <> 'blank'
    ),
    -- a rolled-up line is a row per GPU in it (its `gpus` unnested), any other line a row
    fields AS (
        SELECT * EXCLUDE (j, g, status), CASE WHEN rolled THEN 'ok' ELSE status END AS status,
            CASE WHEN NOT rolled THEN j.record_id END AS record_id,
            CASE WHEN rolled THEN {gpu_columns["gpu_index"]} ELSE j.gpu_index END AS gpu_index,
            CASE WHEN rolled THEN {gpu_columns["sample_count"]} ELSE j.sample_count END AS sample_count,
            CASE WHEN rolled THEN {gpu_columns["memory_total_bytes"]} ELSE j.memory_total_bytes END AS memory_total_bytes,
            CASE WHEN rolled THEN {gpu_columns["gpu_util_percent_max"]} ELSE j.gpu_util_percent.max END AS util_max,
            CASE WHEN rolled THEN {gpu_columns["gpu_util_percent_mean"]} ELSE j.gpu_util_percent.mean END AS util_mean,
            CASE WHEN rolled THEN {gpu_columns["sm_active_ratio_max"]} ELSE j.sm_active_ratio.max END AS sm_max,
            CASE WHEN rolled THEN {gpu_columns["sm_active_ratio_mean"]} ELSE j.sm_active_ratio.mean END AS sm_mean,
            CASE WHEN rolled THEN {gpu_columns["memory_used_bytes_max"]} ELSE j.memory_used_bytes.max END AS memory_max,
            CASE WHEN rolled THEN {gpu_columns["process_count_max"]} ELSE j.process_count.max END AS processes_max,
            CASE WHEN rolled THEN j."{HOST_CPU}_max" ELSE j."{HOST_CPU}".max END AS cpu_max,
            CASE WHEN rolled THEN j."{HOST_MEMORY}_max" ELSE j."{HOST_MEMORY}".max END
                AS host_memory_max
        FROM (
            SELECT *, status = 'rolled' AS rolled,
                unnest(CASE WHEN status = 'rolled' THEN j.gpus ELSE [NULL::DOUBLE[]] END) AS g,
                -- the line's first row says what is the host's (its window, work)
                unnest(CASE WHEN status = 'rolled' THEN range(len(j.gpus)) ELSE [0] END) = 0
                    AS host_row
            FROM described
        )
    )
    SELECT
        -- a GPU summary: its host, GPU and start; another record: its record_id
        CASE WHEN status = 'ok' AND summary THEN host
             WHEN status = 'ok' AND record_id IS NOT NULL THEN record_id
             ELSE filename || ':' || gen_random_uuid()::VARCHAR END AS key,
        CASE WHEN status = 'ok' AND summary THEN trunc(gpu_index)::BIGINT END AS key_gpu,
        CASE WHEN status = 'ok' AND summary THEN ws END AS key_start,
        status,
        CASE WHEN status <> 'ok' THEN filename END AS filename,
        CASE WHEN status <> 'ok' THEN line END AS line,
        host,
        instance_type,
        region,
        fleet,
        lifecycle,
        work,
        verdict,
        causes,
        trunc(gpu_index)::BIGINT AS gpu,
        ws,
        we,
        coalesce(sample_count, 0) <> 0 AND ($end IS NULL OR we <= $end) AS folded,
        memory_total_bytes,
        util_max,
        util_mean,
        memory_max,
        sm_max,
        sm_mean,
        processes_max,
        cpu_max,
        host_memory_max,
        host_row
    FROM fields
    """


_COPIES_SQL = """
SELECT count(*) - count(DISTINCT (key, key_gpu, key_start)) FROM lines_read WHERE status = 'ok'
"""

# Copies of a record are identical: any one copy's values.
_DEDUPLICATED_SQL = """
SELECT key, key_gpu, key_start, status, filename, line,
    COLUMNS(* EXCLUDE (key, key_gpu, key_start, status, filename, line)).any_value()
FROM lines_read GROUP BY key, key_gpu, key_start, status, filename, line
"""


# Step 2, per batch of files (`_batches`): partial aggregates of the batch's `records`,
# tagged with its number `$b`, that merge exactly across batches (maxima, sums, counts,
# first and last values with the window start they belong to). A batch's rows can be
# dropped and the batch read again with others (`_regroup`).
_PARTS_SQL = {
    # `spool._Slot` per GPU and interval, before its mean and observed seconds
    "slot_parts": f"""
WITH w AS (
    SELECT *, greatest(we - ws, 0.0) AS seconds, floor(ws / {INTERVAL_SECONDS})::BIGINT AS i
    FROM records WHERE status = 'ok' AND folded
)
SELECT $b AS b, host, gpu, i,
    max(util_max) AS util_peak,
    sum(util_mean * seconds) FILTER (util_max IS NOT NULL AND util_mean IS NOT NULL)
        AS util_weighted,
    coalesce(sum(seconds) FILTER (util_max IS NOT NULL AND util_mean IS NOT NULL), 0)
        AS util_seconds,
    count(*) FILTER (util_max IS NOT NULL AND util_mean IS NULL) AS without_mean,
    max(memory_max / {GIB}) AS memory_peak,
    max(sm_max) AS sm_peak,
    sum(sm_mean * seconds) FILTER (sm_mean IS NOT NULL) AS sm_weighted,
    sum(seconds) FILTER (sm_mean IS NOT NULL) AS sm_seconds,
    max(processes_max) AS processes,
    coalesce(sum(seconds) FILTER (verdict IS NOT NULL AND verdict <> 'unknown'), 0)
        AS diagnosed_seconds,
    coalesce(sum(seconds) FILTER (verdict = '{WAITING_ON_DATA}'), 0) AS waiting_seconds
FROM w GROUP BY host, gpu, i
""",
    "host_interval_parts": f"""
SELECT $b AS b, host, floor(ws / {INTERVAL_SECONDS})::BIGINT AS i,
    max(cpu_max) AS cpu, max(host_memory_max / {GIB}) AS memory
FROM records WHERE status = 'ok' AND folded
GROUP BY ALL HAVING cpu IS NOT NULL OR memory IS NOT NULL
""",
    # a window's seconds and work units are host-wide: once per host and window start
    "host_window_parts": """
SELECT $b AS b, host, ws, any_value(greatest(we - ws, 0.0)) AS seconds, any_value(work) AS work
FROM records WHERE status = 'ok' AND folded AND host_row
GROUP BY host, ws
""",
    # what each GPU ran on: its first window's (as the reference reader's first record)
    "gpu_parts": """
SELECT $b AS b, host, gpu, min(ws) AS first_ws,
    arg_min({'instance_type': instance_type, 'region': region, 'fleet': fleet,
             'lifecycle': lifecycle}, ws) AS first,
    max(ws) FILTER (coalesce(memory_total_bytes, 0) <> 0) AS memory_ws,
    arg_max(memory_total_bytes, ws) FILTER (coalesce(memory_total_bytes, 0) <> 0)
        AS memory_total_bytes
FROM records WHERE status = 'ok' AND folded GROUP BY host, gpu
""",
    # seconds waiting on data per GPU, interval and cause the agent named
    "cause_parts": f"""
WITH named AS (
    SELECT host, gpu, floor(ws / {INTERVAL_SECONDS})::BIGINT AS i,
        greatest(we - ws, 0.0) AS seconds, unnest(string_split(causes, chr(31))) AS cause
    FROM records
    WHERE status = 'ok' AND folded AND verdict = '{WAITING_ON_DATA}' AND causes <> ''
)
SELECT $b AS b, host, gpu, i, cause, fsum(seconds) AS seconds FROM named GROUP BY ALL
""",
    # which GPUs and window starts the batch holds: where another batch's copies could be
    "spans": """
SELECT $b AS b, host, gpu, min(ws) AS first_ws, max(ws) AS last_ws
FROM records WHERE status = 'ok' AND folded GROUP BY host, gpu
""",
    "newest": "SELECT $b AS b, max(we) AS we FROM records WHERE status = 'ok'",
    "problems": """
SELECT $b AS b, filename, status, count(*) AS lines
FROM records WHERE status IN ('bad', 'skip') GROUP BY ALL
""",
}

_ONE_PER_SLOT_SQL = f"""
SELECT count(*) = count(DISTINCT (host, gpu, floor(ws / {INTERVAL_SECONDS})))
FROM records WHERE status = 'ok' AND folded
"""

# `slot_parts` where each GPU and interval has one record: each aggregate over one row
_SINGLE_SLOT_PARTS_SQL = f"""
WITH w AS (
    SELECT *, greatest(we - ws, 0.0) AS seconds, floor(ws / {INTERVAL_SECONDS})::BIGINT AS i,
        util_max IS NOT NULL AND util_mean IS NOT NULL AS with_mean
    FROM records WHERE status = 'ok' AND folded
)
SELECT $b AS b, host, gpu, i,
    util_max AS util_peak,
    CASE WHEN with_mean THEN util_mean * seconds END AS util_weighted,
    CASE WHEN with_mean THEN seconds ELSE 0 END AS util_seconds,
    (util_max IS NOT NULL AND util_mean IS NULL)::BIGINT AS without_mean,
    memory_max / {GIB} AS memory_peak,
    sm_max AS sm_peak,
    CASE WHEN sm_mean IS NOT NULL THEN sm_mean * seconds END AS sm_weighted,
    CASE WHEN sm_mean IS NOT NULL THEN seconds END AS sm_seconds,
    processes_max AS processes,
    CASE WHEN verdict IS NOT NULL AND verdict <> 'unknown' THEN seconds ELSE 0 END
        AS diagnosed_seconds,
    CASE WHEN verdict = '{WAITING_ON_DATA}' THEN seconds ELSE 0 END AS waiting_seconds
FROM w
"""

# The batches' partials merged: `spool._Slot.peak` (mean, observed seconds) per GPU and
# interval, host figures per interval, host windows and what each GPU ran on.
_MERGED_SLOTS_SQL = """
    SELECT host, gpu, i,
        max(util_peak) AS util_peak,
        sum(util_weighted) AS util_weighted,
        sum(util_seconds) AS util_seconds,
        sum(without_mean) AS without_mean,
        max(memory_peak) AS memory_peak,
        max(sm_peak) AS sm_peak,
        sum(sm_weighted) AS sm_weighted,
        sum(sm_seconds) AS sm_seconds,
        max(processes) AS processes,
        sum(diagnosed_seconds) AS diagnosed_seconds,
        sum(waiting_seconds) AS waiting_seconds
    FROM slot_parts GROUP BY host, gpu, i
"""

# `slots`: the merged partials, or the partials themselves where no GPU is in two batches
_INTERVALS_SQL = f"""
SELECT host, gpu, i, util_peak, memory_peak, sm_peak, diagnosed_seconds, waiting_seconds,
    CASE WHEN util_seconds > 0 AND without_mean = 0 THEN util_weighted / util_seconds END
        AS util_mean,
    CASE WHEN sm_seconds <> 0 THEN sm_weighted / sm_seconds END AS sm_mean,
    CASE WHEN least(util_seconds, {INTERVAL_SECONDS}) <> 0
         THEN least(util_seconds, {INTERVAL_SECONDS}) ELSE {INTERVAL_SECONDS} END AS observed,
    coalesce(util_peak, 0) >= {IDLE_UTIL_PERCENT} OR coalesce(processes, 0) >= 1 AS in_use
FROM __SLOTS__ AS slots
"""

_HOST_INTERVALS_SQL = """
SELECT host, i,
    CASE WHEN max(cpu) IS NOT NULL THEN greatest(max(cpu), 0.0) END AS cpu,
    CASE WHEN max(memory) IS NOT NULL THEN greatest(max(memory), 0.0) END AS memory
FROM host_interval_parts GROUP BY host, i
"""

_HOST_WINDOWS_SQL = """
SELECT host, ws, any_value(seconds) AS seconds,
    from_json(any_value(work), '"MAP(VARCHAR, DOUBLE)"') AS work
FROM host_window_parts GROUP BY host, ws
"""

# A number per GPU in (host, GPU) order, so that step 3 can take GPUs a slice at a time.
_GPU_META_SQL = """
WITH merged AS (
    SELECT host, gpu, arg_min(first, first_ws) AS first,
        arg_max(memory_total_bytes, memory_ws) FILTER (memory_total_bytes IS NOT NULL)
            AS memory_total_bytes
    FROM gpu_parts GROUP BY host, gpu
)
SELECT row_number() OVER (ORDER BY host, gpu) AS no, host, gpu,
    first.instance_type AS instance_type, first.region AS region, first.fleet AS fleet,
    first.lifecycle AS lifecycle, memory_total_bytes
FROM merged
"""

INTERVALS_PER_SLICE = 1_000_000
"""Step 3 holds every interval of a slice of GPUs at once (a p95 needs all of them): as
many GPUs as make this many intervals (248 GPUs over 14 days), at least one."""

# Step 3: `usage.summarise` per GPU over the intervals from `$first_interval` on, for the
# GPUs numbered `$low` to `$high`. quantile_disc(x, 0.95) is the nearest-rank p95 (the
# ceil(0.95 n)-th smallest), as `usage.nearest_rank`; the test holds them equal.
_GPUS_SQL = f"""
WITH iv AS (
    SELECT * FROM intervals
    WHERE no BETWEEN $low AND $high AND ($first_interval IS NULL OR i >= $first_interval)
),
hi AS (
    SELECT * FROM host_intervals
    WHERE ($first_interval IS NULL OR i >= $first_interval)
        AND host IN (SELECT host FROM gpus WHERE no BETWEEN $low AND $high)
),
figures AS (
    SELECT host, gpu,
        count(util_peak) AS intervals,
        min(i) FILTER (util_peak IS NOT NULL) AS first_i,
        max(i) FILTER (util_peak IS NOT NULL) AS last_i,
        quantile_disc(util_peak, 0.95) AS util_p95,
        count(*) FILTER (util_peak IS NOT NULL AND util_mean IS NULL) = 0 AS means_known,
        fsum(util_mean * observed) FILTER (util_peak IS NOT NULL AND util_mean IS NOT NULL)
            AS util_weighted,
        fsum(observed) FILTER (util_peak IS NOT NULL AND util_mean IS NOT NULL) AS util_seconds,
        quantile_disc(util_mean, 0.95) FILTER (
            util_peak IS NOT NULL AND util_peak >= {IDLE_UTIL_PERCENT}) AS util_mean_p95,
        max(memory_peak) AS memory_peak,
        quantile_disc(sm_peak, 0.95) AS sm_p95,
        fsum(sm_mean * observed) FILTER (sm_mean IS NOT NULL) AS sm_weighted,
        fsum(observed) FILTER (sm_mean IS NOT NULL) AS sm_seconds,
        list(DISTINCT i // 12) FILTER (util_peak IS NOT NULL AND in_use) AS busy_hours,
        list(DISTINCT i // 12) FILTER (util_peak IS NOT NULL) AS observed_hours,
        fsum(diagnosed_seconds) AS diagnosed_seconds,
        fsum(waiting_seconds) AS waiting_seconds
    FROM iv GROUP BY host, gpu
),
busy_cpu AS (
    SELECT iv.host, iv.gpu, quantile_disc(hi.cpu, 0.95) AS cpu_p95
    FROM iv JOIN hi ON iv.host = hi.host AND iv.i = hi.i
    WHERE iv.util_peak IS NOT NULL AND iv.in_use AND hi.cpu IS NOT NULL
    GROUP BY iv.host, iv.gpu
),
host_figures AS (
    SELECT host, quantile_disc(cpu, 0.95) AS cpu_p95, max(memory) AS memory_peak
    FROM hi GROUP BY host
)
SELECT f.host, f.gpu, m.instance_type, m.region, m.fleet, m.lifecycle,
    m.memory_total_bytes / {GIB} AS memory_total_gib,
    f.first_i * {INTERVAL_SECONDS} AS window_start,
    f.last_i * {INTERVAL_SECONDS} + {INTERVAL_SECONDS} AS window_end,
    f.intervals, f.util_p95,
    CASE WHEN f.means_known AND f.util_seconds > 0 THEN f.util_weighted / f.util_seconds END
        AS util_mean,
    CASE WHEN f.means_known THEN coalesce(f.util_mean_p95, 0.0) END AS util_mean_p95,
    f.memory_peak, f.sm_p95,
    CASE WHEN f.sm_seconds > 0 THEN f.sm_weighted / f.sm_seconds END AS sm_mean,
    f.busy_hours, f.observed_hours, f.diagnosed_seconds, f.waiting_seconds,
    coalesce(b.cpu_p95, h.cpu_p95) AS host_cpu_p95, h.memory_peak AS host_memory_peak
FROM figures f
JOIN gpus m USING (host, gpu)
LEFT JOIN busy_cpu b USING (host, gpu)
LEFT JOIN host_figures h USING (host)
WHERE f.intervals > 0
ORDER BY f.host, f.gpu
"""

# Seconds waiting on data per GPU and cause the agent named, over the intervals from
# `$first_interval` on (a window names each of its causes; `spool._Slot.causes`).
_CAUSES_SQL = """
SELECT host, gpu, cause, fsum(seconds) FROM cause_parts
WHERE $first_interval IS NULL OR i >= $first_interval
GROUP BY host, gpu, cause
"""

# Work per host over the window starts from `$first` on (`spool.read_usage`'s totals).
_WORK_SQL = """
CREATE TEMP TABLE work_units AS
SELECT host, ws, unnest(map_keys(work)) AS unit, unnest(map_values(work)) AS amount
FROM host_windows WHERE work IS NOT NULL AND ($first IS NULL OR ws >= $first)
"""
_HOURS_SQL = """
SELECT host, fsum(seconds) / 3600.0 FROM host_windows
WHERE $first IS NULL OR ws >= $first GROUP BY host
"""
_TOTALS_SQL = """
SELECT host, unit, fsum(amount) FROM work_units WHERE amount IS NOT NULL GROUP BY host, unit
"""
_WORK_HOURS_SQL = """
SELECT host, count(DISTINCT floor(ws / 3600)) FROM work_units WHERE amount > 0 GROUP BY host
"""


def _split(files: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    json_files: list[Path] = []
    parquet_files: list[Path] = []
    for file in dict.fromkeys(files):  # a file given twice is read once
        (parquet_files if file.suffix == ".parquet" else json_files).append(file)
    return json_files, parquet_files


def _torn_tail(path: Path) -> tuple[str, int] | None:
    """(text, line number) of a last line with no newline (its writer was killed), or None."""
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return None
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return None
        end = size
        while True:  # back to the last newline
            start = max(0, end - 65536)
            handle.seek(start)
            chunk = handle.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0 or start == 0:
                tail_start = start + newline + 1
                break
            end = start
        handle.seek(0)
        lines = 1
        while block := handle.read(1 << 24):  # the tail's line number, for DuckDB's rejects
            lines += block.count(b"\n")
        handle.seek(tail_start)
        return handle.read().decode("utf-8", "replace"), lines


def threads_for(memory_limit_mb: int) -> int:
    """DuckDB's threads: each needs its own buffers and hash tables (about 128 MB to stay
    within the limit while grouping millions of records), never more than the cores."""
    return max(1, min(os.cpu_count() or 1, memory_limit_mb // 128))


def _connect(folder: Path, memory_limit_mb: int, threads: int | None) -> Any:
    import duckdb

    # in memory: tables beyond the limit are evicted to the spill folder like any other data
    con = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": f"{memory_limit_mb}MB",
            "temp_directory": str(folder / "spill"),
            "preserve_insertion_order": False,
            "threads": threads or threads_for(memory_limit_mb),
        },
    )
    # progress is read by `_run` (query_progress) and shown by the caller, never printed
    # by DuckDB on stdout (where it would corrupt `--format json`)
    con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false")
    return con


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _share_of(progress: Progress, before: float, share: float) -> Progress:
    """`progress` told of a part that is `share` of the whole, after `before` was done."""
    return lambda part: progress(before + part * share)


def _run(con: Any, sql: str, params: dict[str, Any], progress: Progress | None) -> None:
    """Execute `sql`, telling `progress` DuckDB's share done every 0.2 s."""
    if progress is None:
        con.execute(sql, params)
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            share = con.query_progress()
            if share >= 0:
                progress(share / 100.0)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        con.execute(sql, params)
    finally:
        done.set()
        watcher.join()
    progress(1.0)


def read_usage(
    paths: Iterable[Path],
    *,
    lookback_days: float | None = None,
    end: float | None = None,
    progress: Progress | None = None,
    memory_limit_mb: int = MEMORY_LIMIT_MB,
    threads: int | None = None,
) -> list[GpuUsage]:
    """One `GpuUsage` per (host, GPU) in the agent's files: `spool.read_usage`'s result, in
    memory bounded by `memory_limit_mb` (DuckDB) plus a few MB per thousand GPUs.

    `end` (unix seconds; default the newest window's end) and `lookback_days` (default: all)
    bound the window. `progress` is told the share of the files scanned.
    """
    import duckdb

    # a file given twice is read once
    files = list(dict.fromkeys(file for path in paths for file in record_files(Path(path))))
    json_files, _ = _split(files)
    tails = {path: tail for path in json_files if (tail := _torn_tail(path)) is not None}
    attempts = [threads or threads_for(memory_limit_mb)]
    if attempts[0] > 1:
        attempts.append(1)
    for attempt, thread_count in enumerate(attempts, start=1):
        with tempfile.TemporaryDirectory(prefix="finops-rightsize-") as folder:
            con = _connect(Path(folder), memory_limit_mb, thread_count)
            try:
                return _read(
                    con,
                    files,
                    tails,
                    lookback_days=lookback_days,
                    end=end,
                    progress=progress,
                )
            except duckdb.OutOfMemoryException:
                # each thread keeps its own buffers and hash tables: one thread needs least
                if attempt < len(attempts):
                    continue
                raise SourceError(
                    f"agent files: more than {memory_limit_mb} MB needed even with one "
                    "thread: give more with --memory-mb"
                ) from None
            except duckdb.Error as exc:
                text = str(exc).strip()
                named = re.search(r"^\s*file = (.+)$", text, re.M)
                if named and Path(named.group(1)).is_file():
                    # say which line, as the reference reader would, reading that file only
                    check_files([Path(named.group(1))], end=end)
                first = text.splitlines()[0] if text else type(exc).__name__
                where = named.group(1) if named else "agent files"
                raise SourceError(f"{where}: cannot read it: {first}") from None
            finally:
                con.close()
    raise AssertionError("unreachable")


BATCH_BYTES = 64 * 1024 * 1024
"""Folders are read together up to this many bytes of files (a larger folder alone): few
enough statements for small hosts' files, bounded memory for large ones."""


def _batches(files: Sequence[Path], max_bytes: int) -> list[list[Path]]:
    """The files grouped by folder, in order, and folders into batches of up to `max_bytes`:
    a host's export and spool files are one folder, so one batch holds the copies its
    at-least-once delivery can make."""
    folders: dict[Path, list[Path]] = {}
    for file in files:
        folders.setdefault(file.parent, []).append(file)
    batches: list[list[Path]] = []
    size = 0
    for folder_files in folders.values():
        folder_size = sum(_size(f) for f in folder_files)
        if not batches or size + folder_size > max_bytes:
            batches.append([])
            size = 0
        batches[-1] += folder_files
        size += folder_size
    return batches


def _fold_batch(
    con: Any,
    number: int,
    files: Sequence[Path],
    torn: bool,
    end: float | None,
    progress: Progress | None,
) -> None:
    """Steps 1 and 2 for one batch of files: its distinct records, folded into the partial
    tables tagged `number` (each created by the first batch)."""
    json_files, parquet_files = _split(files)
    params: dict[str, Any] = {"end": end}
    if json_files:
        params["json_files"] = [str(p) for p in json_files]
    if parquet_files:
        params["parquet_files"] = [str(p) for p in parquet_files]
    lines = _lines_sql(json_files, parquet_files)
    if torn:
        lines = (
            f"SELECT l.filename, l.line FROM ({lines}) l "
            "ANTI JOIN torn t ON l.filename = t.filename AND l.line = t.line"
        )
    last_scan = -1  # DuckDB's CSV reader keeps the lines it refused, every scan's
    with contextlib.suppress(Exception):  # no such table before the first JSON scan
        last_scan = con.execute("SELECT coalesce(max(scan_id), -1) FROM reject_scans").fetchone()[0]
    con.execute("DROP TABLE IF EXISTS records")
    _run(con, f"CREATE TEMP TABLE lines_read AS {_records_sql(lines)}", params, progress)
    if con.execute(_COPIES_SQL).fetchone()[0]:
        con.execute(f"CREATE TEMP TABLE records AS {_DEDUPLICATED_SQL}")
        con.execute("DROP TABLE lines_read")
    else:
        con.execute("ALTER TABLE lines_read RENAME TO records")
    parts = dict(_PARTS_SQL)
    if con.execute(_ONE_PER_SLOT_SQL).fetchone()[0]:
        parts["slot_parts"] = _SINGLE_SLOT_PARTS_SQL  # 5-minute windows, rolled-up summaries
    for table, sql in parts.items():
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM ({sql}) LIMIT 0", {"b": number}
        )
        con.execute(f"INSERT INTO {table} BY NAME {sql}", {"b": number})
    con.execute("DROP TABLE records")
    if json_files:
        con.execute(
            "CREATE TABLE IF NOT EXISTS rejects "
            "(b BIGINT, scan_id BIGINT, file VARCHAR, line BIGINT, error VARCHAR)"
        )
        con.execute(
            "INSERT INTO rejects SELECT $b, e.scan_id, f.file_path, e.line, e.error_type "
            "FROM reject_errors e JOIN reject_scans f "
            "ON e.scan_id = f.scan_id AND e.file_id = f.file_id "
            "WHERE e.scan_id > $last",
            {"b": number, "last": last_scan},
        )


def _overlapping(con: Any) -> list[set[int]]:
    """Groups of batches that hold windows of one GPU over overlapping time (the same
    host's files in two folders: a spool read beside its export): a record can be in two of
    them, and only a batch holding both copies counts it once."""
    parent: dict[int, int] = {}

    def root(b: int) -> int:
        while parent.setdefault(b, b) != b:
            b = parent[b]
        return b

    for a, b in con.execute(
        "SELECT DISTINCT x.b, y.b FROM spans x JOIN spans y ON x.host = y.host AND "
        "x.gpu = y.gpu AND x.b < y.b AND x.first_ws <= y.last_ws AND y.first_ws <= x.last_ws"
    ).fetchall():
        parent[root(b)] = root(a)
    groups: dict[int, set[int]] = {}
    for b in parent:
        groups.setdefault(root(b), set()).add(b)
    return [group for group in groups.values() if len(group) > 1]


def _read(
    con: Any,
    files: list[Path],
    tails: dict[Path, tuple[str, int]],
    *,
    lookback_days: float | None,
    end: float | None,
    progress: Progress | None,
) -> list[GpuUsage]:
    if tails:
        con.execute("CREATE TEMP TABLE torn (filename VARCHAR, line VARCHAR)")
        con.executemany(
            "INSERT INTO torn VALUES (?, ?)", [(str(p), text) for p, (text, _) in tails.items()]
        )
    batches = _batches(files, BATCH_BYTES)
    sizes = [sum(_size(f) for f in batch) for batch in batches]
    total = max(1, sum(sizes))
    done = 0
    for number, (batch, size) in enumerate(zip(batches, sizes, strict=True)):
        told = None
        if progress is not None:
            told = _share_of(progress, done / total, size / total)
        _fold_batch(con, number, batch, bool(tails), end, told)
        done += size
    for group in _overlapping(con):  # rare: read those batches again, as one
        number += 1
        tagged = ", ".join(str(b) for b in sorted(group))
        for table in (*_PARTS_SQL, "rejects"):
            with contextlib.suppress(Exception):  # no rejects table without JSON files
                con.execute(f"DELETE FROM {table} WHERE b IN ({tagged})")
        merged = [file for b in sorted(group) for file in batches[b]]
        _fold_batch(con, number, merged, bool(tails), end, None)
    if progress is not None:
        progress(1.0)
    order = {str(p): n for n, p in enumerate(files)}
    _refuse_bad_records(con, order, end)
    _warn_skipped(con, order, tails)
    newest = con.execute("SELECT max(we) FROM newest").fetchone()[0]
    if newest is None:
        return []
    window_end = end if end is not None else float(newest)
    first = window_end - lookback_days * 86400.0 if lookback_days else None
    first_interval = None if first is None else first / INTERVAL_SECONDS
    con.execute(f"CREATE TABLE gpus AS {_GPU_META_SQL}")
    split = con.execute(
        "SELECT count(*) FROM (SELECT host, gpu FROM spans GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()[0]
    slots = f"({_MERGED_SLOTS_SQL})" if split else "(SELECT * EXCLUDE (b) FROM slot_parts)"
    intervals = _INTERVALS_SQL.replace("__SLOTS__", slots)
    # stored in GPU order, so that a slice reads its own row groups; unmerged, the batches'
    # partials are near that order already (folders in name order, a host's rows together)
    in_gpu_order = "ORDER BY g.no" if split else ""
    con.execute(
        f"CREATE TABLE intervals AS SELECT g.no, s.* FROM ({intervals}) s "
        f"JOIN gpus g USING (host, gpu) {in_gpu_order}"
    )
    con.execute(f"CREATE TABLE host_intervals AS {_HOST_INTERVALS_SQL}")
    con.execute(f"CREATE TABLE host_windows AS {_HOST_WINDOWS_SQL}")
    hours = dict(con.execute(_HOURS_SQL, {"first": first}).fetchall())
    con.execute(_WORK_SQL, {"first": first})
    totals: dict[str, dict[str, float]] = {}
    for host, unit, total in con.execute(_TOTALS_SQL).fetchall():
        totals.setdefault(host, {})[unit] = total
    work_hours = dict(con.execute(_WORK_HOURS_SQL).fetchall())
    usages = []
    causes: dict[tuple[str, int], dict[str, float]] = {}
    for host, gpu, cause, seconds in con.execute(
        _CAUSES_SQL, {"first_interval": first_interval}
    ).fetchall():
        causes.setdefault((host, gpu), {})[cause] = seconds
    count, longest = con.execute(
        "SELECT (SELECT count(*) FROM gpus), (SELECT max(n) FROM "
        "(SELECT count(*) AS n FROM intervals GROUP BY no))"
    ).fetchone()
    per_slice = max(1, INTERVALS_PER_SLICE // max(1, longest or 1))
    rows = (
        row
        for low in range(1, count + 1, per_slice)
        for row in _rows(
            con.execute(
                _GPUS_SQL,
                {"first_interval": first_interval, "low": low, "high": low + per_slice - 1},
            )
        )
    )
    for row in rows:
        host_hours = hours.get(row["host"]) or 0.0
        usages.append(
            GpuUsage(
                host=row["host"],
                gpu_index=int(row["gpu"]),
                instance_type=row["instance_type"],
                region=row["region"],
                fleet=row["fleet"],
                window_start=float(row["window_start"]),
                window_end=float(row["window_end"]),
                intervals=int(row["intervals"]),
                util_p95_percent=row["util_p95"],
                util_mean_percent=row["util_mean"],
                util_mean_p95_percent=row["util_mean_p95"],
                memory_peak_gib=row["memory_peak"],
                memory_total_gib=row["memory_total_gib"],
                sm_active_p95=row["sm_p95"],
                sm_active_mean=row["sm_mean"],
                busy_hours=frozenset(int(h) for h in row["busy_hours"] or ()),
                observed_hours=frozenset(int(h) for h in row["observed_hours"] or ()),
                work_per_hour={
                    unit: total / host_hours for unit, total in totals.get(row["host"], {}).items()
                }
                if host_hours
                else {},
                work_hours=int(work_hours.get(row["host"], 0)),
                lifecycle=row["lifecycle"],
                source="agent files",
                host_cpu_p95_percent=row["host_cpu_p95"],
                host_memory_peak_gib=row["host_memory_peak"],
                diagnosed_seconds=float(row["diagnosed_seconds"] or 0.0),
                waiting_on_data_seconds=float(row["waiting_seconds"] or 0.0),
                waiting_causes=causes.get((row["host"], row["gpu"]), {}),
            )
        )
    return usages


def _rows(cursor: Any) -> Iterator[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    while batch := cursor.fetchmany(1000):
        for values in batch:
            yield dict(zip(names, values, strict=True))


def _refuse_bad_records(con: Any, order: dict[str, int], end: float | None) -> None:
    """A JSON object that is not a window record stops the read: the reference reader reads
    the first file holding one and raises its one-line error."""
    files = [
        f
        for (f,) in con.execute(
            "SELECT DISTINCT filename FROM problems WHERE status = 'bad'"
        ).fetchall()
    ]
    if not files:
        return
    first = min(files, key=lambda f: order.get(f, math.inf))
    check_files([Path(first)], end=end)
    raise SourceError(f"{first}: a JSON object that is not a readable agent window record")


def _warn_skipped(con: Any, order: dict[str, int], tails: dict[Path, tuple[str, int]]) -> None:
    """Lines that are not JSON objects, not UTF-8 or over 1 MB are skipped and counted: one
    warning naming the first, as the reference reader words it."""
    skipped = con.execute(
        "SELECT filename, sum(lines) FROM problems WHERE status = 'skip' GROUP BY filename"
    ).fetchall()
    counts = {f: n for f, n in skipped}
    rejected: dict[str, str] = {}  # file -> its first line DuckDB's CSV reader refused
    torn_lines = {str(p): line for p, (_, line) in tails.items()}
    with contextlib.suppress(Exception):  # no rejects table when no JSON file was read
        for file, line, error in con.execute(
            "SELECT file, line, error FROM rejects ORDER BY line"
        ).fetchall():
            if torn_lines.get(file) != line:  # a torn tail is not a skipped line
                counts[file] = counts.get(file, 0) + 1
                rejected.setdefault(file, f"{file}:{line}: {str(error).lower().replace('_', ' ')}")
    total = sum(counts.values())
    if not total:
        return
    first_file = min(counts, key=lambda f: order.get(f, math.inf))
    first = check_files([Path(first_file)], first_skip=True) or rejected.get(
        first_file, f"{first_file}: unreadable line"
    )
    warnings.warn(
        f"{total} unreadable line(s) skipped in the agent's files, first: {first}",
        SkippedLinesWarning,
        stacklevel=4,
    )
