"""One case per rule: synthetic usage in, the exact change out, priced by the real preview."""

from __future__ import annotations

import dataclasses
import random

import pytest
from rightsizing_helpers import endpoint, fleet, fleet_charges_usd, gpu, pricer, run, stack

from aifinops import catalog
from aifinops.rightsizing import Kind, Settings, TargetReport, recommend
from aifinops.rightsizing.evidence import fold
from aifinops.rightsizing.spot import Checkpointing

HOURS = 730.0
HOST = {"cpu": 20.0, "host_memory": 10.0}
"""Host evidence: 20% of the vCPUs at p95, 10 GiB host memory at peak."""


def only(reports: list[TargetReport]) -> TargetReport:
    assert len(reports) == 1
    return reports[0]


def kept(reports: list[TargetReport]) -> tuple[Kind, ...]:
    rec = only(reports).recommendation
    return () if rec is None else rec.kinds


NO_SPOT = Settings(checkpointing=None)
"""Jobs that do not checkpoint: no spot step, the type rules alone."""


def test_low_activity_moves_to_a_cheaper_gpu_that_holds_memory_and_demand() -> None:
    usage = gpu(util=20, mean=10, memory=6, **HOST)
    report = only(run([fleet()], usages=[usage], settings=NO_SPOT))
    rec = report.recommendation
    assert rec is not None and rec.kinds == (Kind.SMALLER_ACCELERATOR,)
    assert rec.proposed.instance_type == "g4dn.xlarge"
    assert rec.changes == {"instanceTypes": ["g4dn.xlarge"]}
    # the saving is the preview's delta: the same program run priced before and after
    now = pricer([fleet()])("trainingFleets", 0, {})
    after = pricer([fleet()])("trainingFleets", 0, rec.changes)
    assert rec.monthly_saving_usd == pytest.approx(now.monthly_usd - after.monthly_usd)
    # the fleet component adds g6e.xlarge to the group and buys on-demand at the lowest
    # price: the preview prices today's fleet there, and so does rightsizing
    # (plus each node's public IPv4 address, $0.005/h: the fleet network's egress, and its
    # volumes and telemetry)
    assert report.current_monthly_usd == pytest.approx(
        (1.861 + 0.005) * 2 * HOURS + fleet_charges_usd(nodes=2, gpus_per_node=1)
    )
    assert rec.memory_needed_gib == pytest.approx(7.2)
    # every type the preview may launch holds the peak plus headroom
    for name in rec.proposed.instance_types:
        assert catalog.lookup(name).accelerator_memory_gib >= 7.2
    assert rec.evidence.metrics["gpu_util_p95_of_5min_peaks_percent"] == 20
    assert rec.evidence.metrics["gpu_util_time_weighted_mean_percent"] == 10
    assert rec.work_unit == "V100-hour used"


BIG_HOSTS = ["g5.8xlarge", "g6.8xlarge", "g5.16xlarge", "g6.16xlarge"]
"""Four named types: the fleet component adds none, so today's smallest host has 32 vCPUs
and 128 GiB."""


def test_fewer_vcpus_or_less_host_memory_needs_host_evidence() -> None:
    config = [fleet(instanceTypes=BIG_HOSTS)]
    low = {"util": 20.0, "mean": 10.0, "memory": 6.0, "instance_type": "g5.8xlarge"}
    blind = only(run(config, usages=[gpu(**low)]))  # type: ignore[arg-type]
    for rec in [blind.recommendation, *blind.on_request]:
        if rec is not None:
            for name in rec.proposed.instance_types:
                info = catalog.lookup(name)
                assert info.vcpus >= 32 and info.memory_gib >= 128, name
    assert any("host CPU was not measured" in a.reason for a in blind.alternatives) or any(
        "host CPU was not measured" in a.reason for a in blind.alternatives
    )
    # measured: 20% of 32 vCPUs and 10 GiB at peak leave room for a small host
    seen = only(run(config, usages=[gpu(**low, cpu=20.0, host_memory=10.0)]))  # type: ignore[arg-type]
    assert seen.recommendation is not None
    assert min(catalog.lookup(n).vcpus for n in seen.recommendation.proposed.instance_types) < 32
    # measured near full (90% of 32 vCPUs): no type with fewer vCPUs than today's
    busy = only(run(config, usages=[gpu(**low, cpu=90.0, host_memory=10.0)]))  # type: ignore[arg-type]
    for rec in [busy.recommendation, *busy.on_request]:
        if rec is not None:
            for name in rec.proposed.instance_types:
                assert catalog.lookup(name).vcpus >= 32, name


