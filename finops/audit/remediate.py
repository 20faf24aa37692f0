"""Carry out the remedies of findings (`--apply`) and reverse them (`--undo RECORD`).

One confirmation per action class, never per resource and never implied: `confirm` is asked
"stop idle GPU instances: 3 resource(s), $2,154/month. Undo starts them again. Proceed?" and
a class it declines is recorded as declined. One action failing does not stop the others; its
error is in the record, and the outcome counts it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aifinops.audit.actions import ACTIONS, ActionError
from aifinops.audit.clients import AwsClients
from aifinops.audit.findings import Finding
from aifinops.audit.record import DECLINED, DONE, FAILED, PARTIAL, STARTED, AuditError, Record

Confirm = Callable[[str], bool]
Progress = Callable[[str], None]


@dataclass
class Outcome:
    done: int = 0
    failed: int = 0
    declined: int = 0
    unknown: list[str] = field(default_factory=list)
    """Actions of an earlier run whose outcome was never recorded (still "started")."""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0


def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError

    return (BotoCoreError, ClientError, WaiterError, ActionError)


def _money(value: float | None) -> str:
    return "unpriced" if value is None else f"${value:,.0f}/month"


def apply(
    findings: Iterable[Finding],
    clients: AwsClients,
    record: Record,
    confirm: Confirm,
    progress: Progress = lambda message: None,
    only: set[str] | None = None,
) -> Outcome:
    """Run the planned action of every finding that has one, class by class."""
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        if finding.plan is not None and (only is None or finding.plan.action in only):
            groups[finding.plan.action].append(finding)
    outcome = Outcome()
    failures = _errors()
    for name, action in ACTIONS.items():
        items = groups.get(name, [])
        if not items:
            continue
        savings = [i.plan.saving_usd_per_month for i in items if i.plan is not None]
        total = None if any(s is None for s in savings) else sum(s or 0.0 for s in savings)
        question = (
            f"{action.title}: {len(items)} resource(s), saving {_money(total)}; "
            f"{action.reversibility}. Proceed?"
        )
        if not confirm(question):
            for item in items:
                assert item.plan is not None
                record.add(
                    name,
                    item.region,
                    item.resource_id,
                    dict(item.plan.params),
                    item.plan.reversible,
                    item.plan.saving_usd_per_month,
                    status=DECLINED,
                )
                outcome.declined += 1
            continue
        for number, item in enumerate(items, start=1):
            assert item.plan is not None
            progress(f"[{number}/{len(items)}] {name} {item.resource_id}")
            entry = record.add(
                name,
                item.region,
                item.resource_id,
                dict(item.plan.params),
                item.plan.reversible,
                item.plan.saving_usd_per_month,
            )

            def note(key: str, value: Any, entry: dict[str, Any] = entry) -> None:
                entry["undo"][key] = value
                record.save()

            try:
                action.run(clients, item.region, dict(item.plan.params), note)
            except failures as exc:
                partial = bool(entry["undo"].get("deleted")) or bool(entry["undo"].get("detached"))
                record.finish(entry, PARTIAL if partial else FAILED, str(exc))
                outcome.failed += 1
                outcome.errors.append(f"{name} {item.resource_id}: {exc}")
                continue
            record.finish(entry, DONE)
            outcome.done += 1
    return outcome


def check_account(record: Record, clients: AwsClients) -> None:
    """Refuse to undo in another account than the one the record was made in."""
    region = (record.data.get("regions") or [clients.default_region()])[0]
    account = str(clients.client("sts", region).get_caller_identity()["Account"])
    if account != record.data.get("account"):
        raise AuditError(
            f"{record.path}: made in account {record.data.get('account')}, but the credentials "
            f"are for account {account}; use the credentials of that account"
        )


def undo(
    record: Record, clients: AwsClients, confirm: Confirm, progress: Progress = lambda message: None
) -> Outcome:
    """Reverse every done (or partly done) reversible action, newest first, class by class."""
    check_account(record, clients)
    outcome = Outcome()
    failures = _errors()
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in reversed(record.actions):
        if entry["status"] == STARTED:
            outcome.unknown.append(
                f"{entry['action']} {entry['resource_id']}: outcome never recorded (interrupted); check it by hand"
            )
        elif entry["status"] in (DONE, PARTIAL) and entry.get("undo_status") != DONE:
            pending[entry["action"]].append(entry)
    for name in reversed(list(ACTIONS)):
        entries = pending.get(name, [])
        if not entries:
            continue
        action = ACTIONS[name]
        reversible = [e for e in entries if e["reversible"] and action.undo is not None]
        for entry in entries:
            if entry not in reversible:
                entry["undo_status"] = "not-reversible"
        record.save()
        if not reversible:
            continue
        if not confirm(f"undo {action.title}: {len(reversible)} resource(s). Proceed?"):
            outcome.declined += len(reversible)
            continue
        for number, entry in enumerate(reversible, start=1):
            progress(f"[{number}/{len(reversible)}] undo {name} {entry['resource_id']}")

            def note(key: str, value: Any, entry: dict[str, Any] = entry) -> None:
                entry["undo"][key] = value
                record.save()

            try:
                assert action.undo is not None
                action.undo(clients, entry["region"], entry["params"], entry["undo"], note)
            except failures as exc:
                entry["undo_status"], entry["undo_error"] = FAILED, str(exc)
                record.save()
                outcome.failed += 1
                outcome.errors.append(f"undo {name} {entry['resource_id']}: {exc}")
                continue
            entry["undo_status"], entry["undo_error"] = DONE, None
            record.save()
            outcome.done += 1
    return outcome
