"""One case per recommendation type: synthetic usage in, the exact recommendation out."""

from __future__ import annotations

import random

import pytest
from rightsizing_helpers import endpoint, fleet, gpu, stack

from finops import catalog
from finops.rightsizing import Kind, Recommendation, Settings, recommend, recommend_host
from finops.rightsizing.recommend import fold, is_memory_safe
from finops.rightsizing.spot import Checkpointing

HOURS = 730.0


def only(recommendations: list[Recommendation], kind: Kind) -> Recommendation:
    found = [r for r in recommendations if r.kind == kind]
    assert len(found) == 1, [r.kind for r in recommendations]
    return found[0]


def test_low_activity_moves_to_a_smaller_accelerator_that_holds_peak_memory_plus_headroom() -> None:
    recs = recommend(stack([fleet()]), [gpu(util=20, memory=6)])
    assert [r.kind for r in recs] == [Kind.SMALLER_ACCELERATOR]
    rec = recs[0]
    assert rec.proposed.instance_type == "g4dn.xlarge"
    assert rec.changes == {"instanceTypes": ["g4dn.xlarge"]}
    assert rec.monthly_saving_usd == pytest.approx((3.06 - 0.526) * 2 * HOURS)
    assert rec.memory_needed_gib == pytest.approx(7.2)
    assert rec.evidence.metrics["gpu_util_p95_of_5min_peaks_percent"] == 20
    assert rec.evidence.window_end - rec.evidence.window_start == 14 * 86400
    # catalog throughput stands in for work: V100-hours used = throughput x mean utilisation
    assert rec.work_unit == "V100-hour used"
    assert rec.usd_per_work_before == pytest.approx(3.06 / (1.0 * 0.10))
    assert rec.usd_per_work_after == pytest.approx(0.526 / (1.0 * 0.10))


def test_smaller_accelerator_is_refused_when_peak_memory_plus_headroom_does_not_fit() -> None:
    # 14 GiB peak + 20% = 16.8 GiB: no 16 GiB T4; the cheapest 24 GiB GPU type wins
    rec = only(recommend(stack([fleet()]), [gpu(util=20, memory=14)]), Kind.SMALLER_ACCELERATOR)
    assert rec.proposed.accelerator_memory_gib >= 16.8
    assert rec.proposed.instance_type == "g6.xlarge"


def test_measured_work_reports_price_the_unit_of_work() -> None:
    rec = recommend(stack([fleet()]), [gpu(util=20, memory=6, work={"steps": 1200.0})])[0]
    assert rec.work_unit == "steps"
    assert rec.usd_per_work_before == pytest.approx(3.06 / 1200)
    assert rec.usd_per_work_after == pytest.approx(0.526 / 1200)


def test_idle_gpus_on_the_node_give_fewer_accelerators() -> None:
    usages = [gpu(index=0, util=80, memory=12, instance_type="p3.8xlarge")]
    usages += [gpu(index=i, util=1, memory=0.3, instance_type="p3.8xlarge") for i in (1, 2, 3)]
    recs = recommend(stack([fleet(instanceTypes=["p3.8xlarge"])]), usages)
    assert [r.kind for r in recs] == [Kind.FEWER_ACCELERATORS]
    # one busy V100: a single L40S (1.67 x V100, 48 GiB) is cheaper than a single V100
    assert recs[0].proposed.instance_type == "g6e.xlarge"
    assert recs[0].summary == (
        "p3.8xlarge -> g6e.xlarge: at most 1 of 4 GPUs busy per node "
        "(1 x L40S at least as fast each)"
    )
    assert recs[0].monthly_saving_usd == pytest.approx((12.24 - 1.861) * 2 * HOURS)


def test_fewer_accelerators_of_the_same_model() -> None:
    usages = [gpu(index=i, util=90, memory=12, instance_type="g4dn.12xlarge") for i in (0,)]
    usages += [gpu(index=i, util=0, memory=0.2, instance_type="g4dn.12xlarge") for i in (1, 2, 3)]
    config = stack([fleet(instanceTypes=["g4dn.12xlarge"], capacity="spot-with-fallback")])
    rec = only(recommend(config, usages), Kind.FEWER_ACCELERATORS)
    assert rec.proposed.instance_type == "g4dn.xlarge"
    assert rec.summary == "g4dn.12xlarge -> g4dn.xlarge: at most 1 of 4 GPUs busy per node"


def test_on_demand_checkpointing_fleet_with_acceptable_interruptions_goes_spot() -> None:
    info = catalog.lookup("g4dn.12xlarge")
    assert info.interruption_range == "10-15%"
    usages = [gpu(index=i, util=85, memory=12, instance_type="g4dn.12xlarge") for i in range(4)]
    recs = recommend(stack([fleet(instanceTypes=["g4dn.12xlarge"])]), usages)
    assert [r.kind for r in recs] == [Kind.SPOT_WITH_FALLBACK]
    rec = recs[0]
    assert rec.changes == {"capacity": "spot-with-fallback", "onDemandBase": 0}
    assert rec.current.monthly_usd == pytest.approx(3.912 * 2 * HOURS)
    # spot price plus the expected rework at the 10-15% range (hazard -ln(0.85)/730 per hour)
    assert 1.4083 * 2 * HOURS < rec.proposed.monthly_usd < 1.4083 * 1.001 * 2 * HOURS
    assert "interrupted 10-15% a month" in rec.summary