def test_memory_peak_plus_headroom_rules_out_16_gib_gpus() -> None:
    rec = only(run([fleet()], usages=[gpu(util=20, mean=10, memory=14, **HOST)])).recommendation
    assert rec is not None
    for name in rec.proposed.instance_types:
        assert catalog.lookup(name).accelerator_memory_gib >= 16.8, name


def test_measured_work_prices_the_unit_of_work() -> None:
    usage = gpu(util=20, mean=10, memory=6, work={"steps": 1200.0}, **HOST)
    rec = only(run([fleet()], usages=[usage])).recommendation
    assert rec is not None and rec.work_unit == "steps"
    work = 1200.0 * 2 * HOURS
    assert rec.usd_per_work_before == pytest.approx(rec.current.monthly_usd / work)
    assert rec.usd_per_work_after == pytest.approx(rec.proposed.monthly_usd / work)


def test_idle_gpus_on_the_node_give_fewer_accelerators() -> None:
    usages = [gpu(index=0, util=80, mean=40, memory=12, instance_type="p3.8xlarge", **HOST)]
    usages += [
        gpu(index=i, util=1, memory=0.3, instance_type="p3.8xlarge", **HOST) for i in (1, 2, 3)
    ]
    rec = only(run([fleet(instanceTypes=["p3.8xlarge"])], usages=usages)).recommendation
    assert rec is not None and rec.kinds[0] == Kind.FEWER_ACCELERATORS
    assert rec.summary.startswith("p3.8xlarge -> ")
    assert "at most 1 of 4 GPUs busy per node" in rec.summary
    assert rec.proposed.accelerator_count == 1
    assert rec.monthly_saving_usd > 0.5 * rec.current.monthly_usd


def test_on_demand_checkpointing_fleet_with_acceptable_interruptions_goes_spot() -> None:
    info = catalog.lookup("g4dn.12xlarge")
    assert info.interruption_range == "10-15%"
    usages = [
        gpu(index=i, util=95, mean=85, memory=12, instance_type="g4dn.12xlarge", **HOST)
        for i in range(4)
    ]
    rec = only(run([fleet(instanceTypes=["g4dn.12xlarge"])], usages=usages)).recommendation
    assert rec is not None and rec.kinds == (Kind.SPOT_WITH_FALLBACK,)
    assert rec.changes == {"capacity": "spot-with-fallback", "onDemandBase": 0}
    # on-demand g4dn.12xlarge plus each node's public IPv4 address (the network's egress),
    # volumes and telemetry
    assert rec.current.monthly_usd == pytest.approx(
        (3.912 + 0.005) * 2 * HOURS + fleet_charges_usd(nodes=2, gpus_per_node=4)
    )
    assert rec.monthly_saving_usd == pytest.approx(
        rec.current.monthly_usd - rec.proposed.monthly_usd
    )
    assert "interrupted 10-15% a month" in rec.summary
    # what interruptions redo is shown beside the preview's figure, not hidden in it
    assert 0 < rec.expected_rework_usd < 0.05 * rec.proposed.monthly_usd


