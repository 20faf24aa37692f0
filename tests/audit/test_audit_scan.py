"""The read-only audit against moto (in process): what is found, how it is priced, who owns it.

Prices are recomputed here from the catalog rows and the public storage prices, never read
back from the audit's own output.
"""

from __future__ import annotations

import json

import pytest
from audit_scenario import REGION, Scenario, session

from aifinops import catalog
from aifinops.audit import AuditSettings, run_audit
from aifinops.audit.clients import AwsClients
from aifinops.audit.findings import Finding
from aifinops.cli import main


def audit(scenario: Scenario, now: float | None = None) -> list[Finding]:
    settings = AuditSettings(now=now or scenario.now, checkpoint_buckets=("legacy-ckpt",))
    report = run_audit(AwsClients(session=session()), [REGION], settings)
    assert report.errors == []
    return report.findings


@pytest.fixture(scope="module")
def findings(shared_account: Scenario) -> list[Finding]:
    return audit(shared_account)


def by_kind(findings: list[Finding], kind: str) -> dict[str, Finding]:
    return {f.resource_id: f for f in findings if f.kind == kind}


def od_month(instance_type: str) -> float:
    return catalog.lookup(instance_type, REGION, cloud="aws").on_demand_usd_per_hour * 730


def test_idle_gpu_instances_by_gpu_metric_by_cpu_and_unknown(
    shared_account: Scenario, findings: list[Finding]
) -> None:
    found = by_kind(findings, "idle-gpu-instance")
    ids = shared_account.ids
    assert set(found) == {ids["idle"], ids["cpu_idle"], ids["unmeasured"], ids["in_asg"]}
    assert ids["busy"] not in found  # one GPU of four at 90 %
    idle = found[ids["idle"]]
    assert (idle.status, idle.owner) == ("waste", "ml-platform")
    assert idle.monthly_usd == pytest.approx(od_month("g5.xlarge"))
    assert idle.evidence == "peak GPU utilisation 1.0 % over 24 h on 1 GPU(s) (CloudWatch CWAgent)"
    assert idle.plan is not None and idle.plan.action == "stop-instance" and idle.plan.reversible
    cpu = found[ids["cpu_idle"]]
    assert cpu.status == "waste" and cpu.owner == "alice"  # Owner tag before Team
    assert "no GPU metrics; peak CPU 0.30 % under half a vCPU (12.50 %)" in cpu.evidence
    unknown = found[ids["unmeasured"]]
    assert unknown.status == "unknown" and unknown.plan is None
    assert "no GPU metrics" in unknown.evidence
    asg = found[ids["in_asg"]]
    assert asg.plan is None and "Auto Scaling group train-group" in asg.no_action_reason


def test_volumes_unattached_and_of_stopped_instances(
    shared_account: Scenario, findings: list[Finding]
) -> None:
    unattached = by_kind(findings, "unattached-volume")
    gp3 = unattached[shared_account.ids["gp3_volume"]]
    # 500 GiB x $0.08 + 3,000 IOPS over the free 3,000 x $0.005 + 125 MB/s over 125 x $0.04
    assert gp3.monthly_usd == pytest.approx(500 * 0.08 + 3000 * 0.005 + 125 * 0.04)
    assert gp3.owner == "bob"
    assert gp3.plan is not None and gp3.plan.saving_usd_per_month == pytest.approx(60 - 500 * 0.05)
    io2 = unattached[shared_account.ids["io2_volume"]]
    assert io2.monthly_usd == pytest.approx(100 * 0.125 + 1000 * 0.065)
    assert io2.owner == "(unknown)"
    stopped = by_kind(findings, "volume-of-stopped-instance")
    data = stopped[shared_account.ids["stopped_data_volume"]]
    assert data.monthly_usd == pytest.approx(200 * 0.10)
    assert data.plan is not None and data.plan.params["device"] == "/dev/sdf"
    (root,) = [
        f for f in stopped.values() if f.resource_id != shared_account.ids["stopped_data_volume"]
    ]
    assert root.plan is None and root.no_action_reason.startswith("root volume of")


def test_idle_endpoints_scale_to_their_floor(
    shared_account: Scenario, findings: list[Finding]
) -> None:
    found = by_kind(findings, "idle-endpoint")
    assert set(found) == {"idle-ep", "zero-ep"}  # busy-ep had 1,200 invocations
    price = catalog.lookup("ml.g4dn.xlarge", REGION, cloud="aws").on_demand_usd_per_hour
    idle = found["idle-ep"]
    assert idle.monthly_usd == pytest.approx(2 * price * 730)
    assert idle.plan is not None
    assert idle.plan.params["variants"] == [{"name": "main", "from": 2, "to": 1}]
    assert idle.plan.saving_usd_per_month == pytest.approx(price * 730)
    zero = found["zero-ep"]
    assert zero.plan is not None
    assert zero.plan.params["variants"] == [{"name": "main", "from": 3, "to": 0}]


