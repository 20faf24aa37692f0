"""`finops gate` with hand-computed gains, MLflow histories and per-stage costs from billing."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from aifinops.cli import main
from aifinops.reporting.gate import GateError, decide, read_metrics


def gate(*args: str) -> subprocess.CompletedProcess[str]:
    """`finops gate` in this process (the CLI's own main), with what a subprocess would give."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["gate", *args])
    return subprocess.CompletedProcess(
        ["finops", "gate", *args], code, out.getvalue(), err.getvalue()
    )


def test_as_a_process(metrics):
    baseline, candidate = metrics
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aifinops",
            "gate",
            "--baseline",
            str(baseline),
            "--candidate",
            str(candidate),
            "--metric",
            "accuracy",
            "--min-gain",
            "0.02",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip() == "gate: skip the deployment: gain +0.012 is below --min-gain 0.02"
    )


@pytest.fixture
def metrics(tmp_path: Path) -> tuple[Path, Path]:
    baseline, candidate = tmp_path / "deployed.json", tmp_path / "retrained.json"
    baseline.write_text(json.dumps({"accuracy": 0.900, "loss": 0.30}))
    candidate.write_text(json.dumps({"metrics": {"accuracy": 0.912, "loss": 0.28}}))
    return baseline, candidate


@pytest.fixture
def billing(tmp_path: Path) -> Path:
    path = tmp_path / "billing.csv"

    def tags(**kv: str) -> str:
        return '"' + json.dumps(kv).replace('"', '""') + '"'

    rows = [
        "ChargePeriodStart,ProviderName,ServiceName,Tags,EffectiveCost,BilledCost",
        f"2026-03-01,AWS,EC2,{tags(ModelVersion='v42', Stage='prepare')},10.00,10.00",
        f"2026-03-01,AWS,EC2,{tags(ModelVersion='v42', Stage='train')},110.00,0.00",
        f"2026-03-02,AWS,SageMaker,{tags(ModelVersion='v42', Stage='evaluate')},5.00,5.00",
        f"2026-03-02,AWS,S3,{tags(ModelVersion='v42')},2.00,2.00",
        f"2026-03-01,AWS,EC2,{tags(ModelVersion='v41', Stage='train')},100.00,100.00",
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_gain_threshold_by_hand(metrics):
    baseline, candidate = metrics
    # accuracy 0.900 -> 0.912: gain +0.012
    passed = gate(
        "--baseline",
        str(baseline),
        "--candidate",
        str(candidate),
        "--metric",
        "accuracy",
        "--min-gain",
        "0.01",
    )
    assert passed.returncode == 0, passed.stderr
    assert "gain +0.012" in passed.stdout and "decision: deploy" in passed.stdout
    skipped = gate(
        "--baseline",
        str(baseline),
        "--candidate",
        str(candidate),
        "--metric",
        "accuracy",
        "--min-gain",
        "0.02",
    )
    assert skipped.returncode == 1
    assert "gate: skip the deployment: gain +0.012 is below --min-gain 0.02" in skipped.stderr
    # a loss: 0.30 -> 0.28 is a gain of 0.02
    loss = gate(
        "--baseline",
        str(baseline),
        "--candidate",
        str(candidate),
        "--metric",
        "loss",
        "--lower-is-better",
        "--min-gain",
        "0.015",
        "--format",
        "json",
    )
    assert loss.returncode == 0
    assert json.loads(loss.stdout)["gain"] == pytest.approx(0.02)


def test_cost_per_stage_from_billing_and_gain_per_dollar(metrics, billing):
    baseline, candidate = metrics
    common = [
        "--baseline",
        str(baseline),
        "--candidate",
        str(candidate),
        "--metric",
        "accuracy",
        "--min-gain",
        "0.01",
        "--cost",
        str(billing),
        "--run",
        "ModelVersion=v42",
        "--format",
        "json",
    ]
    # v42 costs 10 + 110 + 5 + 2 (untagged stage) = 127; 0.012 / 127 = 9.449e-05 per dollar
    result = gate(*common, "--min-gain-per-dollar", "0.0001")
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert out["cost"] == 127.0
    assert {s["stage"]: s["cost"] for s in out["stages"]} == {
        "train": 110.0,
        "prepare": 10.0,
        "evaluate": 5.0,
        "(no Stage tag)": 2.0,
    }
    assert out["gainPerUsd"] == pytest.approx(0.012 / 127)
    assert out["decision"] == "skip"
    assert gate(*common, "--min-gain-per-dollar", "0.00009").returncode == 0
    # billed, not amortised: train was covered by a commitment (billed 0)
    billed = gate(*common, "--cost-column", "BilledCost")
    assert json.loads(billed.stdout)["cost"] == 17.0


def test_mlflow_histories_take_the_latest_step(tmp_path):
    run = tmp_path / "mlruns" / "0" / "abc123"
    (run / "metrics").mkdir(parents=True)
    # timestamp value step; written out of order: step 3 is the latest, whatever the time
    (run / "metrics" / "val_acc").write_text("1000 0.70 1\n3000 0.91 3\n4000 0.80 2\n")
    assert read_metrics(run) == {"val_acc": 0.91}
    assert read_metrics(run / "metrics" / "val_acc") == {"val_acc": 0.91}
    rest = tmp_path / "run.json"
    rest.write_text(
        json.dumps(
            {
                "run": {
                    "data": {
                        "metrics": [
                            {"key": "val_acc", "value": 0.5, "timestamp": 9, "step": 1},
                            {"key": "val_acc", "value": 0.7, "timestamp": 1, "step": 2},
                        ]
                    }
                }
            }
        )
    )
    assert read_metrics(rest) == {"val_acc": 0.7}
    describe = tmp_path / "describe.json"
    describe.write_text(
        json.dumps(
            {"info": {"run_id": "abc"}, "data": {"metrics": {"val_acc": 0.66}, "params": {}}}
        )
    )
    assert read_metrics(describe) == {"val_acc": 0.66}


def test_errors_are_one_line_and_exit_2(metrics, billing, tmp_path):
    baseline, candidate = metrics
    typo = gate(
        "--baseline",
        str(baseline),
        "--candidate",
        str(candidate),
        "--metric",
        "acuracy",
        "--min-gain",
        "0",
    )
    assert typo.returncode == 2
    assert "no metric 'acuracy' (did you mean accuracy?" in typo.stderr
    ambiguous = gate("--baseline", str(baseline), "--candidate", str(candidate), "--min-gain", "0")
    assert ambiguous.returncode == 2
    assert "share 2 metrics (accuracy, loss): name one" in ambiguous.stderr
    no_cost = gate(
        "--baseline",
        str(baseline),
        "--candidate",
        str(candidate),
        "--metric",
        "accuracy",
        "--min-gain",
        "0",
        "--min-gain-per-dollar",
        "1",
    )
    assert (no_cost.returncode, no_cost.stderr.strip()) == (
        2,
        "error: --min-gain-per-dollar needs --cost (a number or FOCUS billing data)",
    )
    unknown_run = gate(
        "--baseline",
        str(baseline),
        "--candidate",
        str(candidate),
        "--metric",
        "accuracy",
        "--min-gain",
        "0",
        "--cost",
        str(billing),
        "--run",
        "ModelVersion=v99",
    )
    assert unknown_run.returncode == 2
    assert (
        "no billing line carries ModelVersion=v99: the run's cost is unknown" in unknown_run.stderr
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"accuracy": "high"}')
    result = gate(
        "--baseline",
        str(broken),
        "--candidate",
        str(candidate),
        "--metric",
        "accuracy",
        "--min-gain",
        "0",
    )
    assert result.returncode == 2 and "broken.json: accuracy: not a number" in result.stderr
    assert "Traceback" not in result.stderr + unknown_run.stderr + typo.stderr


def test_decide_with_a_given_cost():
    result = decide("acc", 0.8, 0.9, 0.05, cost=Decimal("200"), min_gain_per_usd=0.001)
    assert result.passed is False
    assert result.reasons == [
        "gain per dollar 0.0005 is below --min-gain-per-dollar 0.001 (cost 200.00)"
    ]
    with pytest.raises(GateError):
        decide("acc", 0.8, 0.9, 0.05, min_gain_per_usd=0.001)
