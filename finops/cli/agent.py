"""`finops agent-bundle`: build the agent bundle the fleets install, and show what is in it.

finops agent-bundle                       # from this checkout; downloads pinned wheels once
finops agent-bundle --wheel dist/aifinops-0.1.0-py3-none-any.whl
finops agent-bundle --offline -o bundle.tar

`pulumi up` builds the same bundle itself (components/agent_artifact.py); running this first
fills the wheel cache, shows the sha256 the hosts will check, and works offline afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from aifinops.components.agent_artifact import build_bundle, cache_root


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "agent-bundle",
        help="build the agent bundle (wheel + pinned, hash-checked dependency wheels)",
        description=(
            "Build the bundle the training fleets install the finops agent from: the aifinops "
            "wheel (built from this checkout, or --wheel) and the dependency wheels pinned with "
            "sha256 in agents/deploy/requirements.lock. Prints its path and sha256."
        ),
    )
    parser.add_argument("--wheel", type=Path, help="a built aifinops wheel to bundle")
    parser.add_argument("-o", "--output", type=Path, help="also copy the bundle to this file")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="never reach the package index: use the wheel cache only",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the sha256")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def progress(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr)

    bundle = build_bundle(args.wheel, download=not args.offline, progress=progress)
    if args.output:
        shutil.copyfile(bundle.path, args.output)
    if args.quiet:
        print(bundle.sha256)
        return 0
    print(f"bundle   {args.output or bundle.path}")
    print(f"sha256   {bundle.sha256}")
    print(f"object   {bundle.object_name}")
    print(f"cache    {cache_root()}")
    for wheel in bundle.wheels:
        print(f"wheel    {wheel}")
    return 0
