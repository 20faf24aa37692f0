"""The streaming reader (DuckDB) gives the reference reader's `GpuUsage` on the same files.

The reference (`spool.read_usage`, standard library) is the executable definition of every
figure; `stream.read_usage` computes them in SQL in bounded memory. The files below hold what
real fleets produce: 1-minute and 5-minute windows, bursts, copies of records (at-least-once
delivery, a spool read beside its export file), a torn tail, broken lines and bytes, lost
GPUs, a GPU under MIG (no utilisation), SM activity, host CPU and memory, work units, hosts
without metadata; then the same records as Parquet and rolled up by the agent.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path
from typing import Any

import pytest
from rightsizing_helpers import window_record

from aifinops.agentfiles import gpu_summaries
from aifinops.agents.rollup import Rollup
from aifinops.rightsizing import spool, stream
from aifinops.rightsizing.usage import GpuUsage

T0 = 1_764_000_000.0 - (1_764_000_000 % 3600)
HOURS = 30


def _records() -> list[dict[str, Any]]:
    """30 hours of three hosts: what each GPU does changes by the hour."""
    records = []
    for minute in range(HOURS * 60):
        start = T0 + minute * 60
        hour = minute // 60
        for index in range(2):  # i-a: 1-minute windows, a job on GPU 0 with bursts
            busy = index == 0 and hour % 5 != 0
            record = window_record(
                instance_id="i-a",
                instance_type="p3.8xlarge",
                fleet_name="train-a",
                gpu_index=index,
                start=start,
                util=(20.0 + (minute * 7 % 50)) if busy else 0.0,
                util_peak=min(100.0, 35.0 + (minute * 13 % 70)) if busy else 0.0,
                memory_gib=6.0 + (minute % 9) if busy else 0.25,
                work={"steps": 10.0, "tokens": 4096.0 * (minute % 3)} if busy else None,
                host_cpu=10.0 + minute % 30,
                host_memory_gib=20.0 + minute % 4,
            )
            # the agent's input diagnosis (agents/hostload.py), absent in older records
            if hour >= 2:
                record["input_verdict"] = ("gpu-busy", "waiting-on-data", "unknown")[hour % 3]
                record["input_causes"] = (
                    ["cpu", "page-cache"][: 1 + hour % 2] if hour % 3 == 1 else []
                )
            if minute % 97 == 5:
                record["sample_count"] = 0  # lost the whole window
                record["gpu_util_percent"] = None
            elif index == 1 and minute % 11 == 0:
                record["gpu_util_percent"]["mean"] = None  # a peak without a mean
            records.append(record)
        if minute % 5 == 0:  # no metadata (instance id `unknown`): told apart by hostname
            for name in ("node-1", "node-2"):
                record = window_record(
                    instance_id="unknown",
                    instance_type="unknown",
                    fleet_name="serve",
                    gpu_index=0,
                    start=start,
                    seconds=300.0,
                    util=60.0 if name == "node-1" else 3.0,
                    util_peak=90.0 if name == "node-1" else 4.0,
                    memory_gib=14.0,
                )
                record["hostname"] = name
                record["region"] = "unknown"
                record["gpu_uuid"] = f"GPU-{name}"  # UUIDs are unique across hosts
                record["record_id"] = f"unknown/GPU-{name}/{start:.3f}"
                records.append(record)
        if minute % 2 == 0:  # an H100 host: SM activity, 2-minute windows; GPU 1 under MIG
            for index in range(2):
                record = window_record(
                    instance_id="i-h",
                    instance_type="p5.48xlarge",
                    fleet_name="pretrain",
                    gpu_index=index,
                    start=start,
                    seconds=120.0,
                    util=90.0 - hour % 7,
                    util_peak=100.0,
                    memory_gib=70.0,
                )
                record["sm_active_ratio"] = {
                    "min": 0.5,
                    "mean": 0.6 + (minute % 10) / 100,
                    "p95": 0.8,
                    "max": 0.8 + (minute % 7) / 100,
                }
                record["gpu_uuid"] = f"GPU-h{index}"
                record["record_id"] = f"i-h/GPU-h{index}/{start:.3f}"
                if index == 1:
                    record["gpu_util_percent"] = None
                    record["unsupported"] = {"utilization": "not supported under MIG"}
                records.append(record)
    return records


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


def write_fleet(folder: Path) -> list[Path]:
    """The files of the fleet: an export file (rotated), a spool folder holding copies of
    its last records, damaged lines and a torn tail."""
    lines = [_line(r) for r in _records()]
    export = folder / "export"
    export.mkdir(parents=True)
    half = len(lines) // 2
    (export / "windows.jsonl.1").write_text("".join(lines[:half]))
    damaged = [
        *lines[half : half + 100],
        '{"schema_version":1,"rec\n',  # a torn write, then more lines
        "\n",
        "[1, 2]\n",
        *lines[half + 95 : half + 105],  # delivered twice
        *lines[half + 100 :],
    ]
    data = "".join(damaged).encode()
    data = data.replace(b'"hostname":"ip-10-0-0-5"', b'"hostname":"ip-10-\xff-0-5"', 1)
    (export / "windows.jsonl").write_bytes(data + b'{"schema_version":1,"record_id":"i-a/GPU')
    spool_dir = folder / "spool"
    spool_dir.mkdir()
    (spool_dir / "seg-00000000000000000007.jsonl").write_text("".join(lines[-400:]))
    return [export, spool_dir]


def assert_same(got: list[GpuUsage], expected: list[GpuUsage], rel: float = 1e-9) -> None:
    """Every field equal; floats to `rel` (sums are added in another order)."""
    assert [(u.host, u.gpu_index) for u in got] == [(u.host, u.gpu_index) for u in expected]
    for a, b in zip(got, expected, strict=True):
        for field in dataclasses.fields(GpuUsage):
            x, y = getattr(a, field.name), getattr(b, field.name)
            if field.name == "source":
                continue
            if isinstance(y, float) and isinstance(x, float):
                assert math.isclose(x, y, rel_tol=rel, abs_tol=1e-12), (a.host, field.name, x, y)
            elif isinstance(y, dict):
                assert x.keys() == y.keys(), (a.host, field.name)
                for key in y:
                    assert math.isclose(x[key], y[key], rel_tol=rel), (a.host, field.name, key)
            else:
                assert x == y, (a.host, a.gpu_index, field.name, x, y)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_fleet(tmp_path_factory.mktemp("fleet"))


@pytest.mark.parametrize(
    ("lookback_days", "end"),
    [(None, None), (1.0, None), (0.5, T0 + 20 * 3600 + 17), (None, T0 + 3 * 3600)],
)
def test_the_streaming_reader_gives_the_reference_readers_usage(
    fleet: list[Path],
    lookback_days: float | None,
    end: float | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream, "INTERVALS_PER_SLICE", 700)  # the last step in slices
    with warnings.catch_warnings(record=True) as reference_warnings:
        warnings.simplefilter("always")
        expected = spool.read_usage(fleet, lookback_days=lookback_days, end=end)
    with warnings.catch_warnings(record=True) as stream_warnings:
        warnings.simplefilter("always")
        got = stream.read_usage(fleet, lookback_days=lookback_days, end=end)
    assert len(expected) == 5  # i-a x2, node-1, node-2, i-h GPU 0 (GPU 1 never measured)
    assert {u.host for u in expected} == {"i-a", "i-h", "node-1", "node-2"}
    assert_same(got, expected)
    # the same lines skipped, the same first one named (only the readers' own warnings: a
    # ResourceWarning of something else collected meanwhile would make this flaky)
    said, reference_said = (
        [str(w.message) for w in caught if issubclass(w.category, spool.SkippedLinesWarning)]
        for caught in (stream_warnings, reference_warnings)
    )
    assert said == reference_said
    assert "3 unreadable line(s)" in reference_said[0]


def test_the_figures_are_not_trivially_equal(fleet: list[Path]) -> None:
    """The fleet exercises every figure: none is empty or the same for every GPU."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        usages = {(u.host, u.gpu_index): u for u in stream.read_usage(fleet)}
    a0, a1, h0 = usages[("i-a", 0)], usages[("i-a", 1)], usages[("i-h", 0)]
    assert a0.util_mean_percent is not None and a0.util_p95_percent > a0.util_mean_percent
    assert a1.util_mean_percent is None  # a peak without a mean: the mean is unknown
    assert a0.work_per_hour.keys() == {"steps", "tokens"} and a0.work_hours > 20
    assert a0.host_cpu_p95_percent is not None and a0.host_memory_peak_gib == 23.0
    assert 0 < a0.idle_hours_share < 1
    assert h0.sm_active_p95 is not None and h0.sm_active_mean is not None
    assert usages[("node-2", 0)].util_mean_p95_percent == 0.0  # never worked
    assert usages[("node-1", 0)].region is None  # `unknown` region
    assert 0 < a0.waiting_on_data_seconds < a0.diagnosed_seconds
    assert a0.waiting_causes.keys() == {"cpu", "page-cache"}


