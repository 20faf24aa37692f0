"""Idle-GPU cost: the agent's window records (written by aifinops.agents.records, the real writer)
joined to billing lines, against hand-computed figures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from aifinops.agents.records import STAT_METRICS, HostInfo, WindowRecord
from aifinops.reporting import ReportError, build_report

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
HEADER = "ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ProviderName,ServiceName,ResourceId,Tags,EffectiveCost,BilledCost"
AZURE_VM = (
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/gpu-vm-1"
)


def window(
    host: HostInfo, gpu: int, start: dt.datetime, idle_ratio: float, lost: bool = False
) -> WindowRecord:
    return WindowRecord(
        window_start=start.timestamp(),
        window_end=start.timestamp() + 60,
        host=host,
        gpu_index=gpu,
        gpu_uuid=f"GPU-{host.instance_id}-{gpu}",
        gpu_name="NVIDIA A10G",
        lost=lost,
        sample_count=60,
        stats={name: None for name in STAT_METRICS},
        memory_total_bytes=None,
        memory_reserved_bytes=None,
        idle=idle_ratio == 1.0,
        idle_sample_ratio=idle_ratio,
        ecc_corrected_volatile=None,
        ecc_uncorrected_volatile=None,
        xid_error_count=0,
        xid_last=None,
        work_units={},
        interruption_action=None,
    )


def hour(h: int) -> str:
    return (T0 + dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def scenario(tmp_path: Path) -> tuple[Path, Path]:
    aws = HostInfo(
        "i-aaa",
        "g5.12xlarge",
        "us-east-1",
        "spot",
        "aws",
        "ip-10-0-0-5",
        {"finops:fleet": "train-a"},
    )
    lonely = HostInfo(
        "i-bbb", "g5.xlarge", "us-east-1", "spot", "aws", "ip-10-0-0-9", {"finops:fleet": "train-a"}
    )
    azure = HostInfo(
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "Standard_NV36ads_A10_v5",
        "eastus",
        "on-demand",
        "azure",
        "gpu-vm-1",
        {"finops:fleet": "infer-b"},
    )
    records: list[WindowRecord] = []
    for minute in range(60):
        start = T0 + dt.timedelta(minutes=minute)
        records.append(window(aws, 0, start, 1.0))  # hour 0: GPU 0 idle throughout
        records.append(window(aws, 1, start, 0.0))  # ... GPU 1 busy
        records.append(window(aws, 0, start + dt.timedelta(hours=1), 0.25))  # hour 1
        records.append(window(aws, 1, start + dt.timedelta(hours=1), 0.25))
        records.append(window(aws, 2, start, 1.0, lost=True))  # a lost GPU counts for nothing
        records.append(window(lonely, 0, start, 1.0))  # no billing line for i-bbb
        records.append(window(azure, 0, start, 1.0))
    lines = [r.to_line() for r in records]
    lines.append(lines[0])  # delivered twice (at least once): counted once
    windows = tmp_path / "windows.jsonl"
    windows.write_text("".join(lines) + lines[1][:40])  # and a torn last line
    tags = '"{""Project"": ""vision""}"'
    billing = tmp_path / "billing.csv"
    rows = [
        HEADER,
        f"{hour(0)},{hour(1)},Usage,AWS,EC2,i-aaa,{tags},10,10",
        f"{hour(1)},{hour(2)},Usage,AWS,EC2,i-aaa,{tags},10,10",
        f"{hour(2)},{hour(3)},Usage,AWS,EC2,i-aaa,{tags},10,10",  # no windows: unobserved
        f"{hour(0)},{hour(1)},Credit,AWS,EC2,i-aaa,{tags},-4,-4",  # not GPU time
        f'{hour(0)},{hour(1)},Usage,Microsoft,Virtual Machines,{AZURE_VM},"{{""project"": ""chat""}}",3,3',
        f"{hour(0)},{hour(1)},Usage,AWS,EC2,ip-10-0-0-9,{tags},99,99",  # EC2 host names are not ids
    ]
    billing.write_text("\n".join(rows) + "\n")
    return billing, windows


def test_idle_cost_per_project_and_fleet_by_hand(scenario):
    billing, windows = scenario
    report = build_report([billing], agent_windows=[windows])
    idle = report.idle_gpu
    assert idle is not None
    rows = {(r.project, r.fleet): r for r in idle.rows}
    assert set(rows) == {("vision", "train-a"), ("chat", "infer-b")}
    vision = rows[("vision", "train-a")]
    # hour 0: 1 of 2 GPU-hours idle -> 10 x 0.5 = 5; hour 1: 0.5 of 2 -> 10 x 0.25 = 2.5
    assert vision.gpu_hours == pytest.approx(4.0)
    assert vision.idle_gpu_hours == pytest.approx(1.5)
    assert vision.cost == pytest.approx(20.0)
    assert vision.idle_cost == pytest.approx(7.5)
    # Azure bills the VM by name; the agent knows the vmId and the host name
    chat = rows[("chat", "infer-b")]
    assert (chat.gpu_hours, chat.idle_cost) == (pytest.approx(1.0), pytest.approx(3.0))
    assert idle.idle_cost == pytest.approx(10.5)
    assert idle.rows[0] is vision  # largest idle cost first
    # what could not be joined is said, not guessed
    assert idle.unobserved_cost == pytest.approx(10.0)
    assert idle.unbilled_gpu_hours == pytest.approx(1.0)
    assert idle.unmatched_instances == ["i-bbb"]
    assert (idle.instances, idle.matched_instances) == (3, 2)


def test_an_unreadable_window_line_is_skipped_and_named(scenario, tmp_path):
    billing, windows = scenario
    lines = windows.read_text().split("\n")
    lines[1] = "{not json"  # i-aaa, GPU 1 (busy), its first hour-0 window
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines[:-1]) + "\n")
    idle = build_report([billing], agent_windows=[bad]).idle_gpu
    assert idle is not None
    assert idle.skipped_lines == [f"{bad}:2: not a JSON window record"]
    vision = next(r for r in idle.rows if r.project == "vision")
    # one busy GPU-minute fewer in hour 0: 60 idle of 119 observed GPU-minutes
    assert vision.gpu_hours == pytest.approx(4.0 - 1 / 60)
    assert vision.idle_cost == pytest.approx(10 * 60 / 119 + 2.5)
    with pytest.raises(ReportError, match=r"--agent-windows .*nowhere: no such file or folder"):
        build_report([billing], agent_windows=[tmp_path / "nowhere"])


def test_month_keeps_other_months_lines_and_windows_out(scenario, tmp_path):
    billing, windows = scenario
    april = T0 + dt.timedelta(days=31)
    host = HostInfo(
        "i-aaa",
        "g5.12xlarge",
        "us-east-1",
        "spot",
        "aws",
        "ip-10-0-0-5",
        {"finops:fleet": "train-a"},
    )
    later = tmp_path / "april.jsonl"
    later.write_text(
        "".join(window(host, 0, april + dt.timedelta(minutes=m), 1.0).to_line() for m in range(60))
    )
    with billing.open("a") as out:
        end = april + dt.timedelta(hours=1)
        out.write(
            f'{april:%Y-%m-%dT%H:%M:%SZ},{end:%Y-%m-%dT%H:%M:%SZ},Usage,AWS,EC2,i-aaa,"{{""Project"": ""vision""}}",50,50\n'
        )
    idle = build_report([billing], month="2026-03", agent_windows=[windows, later]).idle_gpu
    assert idle is not None
    vision = next(r for r in idle.rows if r.project == "vision")
    assert (vision.cost, vision.idle_cost) == (pytest.approx(20.0), pytest.approx(7.5))
    assert idle.unbilled_gpu_hours == pytest.approx(1.0)  # i-bbb only; April is another report
    april_only = build_report([billing], month="2026-04", agent_windows=[windows, later]).idle_gpu
    assert april_only is not None
    assert [(r.project, r.idle_cost) for r in april_only.rows] == [("vision", pytest.approx(50.0))]


def test_parquet_agent_files_read_as_their_json_lines(scenario, tmp_path):
    """`record_files` hands the report `*.parquet` files too; they were read as JSON text,
    every row skipped and the idle cost 0, with no error."""
    import duckdb

    billing, windows = scenario
    complete = tmp_path / "complete.jsonl"  # the scenario's last line is torn on purpose
    complete.write_text("\n".join(windows.read_text().split("\n")[:-1]) + "\n")
    host = tmp_path / "parquet-host"
    host.mkdir()
    duckdb.sql(
        f"COPY (SELECT * FROM read_json('{complete}', format = 'newline_delimited')) "
        f"TO '{host / 'windows.parquet'}' (FORMAT parquet)"
    )
    from_json = build_report([billing], agent_windows=[complete]).idle_gpu
    from_parquet = build_report([billing], agent_windows=[host]).idle_gpu
    assert from_json is not None and from_parquet is not None
    assert from_parquet.as_dict() == from_json.as_dict()
    assert from_parquet.idle_cost == pytest.approx(10.5)
