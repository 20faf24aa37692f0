"""The agent's window-record files (agents/SPOOL_FORMAT.md): which files, and their records.

The one line reader of those files, standard library only, for every reader in finops:
rightsizing's reference reader (`aifinops.rightsizing.spool`), the streaming reader's file
list and diagnosis (`aifinops.rightsizing.stream`), commitments, the idle-GPU report's file
list and `aifinops.track` (which must import in a training environment without the Pulumi
SDKs). Records are deduplicated on `record_id` (delivery is at least once), an
unterminated last line is skipped (the writer was killed mid-line), a line that is not a
JSON object is skipped and said (`skipped`), and unknown fields are ignored. A JSON object
that is not a window record (a `finops-agent --record` trace, the spool's `state.json`,
another schema version) stops the read with one line naming the file, the line and what
to give instead.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from aifinops.errors import FinopsError


class SourceError(FinopsError):
    """A metrics source could not be read: names the source, what failed and what to do."""


class SkippedLinesWarning(UserWarning):
    """Some lines of the agent's files could not be read and were skipped."""


SCHEMA_VERSION = 1
REQUIRED = ("window_start", "window_end", "gpu_index", "instance_type", "sample_count")
ROLLED_UP_VERSION = 2
"""A rolled-up line (agents/SPOOL_FORMAT.md): a host's GPU summaries over the same seconds."""
KNOWN_VERSIONS = (SCHEMA_VERSION, ROLLED_UP_VERSION)
ROLLED_UP_REQUIRED = ("window_start", "window_end", "instance_type", "gpus")
GPU_COLUMNS = (
    "gpu_index",
    "sample_count",
    "memory_total_bytes",
    "gpu_util_percent_max",
    "gpu_util_percent_mean",
    "sm_active_ratio_max",
    "sm_active_ratio_mean",
    "memory_used_bytes_max",
    "process_count_max",
)
"""The numbers of a GPU's summary in a rolled-up line, in order (as agents/rollup.py writes)."""
HOST_FIELDS = ("cloud", "instance_id", "instance_type", "region", "lifecycle", "hostname", "tags")


AGENT_FILE_NAMES = ("windows.jsonl.1", "windows.jsonl")
"""The export file after and before rotation, oldest first."""
SEGMENT_GLOB = "seg-*.jsonl"
PARQUET_GLOB = "*.parquet"
"""Window records in Parquet (the same field names; read by `stream` only)."""


def _files_in(folder: Path) -> list[Path]:
    files = [folder / name for name in AGENT_FILE_NAMES if (folder / name).is_file()]
    files += sorted(folder.glob(SEGMENT_GLOB))
    files += sorted(folder.glob(PARQUET_GLOB))
    return files


def record_files(path: Path) -> list[Path]:
    """The files to read for `path`, oldest first: a file as is; a folder's `windows.jsonl.1`,
    `windows.jsonl`, `seg-*.jsonl` segments and `*.parquet` files, or, when it holds none,
    those of every folder below it (a fleet's files collected one folder per host); a glob
    pattern (`fleet/*/windows.jsonl`) its matches."""
    if any(char in str(path) for char in "*?["):
        matches = sorted(Path(match) for match in glob.glob(str(path), recursive=True))
        if not matches:
            raise SourceError(f"{path}: the pattern matches no file")
        return [file for match in matches for file in record_files(match)]
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SourceError(f"{path}: no such file or folder (give an export file or a spool dir)")
    files = _files_in(path)
    if not files:
        folders = sorted(p for p in path.rglob("*") if p.is_dir())
        files = [file for folder in folders for file in _files_in(folder)]
    if not files:
        raise SourceError(
            f"{path}: no windows.jsonl, seg-*.jsonl or *.parquet files in the folder or below it"
        )
    return files


def _not_a_window_record(where: str, record: Any) -> SourceError:
    what = "give the agent's export file ([export] path) or its spool folder"
    if isinstance(record, dict) and "timestamp" in record and "window_start" not in record:
        return SourceError(
            f"{where}: a `finops-agent --record` trace (GPU readings with no host or instance "
            f"type), not window records: {what}"
        )
    version = record.get("schema_version") if isinstance(record, dict) else None
    if isinstance(record, dict) and "schema_version" in record and version not in KNOWN_VERSIONS:
        return SourceError(
            f"{where}: window record schema_version {version!r}; this finops reads "
            f"{SCHEMA_VERSION} (windows) and {ROLLED_UP_VERSION} (rolled up): upgrade "
            "finops to read it"
        )
    if isinstance(record, dict):
        wanted = ROLLED_UP_REQUIRED if version == ROLLED_UP_VERSION else REQUIRED
        missing = [key for key in wanted if key not in record]
        return SourceError(
            f"{where}: not an agent window record (no {', '.join(missing) or 'schema_version'}): "
            f"{what}"
        )
    return SourceError(
        f"{where}: not an agent window record (a JSON {type(record).__name__}): {what}"
    )


def host_of(record: dict[str, Any]) -> str:
    """The host a record comes from: its instance id, or its hostname where the agent had
    no metadata (instance id `unknown`, which every such host shares)."""
    instance_id = record.get("instance_id")
    if instance_id and instance_id != "unknown":
        return str(instance_id)
    return str(record.get("hostname"))


