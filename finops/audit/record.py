"""The JSON record of what `finops audit --apply` did, which `--undo` reads and updates.

The file is rewritten atomically (temporary file, fsync, rename) before each action starts
and after it ends, so a crash or Ctrl-C leaves a record that names every action begun: an
action still `started` is one whose outcome is unknown, never a silent gap.

    {"schema_version": 1, "tool": "finops audit", "account": "123456789012",
     "created_at": "...", "actions": [{"id": 1, "action": "stop-instance", "region": ...,
     "resource_id": ..., "status": "done", "params": {...}, "undo": {...},
     "reversible": true, "error": null, "undo_status": null, ...}]}
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from aifinops.errors import FinopsError

SCHEMA_VERSION = 1
# action statuses
STARTED, DONE, PARTIAL, FAILED, DECLINED = "started", "done", "partial", "failed", "declined"


class AuditError(FinopsError):
    """A bad option, record file or confirmation state for `finops audit`."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Record:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def create(cls, path: Path, account: str, regions: list[str]) -> Record:
        if path.exists():
            raise AuditError(f"{path}: record file exists; give another --record path")
        record = cls(
            path,
            {
                "schema_version": SCHEMA_VERSION,
                "tool": "finops audit",
                "account": account,
                "regions": regions,
                "created_at": _now(),
                "actions": [],
            },
        )
        record.save()
        return record

    @classmethod
    def load(cls, path: Path) -> Record:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AuditError(f"{path}: no such record file") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise AuditError(f"{path}: not a finops audit record ({exc})") from None
        if not isinstance(data, dict) or data.get("tool") != "finops audit":
            raise AuditError(f'{path}: not a finops audit record (no "tool": "finops audit")')
        if data.get("schema_version") != SCHEMA_VERSION:
            raise AuditError(
                f"{path}: schema_version {data.get('schema_version')!r}; this finops reads {SCHEMA_VERSION}"
            )
        return cls(path, data)

    @property
    def actions(self) -> list[dict[str, Any]]:
        actions: list[dict[str, Any]] = self.data["actions"]
        return actions

    def add(
        self,
        action: str,
        region: str,
        resource_id: str,
        params: dict[str, Any],
        reversible: bool,
        saving_usd_per_month: float | None,
        status: str = STARTED,
    ) -> dict[str, Any]:
        entry = {
            "id": len(self.actions) + 1,
            "action": action,
            "region": region,
            "resource_id": resource_id,
            "status": status,
            "params": params,
            "undo": {},
            "reversible": reversible,
            "saving_usd_per_month": saving_usd_per_month,
            "error": None,
            "started_at": _now(),
            "finished_at": None,
            "undo_status": None,
            "undo_error": None,
        }
        self.actions.append(entry)
        self.save()
        return entry

    def finish(self, entry: dict[str, Any], status: str, error: str | None = None) -> None:
        entry["status"] = status
        entry["error"] = error
        entry["finished_at"] = _now()
        self.save()

    def save(self) -> None:
        """Write the whole record atomically next to its final path."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.data, handle, indent=1, default=str)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
