"""`finops export`: a stack run in another tool's format.

finops export --stack dev --format tf-plan -o plan.json
checkov -f plan.json --framework terraform_plan --external-checks-dir policies/checkov
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aifinops.engine.stack import run_stack
from aifinops.export.tfplan import plan_document


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a stack (offline run) as Terraform plan JSON for checkov",
        description="Run the stack's program offline and write its resources in another format.",
    )
    parser.add_argument("--stack", default="dev", help="stack name or Pulumi.<stack>.yaml path")
    parser.add_argument("--format", choices=["tf-plan"], default="tf-plan")
    parser.add_argument("-o", "--output", help="file to write (default: standard output)")
    parser.add_argument("--project-dir", type=Path, help="folder holding Pulumi.yaml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _, _, stack_run = run_stack(args.stack, args.project_dir)
    document = plan_document(stack_run.resources, stack=stack_run.stack)
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    if args.output:
        Path(args.output).write_text(text)
        skipped = len(document["finops_skipped"])
        print(
            f"wrote {args.output}: {len(document['resource_changes'])} resources"
            + (
                f", {skipped} without a Terraform type (listed in finops_skipped)"
                if skipped
                else ""
            ),
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return 0