def test_no_spot_when_interruptions_would_redo_too_much_or_jobs_do_not_checkpoint() -> None:
    busy = [gpu(util=95, mean=90, memory=12, **HOST)]  # p3.2xlarge: >20% a month
    rare = Settings(checkpointing=Checkpointing(interval_hours=8.0))
    report = only(run([fleet()], usages=busy, settings=rare))
    assert Kind.SPOT_WITH_FALLBACK not in kept([report])
    assert any(
        a.kinds[-1] == Kind.SPOT_WITH_FALLBACK
        and "interrupted >20% a month, checkpoints every 480 min: expected rework" in a.reason
        for a in report.alternatives
    )
    # every 30 minutes the same range redoes little: spot
    assert Kind.SPOT_WITH_FALLBACK in kept(run([fleet()], usages=busy))
    usages = [
        gpu(index=i, util=95, mean=85, memory=12, instance_type="g4dn.12xlarge", **HOST)
        for i in range(4)
    ]
    fleets = [fleet(instanceTypes=["g4dn.12xlarge"])]
    assert kept(run(fleets, usages=usages, settings=Settings(checkpointing=None))) == ()
    assert kept(run(fleets, usages=usages, settings=Settings(max_interruption_index=1))) == ()


def test_inference_endpoint_whose_model_fits_moves_to_inferentia() -> None:
    usages = [gpu(util=60, mean=30, memory=14, instance_type="ml.g5.xlarge", fleet_name="serve-a")]
    rec = only(run(endpoints=[endpoint()], usages=usages)).recommendation
    assert rec is not None and rec.kinds == (Kind.INFERENCE_ACCELERATOR,)
    assert rec.proposed.instance_type == "ml.inf2.xlarge"
    assert rec.changes == {"instanceType": "ml.inf2.xlarge"}
    assert rec.monthly_saving_usd == pytest.approx((1.408 - 0.99) * HOURS)


def test_declared_model_memory_counts_as_peak() -> None:
    usages = [gpu(util=60, mean=30, memory=14, instance_type="ml.g5.xlarge", fleet_name="serve-a")]
    rec = only(run(endpoints=[endpoint(modelMemoryGib=22)], usages=usages)).recommendation
    # 22 GiB + 20% = 26.4 GiB: no 24 GiB GPU, Inferentia2's 32 GiB
    assert rec is not None and rec.memory_needed_gib == pytest.approx(26.4)
    assert rec.proposed.instance_type == "ml.inf2.xlarge"


def test_a_config_the_preview_cannot_run_is_unknown_not_a_saving() -> None:
    usages = [gpu(util=60, mean=30, memory=14, instance_type="ml.g5.xlarge", fleet_name="serve-a")]
    report = only(run(endpoints=[endpoint(modelMemoryGib=30)], usages=usages))
    assert report.status == "unknown" and report.recommendation is None
    assert report.missing[0].startswith("UNKNOWN: the preview cannot price today's config: ")
    assert "model_memory_gib: 30.0 is not allowed" in report.missing[0]


def test_fleet_idle_in_every_hour_scales_to_zero() -> None:
    usages = [gpu(index=i, util=1, memory=0.3, instance_type="g4dn.12xlarge") for i in range(4)]
    report = only(run([fleet(instanceTypes=["g4dn.12xlarge"])], usages=usages))
    rec = report.recommendation
    assert rec is not None and rec.kinds == (Kind.SCALE_TO_ZERO,)
    assert rec.changes == {"nodes": {"min": 0, "desired": 0}}
    assert rec.proposed.monthly_usd == 0
    assert rec.monthly_saving_usd == pytest.approx(rec.current.monthly_usd)
    assert rec.summary.startswith("idle in every one of 336 observed hours over 14.0 days")


def test_busy_part_of_the_time_is_never_scaled_to_zero() -> None:
    usages = [
        gpu(index=i, util=95, mean=85, memory=12, instance_type="g4dn.12xlarge", idle=0.9)
        for i in range(4)
    ]
    config = [fleet(instanceTypes=["g4dn.12xlarge"], capacity="spot-with-fallback")]
    assert Kind.SCALE_TO_ZERO not in kept(run(config, usages=usages))