def test_parquet_files_read_as_their_json_lines(tmp_path: Path, fleet: list[Path]) -> None:
    import duckdb

    clean = tmp_path / "clean.jsonl"
    clean.write_text("".join(_line(r) for r in _records()))
    parquet = tmp_path / "fleet" / "windows.parquet"
    parquet.parent.mkdir()
    duckdb.sql(
        f"COPY (SELECT * FROM read_json('{clean}', format = 'newline_delimited')) "
        f"TO '{parquet}' (FORMAT parquet)"
    )
    assert_same(stream.read_usage([parquet.parent]), spool.read_usage([clean]))


def _deliver(rollup: Rollup, records: list[dict[str, Any]], *, save: bool = True) -> list[str]:
    """What `RolledExport.deliver` writes for `records`, delivered 37 at a time (a delivery
    can end mid-window: one interval's GPUs then come in two lines)."""
    out: list[str] = []
    for first in range(0, len(records), 37):
        for record in records[first : first + 37]:
            rollup.add(record, _line(record))
        out += rollup.take()
        if save:
            rollup.save(fsync=False)
    return out


def _rolled(records: list[dict[str, Any]], state: Path) -> list[str]:
    """The export as the agent rolls it up, stopped and restarted three times: once cleanly
    (open intervals written), once killed after writing but before saving its state, once
    after saving it but before the spool heard of the delivery (both times the spool
    delivers the batch again)."""
    rollup = Rollup(300, state)
    quarter = len(records) // 4
    out = _deliver(rollup, records[:quarter])
    out += rollup.flush()  # a clean stop mid-interval
    rollup.save(fsync=False)
    rollup = Rollup(300, state)
    batch = records[quarter : 2 * quarter]
    out += _deliver(rollup, batch, save=False)
    # killed before `save`: the restarted agent reads the old state, the batch comes again
    rollup = Rollup(300, state)
    out += _deliver(rollup, batch + records[2 * quarter : 3 * quarter])
    # killed after `save`, before the spool's ack: the last 500 records come again
    rollup = Rollup(300, state)
    out += _deliver(rollup, records[3 * quarter - 500 :])
    out += rollup.flush()
    return out