def _stats(peak: Any, mean: Any = None) -> dict[str, Any] | None:
    if peak is None:
        return None
    return {"max": peak} if mean is None else {"max": peak, "mean": mean}


def gpu_summaries(where: str, line: dict[str, Any]) -> list[dict[str, Any]]:
    """A rolled-up line (`schema_version` 2) as one rolled-up record per GPU, with the
    fields and units of a window record (agents/SPOOL_FORMAT.md); its `record_id` is the
    host's, the GPU's and the start's: a summary written twice is counted once."""
    gpus = line["gpus"]
    span = (line["window_start"], line["window_end"])
    if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in span):
        raise SourceError(
            f"{where}: a rolled-up line whose window_start or window_end is no number"
        )
    if not isinstance(gpus, list) or not all(
        isinstance(gpu, list)
        and len(gpu) == len(GPU_COLUMNS)
        and isinstance(gpu[0], int | float)
        and not isinstance(gpu[0], bool)
        for gpu in gpus
    ):
        raise SourceError(
            f"{where}: a rolled-up line whose `gpus` are not arrays of the "
            f"{len(GPU_COLUMNS)} numbers ({', '.join(GPU_COLUMNS)}) agents/SPOOL_FORMAT.md names"
        )
    host = {key: line.get(key) for key in HOST_FIELDS}
    start = line["window_start"]
    records = []
    for values in gpus:
        gpu = dict(zip(GPU_COLUMNS, values, strict=True))
        index = int(gpu["gpu_index"])
        record: dict[str, Any] = {
            "schema_version": ROLLED_UP_VERSION,
            "record_id": f"{host_of(line)}/{index}/{float(start):.3f}+rolled",  # record_key
            "rollup_seconds": line.get("rollup_seconds"),
            "window_start": start,
            "window_end": line["window_end"],
            **host,
            "gpu_index": index,
            "windows": line.get("windows"),
            "sample_count": gpu["sample_count"],
            "memory_total_bytes": gpu["memory_total_bytes"],
            "gpu_util_percent": _stats(gpu["gpu_util_percent_max"], gpu["gpu_util_percent_mean"]),
            "sm_active_ratio": _stats(gpu["sm_active_ratio_max"], gpu["sm_active_ratio_mean"]),
            "memory_used_bytes": _stats(gpu["memory_used_bytes_max"]),
            "process_count": _stats(gpu["process_count_max"]),
            "work_units": line.get("work_units") or {},
            "input_verdict": line.get("input_verdict"),
            "input_causes": line.get("input_causes") or [],
        }
        for name in ("host_cpu_util_percent", "host_memory_used_bytes"):
            if line.get(f"{name}_max") is not None:
                record[name] = {"max": line[f"{name}_max"]}
        records.append(record)
    return records


def record_key(record: dict[str, Any], where: str) -> str:
    """What tells copies of a record apart: its `record_id`; for a rolled-up GPU summary of
    either version (agents/SPOOL_FORMAT.md) its host, GPU index and start, so that a summary
    written again after a crash or an agent upgrade is counted once."""
    if "rollup_seconds" in record or record.get("schema_version") == ROLLED_UP_VERSION:
        try:
            index, start = int(record["gpu_index"]), float(record["window_start"])
        except (KeyError, TypeError, ValueError):
            return str(record.get("record_id", where))
        return f"{host_of(record)}/{index}/{start:.3f}+rolled"
    return str(record.get("record_id", where))


def iter_records(
    paths: Iterable[Path], skipped: list[str] | None = None, *, dedupe: bool = True
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(file:line, record) for every complete, distinct window record in `paths`.

    A line that is not a JSON object (a disk error, a torn write) is skipped, never fatal:
    its `path:line: reason` is appended to `skipped` when given. A JSON object that is not a
    window record stops the read with one line (the wrong file was given). `dedupe=False`
    yields repeated records too (and keeps no record ids).
    """
    seen: set[str] = set()
    for given in paths:
        for path in record_files(given):
            if path.suffix == ".parquet":
                raise SourceError(
                    f"{path}: Parquet is read by the streaming reader (finops rightsize "
                    "--source agent:PATH), not this one"
                )
            try:
                handle = path.open("rb")
            except OSError as exc:
                raise SourceError(f"{path}: cannot read: {exc.strerror}") from None
            with handle:
                number = 0
                for raw in handle:
                    number += 1
                    if not raw.endswith(b"\n"):
                        break  # unterminated: the writer was killed mid-line
                    if not raw.strip():
                        continue
                    where = f"{path}:{number}"
                    try:
                        record = json.loads(raw.decode("utf-8"))
                    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                        if skipped is not None:
                            skipped.append(f"{where}: not a JSON window record: {exc}")
                        continue
                    if not isinstance(record, dict):
                        if skipped is not None:
                            skipped.append(f"{where}: not a JSON object")
                        continue
                    if record.get("schema_version") == ROLLED_UP_VERSION and all(
                        key in record for key in ROLLED_UP_REQUIRED
                    ):
                        records = gpu_summaries(where, record)
                    elif record.get("schema_version") != SCHEMA_VERSION or any(
                        key not in record for key in REQUIRED
                    ):
                        raise _not_a_window_record(where, record)
                    else:
                        records = [record]
                    for one in records:
                        if dedupe:
                            record_id = record_key(one, where)
                            if record_id in seen:
                                continue
                            seen.add(record_id)
                        yield where, one