def test_fewer_nodes_is_offered_on_request_never_kept() -> None:
    usages = [gpu(host="i-1", util=95, mean=85, memory=12, **HOST)]
    usages += [gpu(host=f"i-{n}", util=1, memory=0.3, **HOST) for n in (2, 3, 4)]
    config = [fleet(nodes={"min": 1, "max": 4, "desired": 4})]
    report = only(run(config, usages=usages, settings=NO_SPOT))
    assert report.recommendation is None or Kind.FEWER_NODES not in report.recommendation.kinds
    (cut,) = [r for r in report.on_request if Kind.FEWER_NODES in r.kinds]
    # one busy host, plus 20% headroom, rounds up to two
    assert cut.changes["nodes"] == {"desired": 2, "min": 1}
    assert "4 -> 2 nodes: at most 1 busy in the same hour (+20%)" in cut.summary
    assert cut.monthly_saving_usd > 0 and cut.why.startswith("cuts capacity")


def test_no_capacity_cut_while_demand_rises() -> None:
    # busy hosts: one in the first week, two at once in the second
    early = gpu(host="i-1", util=95, mean=85, memory=12, **HOST)
    late = gpu(host="i-2", util=95, mean=85, memory=12, idle=0.5, **HOST)
    late = dataclasses.replace(late, busy_hours=frozenset(sorted(early.observed_hours)[200:]))
    idle = [gpu(host=f"i-{n}", util=1, memory=0.3, **HOST) for n in (3, 4, 5)]
    config = [fleet(nodes={"min": 1, "max": 5, "desired": 5})]
    report = only(run(config, usages=[early, late, *idle], settings=NO_SPOT))
    assert not [r for r in report.on_request if Kind.FEWER_NODES in r.kinds]
    assert any("demand is rising" in a.reason for a in report.alternatives)


def test_a_slower_gpu_needs_a_day_of_work_to_size_on() -> None:
    brief = gpu(util=20, mean=10, memory=6, idle=0.95, **HOST)  # 17 busy hours in 14 days
    report = only(run([fleet()], usages=[brief], settings=NO_SPOT))
    for rec in [report.recommendation, *report.on_request]:
        if rec is not None:
            for name in rec.proposed.instance_types:
                assert catalog.lookup(name).accelerator_info.relative_training_throughput >= 1.0
    assert any("seen in only 17 hours of work (need 24)" in a.reason for a in report.alternatives)


def test_memory_near_full_is_a_cost_shown_not_a_saving_kept() -> None:
    usages = [gpu(util=70, mean=35, memory=23, instance_type="g5.xlarge")]
    report = only(run([fleet(instanceTypes=["g5.xlarge"])], usages=usages))
    (larger,) = report.on_request
    assert larger.kinds == (Kind.LARGER_TYPE,)
    assert larger.proposed.instance_type == "g6e.xlarge"
    assert larger.monthly_saving_usd < 0
    assert larger.summary.startswith("g5.xlarge -> g6e.xlarge: memory peak 23.0 of 24 GiB")
    assert report.recommendation is None or (
        report.recommendation.proposed.accelerator_memory_gib >= 24
    )


def test_throughput_bound_fleet_is_offered_speed_for_money() -> None:
    usages = [gpu(util=100, mean=95, memory=12, sm=0.9, sm_mean=0.8, instance_type="g5.xlarge")]
    report = only(run([fleet(instanceTypes=["g5.xlarge"])], usages=usages))
    (larger,) = report.on_request
    assert larger.speed_ratio > 1.2
    assert "throughput-bound: time-weighted mean 95%, busy 100% of hours" in larger.summary
    # priced per unit of work only because the fleet is throughput-bound
    assert larger.usd_per_work_after is not None and larger.usd_per_work_before is not None


def test_bursts_are_not_throughput() -> None:
    # p95 of 5-minute peaks 100%, time-weighted mean 4%: no faster type, a cheaper one
    usages = [gpu(util=100, mean=4, mean_p95=7, memory=6, instance_type="g5.xlarge")]
    report = only(run([fleet(instanceTypes=["g5.xlarge"])], usages=usages))
    assert report.on_request == ()
    assert Kind.LARGER_TYPE not in kept([report])
    assert any("bursts, not a throughput-bound fleet" in a.reason for a in report.alternatives)


