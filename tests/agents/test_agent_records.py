"""The window record is a contract with aifinops.rightsizing: pin it to SPOOL_FORMAT.md."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from aifinops.agents.records import (
    STAT_METRICS,
    GpuSample,
    HostInfo,
    MigInstance,
    Stats,
    WindowRecord,
    aggregate,
    nearest_rank,
)

DOC = Path(__file__).resolve().parents[2] / "agents" / "SPOOL_FORMAT.md"


def documented_example() -> dict:
    block = re.search(r"```json\n(.*?)```", DOC.read_text(), re.S)
    assert block, "SPOOL_FORMAT.md lost its example"
    return json.loads("".join(line.strip() for line in block.group(1).splitlines()))


def documented_fields() -> list[str]:
    return re.findall(r"^\| `([a-z_0-9]+)` \|", DOC.read_text(), re.M)


def test_documented_example_round_trips_exactly() -> None:
    raw = documented_example()
    record = WindowRecord.from_json(raw)
    assert record.to_json() == raw


def test_the_documented_rolled_up_record_is_what_the_agent_writes() -> None:
    from aifinops.agents.rollup import Rollup

    raw = documented_example()
    rollup = Rollup(300)
    lines: list[str] = []
    for k in range(5):  # the example's window and the four after it
        window = dict(raw, window_start=raw["window_start"] + 60 * k)
        window["window_end"] = window["window_start"] + 60
        window["record_id"] = f"i-0abc123/{raw['gpu_uuid']}/{window['window_start']:.3f}"
        rollup.add(window, json.dumps(window) + "\n")
    lines += rollup.take()
    block = re.search(r"```jsonl\n(.*?)```", DOC.read_text(), re.S)
    assert block, "SPOOL_FORMAT.md lost its rolled-up example"
    documented = json.loads("".join(line.strip() for line in block.group(1).splitlines()))
    assert [json.loads(line) for line in lines] == [documented]


def test_the_rolled_up_columns_are_the_documented_ones_and_the_readers() -> None:
    from aifinops.agentfiles import GPU_COLUMNS as READ
    from aifinops.agents.rollup import GPU_COLUMNS as WRITTEN

    table = re.findall(r"^\| \d \| `([a-z_]+)` \|", DOC.read_text(), re.M)
    assert list(WRITTEN) == table == list(READ)


def test_every_written_field_is_documented_in_order() -> None:
    written = list(documented_example().keys())
    assert documented_fields() == written


def sample(t: float, util: float | None, **kw: object) -> GpuSample:
    base: dict = dict(
        timestamp=t,
        gpu_index=0,
        gpu_uuid="GPU-0",
        gpu_name="NVIDIA H100 80GB HBM3",
        gpu_util_percent=util,
        memory_used_bytes=1000,
        memory_total_bytes=4000,
        process_count=1,
    )
    base.update(kw)
    return GpuSample(**base)


def test_aggregate_computes_min_mean_nearest_rank_p95_max() -> None:
    samples = [sample(float(t), float(t)) for t in range(1, 21)]  # 1..20
    rec = aggregate(
        samples,
        window_start=0.0,
        window_end=60.0,
        host=HostInfo(instance_id="i-1"),
        idle=False,
        idle_threshold_percent=5.0,
        work_units={"steps": 3.0},
        interruption_action=None,
    )
    util = rec.stats["gpu_util_percent"]
    assert util == Stats(min=1.0, mean=10.5, p95=19.0, max=20.0)  # ceil(0.95*20)=19th
    assert rec.stats["tensor_active_ratio"] is None  # never reported -> null, not 0
    assert rec.sample_count == 20
    assert rec.memory_total_bytes == 4000
    line = rec.to_line()
    assert line.endswith("\n") and "\n" not in line[:-1]
    parsed = json.loads(line)
    assert parsed["tensor_active_ratio"] is None
    assert parsed["work_units"] == {"steps": 3.0}
    assert parsed["record_id"] == "i-1/GPU-0/0.000"
    assert set(STAT_METRICS) <= parsed.keys()


def test_missing_values_are_left_out_of_stats_not_counted_as_zero() -> None:
    samples = [sample(1.0, 50.0), sample(2.0, None), sample(3.0, 70.0)]
    rec = aggregate(
        samples,
        window_start=0.0,
        window_end=3.0,
        host=HostInfo(),
        idle=False,
        idle_threshold_percent=5.0,
        work_units={},
        interruption_action=None,
    )
    assert rec.stats["gpu_util_percent"] == Stats(min=50.0, mean=60.0, p95=70.0, max=70.0)


def test_lost_samples_mark_the_record_and_are_not_counted() -> None:
    samples = [sample(1.0, 10.0), sample(2.0, None, lost=True, memory_used_bytes=None)]
    rec = aggregate(
        samples,
        window_start=0.0,
        window_end=2.0,
        host=HostInfo(),
        idle=False,
        idle_threshold_percent=5.0,
        work_units={},
        interruption_action=None,
    )
    assert rec.lost is True
    assert rec.sample_count == 1


def test_idle_sample_ratio_uses_sm_activity_over_utilisation() -> None:
    # utilisation reads 100% for a stalled kernel; SM activity says it is doing nothing
    stalled = sample(1.0, 100.0, process_count=0, sm_active_ratio=0.01)
    busy = sample(2.0, 100.0, process_count=0, sm_active_ratio=0.9)
    with_process = sample(3.0, 0.0, process_count=1)
    rec = aggregate(
        [stalled, busy, with_process, sample(4.0, 0.0, process_count=0)],
        window_start=0.0,
        window_end=4.0,
        host=HostInfo(),
        idle=False,
        idle_threshold_percent=5.0,
        work_units={},
        interruption_action=None,
    )
    assert rec.idle_sample_ratio == 0.5


def test_nearest_rank() -> None:
    assert nearest_rank([5.0], 0.95) == 5.0
    assert nearest_rank([float(v) for v in range(1, 101)], 0.95) == 95.0
    assert math.isclose(nearest_rank([1.0, 2.0], 0.5), 1.0)


def test_unknown_schema_version_is_refused() -> None:
    raw = documented_example() | {"schema_version": 2}
    with pytest.raises(ValueError, match="schema_version 2"):
        WindowRecord.from_json(raw)


def test_mig_instances_and_unsupported_reasons_reach_the_record() -> None:
    def mig_sample(t: float, used: int, procs: int) -> GpuSample:
        return sample(
            t,
            None,
            mig_enabled=True,
            memory_reserved_bytes=512,
            mig_instances=(MigInstance(1, "MIG-a", used, 20_000, procs),),
            unsupported=(("utilization", "not supported under MIG"),),
        )

    rec = aggregate(
        [mig_sample(1.0, 700, 1), mig_sample(2.0, 900, 0), mig_sample(3.0, 800, 2)],
        window_start=0.0,
        window_end=3.0,
        host=HostInfo(),
        idle=False,
        idle_threshold_percent=5.0,
        work_units={},
        interruption_action=None,
    )
    raw = json.loads(rec.to_line())
    assert raw["mig_enabled"] is True and raw["memory_reserved_bytes"] == 512
    assert raw["mig_instances"] == [
        {
            "gpu_instance_id": 1,
            "uuid": "MIG-a",
            "memory_total_bytes": 20_000,
            "memory_used_bytes_max": 900,
            "process_count_max": 2,
        }
    ]
    assert raw["unsupported"] == {"utilization": "not supported under MIG"}
    assert raw["gpu_util_percent"] is None
    assert WindowRecord.from_json(raw).to_json() == raw
