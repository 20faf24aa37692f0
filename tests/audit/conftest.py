"""Audit tests run against moto with the account of `audit_scenario` (no default AMIs).

`run` does scan -> apply -> undo once per test process, recording every API call and the
account's state after each step, for the tests that only read what happened."""

from __future__ import annotations

import json
from collections.abc import Iterator

import audit_scenario
import pytest
from audit_scenario import REGION, Run, audit_settings, moto_account, recording, session, state

from aifinops.audit import remediate, run_audit
from aifinops.audit.clients import AwsClients
from aifinops.audit.record import Record


@pytest.fixture
def account() -> Iterator[audit_scenario.Scenario]:
    """A fresh account per test, for tests that change it (--apply, --undo)."""
    with audit_scenario.moto_account() as scenario:
        yield scenario


@pytest.fixture(scope="module")
def shared_account() -> Iterator[audit_scenario.Scenario]:
    """One account for a module of read-only tests."""
    with audit_scenario.moto_account() as scenario:
        yield scenario


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    path = tmp_path_factory.mktemp("record") / "record.json"
    with moto_account() as scenario:
        before = state(session())
        scan_session = session()
        with recording(scan_session) as scan_calls:
            report = run_audit(AwsClients(session=scan_session), [REGION], audit_settings(scenario))
        assert report.errors == []
        apply_session = session()
        questions: list[str] = []

        def yes(question: str) -> bool:
            questions.append(question)
            return True

        with recording(apply_session) as apply_calls:
            clients = AwsClients(session=apply_session)
            record = Record.create(path, "123456789012", [REGION])
            applied = remediate.apply(report.findings, clients, record, yes)
            after_apply = state(session())
            record_after_apply = json.loads(path.read_text())
            undone = remediate.undo(Record.load(path), clients, yes)
        result = Run(
            scenario,
            before,
            after_apply,
            state(session()),
            questions,
            applied,
            undone,
            record_after_apply,
            json.loads(path.read_text()),
            scan_calls,
            apply_calls,
        )
    # the moto account ends here: tests that build their own must not nest in it
    yield result
