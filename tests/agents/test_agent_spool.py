"""The spool: nothing spooled is lost across restarts; the bound drops oldest first, counted."""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

import aifinops.agents.spool as spool_module
from aifinops.agents.shipping import Shipper
from aifinops.agents.spool import Spool


def lines(start: int, count: int, pad: int = 0) -> list[str]:
    return [json.dumps({"n": n, "pad": "x" * pad}) + "\n" for n in range(start, start + count)]


def numbers(records: list[str]) -> list[int]:
    return [json.loads(r)["n"] for r in records]


def open_spool(path: Path, **kw: object) -> Spool:
    options: dict = dict(max_bytes=1 << 20, segment_bytes=4096, sinks=["a", "b"], fsync=True)
    options.update(kw)
    return Spool(path, **options)


def test_each_sink_reads_everything_once_in_order(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append(lines(0, 5))
    spool.append(lines(5, 5))
    got, pos, _ = spool.read("a", 3)
    assert numbers(got) == [0, 1, 2]
    spool.ack("a", pos)
    got, pos, _ = spool.read("a", 100)
    assert numbers(got) == [3, 4, 5, 6, 7, 8, 9]
    spool.ack("a", pos)
    assert spool.read("a", 100)[0] == []
    assert numbers(spool.read("b", 100)[0]) == list(range(10))  # sinks are independent
    assert spool.depth("a") == 0 and spool.depth("b") == 10 and spool.depth() == 10


def test_unacked_records_survive_a_restart_and_acked_ones_are_not_resent(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append(lines(0, 50, pad=100))  # spans several segments
    _, pos, _ = spool.read("a", 20)
    spool.ack("a", pos)
    del spool
    reopened = open_spool(tmp_path)
    assert numbers(reopened.read("a", 1000)[0]) == list(range(20, 50))
    assert numbers(reopened.read("b", 1000)[0]) == list(range(50))


def test_a_torn_last_line_from_kill_9_is_dropped_on_reopen(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append(lines(0, 3))
    segment = sorted(tmp_path.glob("seg-*.jsonl"))[-1]
    with open(segment, "ab") as f:
        f.write(b'{"n": 3, "pad": "')  # the writer died here
    reopened = open_spool(tmp_path)
    assert numbers(reopened.read("a", 100)[0]) == [0, 1, 2]
    reopened.append(lines(3, 1))
    assert numbers(reopened.read("a", 100)[0]) == [0, 1, 2, 3]


def test_bound_drops_oldest_segments_and_counts_undelivered_records(tmp_path: Path) -> None:
    spool = open_spool(tmp_path, max_bytes=64 * 1024, segment_bytes=8 * 1024, sinks=["a"])
    record = lines(0, 1, pad=1000)[0]
    per_segment = (8 * 1024) // len(record)
    total = 200
    for n in range(total):
        spool.append(lines(n, 1, pad=1000))
    assert spool.size_bytes() <= 64 * 1024
    kept = numbers(spool.read("a", 10_000)[0])
    assert kept == list(range(total - len(kept), total))  # newest kept, oldest dropped
    assert spool.dropped_records_total == total - len(kept)
    assert spool.dropped_records_total % per_segment == 0
    # the count survives a restart
    assert open_spool(
        tmp_path, max_bytes=64 * 1024, segment_bytes=8 * 1024, sinks=["a"]
    ).dropped_records_total == total - len(kept)


def test_delivered_segments_are_deleted_and_not_counted_as_drops(tmp_path: Path) -> None:
    spool = open_spool(
        tmp_path, max_bytes=64 * 1024, segment_bytes=8 * 1024, sinks=["a"], fsync=False
    )
    for n in range(200):
        spool.append(lines(n, 1, pad=1000))
        _, pos, _ = spool.read("a", 10)
        spool.ack("a", pos)
    assert spool.dropped_records_total == 0
    assert len(list(tmp_path.glob("seg-*.jsonl"))) == 1


def test_state_survives_restart(tmp_path: Path) -> None:
    open_spool(tmp_path).set_state("checkpoint_fired", "aws:terminate:2026")
    assert open_spool(tmp_path).get_state("checkpoint_fired") == "aws:terminate:2026"


def test_multi_line_strings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="single lines"):
        open_spool(tmp_path).append(["a\nb\n"])


def enospc_after(limit_bytes: int) -> Callable[[int, bytes], None]:
    """A `write_all` for a disk with `limit_bytes` free: writes what fits, then ENOSPC."""

    def write_all(fd: int, data: bytes) -> None:
        os.write(fd, bytes(data[:limit_bytes]))
        if len(data) > limit_bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write_all


def test_full_disk_counts_unspooled_records_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = open_spool(tmp_path)
    assert spool.append(lines(0, 3))
    segment = sorted(tmp_path.glob("seg-*.jsonl"))[-1]
    size = segment.stat().st_size
    monkeypatch.setattr(spool_module, "write_all", enospc_after(7))  # part of a line fits
    assert spool.append(lines(3, 2)) is False
    assert spool.unspooled_records_total == 2
    assert segment.stat().st_size == size  # the partial line was taken back
    monkeypatch.undo()
    assert spool.append(lines(5, 2))  # space is back: spooling resumes by itself
    assert numbers(spool.read("a", 100)[0]) == [0, 1, 2, 5, 6]
    assert numbers(open_spool(tmp_path).read("a", 100)[0]) == [0, 1, 2, 5, 6]


def test_full_disk_on_cursor_save_keeps_the_cursor_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = open_spool(tmp_path)
    spool.append(lines(0, 4))
    _, pos, _ = spool.read("a", 2)
    monkeypatch.setattr(spool_module, "write_all", enospc_after(0))
    spool.ack("a", pos)  # must not raise: the sink did deliver
    spool.set_state("hooks_fired", ["aws:i:terminate"])
    assert spool.save_failures_total == 2
    assert not list(tmp_path.glob("*.tmp"))  # no half-written temp file left behind
    assert numbers(spool.read("a", 100)[0]) == [2, 3]
    assert spool.get_state("hooks_fired") == ["aws:i:terminate"]


def test_a_line_that_is_not_utf8_is_skipped_and_counted(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append(lines(0, 3))
    segment = sorted(tmp_path.glob("seg-*.jsonl"))[-1]
    data = segment.read_bytes()
    second = data.index(b'{"n": 1')
    segment.write_bytes(data[: second + 2] + b"\xff" + data[second + 3 :])  # one flipped byte
    got, _, undecodable = spool.read("a", 100)
    assert numbers(got) == [0, 2] and undecodable == 1
    delivered: list[dict] = []
    shipper = Shipper(
        spool,
        "a",
        lambda records, _lines: delivered.extend(records),
        batch_records=100,
        interval_seconds=1.0,
        max_backoff_seconds=1.0,
    )
    shipper.ship_once()
    assert [r["n"] for r in delivered] == [0, 2]
    assert shipper.rejected_records_total == 1 and spool.depth("a") == 0


def test_directory_is_fsynced_after_segment_creation_and_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[str, bool]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    spool = open_spool(tmp_path)
    spool.append(lines(0, 1))
    assert (str(tmp_path), True) in synced  # the new segment's name is durable
    synced.clear()
    _, pos, _ = spool.read("a", 1)
    spool.ack("a", pos)
    cursor_file = str(tmp_path / "cursor-a.json.tmp")
    assert synced == [(cursor_file, False), (str(tmp_path), True)]  # data, then the rename
