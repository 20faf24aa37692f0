"""Bounded on-disk store-and-forward queue of window records (layout: SPOOL_FORMAT.md).

Every record is appended (and fsynced) here before any sink sees it. Each sink (CloudWatch,
the export file) has its own cursor, saved atomically after each delivery, so an outage,
a `kill -9` or a reboot loses nothing that reached the spool: delivery resumes from the
cursor (at least once). When the spool outgrows its bound, whole segments go oldest first
and the records some sink had not delivered are counted as dropped.

A full disk (or any write error) is not fatal: the records that could not be written are
counted (`unspooled_records_total`) and the next append simply tries again, so the agent
keeps sampling and serving `/metrics` and recovers by itself when space returns. A cursor
or state file that cannot be saved stays correct in memory (`save_failures_total`); after a
restart that only means a batch delivered twice, never one lost.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger("finops_agent.spool")

_SEGMENT = re.compile(r"^seg-(\d{20})\.jsonl$")


@dataclass(frozen=True, order=True)
class Position:
    """A place in the spool: segment sequence number and byte offset in it."""

    segment: int
    offset: int


class Batch(NamedTuple):
    """What `Spool.read` hands a sink: decoded lines, where they end, and lines skipped."""

    lines: list[str]
    position: Position
    undecodable: int  # lines that were not UTF-8 (a disk error): skipped, never delivered


@dataclass
class _Segment:
    seq: int
    path: Path
    line_ends: list[int]  # byte offset just past each complete line

    @property
    def size(self) -> int:
        return self.line_ends[-1] if self.line_ends else 0

    def records_from(self, offset: int) -> int:
        return sum(1 for end in self.line_ends if end > offset)


class Spool:
    """The queue. Thread-safe: the sampler appends while shipper threads read and ack."""

    def __init__(
        self,
        directory: str | Path,
        *,
        max_bytes: int,
        segment_bytes: int,
        sinks: list[str],
        fsync: bool = True,
    ) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.sinks = list(sinks)
        self.fsync = fsync
        self.unspooled_records_total = 0  # records a failed write kept out of the spool
        self.save_failures_total = 0  # cursor/state saves that failed (kept in memory)
        self._write_failing = False
        self._lock = threading.Lock()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._segments: list[_Segment] = self._open_segments()
        self._cursors = {sink: self._load_cursor(sink) for sink in self.sinks}
        self._state = self._load_state()
        self._collect_garbage()

    # -- writing ---------------------------------------------------------------------------
    def append(self, lines: list[str]) -> bool:
        """Append complete JSON lines (each ending in a newline) durably, then enforce the bound.

        Returns False when the disk refused them (full, I/O error): they are counted in
        `unspooled_records_total` and the segment is left as it was.
        """
        if not lines:
            return True
        if any(not line.endswith("\n") or "\n" in line[:-1] for line in lines):
            raise ValueError("spool lines must be single lines ending in a newline")
        data = "".join(lines).encode("utf-8")
        with self._lock:
            try:
                active = self._segments[-1] if self._segments else None
                if active is None or (active.size and active.size + len(data) > self.segment_bytes):
                    active = self._new_segment()
                self._write_segment(active, data)
            except OSError as exc:
                self._write_refused(len(lines), exc)
                return False
            if self._write_failing:
                self._write_failing = False
                log.warning(
                    "spool writable again",
                    extra={"unspooled_records_total": self.unspooled_records_total},
                )
            offset = active.size
            for line in lines:
                offset += len(line.encode("utf-8"))
                active.line_ends.append(offset)
            self._enforce_bound()
            return True

    def _write_segment(self, segment: _Segment, data: bytes) -> None:
        """Append `data` to the segment, or leave it exactly as it was and raise OSError."""
        fd = os.open(segment.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            try:
                write_all(fd, data)
                if self.fsync:
                    os.fsync(fd)
            except OSError:
                # a partial write would glue the next record to a torn line: take it back
                try:
                    os.ftruncate(fd, segment.size)
                except OSError as undo:
                    log.error("spool: cannot undo a partial write", extra={"error": str(undo)})
                raise
        finally:
            os.close(fd)

    def _write_refused(self, records: int, exc: OSError) -> None:
        self.unspooled_records_total += records
        if not self._write_failing:  # once per episode: a full disk must not flood the journal
            self._write_failing = True
            log.error(
                "spool write failed: records not spooled until the disk takes writes again",
                extra={"error": str(exc), "errno": exc.errno, "records": records},
            )

    # -- reading ---------------------------------------------------------------------------
    def read(self, sink: str, max_records: int) -> Batch:
        """Up to `max_records` undelivered lines for `sink`, and the position after them.

        A line that is not UTF-8 is skipped (and counted in the batch) rather than returned:
        it can never be delivered, and it must not stop the lines behind it.
        """
        with self._lock:
            cursor = self._cursors[sink]
            out: list[str] = []
            undecodable = 0
            taken = 0
            position = cursor
            for seg in self._segments:
                if seg.seq < cursor.segment:
                    continue
                start = cursor.offset if seg.seq == cursor.segment else 0
                ends = [e for e in seg.line_ends if e > start]
                if not ends:
                    continue
                ends = ends[: max_records - taken]
                with open(seg.path, "rb") as f:
                    f.seek(start)
                    blob = f.read(ends[-1] - start)
                for raw in blob.split(b"\n")[:-1]:
                    try:
                        out.append(raw.decode("utf-8") + "\n")
                    except UnicodeDecodeError:
                        undecodable += 1
                taken += len(ends)
                position = Position(seg.seq, ends[-1])
                if taken >= max_records:
                    break
            return Batch(out, position, undecodable)

    def ack(self, sink: str, position: Position) -> None:
        """Record that `sink` delivered everything before `position` (durable, atomic)."""
        with self._lock:
            if position <= self._cursors[sink]:
                return
            self._cursors[sink] = position
            self._save(
                f"cursor-{sink}.json", {"segment": position.segment, "offset": position.offset}
            )
            self._collect_garbage()

    # -- figures ---------------------------------------------------------------------------
    def depth(self, sink: str | None = None) -> int:
        """Records not yet delivered by `sink` (by the slowest sink when None)."""
        with self._lock:
            sinks = [sink] if sink else self.sinks
            return max((self._pending(s) for s in sinks), default=0)

    @property
    def dropped_records_total(self) -> int:
        value = self._state.get("dropped_records_total", 0)
        return value if isinstance(value, int) else 0

    def size_bytes(self) -> int:
        with self._lock:
            return sum(seg.size for seg in self._segments)

    def get_state(self, key: str) -> object:
        with self._lock:
            return self._state.get(key)

    def set_state(self, key: str, value: object) -> None:
        """Persist a small fact across restarts (e.g. 'checkpoint hook already ran')."""
        with self._lock:
            self._state[key] = value
            self._save_state()

    # -- internals (lock held) -------------------------------------------------------------
    def _pending(self, sink: str) -> int:
        cursor = self._cursors[sink]
        total = 0
        for seg in self._segments:
            if seg.seq > cursor.segment:
                total += len(seg.line_ends)
            elif seg.seq == cursor.segment:
                total += seg.records_from(cursor.offset)
        return total

    def _new_segment(self) -> _Segment:
        seq = self._segments[-1].seq + 1 if self._segments else self._first_sequence()
        seg = _Segment(seq, self.dir / f"seg-{seq:020d}.jsonl", [])
        seg.path.touch()
        if self.fsync:  # the new name must survive a crash, or its records vanish with it
            fsync_directory(self.dir)
        self._segments.append(seg)
        return seg

    def _first_sequence(self) -> int:
        # never reuse a sequence a cursor may still point past
        known = [c.segment for c in getattr(self, "_cursors", {}).values()]
        return max(known, default=0) + 1

    def _enforce_bound(self) -> None:
        while len(self._segments) > 1 and sum(s.size for s in self._segments) > self.max_bytes:
            oldest = self._segments.pop(0)
            undelivered = max(
                (self._undelivered_in(oldest, sink) for sink in self.sinks), default=0
            )
            for sink in self.sinks:
                if self._cursors[sink].segment <= oldest.seq:
                    self._cursors[sink] = Position(self._segments[0].seq, 0)
            oldest.path.unlink(missing_ok=True)
            if undelivered:
                self._state["dropped_records_total"] = self.dropped_records_total + undelivered
                self._save_state()
                log.warning(
                    "spool full: dropped oldest records",
                    extra={"dropped": undelivered, "segment": oldest.seq},
                )
        # moved cursors need no save: a cursor into a deleted segment reads as its successor

    def _undelivered_in(self, seg: _Segment, sink: str) -> int:
        cursor = self._cursors[sink]
        if cursor.segment > seg.seq:
            return 0
        if cursor.segment == seg.seq:
            return seg.records_from(cursor.offset)
        return len(seg.line_ends)

    def _collect_garbage(self) -> None:
        """Delete segments every sink has delivered, except the active one."""
        while len(self._segments) > 1:
            oldest = self._segments[0]
            if any(self._undelivered_in(oldest, sink) for sink in self.sinks):
                return
            self._segments.pop(0)
            oldest.path.unlink(missing_ok=True)

    def _open_segments(self) -> list[_Segment]:
        segments = []
        for path in sorted(self.dir.iterdir()):
            match = _SEGMENT.match(path.name)
            if not match:
                continue
            data = path.read_bytes()
            complete = data.rfind(b"\n") + 1
            if complete < len(data):  # killed mid-line: drop the torn tail
                log.warning(
                    "spool: truncating an incomplete last line",
                    extra={"segment": path.name, "bytes": len(data) - complete},
                )
                with open(path, "r+b") as f:
                    f.truncate(complete)
                data = data[:complete]
            ends = [i + 1 for i, byte in enumerate(data) if byte == 0x0A]
            segments.append(_Segment(int(match.group(1)), path, ends))
        return segments

    def _load_cursor(self, sink: str) -> Position:
        path = self.dir / f"cursor-{sink}.json"
        first = self._segments[0].seq if self._segments else 1
        try:
            raw = json.loads(path.read_text())
            position = Position(int(raw["segment"]), int(raw["offset"]))
        except FileNotFoundError:
            return Position(first, 0)
        except (ValueError, KeyError, TypeError):
            log.error(
                "spool: unreadable cursor, redelivering from the oldest record",
                extra={"sink": sink},
            )
            return Position(first, 0)
        return max(position, Position(first, 0))

    def _load_state(self) -> dict[str, object]:
        try:
            raw = json.loads((self.dir / "state.json").read_text())
            return dict(raw) if isinstance(raw, dict) else {}
        except (FileNotFoundError, ValueError):
            return {}

    def _save_state(self) -> None:
        self._save("state.json", self._state)

    def _save(self, name: str, value: object) -> None:
        """Write a small JSON file atomically; on a full disk keep going on the memory copy."""
        try:
            write_json_atomically(self.dir / name, value, fsync=self.fsync)
        except OSError as exc:
            self.save_failures_total += 1
            log.error("spool: cannot save %s (kept in memory)", name, extra={"error": str(exc)})


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a write may take only part)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_directory(path: Path) -> None:
    """Make a new or renamed entry in `path` durable (fsync of the file alone does not)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomically(path: Path, value: object, *, fsync: bool) -> None:
    """Write, fsync, rename, fsync the directory; a failed write leaves no temp file behind."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            write_all(fd, json.dumps(value).encode("utf-8"))
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_directory(path.parent)
