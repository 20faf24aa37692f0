"""`finops report` on 10 million generated FOCUS rows (Parquet): wall time and peak RSS.

Generates the export once with bench/focus_synth.py (kept in --data-dir), then runs the
report as a user does (a separate `finops report` process, start-up included, JSON to a
file, anomalies and their resources on) and prints what it measured, with the machine's
load: the machine is shared, so compare runs made when it is quiet.

    .venv/bin/python bench/report_bench.py                      # 10,000,000 rows, 3 runs
    .venv/bin/python bench/report_bench.py --rows 1000000 --runs 1

Goal (issue 14): under 30 s and 2 GB on this 2-core machine, with progress shown.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from focus_synth import write_focus  # noqa: E402


def run_once(export: Path, out: Path) -> tuple[float, float, list[str]]:
    """(wall seconds, peak RSS MiB, progress lines) of one `finops report` process."""
    command = [
        sys.executable,
        "-m",
        "aifinops",
        "report",
        str(export),
        "--format",
        "json",
        "-o",
        str(out),
    ]
    began = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    _, stderr = process.communicate()
    wall = time.perf_counter() - began
    if process.returncode != 0:
        raise SystemExit(f"finops report failed ({process.returncode}):\n{stderr}")
    # the largest resident set of any child so far (KiB on Linux)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak, [line for line in stderr.splitlines() if line.startswith("[report]")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/finops-bench"))
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    export = args.data_dir / f"focus-{args.rows}.parquet"
    if not export.exists():
        began = time.perf_counter()
        write_focus(export, args.rows)
        print(
            f"generated {export} ({export.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - began:.1f} s"
        )
    print(
        f"machine: {os.cpu_count()} CPUs, load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    walls, peaks = [], []
    for run in range(1, args.runs + 1):
        wall, peak, progress = run_once(export, args.data_dir / "report.json")
        walls.append(wall)
        peaks.append(peak)
        print(
            f"run {run}: {wall:.1f} s, peak RSS {peak:.0f} MiB (max of runs so far), {len(progress)} progress lines"
        )
        for line in progress:
            print(f"    {line}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    median = statistics.median(walls)
    print(
        f"\nfinops report, {args.rows:,} FOCUS rows (Parquet, {export.stat().st_size / 2**20:.0f} MiB): "
        f"median {median:.1f} s of {args.runs} (min {min(walls):.1f} s), peak RSS {max(peaks):.0f} MiB"
    )
    print(
        f"goal: < 30 s and < 2048 MiB: {'met' if median < 30 and max(peaks) < 2048 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