def test_the_rolled_up_export_reads_as_the_windows_it_rolls_up(tmp_path: Path) -> None:
    records = _records()
    raw = tmp_path / "raw" / "windows.jsonl"
    raw.parent.mkdir()
    raw.write_text("".join(_line(r) for r in records))
    rolled = tmp_path / "rolled" / "windows.jsonl"
    rolled.parent.mkdir()
    lines = _rolled(records, tmp_path / "rollup.json")
    rolled.write_text("".join(lines))
    assert len(lines) < len(records) / 2  # 1-minute windows five to a record, 2-minute two
    assert rolled.stat().st_size < raw.stat().st_size / 4
    expected = spool.read_usage([raw])
    assert_same(stream.read_usage([rolled]), expected)
    assert_same(spool.read_usage([rolled]), expected)
    # the mix an agent leaves when the roll-up is turned on half way through
    half = len(records) // 2
    mixed = tmp_path / "mixed" / "windows.jsonl"
    mixed.parent.mkdir()
    mixed.write_text(
        "".join(_line(r) for r in records[:half])
        + "".join(_rolled(records[half:], tmp_path / "rollup2.json"))
    )
    assert_same(stream.read_usage([mixed]), expected)


def test_progress_is_told_the_share_scanned(fleet: list[Path]) -> None:
    shares: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stream.read_usage(fleet, progress=shares.append)
    assert shares and shares[-1] == 1.0 and all(0 <= s <= 1 for s in shares)


def test_a_folder_of_hosts_folders_and_a_glob_are_read(tmp_path: Path) -> None:
    for host in ("i-1", "i-2"):
        (tmp_path / "fleet" / host).mkdir(parents=True)
        lines = [
            _line(
                window_record(
                    instance_id=host,
                    instance_type="g5.xlarge",
                    fleet_name="f",
                    gpu_index=0,
                    start=T0 + k * 300,
                    seconds=300.0,
                    util=50.0,
                    memory_gib=4.0,
                )
            )
            for k in range(12)
        ]
        (tmp_path / "fleet" / host / "windows.jsonl").write_text("".join(lines))
    assert [u.host for u in stream.read_usage([tmp_path / "fleet"])] == ["i-1", "i-2"]
    assert [u.host for u in stream.read_usage([tmp_path / "fleet" / "*" / "windows.jsonl"])] == [
        "i-1",
        "i-2",
    ]
    with pytest.raises(spool.SourceError, match=r"nothing/\*: the pattern matches no file"):
        stream.read_usage([tmp_path / "nothing" / "*"])


def _as_version_1(line: str) -> str:
    """A rolled-up line as agents before schema_version 2 wrote it: a window record per GPU
    (agents/SPOOL_FORMAT.md, "Version 1 rolled-up records")."""
    record = json.loads(line)
    if record.get("schema_version") != 2:
        return line
    out = []
    for one in gpu_summaries("test", record):
        one["schema_version"] = 1
        uuid = f"GPU-{one['hostname']}-{one['gpu_index']}"  # unique across hosts
        one["record_id"] = f"{one['instance_id']}/{uuid}/{one['window_start']:.3f}+300"
        out.append(_line(one))
    return "".join(out)