def test_no_spot_when_the_range_is_too_high_or_jobs_do_not_checkpoint() -> None:
    busy = [gpu(util=85, memory=12)]  # p3.2xlarge: >20% a month
    assert recommend(stack([fleet()]), busy) == []
    usages = [gpu(index=i, util=85, memory=12, instance_type="g4dn.12xlarge") for i in range(4)]
    config = stack([fleet(instanceTypes=["g4dn.12xlarge"])])
    assert recommend(config, usages, Settings(checkpointing=None)) == []
    assert recommend(config, usages, Settings(max_interruption_index=1)) == []


def test_inference_endpoint_whose_model_fits_moves_to_inferentia() -> None:
    usages = [gpu(util=60, memory=14, instance_type="ml.g5.xlarge", fleet_name="serve-a")]
    recs = recommend(stack(endpoints=[endpoint()]), usages)
    assert [r.kind for r in recs] == [Kind.INFERENCE_ACCELERATOR]
    assert recs[0].proposed.instance_type == "ml.inf2.xlarge"
    assert recs[0].changes == {"instanceType": "ml.inf2.xlarge"}
    assert recs[0].monthly_saving_usd == pytest.approx((1.408 - 0.99) * HOURS)


def test_declared_model_memory_counts_as_peak_for_the_fit() -> None:
    usages = [gpu(util=60, memory=14, instance_type="ml.g5.xlarge", fleet_name="serve-a")]
    recs = recommend(stack(endpoints=[endpoint(modelMemoryGib=30)]), usages)
    # 30 GiB + 20% fits neither 32 GiB of Inferentia2 nor the 24 GiB A10G it runs on
    assert [(r.kind, r.proposed.instance_type) for r in recs] == [
        (Kind.LARGER_TYPE, "ml.g6e.xlarge")
    ]


def test_fleet_idle_for_long_stretches_scales_to_zero() -> None:
    usages = [
        gpu(index=i, util=85, memory=12, instance_type="g4dn.12xlarge", idle=0.6) for i in range(4)
    ]
    config = stack([fleet(instanceTypes=["g4dn.12xlarge"], capacity="spot-with-fallback")])
    recs = recommend(config, usages)
    assert [r.kind for r in recs] == [Kind.SCALE_TO_ZERO]
    rec = recs[0]
    assert rec.changes == {"nodes": {"min": 0, "desired": 0}}
    assert rec.monthly_saving_usd == pytest.approx(rec.current.monthly_usd * 0.6)
    assert rec.summary == "idle 60% of hours: scale to zero when idle (min 0)"


def test_memory_near_full_gives_a_larger_type() -> None:
    recs = recommend(
        stack([fleet(instanceTypes=["g5.xlarge"])]),
        [gpu(util=70, memory=23, instance_type="g5.xlarge")],
    )
    assert [r.kind for r in recs] == [Kind.LARGER_TYPE]
    rec = recs[0]
    assert rec.proposed.instance_type == "g6e.xlarge"
    assert rec.proposed.accelerator_memory_gib >= 23 * 1.2
    assert rec.monthly_saving_usd == pytest.approx((1.006 - 1.861) * 2 * HOURS)
    assert rec.summary == "g5.xlarge -> g6e.xlarge: memory peak 23.0 of 24 GiB"


def test_saturated_gpus_give_a_larger_type_and_no_downsizing() -> None:
    usages = [gpu(util=97, memory=12, sm=0.9, instance_type="g5.xlarge")]
    recs = recommend(stack([fleet(instanceTypes=["g5.xlarge"])]), usages)
    assert [r.kind for r in recs] == [Kind.LARGER_TYPE]
    assert recs[0].summary == (
        "g5.xlarge -> g6e.xlarge: GPU p95 97%, priced at the same work (2.74x faster)"
    )
    # the same work on 2.74x the throughput takes 1/2.74 of the node-hours
    assert recs[0].proposed.monthly_usd == pytest.approx(1.861 * 2 * HOURS * 0.61 / 1.67)
    # more work per hour on the larger type: cost per unit of work falls though the bill rises
    assert recs[0].usd_per_work_after < recs[0].usd_per_work_before  # type: ignore[operator]


def test_unmeasured_memory_never_shrinks() -> None:
    assert recommend(stack([fleet()]), [gpu(util=20, memory=None)]) == []


def test_no_recommendation_ever_puts_memory_below_peak_plus_headroom() -> None:
    rng = random.Random(7)
    types = [
        "p3.2xlarge",
        "p3.8xlarge",
        "g5.12xlarge",
        "g4dn.12xlarge",
        "p4d.24xlarge",
        "g6.xlarge",
    ]
    settings = Settings(checkpointing=Checkpointing())
    checked = 0
    for _ in range(150):
        name = rng.choice(types)
        info = catalog.lookup(name)
        usages = [
            gpu(
                index=i,
                util=rng.choice([0.0, rng.uniform(0, 100)]),
                memory=rng.uniform(0, info.accelerator_memory_gib),
                instance_type=name,
            )
            for i in range(int(info.accelerator_count))
        ]
        folded = fold(usages, settings.busy_gpu_util_percent)
        for rec in recommend_host(name, usages, settings):
            if rec.proposed.instance_type == name:
                continue  # spot or scale-to-zero: the memory is what it was
            proposed = catalog.lookup(rec.proposed.instance_type)
            assert is_memory_safe(proposed, folded, 0.0) or rec.kind == Kind.LARGER_TYPE
            assert proposed.accelerator_memory_gib >= folded.gpu_memory_peak_gib * 1.2 - 1e-9  # type: ignore[operator]
            checked += 1
    assert checked > 50
