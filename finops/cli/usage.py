"""`finops usage init`: write the usage file of a stack (usage-based charges, per resource).

    finops usage init --stack dev                 # finops-usage.yml beside Pulumi.dev.yaml
    finops usage init --stack dev --output u.yml

Every usage key of the stack's resources (GB kept in a checkpoint bucket, GB through a NAT
gateway, log GB ingested, a function's run time...) is written at 0 with a comment saying
what it means. Run it again after the stack changes: values and comments you edited are
kept, keys of new resources added. `finops preview` reads the file (`--usage-file`, default
the file beside the stack) and lists the keys still at 0. Keys: docs/cost.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aifinops.engine.stack import run_stack
from aifinops.usage import default_usage_path, read_usage_file, write_usage_file


def run_init(args: argparse.Namespace) -> int:
    stack_file, _, stack_run = run_stack(args.stack, args.project_dir)
    path = args.output or default_usage_path(stack_file)
    existed = path.exists()
    if existed:
        read_usage_file(path, stack_run)  # a file with mistakes is not rewritten
    added = write_usage_file(stack_run, path, stack_file)
    verb = "updated" if existed else "wrote"
    print(f"{verb} {path}: {len(added)} usage key(s) added" + (" at 0" if added else ""))
    for key in added:
        print(f"  {key}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "usage",
        help="the usage file: usage-based charges per resource (finops usage init)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="usage_command", metavar="ACTION")
    sub.required = True
    init = sub.add_parser(
        "init",
        help="write or complete the usage file of a stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument(
        "--stack", default="dev", help="stack name or path to Pulumi.<name>.yaml (default: dev)"
    )
    init.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write (default: finops-usage.yml beside the stack file)",
    )
    init.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="folder with Pulumi.yaml (default: found from the current folder)",
    )
    init.set_defaults(func=run_init)
