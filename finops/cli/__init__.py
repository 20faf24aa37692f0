"""The `finops` command. Each sub-command lives in its own module with `register(subparsers)`.

A sub-command module defines `register(subparsers: argparse._SubParsersAction) -> None`,
which adds its parser and sets `func=<callable(args) -> int>` as the parser default.
"""

from __future__ import annotations

import argparse
import importlib
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FinopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