def test_rolled_up_records_of_both_versions_read_alike_with_their_copies(tmp_path: Path) -> None:
    """Version 1 (a record per GPU) and version 2 (a line per host) rolled-up files, an
    agent upgraded half way, and copies of the last lines in a second folder (a spool read
    beside its export): both readers count each summary once and agree with the windows."""
    records = _records()
    expected = spool.read_usage(_write(tmp_path / "raw", [_line(r) for r in records]))
    rolled = _rolled(records, tmp_path / "rollup.json")
    old = [_as_version_1(line) for line in rolled]
    # two GPUs per host here, often in separate lines (their work differs): a third smaller
    assert sum(len(line) for line in rolled) < sum(len(line) for line in old) * 0.7
    half = len(rolled) // 2
    for name, lines in (("v1", old), ("v2", rolled), ("upgraded", old[:half] + rolled[half:])):
        files = _write(tmp_path / name / "export", lines)
        files += _write(tmp_path / name / "copies", lines[-40:])
        assert_same(spool.read_usage(files), expected)
        assert_same(stream.read_usage(files), expected)


def _write(folder: Path, lines: list[str]) -> list[Path]:
    folder.mkdir(parents=True)
    (folder / "windows.jsonl").write_text("".join(lines))
    return [folder]


def test_one_hosts_files_in_two_folders_without_copies_merge_into_its_intervals(
    tmp_path: Path,
) -> None:
    """Older windows in one folder, newer in another, split inside a 5-minute interval: the
    interval's peak and mean come from both folders (read as separate batches)."""
    lines = [_line(r) for r in _records() if r["instance_id"] == "i-a"]
    split = next(n for n, line in enumerate(lines) if f'"window_start":{T0 + 7 * 60}' in line)
    files = _write(tmp_path / "old", lines[:split]) + _write(tmp_path / "new", lines[split:])
    expected = spool.read_usage(files)
    assert_same(stream.read_usage(files), expected)
    assert expected[0].intervals == HOURS * 12  # every interval once


def test_a_gpu_is_described_by_its_first_window_even_where_that_names_no_region(
    tmp_path: Path,
) -> None:
    """The reference reader takes a GPU's instance type, region, fleet and lifecycle from
    its first record; so does the streaming reader (it took the first non-null region)."""
    lines = []
    for k in range(12):
        record = window_record(
            instance_id="i-r",
            instance_type="g5.xlarge",
            fleet_name="f",
            gpu_index=0,
            start=T0 + k * 300,
            seconds=300.0,
            util=50.0,
            memory_gib=4.0,
        )
        record["region"] = "unknown" if k == 0 else "us-west-2"
        lines.append(_line(record))
    files = _write(tmp_path / "host", lines)
    expected = spool.read_usage(files)
    assert expected[0].region is None
    assert_same(stream.read_usage(files), expected)


@pytest.mark.parametrize(
    "gpus", ["[[0, 300]]", "[[null, 300, 1, 2, 3, 4, 5, 6, 7]]", '"all"', "null"]
)
def test_a_malformed_rolled_up_line_stops_both_readers_with_one_message(
    tmp_path: Path, gpus: str
) -> None:
    lines = _rolled(_records()[:400], tmp_path / "rollup.json")
    bad = json.loads(lines[3])
    text = json.dumps(bad, separators=(",", ":"))
    text = text[: text.index('"gpus":')] + f'"gpus":{gpus}}}\n'
    files = _write(tmp_path / "host", [*lines[:5], text, *lines[5:]])
    with pytest.raises(spool.SourceError) as reference:
        spool.read_usage(files)
    with pytest.raises(spool.SourceError) as streamed:
        stream.read_usage(files)
    assert "windows.jsonl:6: a rolled-up line" in str(reference.value)
    assert str(streamed.value) == str(reference.value)


def test_five_minute_windows_fold_one_record_per_interval_as_the_reference(
    tmp_path: Path,
) -> None:
    """One record per GPU and interval (5-minute windows, as rolled-up summaries): the
    streaming reader folds them without grouping; the figures are the reference's."""
    records = []
    for record in _records():
        if record["instance_id"] == "i-a" and record["window_start"] % 300 == 0:
            records.append(dict(record, window_end=record["window_start"] + 300))
    files = _write(tmp_path / "host", [_line(r) for r in records])
    expected = spool.read_usage(files)
    assert expected[0].waiting_on_data_seconds > 0 and expected[1].util_mean_percent is None
    assert_same(stream.read_usage(files), expected)
