"""`--apply` and `--undo` end to end against moto (in process), and what the record keeps.

One module-scoped run does scan -> apply -> undo with every API call recorded; the tests read
the account's state after each step. Failures are injected per request with botocore's
`before-send` hook, so botocore handles them exactly as real AWS answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from audit_scenario import (
    REGION,
    Run,
    Scenario,
    audit_settings,
    refuse,
    session,
    state,
)

from aifinops.audit import remediate, run_audit
from aifinops.audit.clients import AwsClients
from aifinops.audit.record import Record
from aifinops.cli import main


def test_one_confirmation_per_action_class(run: Run) -> None:
    classes = [q.split(":")[0] for q in run.questions[:5]]
    assert classes == [
        "stop idle GPU instances",
        "snapshot, then delete unused EBS volumes",
        "scale idle SageMaker endpoints down to their minimum",
        "delete checkpoints past retention",
        "delete EBS snapshots past retention",
    ]
    assert "this CANNOT be undone" in run.questions[4]
    assert run.questions[0].startswith(
        "stop idle GPU instances: 2 resource(s), saving $1,118/month"
    )
    assert [q.split(":")[0] for q in run.questions[5:]] == [
        "undo scale idle SageMaker endpoints down to their minimum",
        "undo snapshot, then delete unused EBS volumes",
        "undo stop idle GPU instances",
        "undo delete checkpoints past retention",
    ] or len(run.questions) == 9
    assert (run.apply_outcome.done, run.apply_outcome.failed) == (10, 0)


def test_apply_changes_what_it_says(run: Run) -> None:
    ids, after = run.scenario.ids, run.after_apply
    assert after["instances"][ids["idle"]] == "stopped"
    assert after["instances"][ids["cpu_idle"]] == "stopped"
    assert after["instances"][ids["in_asg"]] == "running"  # no action for ASG members
    assert after["instances"][ids["busy"]] == "running"
    for volume in ("gp3_volume", "io2_volume", "stopped_data_volume"):
        assert ids[volume] not in after["volumes"]
    backups = {
        tags["finops:audit-backup-of"]: tags
        for tags in after["snapshots"].values()
        if "finops:audit-backup-of" in tags
    }
    assert set(backups) == {ids["gp3_volume"], ids["io2_volume"], ids["stopped_data_volume"]}
    assert backups[ids["gp3_volume"]]["Owner"] == "bob"  # the volume's tags go with its backup
    assert ids["old_snapshot"] not in after["snapshots"]
    assert after["endpoints"] == {
        "idle-ep": {"main": 1},
        "busy-ep": {"main": 1},
        "zero-ep": {"main": 0},
    }
    assert after["checkpoints"] == {"train-ckpt-abc": 0, "serve-ckpt-xyz": 3, "legacy-ckpt": 0}


def test_undo_reverses_what_the_cloud_allows(run: Run) -> None:
    ids, before, after = run.scenario.ids, run.before, run.after_undo
    assert after["instances"] == before["instances"]
    assert after["endpoints"] == before["endpoints"]
    assert after["checkpoints"] == {"train-ckpt-abc": 30, "serve-ckpt-xyz": 3, "legacy-ckpt": 0}
    restored = {vid: v for vid, v in after["volumes"].items() if vid not in before["volumes"]}
    assert len(restored) == 3
    for old in ("gp3_volume", "io2_volume", "stopped_data_volume"):
        original = before["volumes"][ids[old]]
        (match,) = [
            v
            for v in restored.values()
            if v["tags"] == original["tags"] and v["size"] == original["size"]
        ]
        for key in ("type", "iops", "zone", "attached"):
            assert match[key] == original[key], (old, key)
        if original["type"] == "gp3":
            assert match["throughput"] == original["throughput"]
    assert (run.undo_outcome.done, run.undo_outcome.failed) == (8, 0)


def test_the_record_says_what_was_done_and_undone(run: Run) -> None:
    actions = run.record_after_apply["actions"]
    assert [a["status"] for a in actions] == ["done"] * 10
    assert run.record_after_apply["account"] == "123456789012"
    by_action = {a["action"]: a for a in actions}
    assert by_action["snapshot-delete-volume"]["undo"]["snapshot_id"].startswith("snap-")
    assert by_action["delete-snapshot"]["reversible"] is False
    checkpoint = next(a for a in actions if a["resource_id"] == "s3://train-ckpt-abc/checkpoints/")
    assert len(checkpoint["undo"]["deleted"]) == 30
    assert all(d["marker"] for d in checkpoint["undo"]["deleted"])
    undone = {a["resource_id"]: a["undo_status"] for a in run.record_after_undo["actions"]}
    assert undone[run.scenario.ids["old_snapshot"]] == "not-reversible"
    assert undone["s3://legacy-ckpt/checkpoints/"] == "not-reversible"
    assert undone[run.scenario.ids["idle"]] == "done"


def test_declined_class_is_recorded_and_untouched(account: Scenario, tmp_path: Path) -> None:
    sess = session()
    clients = AwsClients(session=sess)
    report = run_audit(clients, [REGION], audit_settings(account))
    record = Record.create(tmp_path / "r.json", "123456789012", [REGION])
    outcome = remediate.apply(
        report.findings,
        clients,
        record,
        lambda q: q.startswith("scale"),
        only={"scale-endpoint-down", "stop-instance"},
    )
    assert (outcome.done, outcome.declined) == (2, 2)
    statuses = {a["resource_id"]: a["status"] for a in record.actions}
    assert statuses[account.ids["idle"]] == "declined"
    assert state(sess)["instances"][account.ids["idle"]] == "running"
    assert state(sess)["endpoints"]["idle-ep"] == {"main": 1}


def test_partial_failures_do_not_stop_or_lose_the_others(account: Scenario, tmp_path: Path) -> None:
    """StopInstances of one instance is refused, the second of three DeleteObjects batches is
    denied: every other action runs, and the record holds each outcome and each deleted key."""
    from audit_scenario import put_checkpoints

    # replaces the 30 checkpoints: batches of 1,000, 1,000 and 50
    put_checkpoints(None, "train-ckpt-abc", 2050, size=1024)
    sess = session()
    clients = AwsClients(session=sess)
    report = run_audit(clients, [REGION], audit_settings(account))
    batches: list[int] = []

    def decide(service: str, operation: str, params: Any) -> tuple[int, str] | None:
        if operation == "StopInstances" and params["body"]["InstanceId.1"] == account.ids["idle"]:
            return 400, "UnauthorizedOperation"
        bucket = params["context"].get("input_params", {}).get("Bucket")
        if operation == "DeleteObjects" and bucket == "train-ckpt-abc":
            batches.append(1)
            if len(batches) == 2:
                return 403, "AccessDenied"
        return None

    faulty = session()  # hooks reach the clients made after they are registered
    refuser = refuse(faulty, decide)
    record = Record.create(tmp_path / "r.json", "123456789012", [REGION])
    outcome = remediate.apply(report.findings, AwsClients(session=faulty), record, lambda q: True)
    assert len(refuser.refused) == 2
    assert outcome.failed == 2 and outcome.done == 8
    saved = json.loads((tmp_path / "r.json").read_text())
    by_id = {a["resource_id"]: a for a in saved["actions"]}
    idle = by_id[account.ids["idle"]]
    assert idle["status"] == "failed" and "UnauthorizedOperation" in idle["error"]
    assert by_id[account.ids["cpu_idle"]]["status"] == "done"
    train = by_id["s3://train-ckpt-abc/checkpoints/"]
    assert train["status"] == "partial"
    assert "1000 of 2050 objects not deleted" in train["error"]
    assert len(train["undo"]["deleted"]) == 1050
    now = state(sess)
    assert now["checkpoints"]["train-ckpt-abc"] == 1000
    assert now["instances"][account.ids["idle"]] == "running"
    assert now["instances"][account.ids["cpu_idle"]] == "stopped"
    # the partly done deletion is undone too
    undone = remediate.undo(Record.load(tmp_path / "r.json"), clients, lambda q: True)
    assert undone.failed == 0
    assert state(sess)["checkpoints"]["train-ckpt-abc"] == 2050


def test_an_interrupted_apply_leaves_a_record_undo_can_use(
    account: Scenario, tmp_path: Path
) -> None:
    sess = session()
    clients = AwsClients(session=sess)
    report = run_audit(clients, [REGION], audit_settings(account))
    deletes: list[int] = []

    def decide(service: str, operation: str, params: Any) -> tuple[int, str] | None:
        if operation == "DeleteVolume":
            deletes.append(1)
            if len(deletes) == 2:
                raise KeyboardInterrupt  # Ctrl-C while the second volume is being deleted
        return None

    faulty = session()
    refuse(faulty, decide)
    path = tmp_path / "r.json"
    record = Record.create(path, "123456789012", [REGION])
    with pytest.raises(KeyboardInterrupt):
        remediate.apply(report.findings, AwsClients(session=faulty), record, lambda q: True)
    saved = json.loads(path.read_text())
    statuses = [(a["action"], a["status"]) for a in saved["actions"]]
    assert statuses == [
        ("stop-instance", "done"),
        ("stop-instance", "done"),
        ("snapshot-delete-volume", "done"),
        ("snapshot-delete-volume", "started"),
    ]
    assert saved["actions"][3]["undo"]["snapshot_id"].startswith("snap-")  # the backup is known
    outcome = remediate.undo(Record.load(path), AwsClients(session=session()), lambda q: True)
    assert outcome.done == 3
    assert len(outcome.unknown) == 1 and "interrupted" in outcome.unknown[0]


def test_undo_refuses_another_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from moto import mock_aws

    path = tmp_path / "r.json"
    Record.create(path, "999999999999", [REGION])
    with mock_aws():  # an empty account: the check runs before anything else
        assert main(["audit", "--undo", str(path), "--yes"]) == 2
    assert (
        "made in account 999999999999, but the credentials are for account 123456789012"
        in capsys.readouterr().err
    )
    path.write_text("{not json")
    assert main(["audit", "--undo", str(path), "--yes"]) == 2
    assert "not a finops audit record" in capsys.readouterr().err


def test_cli_apply_then_undo(
    account: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "record.json"
    args = ["audit", "--now", str(account.now), "--format", "json", "--only", "idle-gpu,endpoints"]
    assert (
        main([*args, "--apply", "--yes", "--record", str(path), "--actions", "stop-instance"]) == 0
    )
    out = capsys.readouterr()
    assert json.loads(out.out)["summary"]["waste_findings"] == 5
    assert "stop idle GPU instances: 2 resource(s)" in out.err and "yes (--yes)" in out.err
    assert f"reverse with: finops audit --undo {path}" in out.err
    sess = session()
    assert state(sess)["instances"][account.ids["idle"]] == "stopped"
    assert state(sess)["endpoints"]["idle-ep"] == {"main": 2}  # --actions kept it out
    assert main(["audit", "--undo", str(path), "--yes"]) == 0
    assert "undo: 2 reversed, 0 failed" in capsys.readouterr().out
    assert state(sess)["instances"][account.ids["idle"]] == "running"
