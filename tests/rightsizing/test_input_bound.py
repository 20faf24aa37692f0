"""A fleet whose GPUs wait on their input: a larger host or faster storage before any larger
GPU, priced by the real preview (hand-computed prices: g5.2xlarge $1.212/h on demand; the
fleet component pads [g5.xlarge] with g6.xlarge, g6.2xlarge, g5.2xlarge and buys on demand at
the lowest price, g6.xlarge's $0.8048/h; gp3 $0.005 per IOPS-month above 3,000 and $0.04 per
MB/s-month above 125; each node also has a public IPv4 address at $0.005/h, the fleet
network's default egress)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from rightsizing_helpers import fleet, fleet_charges_usd, gpu, run, window_record

from aifinops import catalog
from aifinops.rightsizing import Kind, Settings, TargetReport
from aifinops.rightsizing.spool import read_usage
from aifinops.rightsizing.usage import GpuUsage

HOURS = 730.0
IPV4 = 0.005  # USD per hour and node: the fleet network's public-IPv4 egress
DAY = 86400.0
G5 = fleet(instanceTypes=["g5.xlarge"])
NO_SPOT = Settings(checkpointing=None)


def starved(
    share: float = 0.6,
    causes: dict[str, float] | None = None,
    util: float = 90.0,
    mean: float = 45.0,
) -> GpuUsage:
    """One g5.xlarge GPU (p95 of peaks `util`, mean `mean`) with its host saturated: waiting
    on data in `share` of its diagnosed time (14 days)."""
    base = gpu(
        util=util, mean=mean, memory=10, instance_type="g5.xlarge", cpu=100.0, host_memory=12.0
    )
    diagnosed = 14 * DAY
    waiting = share * diagnosed
    return dataclasses.replace(
        base,
        diagnosed_seconds=diagnosed,
        waiting_on_data_seconds=waiting,
        waiting_causes={c: s * waiting for c, s in (causes or {"cpu": 1.0}).items()},
    )


def only(reports: list[TargetReport]) -> TargetReport:
    assert len(reports) == 1
    return reports[0]


def test_cpu_bound_input_gets_a_larger_host_first_priced_by_the_preview() -> None:
    report = only(run([G5], usages=[starved()], settings=NO_SPOT))
    first = report.on_request[0]
    assert first.kinds == (Kind.LARGER_HOST,)
    assert first.proposed.instance_types == (
        "g5.2xlarge",
        "g5.4xlarge",
        "g5.8xlarge",
        "g5.16xlarge",
    )
    assert first.changes == {
        "instanceTypes": ["g5.2xlarge", "g5.4xlarge", "g5.8xlarge", "g5.16xlarge"]
    }
    extra = fleet_charges_usd(nodes=2, gpus_per_node=1)  # volumes and telemetry: 52.08
    assert report.current_monthly_usd == pytest.approx((0.8048 + IPV4) * 2 * HOURS + extra)
    assert first.proposed.monthly_usd == pytest.approx((1.212 + IPV4) * 2 * HOURS + extra)
    assert first.monthly_saving_usd == pytest.approx((0.8048 - 1.212) * 2 * HOURS)
    assert "4 -> 8 vCPUs and 16 -> 32 GiB host memory per A10G" in first.summary
    # 1,828.90 / 1,234.39 = +48.2 % (instances, IPv4, volumes, telemetry); at most 2x (8 / 4
    # vCPUs; 100 / 45 % would allow 2.2x)
    assert "pays for itself if work per hour rises 48% (at most +100%" in first.why
    assert "GPU waiting on data in 60% of the diagnosed GPU time (CPU saturated)" in first.why
    assert report.evidence is not None
    assert report.evidence.metrics["waiting_on_data_share"] == 0.6
    # a cheaper type is still kept, but none with fewer vCPUs than the saturated host used
    # (4 x 100 % + 20 %): g4dn.2xlarge (8 vCPUs, T4), not the 4-vCPU g4dn.xlarge
    kept = report.recommendation
    assert kept is not None and kept.proposed.instance_type == "g4dn.2xlarge"
    assert all(catalog.lookup(n).vcpus >= 4.8 for n in kept.proposed.instance_types)
    assert report.evidence.metrics["waiting_cause_cpu_share"] == 1.0


def test_page_cache_misses_ask_for_host_memory() -> None:
    usage = starved(causes={"page-cache": 1.0})
    first = only(run([G5], usages=[usage], settings=NO_SPOT)).on_request[0]
    assert first.kinds == (Kind.LARGER_HOST,)
    # 2 x 16 GiB per A10G: g5.2xlarge (32 GiB) is the cheapest; no more vCPUs are asked
    assert first.proposed.instance_type == "g5.2xlarge"
    assert "(page-cache misses)" in first.why and "vCPUs' share" not in first.why


def test_io_stalls_get_priced_storage_advice() -> None:
    report = only(run([G5], usages=[starved(causes={"io": 1.0})], settings=NO_SPOT))
    assert not any(Kind.LARGER_HOST in r.kinds for r in report.on_request)
    (advice,) = report.advice
    # per node (16,000 - 3,000) x 0.005 + (1,000 - 125) x 0.04 = 65 + 35 = $100; 2 nodes
    assert "+200.00 USD/month for 2 node(s)" in advice
    previewed = (0.8048 + IPV4) * 2 * HOURS + fleet_charges_usd(nodes=2, gpus_per_node=1)
    assert f"({200 / previewed:.1%} of the previewed cost" in advice
    assert advice.startswith("GPU waiting on data in 60% of the diagnosed GPU time (I/O stalled)")


def test_no_larger_gpu_for_a_fleet_that_waits() -> None:
    """Saturated-looking by its mean, but waiting on data: no faster GPU is offered."""
    busy = starved(util=99, mean=85)
    busy = dataclasses.replace(busy, util_mean_p95_percent=95.0)
    report = only(run([G5], usages=[busy], settings=NO_SPOT))
    kinds = [k for r in report.on_request for k in r.kinds]
    assert Kind.LARGER_TYPE not in kinds
    refused = [a for a in report.alternatives if a.kinds == (Kind.LARGER_TYPE,)]
    assert refused and "a faster GPU would wait as well" in refused[0].reason
    # the same fleet without the verdicts is throughput-bound and offered a faster GPU
    fed = dataclasses.replace(busy, waiting_on_data_seconds=0.0, waiting_causes={})
    report = only(run([G5], usages=[fed], settings=NO_SPOT))
    assert any(Kind.LARGER_TYPE in r.kinds for r in report.on_request)


@pytest.mark.parametrize("share", [0.0, 0.1])
def test_a_fleet_that_rarely_waits_gets_nothing_of_this(share: float) -> None:
    report = only(run([G5], usages=[starved(share=share)], settings=NO_SPOT))
    assert not any(Kind.LARGER_HOST in r.kinds for r in report.on_request)
    assert report.advice == ()


def test_agent_verdicts_are_read_from_the_export_file(tmp_path: Path) -> None:
    records = []
    for minute in range(10):
        verdict = "waiting-on-data" if minute < 6 else "gpu-busy"
        if minute == 9:
            verdict = "unknown"  # not diagnosed: out of the share
        record = window_record(
            instance_id="i-1", instance_type="g5.xlarge", fleet_name="train-a", gpu_index=0,
            start=1_800_000.0 + 60 * minute, util=40.0, memory_gib=8.0, host_cpu=97.0,
        )  # fmt: skip
        record["input_verdict"] = verdict
        record["input_causes"] = ["cpu", "io"] if minute < 4 else (["cpu"] if minute < 6 else [])
        records.append(record)
    path = tmp_path / "windows.jsonl"
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    (usage,) = read_usage([path])
    assert usage.diagnosed_seconds == 9 * 60
    assert usage.waiting_on_data_seconds == 6 * 60
    assert usage.waiting_causes == {"cpu": 6 * 60, "io": 4 * 60}
    assert usage.host_cpu_p95_percent == 97.0  # the agent's host CPU stats
