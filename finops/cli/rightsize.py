"""`finops rightsize`: measured usage -> changes priced by the preview -> (with --apply) the stack file.

Sources (repeatable `--source`): `agent:PATH` (the agent's export file or spool folder),
`prometheus:URL`, `cloudwatch:REGION` (optionally `cloudwatch:REGION@ENDPOINT_URL`).
Every candidate change is priced by running the program offline and pricing it with the
preview's cost model: a saving shown is the `finops preview` delta of applying it.
`--apply` edits `Pulumi.<stack>.yaml` in place, previewing each change through the cost
model and the policy pack; a change that breaks a mandatory policy, or raises the previewed
cost without `--accept TARGET:KIND`, is refused with the reason. A Markdown pull-request
body is written beside the stack file (or to `--pr-body`).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aifinops import config as stack_config
from aifinops.errors import FinopsError
from aifinops.rightsizing import Kind, Recommendation, Settings, TargetReport, recommend
from aifinops.rightsizing.apply import (
    ApplyResult,
    Finding,
    Preview,
    PreviewResult,
    apply,
    pull_request_body,
    to_apply,
)
from aifinops.rightsizing.pricing import PreviewPricer
from aifinops.rightsizing.spot import Checkpointing
from aifinops.rightsizing.stream import MEMORY_LIMIT_MB
from aifinops.rightsizing.usage import DEFAULT_LOOKBACK_DAYS, GpuUsage


class RightsizeError(FinopsError):
    """A bad --source, or --apply without what it needs."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rightsize",
        help="recommend (and apply) instance types, node counts and capacity from measured usage",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--stack", required=True, help="stack name (dev) or path to Pulumi.<stack>.yaml"
    )
    parser.add_argument(
        "--source",
        action="append",
        dest="sources",
        metavar="SPEC",
        help="agent:PATH | prometheus:URL | cloudwatch:REGION[@ENDPOINT] (repeatable; "
        "default agent:/var/lib/finops-agent)",
    )
    parser.add_argument(
        "--lookback-days",
        default=str(DEFAULT_LOOKBACK_DAYS),
        metavar="DAYS",
        help=f"window read, days >= 1 (default {DEFAULT_LOOKBACK_DAYS:g})",
    )
    parser.add_argument("--end", help="end of the window: unix seconds or ISO 8601 (default: now)")
    parser.add_argument(
        "--memory-mb",
        default=str(MEMORY_LIMIT_MB),
        metavar="MB",
        help=f"memory for reading agent files, >= 64 (default {MEMORY_LIMIT_MB}); beyond it "
        "DuckDB spills to $TMPDIR",
    )
    parser.add_argument(
        "--headroom",
        default="0.20",
        metavar="RATIO",
        help="kept above the memory peak, sustained demand and host use, 0-1 (default 0.20)",
    )
    parser.add_argument(
        "--checkpoint-minutes",
        default="30",
        metavar="MINUTES",
        help="how often training jobs checkpoint, >= 0 (0: they do not; then no spot advice)",
    )
    parser.add_argument("--apply", action="store_true", help="edit the stack file in place")
    parser.add_argument(
        "--accept",
        action="append",
        default=[],
        metavar="TARGET:KIND",
        help="with --apply: also apply this change that raises the cost (e.g. train-a:larger-type)",
    )
    parser.add_argument(
        "--pr-body", type=Path, help="where --apply writes the pull-request Markdown"
    )
    parser.add_argument("--project-dir", type=Path, help="folder holding Pulumi.yaml")
    parser.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    parser.set_defaults(func=run)


def _number(option: str, value: str, low: float, high: float | None, what: str) -> float:
    """`value` of `option` as a number in [low, high], else a one-line RightsizeError."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not (number >= low and (high is None or number <= high)):
        raise RightsizeError(f"{option} {value!r}: {what}")
    return number


def _end(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise RightsizeError(f"--end {value!r}: give unix seconds or an ISO 8601 time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def read_sources(
    specs: list[str],
    lookback_days: float,
    end: float | None,
    progress: Callable[[float], None] | None = None,
    memory_mb: int = MEMORY_LIMIT_MB,
) -> list[GpuUsage]:
    """Usage from every `--source` spec, in order; `progress` is told the share of the
    agent files scanned or of the CloudWatch calls made."""
    usages: list[GpuUsage] = []
    for spec in specs:
        kind, sep, rest = spec.partition(":")
        if kind == "agent" and sep:
            from aifinops.rightsizing import stream

            usages += stream.read_usage(
                [Path(rest)],
                lookback_days=lookback_days,
                end=end,
                progress=progress,
                memory_limit_mb=memory_mb,
            )
        elif kind == "prometheus" and rest:
            from aifinops.rightsizing.prometheus import PrometheusSource
            from aifinops.rightsizing.prometheus import read_usage as read_prometheus

            usages += read_prometheus(PrometheusSource(rest), lookback_days=lookback_days, end=end)
        elif kind == "cloudwatch":
            from aifinops.rightsizing.cloudwatch import CloudWatchSource
            from aifinops.rightsizing.cloudwatch import read_usage as read_cloudwatch

            region, _, endpoint = rest.partition("@")
            source = CloudWatchSource(region or "us-east-1", endpoint_url=endpoint or None)
            usages += read_cloudwatch(
                source, lookback_days=lookback_days, end=end, progress=progress
            )
        else:
            raise RightsizeError(
                f"--source {spec!r}: expected agent:PATH, prometheus:URL or cloudwatch:REGION"
            )
    return usages


def policy_preview(project_dir: Path) -> Preview:
    """Preview a stack file offline: cost model total and the policy pack's verdicts."""
    try:
        from aifinops import policies

        evaluate: Callable[..., list[Any]] = policies.evaluate_stack
    except (ImportError, AttributeError) as exc:
        raise RightsizeError(
            f"--apply needs the policy pack's policies.evaluate_stack ({exc}); without it no "
            "change can be checked against the mandatory policies, so none is applied"
        ) from None
    from aifinops import cost
    from aifinops.engine.stack import run_stack

    def preview(path: Path) -> PreviewResult:
        _, config, run_ = run_stack(str(path), project_dir)
        report = cost.estimate(run_, config)
        verdicts = evaluate(run_, config, costs=report)
        return PreviewResult(
            report.total_monthly_usd,
            tuple(Finding(v.policy, v.resource, v.level, v.message) for v in verdicts),
        )

    return preview


