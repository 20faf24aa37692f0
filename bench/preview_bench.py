"""Preview benchmark: `finops preview` on generated stacks of growing size.

Generates stack files whose training fleets, inference endpoints and budgets expand to about
N resources through the real program (infra/) and components, runs `finops preview` on each
as a separate process (start-up included, exactly what a user waits for) and reports wall time,
peak RSS and the per-resource overhead (slope between the smallest and largest stack).

    .venv/bin/python bench/preview_bench.py            # sizes 20 and 200 resources, 3 runs each
    .venv/bin/python bench/preview_bench.py --sizes 20 200 400 --runs 5

Goal (issue 2): under 3 s wall and 300 MB peak on a 2-core machine at 200 resources.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLEET_TYPES = (
    ["g5.xlarge", "g6.xlarge", "g5.2xlarge"],
    ["g4dn.xlarge", "g4dn.2xlarge", "g5.xlarge"],
)


def stack_text(fleets: int, endpoints: int) -> str:
    lines = [
        "config:",
        "  aws:region: us-east-1",
        "  finops:tags: {Project: bench, Team: perf, Environment: staging}",
        "  finops:budgets:",
        "    - {project: bench, cloud: aws, monthlyLimitUsd: 1000000, notify: [perf@example.com]}",
    ]
    if fleets:
        lines.append("  finops:trainingFleets:")
    for i in range(fleets):
        types = FLEET_TYPES[i % 2]
        lines.append(
            f"    - {{name: fleet-{i}, cloud: aws, instanceTypes: {json.dumps(types)}, "
            f"nodes: {{min: 0, max: 4, desired: 2}}, modelVersion: v{i}}}"
        )
    if endpoints:
        lines.append("  finops:inferenceEndpoints:")
        for i in range(endpoints):
            lines.append(
                f"    - {{name: endpoint-{i}, cloud: aws, instanceType: ml.inf2.xlarge, "
                f"replicas: {{min: 1, max: 2}}, modelVersion: v{i}, "
                f"modelDataUrl: s3://bench-models/endpoint-{i}/model.tar.gz}}"
            )
    return "\n".join(lines) + "\n"


def run_preview(stack_file: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, resource count) of one `finops preview` process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "finops",
                "preview",
                "--stack",
                str(stack_file),
                "--format",
                "json",
                "--project-dir",
                str(ROOT),
            ],
            stdout=out,
            stderr=err,
            cwd=ROOT,
            env={**os.environ, "FINOPS_CATALOG_OVERLAY": ""},
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage: its peak RSS
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"preview failed ({proc.returncode}): {err.read().strip()}")
        count = len(json.loads(out.read())["resources"])
    return wall, usage.ru_maxrss / 1024, count


def resources_per(fleets: int, endpoints: int, workdir: Path) -> int:
    path = workdir / f"Pulumi.probe-{fleets}-{endpoints}.yaml"
    path.write_text(stack_text(fleets, endpoints))
    return run_preview(path)[2]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[20, 200], help="target resource counts"
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        base = resources_per(0, 0, workdir)
        per_fleet = resources_per(1, 0, workdir) - base
        per_endpoint = resources_per(0, 1, workdir) - base
        rows = []
        for target in args.sizes:
            endpoints = max(1, target // 10 // max(per_endpoint, 1))
            fleets = max(1, round((target - base - endpoints * per_endpoint) / max(per_fleet, 1)))
            path = workdir / f"Pulumi.bench-{target}.yaml"
            path.write_text(stack_text(fleets, endpoints))
            walls, peaks, count = [], [], 0
            for _ in range(args.runs):
                wall, peak, count = run_preview(path)
                walls.append(wall)
                peaks.append(peak)
            rows.append(
                (count, fleets, endpoints, statistics.median(walls), min(walls), max(peaks))
            )
    print(
        f"finops preview benchmark - {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {args.runs} runs per size (median wall)"
    )
    print(
        f"{'resources':>9} {'fleets':>6} {'endpoints':>9} {'wall s (median)':>16} {'wall s (best)':>14} {'peak RSS MiB':>13}"
    )
    for count, fleets, endpoints, median, best, peak in rows:
        print(f"{count:>9} {fleets:>6} {endpoints:>9} {median:>16.2f} {best:>14.2f} {peak:>13.0f}")
    if len(rows) >= 2:
        (n1, *_, w1, _, _), (n2, *_, w2, _, _) = rows[0], rows[-1]
        print(
            f"per-resource overhead: {(w2 - w1) / (n2 - n1) * 1000:.1f} ms "
            f"(slope of median wall between {n1} and {n2} resources)"
        )
    print("reproduce: .venv/bin/python bench/preview_bench.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
