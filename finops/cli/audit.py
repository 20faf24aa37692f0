"""`finops audit`: what costs money for nothing in a live AWS account, priced and owned.

Read-only by default (IAM: `finops audit --iam-policy readonly`). `--apply` carries out the
remedies after one confirmation per action class (`--yes` confirms all) and writes a JSON
record; `finops audit --undo RECORD` reverses what the cloud allows (IAM for both:
`--iam-policy apply`). Checks and remedies are described in docs/audit.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aifinops.errors import did_you_mean

if TYPE_CHECKING:
    from aifinops.audit.clients import AwsClients


def register(subparsers: argparse._SubParsersAction) -> None:
    from aifinops.audit.aws import CHECKS

    parser = subparsers.add_parser(
        "audit",
        help="find idle GPUs, unused volumes, idle endpoints, old snapshots/checkpoints, untagged spend",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    where = parser.add_argument_group("where")
    where.add_argument(
        "--region",
        action="append",
        dest="regions",
        metavar="REGION",
        help="AWS region (repeatable; default: the session's region, else us-east-1)",
    )
    where.add_argument("--profile", help="AWS profile of the credentials to use")
    where.add_argument("--endpoint-url", help="one endpoint for every AWS service (moto_server)")
    what = parser.add_argument_group("what counts as waste")
    what.add_argument(
        "--idle-hours",
        type=int,
        default=24,
        help="GPU idle in each of the last N hours (default 24)",
    )
    what.add_argument(
        "--endpoint-idle-days",
        type=float,
        default=7.0,
        help="SageMaker endpoints without invocations for N days (default 7)",
    )
    what.add_argument(
        "--stopped-days",
        type=float,
        default=7.0,
        help="volumes of instances stopped at least N days (default 7)",
    )
    what.add_argument(
        "--snapshot-retention-days",
        type=float,
        default=90.0,
        help="own snapshots older than N days (default 90)",
    )
    what.add_argument(
        "--checkpoint-retention-days",
        type=float,
        help="checkpoint age limit (default: each bucket's lifecycle expiry, else 14)",
    )
    what.add_argument(
        "--checkpoint-bucket",
        action="append",
        default=[],
        metavar="BUCKET",
        help="a checkpoint bucket besides those tagged finops:fleet (repeatable)",
    )
    what.add_argument(
        "--metrics",
        default="cloudwatch",
        metavar="cloudwatch|prometheus:URL",
        help="GPU utilisation source (default cloudwatch; CloudWatch CPU is the fallback)",
    )
    what.add_argument("--only", help=f"comma-separated checks: {','.join(CHECKS)} (default all)")
    what.add_argument("--now", help="judge as of this time: unix seconds or ISO 8601 (default now)")
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    act = parser.add_argument_group("remediation")
    act.add_argument(
        "--apply", action="store_true", help="carry out the remedies (asks once per action class)"
    )
    act.add_argument("--yes", action="store_true", help="confirm every action class without asking")
    act.add_argument(
        "--actions", help="comma-separated action classes --apply may run (default all)"
    )
    act.add_argument(
        "--record",
        type=Path,
        help="where --apply writes its record (default ./finops-audit-<time>.json)",
    )
    act.add_argument(
        "--undo", type=Path, metavar="RECORD", help="reverse what the record's actions did"
    )
    parser.add_argument(
        "--iam-policy",
        choices=("readonly", "apply"),
        help="print the least-privilege IAM policy document for a mode and exit",
    )
    parser.set_defaults(func=run)


def _time(value: str | None, option: str) -> float | None:
    from aifinops.audit.record import AuditError

    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise AuditError(f"{option} {value!r}: give unix seconds or an ISO 8601 time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def _names(
    value: str | None, allowed: tuple[str, ...] | list[str], option: str
) -> tuple[str, ...] | None:
    from aifinops.audit.record import AuditError

    if value is None:
        return None
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    for name in names:
        if name not in allowed:
            raise AuditError(
                f"{option} {name!r}: not one of {', '.join(allowed)}{did_you_mean(name, allowed)}"
            )
    return names


def _confirm(yes: bool) -> Callable[[str], bool]:
    from aifinops.audit.record import AuditError

    if yes:

        def confirmed(question: str) -> bool:
            print(f"{question} yes (--yes)", file=sys.stderr)
            return True

        return confirmed
    if not sys.stdin.isatty():
        raise AuditError(
            "--apply and --undo ask one confirmation per action class and stdin is not a "
            "terminal: add --yes to confirm them all"
        )

    def ask(question: str) -> bool:
        answer = input(f"{question} [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    return ask


def _progress() -> Callable[[str], None]:
    def show(message: str) -> None:
        print(f"audit: {message}", file=sys.stderr, flush=True)

    return show


def _check_numbers(args: argparse.Namespace) -> None:
    from aifinops.audit.record import AuditError

    for option in ("idle_hours", "endpoint_idle_days", "stopped_days", "snapshot_retention_days"):
        if getattr(args, option) <= 0:
            raise AuditError(
                f"--{option.replace('_', '-')} {getattr(args, option)}: must be above 0"
            )
    if args.checkpoint_retention_days is not None and args.checkpoint_retention_days <= 0:
        raise AuditError(
            f"--checkpoint-retention-days {args.checkpoint_retention_days}: must be above 0"
        )
    metrics = args.metrics
    if metrics != "cloudwatch" and not (metrics.startswith("prometheus:") and metrics[11:]):
        raise AuditError(f"--metrics {metrics!r}: expected cloudwatch or prometheus:URL")


def _clients(args: argparse.Namespace) -> AwsClients:
    """Clients for the session the options name; no credentials is a one-line error."""
    from botocore.exceptions import BotoCoreError

    from aifinops.audit.clients import AwsClients
    from aifinops.audit.record import AuditError

    try:
        clients = AwsClients(endpoint_url=args.endpoint_url, profile=args.profile)
        credentials = clients.session.get_credentials()
    except BotoCoreError as exc:  # ProfileNotFound and friends
        raise AuditError(f"--profile {args.profile!r}: {exc}") from None
    if credentials is None:
        raise AuditError(
            "no AWS credentials found: set AWS_PROFILE or --profile, AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run on an instance with a role"
        )
    return clients


def run(args: argparse.Namespace) -> int:
    from aifinops.audit import AuditSettings, remediate, render, run_audit
    from aifinops.audit import iam as audit_iam
    from aifinops.audit.actions import ACTIONS
    from aifinops.audit.aws import CHECKS
    from aifinops.audit.record import AuditError, Record

    if args.iam_policy:
        print(audit_iam.policy_text(args.iam_policy), end="")
        return 0
    _check_numbers(args)
    checks = _names(args.only, CHECKS, "--only") or CHECKS
    only_actions = _names(args.actions, list(ACTIONS), "--actions")
    confirm = _confirm(args.yes) if (args.apply or args.undo) else None
    if args.undo is not None and args.apply:
        raise AuditError("--undo and --apply: give one of them")
    record = Record.load(args.undo) if args.undo is not None else None
    clients = _clients(args)
    progress = _progress()
    if record is not None:
        assert confirm is not None
        outcome = remediate.undo(record, clients, confirm, progress)
        for line in outcome.unknown:
            print(f"UNKNOWN: {line}", file=sys.stderr)
        for line in outcome.errors:
            print(f"failed: {line}", file=sys.stderr)
        print(
            f"undo: {outcome.done} reversed, {outcome.failed} failed, {outcome.declined} declined; "
            f"record updated: {record.path}"
        )
        return 0 if outcome.ok else 1
    settings = AuditSettings(
        idle_hours=args.idle_hours,
        endpoint_idle_days=args.endpoint_idle_days,
        stopped_days=args.stopped_days,
        snapshot_retention_days=args.snapshot_retention_days,
        checkpoint_retention_days=args.checkpoint_retention_days,
        checkpoint_buckets=tuple(args.checkpoint_bucket),
        metrics=args.metrics,
        checks=tuple(checks),
        now=_time(args.now, "--now"),
    )
    regions = args.regions or [clients.default_region()]
    report = run_audit(clients, regions, settings, progress)
    if args.format == "json":
        print(json.dumps(render.to_json(report), indent=1, default=str))
    elif args.format == "markdown":
        print(render.to_markdown(report))
    else:
        render.print_table(report)
    if report.errors:
        for error in report.errors:
            print(f"error: {error}", file=sys.stderr)
    if not args.apply:
        return 1 if report.errors else 0
    assert confirm is not None
    account = str(clients.client("sts", regions[0]).get_caller_identity()["Account"])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    created = Record.create(args.record or Path(f"finops-audit-{stamp}.json"), account, regions)
    outcome = remediate.apply(
        report.findings,
        clients,
        created,
        confirm,
        progress,
        set(only_actions) if only_actions else None,
    )
    for line in outcome.errors:
        print(f"failed: {line}", file=sys.stderr)
    print(
        f"apply: {outcome.done} done, {outcome.failed} failed, {outcome.declined} declined; "
        f"record: {created.path} (reverse with: finops audit --undo {created.path})",
        file=sys.stderr,
    )
    return 0 if outcome.ok and not report.errors else 1