def test_snapshots_and_checkpoints_past_retention(
    shared_account: Scenario, findings: list[Finding]
) -> None:
    snapshots = by_kind(findings, "old-snapshot")
    assert set(snapshots) == {shared_account.ids["old_snapshot"]}  # the AMI's snapshot is in use
    snap = snapshots[shared_account.ids["old_snapshot"]]
    assert snap.monthly_usd == pytest.approx(100 * 0.05)
    assert snap.price_basis.startswith("at most")
    assert snap.plan is not None and not snap.plan.reversible
    checkpoints = by_kind(findings, "expired-checkpoints")
    assert set(checkpoints) == {"s3://train-ckpt-abc/checkpoints/", "s3://legacy-ckpt/checkpoints/"}
    train = checkpoints["s3://train-ckpt-abc/checkpoints/"]
    assert train.plan is not None and train.plan.reversible
    assert len(train.plan.params["keys"]) == shared_account.checkpoint_keys
    assert all(k.startswith("checkpoints/") for k in train.plan.params["keys"])
    assert train.monthly_usd == pytest.approx(shared_account.checkpoint_keys / 1024 * 0.023)
    assert "lifecycle rule 'expire-old-checkpoints' (14 days)" in train.evidence
    legacy = checkpoints["s3://legacy-ckpt/checkpoints/"]
    assert legacy.plan is not None and not legacy.plan.reversible
    assert "fleets' default 14 days" in legacy.evidence


def test_missing_tags_through_the_taggability_registry(
    shared_account: Scenario, findings: list[Finding]
) -> None:
    found = by_kind(findings, "missing-tags")
    web = found[shared_account.ids["web"]]
    assert (web.status, web.evidence) == ("untagged", "missing Team")
    assert found[shared_account.ids["io2_volume"]].evidence == "missing Team, Environment"
    assert found[shared_account.ids["io2_volume"]].monthly_usd == pytest.approx(77.5)
    assert "legacy-ckpt" in found  # bucket without tags, named on the command line
    assert shared_account.ids["idle"] not in found  # fully tagged, ModelVersion included


def test_sorted_by_cost_unpriced_last(shared_account: Scenario, findings: list[Finding]) -> None:
    priced = [f.monthly_usd for f in findings if f.monthly_usd is not None]
    assert priced == sorted(priced, reverse=True)
    first_unpriced = next(i for i, f in enumerate(findings) if f.monthly_usd is None)
    assert all(f.monthly_usd is None for f in findings[first_unpriced:])


def test_young_resources_are_not_waste(shared_account: Scenario) -> None:
    """Judged an hour after they were made, nothing has been idle or old long enough."""
    findings = audit(shared_account, now=shared_account.now - 100 * 86400 + 3600)
    assert [f for f in findings if f.status == "waste"] == []


def test_cli_json_and_markdown(
    shared_account: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["audit", "--now", str(shared_account.now), "--checkpoint-bucket", "legacy-ckpt"]
    assert main([*args, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    kinds = {f["kind"] for f in data["findings"]}
    assert {"idle-gpu-instance", "unattached-volume", "idle-endpoint", "old-snapshot"} <= kinds
    assert data["summary"]["unknown_findings"] == 1
    waste = sum(f["monthly_usd"] or 0 for f in data["findings"] if f["status"] == "waste")
    assert data["summary"]["waste_usd_per_month"] == pytest.approx(waste)
    assert main([*args, "--format", "markdown", "--only", "volumes"]) == 0
    out = capsys.readouterr().out
    assert "| 60.00 | unattached-volume |" in out
    assert "idle-endpoint" not in out


def test_no_credentials_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["audit"]) == 2
    assert capsys.readouterr().err.startswith("error: no AWS credentials found")
    assert main(["audit", "--profile", "nope"]) == 2
    assert (
        "error: --profile 'nope': The config profile (nope) could not be found"
        in capsys.readouterr().err
    )


def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--only", "volumes,snapshot"]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "error: --only 'snapshot': not one of idle-gpu, volumes, endpoints, snapshots, checkpoints, tags (did you mean snapshots?)\n"
    )
    assert main(["audit", "--metrics", "prom:x"]) == 2
    assert "expected cloudwatch or prometheus:URL" in capsys.readouterr().err
    assert main(["audit", "--apply"]) == 2  # stdin is not a terminal under pytest
    assert "add --yes" in capsys.readouterr().err
