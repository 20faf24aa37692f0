"""`finops track`: the cost of a training run, logged to its experiment-tracker run.

    finops track run [options] -- python train.py --lr 3e-4   # run, measure, log (MLflow)
    finops track cost --from 2026-01-05T10:00 --to 2026-01-05T14:30 --agent windows.jsonl
    finops track log --run-id 3f2a...                         # price a run already tracked

The cost comes from the agent's window records of the hosts the run used (`--agent`, default
/var/lib/finops-agent/windows.jsonl); with no agent records it is estimated from
`--instance-type` and marked so; otherwise it is unknown, said loudly, never 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aifinops.errors import FinopsError


class TrackArgsError(FinopsError):
    """A bad option of `finops track`."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "track",
        help="cost per experiment run: measured from the agent, logged to MLflow or W&B",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    sub = parser.add_subparsers(dest="track_command", metavar="SUBCOMMAND")
    sub.required = True

    run = sub.add_parser(
        "run",
        help="run a command as one tracked run; log its cost when it ends",
        description="Run COMMAND as one run of the tracker (the job's own `mlflow.start_run()` "
        "joins it through MLFLOW_RUN_ID), then log the run's cost to it. Exits with the "
        "command's exit status.",
    )
    _tracker_options(run)
    run.add_argument("--experiment", help="MLflow experiment (created if missing) / W&B project")
    run.add_argument("--run-name", help="the run's name in the tracker")
    _source_options(run)
    run.add_argument(
        "--wait-seconds",
        type=float,
        default=None,
        help="how long to wait after the command for the agent's last window (default 75)",
    )
    run.add_argument("--save", type=Path, help="also write the cost as JSON to this file")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    run.set_defaults(func=run_command)

    cost = sub.add_parser(
        "cost",
        help="print the cost of a span of time on the agent's hosts (no tracker)",
    )
    cost.add_argument("--from", dest="start", required=True, help="unix seconds or ISO 8601")
    cost.add_argument("--to", dest="end", required=True, help="unix seconds or ISO 8601")
    _source_options(cost)
    cost.add_argument("--format", choices=("table", "json"), default="table")
    cost.set_defaults(func=cost_command)

    log = sub.add_parser("log", help="price a run already in the tracker by its start and end")
    _tracker_options(log)
    log.add_argument("--run-id", required=True)
    log.add_argument("--to", dest="end", help="end of the span when the run is still open")
    _source_options(log)
    log.set_defaults(func=log_command)


def _tracker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracker",
        choices=("mlflow", "wandb"),
        default="mlflow",
        help="where to log (default mlflow)",
    )
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking server or store (default: MLFLOW_TRACKING_URI, else MLflow's "
        "local store in the working folder)",
    )


def _source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--agent",
        action="append",
        type=Path,
        metavar="PATH",
        help="the agent's export file or spool folder (repeatable, one per host; default "
        "/var/lib/finops-agent/windows.jsonl)",
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="ID",
        help="only these hosts (instance id or hostname; repeatable; default all in the files)",
    )
    parser.add_argument(
        "--instance-type", help="where no agent ran: the type to estimate the cost from"
    )
    parser.add_argument("--region", help="with --instance-type (default: the cloud's default)")
    parser.add_argument("--cloud", choices=("aws", "gcp", "azure"), help="with --instance-type")
    parser.add_argument(
        "--lifecycle",
        choices=("on-demand", "spot"),
        default="on-demand",
        help="with --instance-type",
    )
    parser.add_argument("--nodes", type=int, default=1, help="with --instance-type (default 1)")


