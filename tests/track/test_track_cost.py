"""A run's cost from the agent's records, hand-computed against the catalog's prices.

Prices (finops/catalog/data, us-east-1): g5.xlarge on-demand $1.006/h, spot $0.4125/h
(1.006 x (1 - 59/100) = 0.41246, Spot Advisor saving 59 %, the catalog keeps 4 decimals);
g5.12xlarge on-demand $5.672/h; p4d.24xlarge on-demand $21.957642/h.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from track_helpers import T0, WINDOW, host_records, write

from aifinops.track import Assumed, run_cost
from aifinops.track.cost import measure
from aifinops.track.records import RecordsError, read_run_records

START = T0 + 300  # half-way into the first window
END = START + 3600  # one hour: 300 + 5 x 600 + 300 seconds of 7 windows


def two_hosts(tmp_path: Path) -> list[Path]:
    spot = host_records(
        instance_id="i-aaa",
        instance_type="g5.xlarge",
        lifecycle="spot",
        gpus=1,
        windows=7,
        util=40.0,
        steps_per_window=100.0,
        verdicts={0: "waiting-on-data", 1: "waiting-on-data", 2: "waiting-on-data"},
        interrupted=(5, 6),  # one notice, active over two windows: one interruption
    )
    on_demand = host_records(
        instance_id="i-bbb",
        instance_type="g5.12xlarge",
        lifecycle="on-demand",
        gpus=4,
        windows=7,
        util=80.0,
        steps_per_window=400.0,
    )
    before = host_records(  # another run's window before this one: not counted
        instance_id="i-aaa",
        instance_type="g5.xlarge",
        lifecycle="spot",
        gpus=1,
        windows=1,
        util=99.0,
        first=T0 - WINDOW,
        steps_per_window=1e6,
    )
    a = write(tmp_path / "a.jsonl", [*before, *spot, spot[0]], tail='{"torn": ')  # dup + torn
    b = write(tmp_path / "b.jsonl", on_demand)
    return [a, b]


def test_measured_cost_of_a_two_host_run(tmp_path: Path) -> None:
    cost = run_cost(START, END, agent=two_hosts(tmp_path))
    assert cost.basis == "measured"
    # 1 h of g5.xlarge on spot + 1 h of g5.12xlarge on demand
    assert cost.cost_usd == pytest.approx(0.4125 + 5.672)
    assert cost.instance_hours == pytest.approx(2.0)
    assert cost.gpu_hours == pytest.approx(1 + 4)
    assert cost.spot_share == pytest.approx(0.5)
    assert cost.interruptions == 1
    assert cost.gpu_util_mean_percent == pytest.approx((40 * 1 + 80 * 4) / 5)  # 72
    assert cost.sm_active_mean_percent is None  # no GPM on A10G: not 0
    # GPU time waiting on data: host A's first 300 + 600 + 600 s of 5 GPU-hours in all
    assert cost.waiting_on_data_share == pytest.approx(1500 / (5 * 3600))
    # steps: host A 50 + 5 x 100 + 50 (edge windows in proportion), host B 4 x 600
    assert cost.work_units == {"steps": pytest.approx(600 + 2400)}
    assert cost.usd_per_work_unit["steps"] == pytest.approx((0.4125 + 5.672) / 3000)
    assert cost.unmeasured_seconds == pytest.approx(0.0)
    by_host = {h.host: h for h in cost.hosts}
    assert by_host["i-aaa"].usd_per_hour == pytest.approx(0.4125)
    assert by_host["i-bbb"].gpus == 4
    assert cost.notes == ()  # the torn last line is not "unreadable": the writer was cut


def test_only_the_named_hosts(tmp_path: Path) -> None:
    cost = run_cost(START, END, agent=two_hosts(tmp_path), hosts=["i-bbb"])
    assert cost.cost_usd == pytest.approx(5.672)
    assert cost.spot_share == 0.0


def test_tail_not_yet_written_is_said_and_not_priced(tmp_path: Path) -> None:
    records = host_records(
        instance_id="i-aaa", instance_type="g5.xlarge", lifecycle="on-demand", gpus=1,
        windows=3, util=50.0,
    )  # fmt: skip
    path = write(tmp_path / "w.jsonl", records)
    cost = run_cost(START, END, agent=[path])  # windows cover 300 + 600 + 600 s of 3600
    assert cost.cost_usd == pytest.approx(1.006 * 1500 / 3600)
    assert cost.unmeasured_seconds == pytest.approx(2100)
    assert "2100 s of the run are in no agent window" in cost.notes[0]


def test_unknown_lifecycle_is_priced_on_demand_and_said(tmp_path: Path) -> None:
    records = host_records(
        instance_id="i-aaa", instance_type="g5.xlarge", lifecycle="unknown", gpus=1,
        windows=7, util=50.0,
    )  # fmt: skip
    cost = run_cost(START, END, agent=[write(tmp_path / "w.jsonl", records)])
    assert cost.cost_usd == pytest.approx(1.006)
    assert cost.spot_share is None
    assert "purchase option unknown" in cost.notes[0]


def test_unknown_instance_type_makes_the_cost_unknown_not_zero(tmp_path: Path) -> None:
    records = host_records(
        instance_id="i-aaa", instance_type="unknown", lifecycle="unknown", gpus=1,
        windows=7, util=50.0,
    )  # fmt: skip
    cost = run_cost(START, END, agent=[write(tmp_path / "w.jsonl", records)])
    assert cost.basis == "measured"
    assert cost.cost_usd is None
    assert cost.gpu_hours == pytest.approx(1.0)  # what was measured is still there
    assert "UNKNOWN cost" in cost.notes[0]


def test_no_agent_is_estimated_from_the_catalog_and_marked(tmp_path: Path) -> None:
    assumed = Assumed(instance_type="p4d.24xlarge", region="us-east-1", nodes=2)
    cost = run_cost(START, START + 2 * 3600, agent=[tmp_path / "missing.jsonl"], assumed=assumed)
    assert cost.basis == "estimated"
    assert cost.cost_usd == pytest.approx(21.957642 * 2 * 2)  # 2 nodes x 2 h
    assert cost.gpu_hours == pytest.approx(8 * 2 * 2)
    assert cost.gpu_util_mean_percent is None
    assert cost.notes[0].startswith("ESTIMATED")
    assert "no agent files at" in cost.notes[-1]


def test_no_agent_and_no_type_is_unknown(tmp_path: Path) -> None:
    cost = run_cost(START, END, agent=[tmp_path / "missing.jsonl"])
    assert cost.basis == "unknown"
    assert cost.cost_usd is None
    assert "UNKNOWN cost" in cost.notes[0] and "--instance-type" in cost.notes[0]


def test_agent_files_without_the_run_fall_back(tmp_path: Path) -> None:
    records = host_records(
        instance_id="i-aaa", instance_type="g5.xlarge", lifecycle="spot", gpus=1,
        windows=2, util=50.0, first=T0 - 10 * WINDOW,
    )  # fmt: skip
    path = write(tmp_path / "w.jsonl", records)
    cost = run_cost(START, END, agent=[path], assumed=Assumed("g5.xlarge", lifecycle="spot"))
    assert cost.basis == "estimated"
    assert cost.cost_usd == pytest.approx(0.4125)
    assert "hold no window of the run" in cost.notes[-1]


def test_waits_for_the_window_holding_the_end(tmp_path: Path) -> None:
    """The agent writes a window after it closes: the reader waits (bounded) for it."""
    records = host_records(
        instance_id="i-aaa", instance_type="g5.xlarge", lifecycle="spot", gpus=1,
        windows=7, util=50.0,
    )  # fmt: skip
    path = write(tmp_path / "w.jsonl", records[:6])
    calls = []

    def on_wait(left: float) -> None:
        calls.append(left)
        write(path, records)  # the agent closes the last window meanwhile

    cost = run_cost(START, END, agent=[path], wait_seconds=5, poll_seconds=0.01, on_wait=on_wait)
    assert len(calls) == 1
    assert cost.cost_usd == pytest.approx(0.4125)


def test_unreadable_lines_are_skipped_and_said(tmp_path: Path) -> None:
    records = host_records(
        instance_id="i-aaa", instance_type="g5.xlarge", lifecycle="spot", gpus=1,
        windows=7, util=50.0,
    )  # fmt: skip
    path = tmp_path / "w.jsonl"
    path.write_bytes(b"\xff\xfe not json\n" + "".join(r.to_line() for r in records).encode())
    cost = run_cost(START, END, agent=[path])
    assert cost.cost_usd == pytest.approx(0.4125)
    assert "1 unreadable line(s) skipped" in cost.notes[-1] and "w.jsonl:1" in cost.notes[-1]


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ('{"timestamp": 1.0, "gpus": []}', r"a `finops-agent --record` trace .*, not window"),
        (
            '{"schema_version": 1, "window_start": 1.0}',
            r"not an agent window record \(no window_end",
        ),
        (
            '{"schema_version": 3, "window_start": 1.0}',
            r"window record schema_version 3; this finops reads 1",
        ),
    ],
)
def test_a_file_that_is_not_window_records_is_refused(tmp_path: Path, line: str, said: str) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(RecordsError, match=r"trace.jsonl:1: " + said):
        read_run_records([path], START, END)


def test_end_before_start_is_refused() -> None:
    from aifinops.track.cost import TrackError

    with pytest.raises(TrackError, match="is not after its start"):
        measure([], 10.0, 5.0)