def test_saturated_gpus_with_full_memory_keep_memory_and_gpus() -> None:
    usages = [
        gpu(
            index=i, util=100, mean=97, memory=75, sm=0.95, sm_mean=0.9, instance_type="p5.48xlarge"
        )
        for i in range(8)
    ]
    report = only(run([fleet(instanceTypes=["p5.48xlarge"])], usages=usages))
    for rec in [report.recommendation, *report.on_request]:
        if rec is None:
            continue
        for name in rec.proposed.instance_types:
            info = catalog.lookup(name)
            assert info.accelerator_count >= 8 and info.accelerator_memory_gib >= 80, name


def test_unmeasured_memory_never_shrinks() -> None:
    report = only(run([fleet()], usages=[gpu(util=20, mean=10, memory=None, **HOST)]))
    for rec in [report.recommendation, *report.on_request]:
        if rec is not None:
            assert rec.proposed.accelerator_memory_gib >= 16


def test_too_few_days_or_hours_is_insufficient_data_with_what_is_missing() -> None:
    short = only(run([fleet()], usages=[gpu(util=20, mean=10, memory=6, days=3)]))
    assert short.status == "insufficient-data" and short.recommendation is None
    assert short.missing == ("3.0 days covered (need at least 7)",)
    gappy = only(run([fleet()], usages=[gpu(util=20, mean=10, memory=6, observed_share=0.5)]))
    assert gappy.status == "insufficient-data"
    assert gappy.missing == ("50% of the hours observed (need at least 80%)",)
    nothing = only(run([fleet()], usages=[]))
    assert nothing.missing == (
        "no usage matched (agent tag finops:fleet=train-a, or a host of type p3.2xlarge)",
    )


def test_competing_changes_keep_the_best_saving_and_say_why_the_others_lost() -> None:
    report = only(run([fleet()], usages=[gpu(util=20, mean=10, memory=6, **HOST)]))
    rec = report.recommendation
    assert rec is not None
    others = [a for a in report.alternatives if a.monthly_saving_usd is not None]
    assert others, report.alternatives
    for alt in others:
        assert alt.monthly_saving_usd <= rec.monthly_saving_usd + 0.005  # type: ignore[operator]
        assert alt.reason


def test_a_source_with_only_peaks_moves_to_no_slower_gpu() -> None:
    usage = gpu(util=20, mean=None, mean_p95=None, memory=6, **HOST)
    report = only(run([fleet()], usages=[usage]))
    for rec in [report.recommendation, *report.on_request]:
        if rec is not None:
            for name in rec.proposed.instance_types:
                assert catalog.lookup(name).accelerator_info.relative_training_throughput >= 1.0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"headroom 1\.5: allowed 0 to 1"):
        recommend(stack([fleet()]), [], pricer([fleet()]), Settings(headroom=1.5))


def test_no_kept_change_cuts_memory_below_peak_plus_headroom_or_gpus_below_busy() -> None:
    rng = random.Random(7)
    types = ["p3.8xlarge", "g5.12xlarge", "g4dn.12xlarge", "g6.xlarge", "g5.xlarge"]
    settings = Settings(checkpointing=Checkpointing())
    checked = 0
    for _ in range(12):
        name = rng.choice(types)
        info = catalog.lookup(name)
        usages = []
        for i in range(int(info.accelerator_count)):
            util = rng.choice([0.0, rng.uniform(5, 100)])
            usages.append(
                gpu(
                    index=i,
                    util=util,
                    mean=util * rng.uniform(0.05, 1.0),
                    memory=rng.uniform(0.2, info.accelerator_memory_gib),
                    instance_type=name,
                    **HOST,
                )
            )
        folded = fold(usages)
        report = only(run([fleet(instanceTypes=[name])], usages=usages, settings=settings))
        for rec in [report.recommendation]:
            if rec is None or rec.kinds == (Kind.SCALE_TO_ZERO,):
                continue
            assert folded.gpu_memory_peak_gib is not None
            for proposed in rec.proposed.instance_types:
                row = catalog.lookup(proposed)
                assert row.accelerator_memory_gib >= folded.gpu_memory_peak_gib * 1.2 - 1e-9
                assert row.accelerator_count >= folded.busy_gpus_per_node
            checked += 1
    assert checked >= 5