@contextmanager
def _progress(message: str) -> Iterator[None]:
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status(message):
            yield
    else:
        yield


@contextmanager
def _scan_progress(message: str) -> Iterator[Callable[[float], None] | None]:
    """A rich progress bar on a terminal's stderr, told the share done; nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn

    with Progress(
        "{task.description}",
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(message, total=1.0)
        yield lambda share: bar.update(task, completed=share)


def _as_json(report: TargetReport) -> dict[str, Any]:
    data = dataclasses.asdict(report)
    return json.loads(json.dumps(data, default=str))


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _per_unit(rec: Recommendation) -> str:
    if rec.usd_per_work_before is None or rec.usd_per_work_after is None:
        return "-"
    return f"{rec.usd_per_work_before:.4g} -> {rec.usd_per_work_after:.4g} / {rec.work_unit}"


def _kinds(rec: Recommendation) -> str:
    return "+".join(k.value for k in rec.kinds)


def _notes(report: TargetReport) -> list[str]:
    """The lines under a target: what is missing, what costs more, what lost and why."""
    lines = [f"insufficient data: {m}" for m in report.missing]
    for rec in report.on_request:
        if rec.monthly_saving_usd < 0 and Kind.LARGER_HOST in rec.kinds:
            what = f"costs {-rec.monthly_saving_usd:,.2f} USD/month more ({rec.why})"
        elif rec.monthly_saving_usd < 0:
            what = (
                f"costs {-rec.monthly_saving_usd:,.2f} USD/month more ({rec.speed_ratio:.2f}x "
                "the per-GPU speed)"
            )
        else:
            what = f"saves {rec.monthly_saving_usd:,.2f} USD/month but {rec.why}"
        lines.append(f"{what}: {rec.summary}; apply only by name: --accept {rec.ref}")
    lines += [f"advice: {line}" for line in report.advice]
    for alt in report.alternatives:
        saving = "" if alt.monthly_saving_usd is None else f" [{alt.monthly_saving_usd:,.2f}]"
        lines.append(
            f"not kept: {'+'.join(k.value for k in alt.kinds)}{saving}: {alt.summary}: {alt.reason}"
        )
    return lines


def _evidence(report: TargetReport) -> str:
    e = report.evidence
    if e is None:
        return "-"
    mean = e.metrics.get("gpu_util_time_weighted_mean_percent")
    peaks = e.metrics.get("gpu_util_p95_of_5min_peaks_percent")
    memory = e.metrics.get("gpu_memory_peak_gib")
    return (
        f"{e.hosts} hosts/{e.gpus} GPUs, {e.days_covered:.1f} d, {e.observed_share:.0%} of hours; "
        f"GPU mean {'-' if mean is None else f'{mean:.1f}%'} (time-weighted), p95 of 5-min "
        f"peaks {peaks:.0f}%, memory peak {'-' if memory is None else f'{memory:.1f} GiB'}; "
        f"{e.source}"
    )


def _table(reports: list[TargetReport], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("target", "status", "change", "USD/month now", "after", "saving", "evidence"):
        if column in ("USD/month now", "after", "saving"):
            table.add_column(column, justify="right")
        else:
            table.add_column(column)
    for report in reports:
        rec = report.recommendation
        table.add_row(
            report.target,
            report.status if rec is None else _kinds(rec),
            "-" if rec is None else rec.summary,
            _money(report.current_monthly_usd),
            "-" if rec is None else _money(rec.proposed.monthly_usd),
            "-" if rec is None else _money(rec.monthly_saving_usd),
            _evidence(report),
        )
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)
    console.print("savings are `finops preview` deltas (USD/month) of applying each change")
    for report in reports:
        for line in _notes(report):
            console.print(f"{report.target}: {line}", markup=False, highlight=False)


def _markdown(reports: list[TargetReport]) -> str:
    lines = [
        "| target | status | change | previewed saving USD/month | USD per unit of work |",
        "|---|---|---|---|---|",
    ]
    for report in reports:
        rec = report.recommendation
        if rec is None:
            lines.append(f"| {report.target} | {report.status} | - | - | - |")
        else:
            lines.append(
                f"| {report.target} | {_kinds(rec)} | {rec.summary} | "
                f"{_money(rec.monthly_saving_usd)} | {_per_unit(rec)} |"
            )
    notes = [f"- {r.target}: {line}" for r in reports for line in _notes(r)]
    return "\n".join(lines + (["", *notes] if notes else []))


def _report_apply(result: ApplyResult, body_path: Path) -> None:
    out = sys.stdout
    verb = "applied" if result.written else "nothing applied"
    print(f"{verb}: {len(result.applied)} change(s) to {result.stack_file}", file=out)
    for rec, reason in result.refused:
        print(f"refused {rec.ref}: {reason}", file=out)
    if result.before is not None and result.after is not None:
        print(
            f"preview cost: {_money(result.before.total_monthly_usd)} -> "
            f"{_money(result.after.total_monthly_usd)} USD/month",
            file=out,
        )
        for finding in result.after.findings:
            print(
                f"policy {finding.level} {finding.policy} {finding.resource}: {finding.message}",
                file=out,
            )
    print(f"pull-request body: {body_path}", file=out)


def settings_from(args: argparse.Namespace) -> tuple[Settings, float]:
    """Settings and the lookback in days from the options, each checked (one-line errors)."""
    headroom = _number("--headroom", args.headroom, 0.0, 1.0, "a ratio from 0 to 1 (0.2 = 20%)")
    lookback = _number("--lookback-days", args.lookback_days, 1.0, None, "a number of days >= 1")
    minutes = _number(
        "--checkpoint-minutes",
        args.checkpoint_minutes,
        0.0,
        None,
        "minutes >= 0 (0: no checkpoints)",
    )
    if args.accept and not args.apply:
        raise RightsizeError("--accept names a change to apply: give --apply too")
    settings = Settings(
        headroom=headroom,
        checkpointing=Checkpointing(interval_hours=minutes / 60) if minutes > 0 else None,
    )
    return settings, lookback


def run(args: argparse.Namespace) -> int:
    from aifinops.engine.stack import find_project_dir

    settings, lookback = settings_from(args)
    project = find_project_dir(args.project_dir)
    stack_file = stack_config.resolve_stack_file(args.stack, project)
    config = stack_config.load(stack_file)
    specs = args.sources or ["agent:/var/lib/finops-agent"]
    memory = _number("--memory-mb", args.memory_mb, 64, None, "megabytes, at least 64")
    with _scan_progress(f"reading usage from {', '.join(specs)}") as progress:
        usages = read_sources(specs, lookback, _end(args.end), progress, int(memory))
    pricer = PreviewPricer(stack_config.read_stack_file(stack_file), project)
    with _progress("pricing each candidate change through the preview"):
        reports = recommend(config, usages, pricer, settings)
    if args.format == "json":
        if not args.apply:
            print(json.dumps([_as_json(r) for r in reports], indent=1))
    elif args.format == "markdown":
        print(_markdown(reports))
    else:
        title = f"rightsizing {stack_file.name} from {len(usages)} GPUs"
        _table(reports, title)
    if not args.apply:
        return 0
    chosen = to_apply(reports, args.accept)
    preview = policy_preview(project)
    with _progress("previewing each change against the policies"):
        result = apply(stack_file, chosen, preview, accepted=args.accept)
    stack = stack_config.stack_name_of(stack_file)
    body_path = args.pr_body or stack_file.with_name(f"rightsize-{stack}.md")
    body_path.write_text(pull_request_body(result, stack))
    if args.format == "json":
        print(json.dumps(_apply_json(reports, result, body_path), indent=1, default=str))
    else:
        _report_apply(result, body_path)
    return 0


def _apply_json(
    reports: list[TargetReport], result: ApplyResult, body_path: Path
) -> dict[str, Any]:
    def preview(p: PreviewResult | None) -> dict[str, Any] | None:
        if p is None:
            return None
        return {
            "total_monthly_usd": p.total_monthly_usd,
            "findings": [dataclasses.asdict(f) for f in p.findings],
        }

    return {
        "targets": [_as_json(r) for r in reports],
        "applied": [r.ref for r in result.applied],
        "previewed_saving_usd": result.previewed_saving_usd,
        "refused": [{"ref": r.ref, "reason": reason} for r, reason in result.refused],
        "stack_file": str(result.stack_file),
        "written": result.written,
        "before": preview(result.before),
        "after": preview(result.after),
        "pull_request_body": str(body_path),
    }
