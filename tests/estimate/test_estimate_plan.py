"""`finops estimate`: plans checked against figures computed by hand from the catalog.

Catalog (us-east-1): g5.xlarge $1.006/h on demand, $0.4125/h spot, Spot Advisor range 4
(>20 %); g5.2xlarge $1.212, spot $0.509, range 3 (15-20 %); p5.48xlarge $55.04 (8 x H100);
ml.g5.xlarge $1.408 and ml.g5.12xlarge $7.09 (SageMaker); S3 Standard $0.023/GB-month.
Accelerators: A10G 70 TFLOPS dense BF16, A100 312, H100 989.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from aifinops.estimate import parse, plan

HOUR_WRITE = 1 / 60  # checkpoint write
RELAUNCH = 10 / 60


def proposal(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "small-lm",
        "months": 2,
        "environment": "prod",
        "tags": {"Project": "vision", "Team": "ml-platform"},
        "clouds": ["aws"],
        "capacity": ["on-demand"],
        "training": {
            "tokens": 1e10,
            "modelParams": 1e8,
            "accelerators": ["A10G"],
            "acceleratorsPerNode": 1,
        },
        "storage": {"datasetGib": 100},
    }
    base.update(changes)
    return base


def on_demand_wall(work_hours: float, interval: float = 0.5) -> float:
    """Work plus one checkpoint write per started interval."""
    return work_hours + math.ceil(work_hours / interval - 1e-9) * HOUR_WRITE


def test_training_by_tokens_on_demand() -> None:
    result = plan(parse(proposal()))
    best = result.best
    assert best is not None and best.training is not None
    # 6 x 1e8 x 1e10 = 6e18 FLOPs / (70e12 x 0.40 x 3600) = 59.5238 A10G-hours
    accelerator_hours = 6e18 / (70e12 * 0.40 * 3600)
    assert best.training.accelerator_hours == pytest.approx(accelerator_hours)
    assert best.training.instance_type == "g5.xlarge"  # the cheapest 1 x A10G node
    wall = on_demand_wall(accelerator_hours)  # 59.5238 + 120 x 1/60 = 61.5238 h
    assert best.training.wall_hours_per_run == pytest.approx(wall)
    assert best.training.total_usd == pytest.approx(wall * 1.006)  # $61.89
    assert best.storage.monthly_usd == pytest.approx(100 * 0.023)
    assert best.total_usd == pytest.approx(wall * 1.006 + 2 * 100 * 0.023)
    assert best.monthly_usd == pytest.approx(best.total_usd / 2)
    assert result.usd_per_unit(best) == {"1M training tokens": pytest.approx(wall * 1.006 / 1e4)}
    # the other 1 x A10G sizes (g5.2xlarge ... g5.16xlarge) follow, dearer
    assert [o.training.instance_type for o in result.options[:2] if o.training] == [
        "g5.xlarge",
        "g5.2xlarge",
    ]


def spot_wall(work_hours: float, monthly_share: float, life_hours: float = 24.0) -> float:
    """Expected wall hours (Young/Daly segments) at the hazard -ln(1 - share) / life."""
    hazard = -math.log(1 - monthly_share) / life_hours
    full = int(work_hours // 0.5)
    rest = work_hours - full * 0.5
    segments = [0.5] * full + ([rest] if rest > 1e-12 else [])
    return sum((1 / hazard + RELAUNCH) * math.expm1(hazard * (s + HOUR_WRITE)) for s in segments)


def test_training_on_spot_pays_the_expected_rework() -> None:
    result = plan(parse(proposal(capacity=["spot"])))
    work = 6e18 / (70e12 * 0.40 * 3600)
    xlarge = spot_wall(work, 0.30) * 0.4125  # range 4 -> 30 % a month
    two_xlarge = spot_wall(work, 0.20) * 0.509  # range 3 -> 20 % a month
    totals = {o.training.instance_type: o.training.total_usd for o in result.options if o.training}
    assert totals["g5.xlarge"] == pytest.approx(xlarge)
    assert totals["g5.2xlarge"] == pytest.approx(two_xlarge)
    assert result.best is not None and result.best.training is not None
    assert result.best.training.instance_type == "g5.xlarge"  # $26.8 against $31.8
    assert result.best.training.expected_interruptions_per_run > 0


def test_training_by_gpu_hours_moves_between_accelerators() -> None:
    training = {
        "gpuHours": 1000,
        "gpuHoursOn": "A100",
        "accelerators": ["H100"],
        "acceleratorsPerNode": 8,
    }
    result = plan(parse(proposal(training=training, storage={})))
    best = result.best
    assert best is not None and best.training is not None
    # 1000 A100-hours x 312 / 989 TFLOPS = 315.47 H100-hours: 39.43 h of a p5.48xlarge
    h100_hours = 1000 * 312 / 989
    assert best.training.accelerator_hours == pytest.approx(h100_hours)
    assert best.training.instance_type == "p5.48xlarge"
    wall = on_demand_wall(h100_hours / 8)
    assert best.training.total_usd == pytest.approx(wall * 55.04)
    assert result.usd_per_unit(best) == {
        "A100-hour of training": pytest.approx(wall * 55.04 / 1000)
    }


def test_inference_replicas_and_cost_per_request() -> None:
    inference = {
        "requestsPerSecond": 30,
        "tokensPerRequest": 500,
        "modelParams": 1e9,
        "accelerators": ["A10G"],
    }
    result = plan(parse(proposal(training=None, inference=inference, storage={})))
    best = result.best
    assert best is not None and best.inference is not None
    # need 30 x 500 x 2 x 1e9 = 3e13 FLOP/s; one A10G at 20 % = 1.4e13: 3 replicas of 1 GPU,
    # against one ml.g5.12xlarge (4 x 1.4e13): 3 x $1.408 < $7.09 an hour
    assert best.inference.instance_type == "ml.g5.xlarge"
    assert best.inference.replicas == 3
    assert best.inference.monthly_usd == pytest.approx(3 * 1.408 * 730)
    assert best.total_usd == pytest.approx(2 * 3 * 1.408 * 730)
    requests = 30 * 3600 * 730
    assert result.usd_per_unit(best) == {
        "1M requests": pytest.approx(3 * 1.408 * 730 / (requests / 1e6)),
        "1M tokens served": pytest.approx(3 * 1.408 * 730 / (requests * 500 / 1e6)),
    }
    by_type = {o.inference.instance_type: o for o in result.options if o.inference}
    assert by_type["ml.g5.12xlarge"].inference.replicas == 1


def test_model_states_must_fit_the_nodes() -> None:
    # 7e9 params x 16 bytes = 104.3 GiB of model states: not on one 24 GiB A10G
    training = {"tokens": 1e9, "modelParams": 7e9, "accelerators": ["A10G"]}
    result = plan(parse(proposal(training=training)))
    assert all(o.training.accelerator_count >= 5 for o in result.options if o.training)
    training["acceleratorsPerNode"] = 1
    result = plan(parse(proposal(training=training)))
    assert result.options == []
    assert "104 GiB of model states over 1 node(s)" in result.dropped[0]


def test_three_clouds_and_storage_prices() -> None:
    p = proposal(
        clouds=["aws", "gcp", "azure"],
        training={"tokens": 1e10, "modelParams": 1e8, "accelerators": ["A100-80GB"]},
        storage={"datasetGib": 1000},
    )
    result = plan(parse(p))
    clouds = {o.cloud: o for o in result.options}
    assert set(clouds) == {"aws", "gcp", "azure"}
    assert clouds["aws"].storage.monthly_usd == pytest.approx(1000 * 0.023)
    assert clouds["gcp"].storage.monthly_usd == pytest.approx(1000 * 0.020)
    assert clouds["azure"].storage.monthly_usd == pytest.approx(1000 * 0.0184)


def test_a_region_without_a_storage_price_is_said() -> None:
    p = proposal(clouds=["azure"], regions={"azure": "westeurope"}, training={
        "tokens": 1e10, "modelParams": 1e8, "accelerators": ["A100-80GB"]})  # fmt: skip
    result = plan(parse(p))
    assert result.options and result.options[0].storage.monthly_usd is None
    assert any("no object storage price" in why for why in result.dropped)


def test_training_longer_than_the_proposal_ranks_after_those_that_fit() -> None:
    # 6e21 FLOPs on one A10G node: 59,524 h, far more than 2 months
    training = {"tokens": 1e13, "modelParams": 1e8, "accelerators": ["A10G"]}
    result = plan(parse(proposal(training=training)))
    assert result.options and not any(o.fits_schedule for o in result.options)
    assert result.best is None
