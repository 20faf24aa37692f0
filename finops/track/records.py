"""Read the agent's window records for one run: the time span, the hosts.

The records come from `aifinops.agentfiles`, the one reader of the agent's files (standard
library only, so `aifinops.track` works in a training environment that has neither the Pulumi
SDKs nor the agent installed): deduplicated on `record_id` (delivery is at least once), an
unterminated last line skipped (the writer was killed mid-line), a line that is not a JSON
object skipped and said, a file that is not window records refused, unknown fields ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aifinops.agentfiles import SourceError, iter_records

DEFAULT_EXPORT = Path("/var/lib/finops-agent/windows.jsonl")
RecordsError = SourceError
"""The agent files cannot be read: names the file and what to give instead."""

__all__ = ["DEFAULT_EXPORT", "RecordsError", "Window", "host_of", "read_run_records"]


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
    for _, record in iter_records(paths, found.skipped):
        window_start, window_end = float(record["window_start"]), float(record["window_end"])
        found.newest_end = max(found.newest_end or window_end, window_end)
        if window_end <= start or window_start >= end:
            continue
        if wanted and host_of(record) not in wanted and record.get("hostname") not in wanted:
            continue
        found.records.append(record)
    return found


def host_of(record: dict[str, Any]) -> str:
    """What tells a record's host apart: the instance id, else the hostname."""
    instance = str(record.get("instance_id") or "unknown")
    return instance if instance != "unknown" else str(record.get("hostname") or "unknown")
