"""Read the agent's window records for one run: the files, the time span, the hosts.

Standard library only (agents/SPOOL_FORMAT.md is the contract), so `finops.track` works in a
training environment that has neither the Pulumi SDKs nor the agent installed. As every
reader of those files: records are deduplicated on `record_id` (delivery is at least once),
an unterminated last line is skipped (the writer was killed mid-line), a line that is not a
JSON object is skipped and counted, and unknown fields are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finops.errors import FinopsError

SCHEMA_VERSION = 1
DEFAULT_EXPORT = Path("/var/lib/finops-agent/windows.jsonl")


class RecordsError(FinopsError):
    """The agent files cannot be read: names the file and what to give instead."""


def record_files(path: Path) -> list[Path]:
    """The files to read for `path`: a file as is; a folder's `windows.jsonl.1`,
    `windows.jsonl` (the export file and its predecessor) and `seg-*.jsonl` (a spool)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise RecordsError(
            f"{path}: no such file or folder (give the agent's export file, [export] path, "
            "or its spool folder)"
        )
    files = [p for p in (path / "windows.jsonl.1", path / "windows.jsonl") if p.is_file()]
    files += sorted(path.glob("seg-*.jsonl"))
    return files


@dataclass
class Window:
    """The records of one run's span, read from the agent's files."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """`file:line: why` of each line that could not be read."""
    newest_end: float | None = None
    """The latest `window_end` in the files (whatever its host): how far the agent got."""


def read_run_records(
    paths: Sequence[Path],
    start: float,
    end: float,
    *,
    hosts: Iterable[str] = (),
) -> Window:
    """Window records of `paths` that overlap [start, end) (unix seconds), of the given hosts
    (instance ids or hostnames; all when empty)."""
    wanted = set(hosts)
    found = Window()
    seen: set[str] = set()
    for given in paths:
        for path in record_files(given):
            _read_file(path, start, end, wanted, seen, found)
    return found


def _read_file(
    path: Path, start: float, end: float, hosts: set[str], seen: set[str], found: Window
) -> None:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise RecordsError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                break  # unterminated: the writer was killed mid-line
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                found.skipped.append(f"{path}:{number}: not a JSON window record: {exc}")
                continue
            if not isinstance(record, dict):
                found.skipped.append(f"{path}:{number}: not a JSON object")
                continue
            if record.get("schema_version") != SCHEMA_VERSION or "window_start" not in record:
                raise RecordsError(
                    f"{path}:{number}: not an agent window record of schema_version "
                    f"{SCHEMA_VERSION}: give the agent's export file ([export] path) or its "
                    "spool folder"
                )
            record_id = str(record.get("record_id") or f"{path}:{number}")
            if record_id in seen:
                continue
            seen.add(record_id)
            window_start, window_end = float(record["window_start"]), float(record["window_end"])
            found.newest_end = max(found.newest_end or window_end, window_end)
            if window_end <= start or window_start >= end:
                continue
            if hosts and host_of(record) not in hosts and record.get("hostname") not in hosts:
                continue
            found.records.append(record)


def host_of(record: dict[str, Any]) -> str:
    """What tells a record's host apart: the instance id, else the hostname."""
    instance = str(record.get("instance_id") or "unknown")
    return instance if instance != "unknown" else str(record.get("hostname") or "unknown")