def _time(value: str, option: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise TrackArgsError(f"{option} {value!r}: give unix seconds or an ISO 8601 time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def _assumed(args: argparse.Namespace) -> Any:
    from aifinops import catalog
    from aifinops.errors import CatalogError
    from aifinops.track import Assumed

    if args.nodes < 1:
        raise TrackArgsError(f"--nodes {args.nodes}: at least 1")
    if not args.instance_type:
        return None
    try:
        catalog.lookup(args.instance_type, args.region, cloud=args.cloud)
    except CatalogError as exc:
        raise TrackArgsError(f"--instance-type {args.instance_type!r}: {exc}") from None
    return Assumed(
        instance_type=args.instance_type,
        region=args.region,
        cloud=args.cloud,
        lifecycle=args.lifecycle,
        nodes=args.nodes,
    )


def _agent_paths(args: argparse.Namespace) -> list[Path]:
    from aifinops.track import DEFAULT_EXPORT

    return list(args.agent or [DEFAULT_EXPORT])


def _money(value: float | None) -> str:
    return "UNKNOWN" if value is None else f"${value:,.2f}"


def summary_lines(cost: Any) -> list[str]:
    """A run's cost in a few lines, for a terminal."""
    head = f"cost {_money(cost.cost_usd)} ({cost.basis})"
    parts = [
        f"{len(cost.hosts)} host(s) {', '.join(cost.instance_types) or '-'}",
        f"{cost.instance_hours:.2f} instance-h",
        f"{cost.gpu_hours:.2f} GPU-h",
    ]
    if cost.spot_share is not None:
        parts.append(f"spot {cost.spot_share:.0%}")
    parts.append(f"{cost.interruptions} interruption(s)")
    if cost.gpu_util_mean_percent is not None:
        parts.append(f"GPU use {cost.gpu_util_mean_percent:.0f}%")
    if cost.waiting_on_data_share is not None:
        parts.append(f"waiting on data {cost.waiting_on_data_share:.0%}")
    lines = [f"{head}: {', '.join(parts)}"]
    for unit, usd in cost.usd_per_work_unit.items():
        lines.append(f"  ${usd:.6g} per {unit} ({cost.work_units[unit]:,.0f} {unit})")
    lines += [f"  note: {note}" for note in cost.notes]
    return lines


def _measure(args: argparse.Namespace, start: float, end: float, wait: float) -> Any:
    from aifinops.track import run_cost

    announced = False

    def waiting(left: float) -> None:
        nonlocal announced
        if not announced:
            print(
                f"finops track: waiting up to {left:.0f} s for the agent to write the run's "
                "last window",
                file=sys.stderr,
            )
            announced = True

    return run_cost(
        start,
        end,
        agent=_agent_paths(args),
        hosts=args.host,
        assumed=_assumed(args),
        wait_seconds=wait,
        on_wait=waiting,
    )


def run_command(args: argparse.Namespace) -> int:
    from aifinops.track import DEFAULT_WAIT_SECONDS, TrackerError, log_cost, make_tracker

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise TrackArgsError("no command: finops track run [options] -- COMMAND [ARGS...]")
    _assumed(args)  # a bad --instance-type is refused before anything runs
    tracker = make_tracker(args.tracker, tracking_uri=args.tracking_uri)
    start = time.time()
    run_id = tracker.open(experiment=args.experiment, run_name=args.run_name, start=start)
    print(f"finops track: {tracker.where(run_id)}", file=sys.stderr)
    env = {**os.environ, **tracker.child_env(run_id), "FINOPS_TRACK_RUN_ID": run_id}
    rc = _run_child(command, env)
    end = time.time()
    wait = DEFAULT_WAIT_SECONDS if args.wait_seconds is None else args.wait_seconds
    cost = _measure(args, start, end, wait)
    if args.save:
        args.save.write_text(json.dumps(cost.to_json(), indent=1) + "\n")
    try:
        log_cost(tracker, run_id, cost)
        tracker.close(run_id, ok=rc == 0, end=end)
    except TrackerError as exc:
        saved = args.save or Path(f"finops-track-{run_id}.json")
        saved.write_text(json.dumps(cost.to_json(), indent=1) + "\n")
        print(f"error: {exc}; the cost is saved in {saved}", file=sys.stderr)
        return rc or 2
    for line in summary_lines(cost):
        print(f"finops track: {line}", file=sys.stderr)
    return rc


def _run_child(command: list[str], env: dict[str, str]) -> int:
    """Run the command with signals passed on (the job checkpoints on SIGTERM); its exit
    status, or 128 + signal number when a signal ended it (as a shell reports it)."""
    try:
        child = subprocess.Popen(command, env=env)
    except FileNotFoundError:
        print(f"error: {command[0]}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"error: {command[0]}: permission denied", file=sys.stderr)
        return 126

    def forward(signum: int, _frame: Any) -> None:
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        rc = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 - rc if rc < 0 else rc


def cost_command(args: argparse.Namespace) -> int:
    start, end = _time(args.start, "--from"), _time(args.end, "--to")
    if end <= start:
        raise TrackArgsError(f"--to ({args.end}) must be after --from ({args.start})")
    cost = _measure(args, start, end, 0.0)
    if args.format == "json":
        print(json.dumps(cost.to_json(), indent=1))
        return 0
    for line in summary_lines(cost):
        print(line)
    if cost.hosts:
        print("host | type | region | lifecycle | hours | USD/h | USD")
        for h in cost.hosts:
            rate = "UNKNOWN" if h.usd_per_hour is None else f"{h.usd_per_hour:.4f}"
            print(
                f"{h.host} | {h.instance_type} | {h.region} | {h.lifecycle} | {h.hours:.3f} | "
                f"{rate} | {_money(h.usd)}"
            )
    return 0


def log_command(args: argparse.Namespace) -> int:
    from aifinops.track import log_cost, make_tracker

    tracker = make_tracker(args.tracker, tracking_uri=args.tracking_uri)
    start, end = tracker.span(args.run_id)
    if args.end is not None:
        end = _time(args.end, "--to")
    if end is None:
        raise TrackArgsError(f"run {args.run_id} has not ended: give --to (unix seconds or ISO)")
    cost = _measure(args, start, end, 0.0)
    log_cost(tracker, args.run_id, cost)
    for line in summary_lines(cost):
        print(line)
    return 0
