"""The `finops` command. Each sub-command lives in its own module with `register(subparsers)`.

A sub-command module defines `register(subparsers: argparse._SubParsersAction) -> None`,
which adds its parser and sets `func=<callable(args) -> int>` as the parser default.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys

from finops.errors import FinopsError

# (module, purpose). A missing module (a room not built yet) is skipped, not fatal.
SUBCOMMAND_MODULES = [
    "finops.cli.preview",
    "finops.cli.catalog",
    "finops.cli.check",
    "finops.cli.rightsize",
    "finops.cli.report",
    "finops.cli.gate",
    "finops.cli.dashboard",
    "finops.cli.export",
    "finops.cli.audit",
    "finops.cli.commitments",
    "finops.cli.track",
    "finops.cli.estimate",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finops",
        description="Offline preview, cost, policy checks and rightsizing for AI infrastructure.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(sub)
    return parser


def report_error(message: str) -> None:
    """One `error: ...` line on stderr per line of `message` (one problem per line)."""
    for line in str(message).splitlines() or [""]:
        print(f"error: {line}", file=sys.stderr)


def _quiet_stdout() -> None:
    """After the reader of stdout went away (`| head`): send what is left to /dev/null, so
    the interpreter's last flush at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run a command; `argv` None means this process is the `finops` program itself.

    The program is short-lived: the cyclic garbage collector stays off for it (the offline
    engine pauses it during a run anyway, and turning it back on before exit would only pay a
    last full pass over a run's objects, 10 % of a preview). The process hands its memory
    back at exit. A caller passing `argv` (tests, other programs) keeps its collector.
    """
    if argv is None:
        gc.disable()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except FinopsError as exc:
        report_error(str(exc))
        return exc.exit_code
    except BrokenPipeError:
        # The reader stopped early (`finops ... | head`): not an error of ours. Exit as a
        # program killed by SIGPIPE would, silently, with 128 + 13.
        _quiet_stdout()
        return 141
    except SystemExit as exc:
        if isinstance(exc.__context__, BrokenPipeError):  # rich's tables end the same way
            return 141
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
