"""`finops rightsize` on a large fleet's agent files: time and peak memory per form.

For each form of bench/fleet_data.py (100 hosts x 8 GPUs x 14 days; generated once into
`--data-dir`, never into the repository) this runs, each as its own process:

1. `finops rightsize --stack DIR/Pulumi.fleet.yaml --source agent:DIR --format json`: what a
   user waits for, reading included (the recommendations are priced by the preview);
2. the read alone (`aifinops.rightsizing.stream.read_usage`), to show what the files cost.

Wall time and the process's peak RSS (its own rusage, DuckDB's threads included) are
printed with the load average around each run (the machine is shared: quote figures with
it; the CPU seconds of all threads beside the wall time say what a quiet machine needs), and
the recommendations of every form, which must agree.

    .venv/bin/python bench/rightsize_scale.py --forms 5m rollup
    .venv/bin/python bench/rightsize_scale.py --forms 1m [--memory-mb 384]  # 22 GB of files

Goals (issue 18): 5m form under 60 s and 500 MB; 1m form under 500 MB; rollup under 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import fleet_data  # noqa: E402

END = fleet_data.T0 + fleet_data.DAYS * 86400
READ_ONLY = """
import sys, time
from pathlib import Path
from aifinops.rightsizing import stream
began = time.perf_counter()
usages = stream.read_usage([Path(sys.argv[1])], lookback_days=14, end=float(sys.argv[2]),
                           memory_limit_mb=int(sys.argv[3]))
print(len(usages), time.perf_counter() - began)
"""


def measured(command: list[str]) -> tuple[float, float, str, float, float, float]:
    """(wall s, peak RSS MiB, stdout, load before, load after, CPU s) of one process."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(command)} failed: {err.read()[-2000:]}")
        cpu = usage.ru_utime + usage.ru_stime  # every thread's: DuckDB scans in parallel
        return wall, usage.ru_maxrss / 1024, out.read(), load_before, os.getloadavg()[0], cpu


def kept(report_json: str) -> dict[str, str]:
    return {
        r["target"]: "+".join(r["recommendation"]["kinds"]) if r["recommendation"] else r["status"]
        for r in json.loads(report_json)
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--forms", nargs="+", choices=fleet_data.FORMS, default=["5m", "rollup"])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "finops-fleet",
        help="where the generated files are kept between runs (default %(default)s)",
    )
    parser.add_argument("--skip-rightsize", action="store_true", help="measure the read only")
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=256,
        help="DuckDB's memory, as finops rightsize --memory-mb (default %(default)s)",
    )
    args = parser.parse_args()
    rows = []
    recommendations = {}
    for form in args.forms:
        folder = args.data_dir / form
        records, size = fleet_data.write(form, folder)
        read = measured(
            [sys.executable, "-c", READ_ONLY, str(folder), str(END), str(args.memory_mb)]
        )
        gpus = int(read[2].split()[0])
        full = None
        if not args.skip_rightsize:
            full = measured(
                [
                    sys.executable,
                    "-m",
                    "aifinops",
                    "rightsize",
                    "--stack",
                    str(folder / "Pulumi.fleet.yaml"),
                    "--source",
                    f"agent:{folder}",
                    "--end",
                    str(END),
                    "--format",
                    "json",
                    "--memory-mb",
                    str(args.memory_mb),
                    "--project-dir",
                    str(ROOT),
                ]
            )
            recommendations[form] = kept(full[2])
        rows.append((form, records, size, gpus, read, full))
    print(
        f"finops rightsize at fleet scale - {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(
        "| form | records | files | GPUs | read: wall (CPU), peak RSS "
        "| rightsize: wall (CPU), peak RSS | load avg before/after |"
    )
    print("|---|---:|---:|---:|---|---|---|")
    for form, records, size, gpus, read, full in rows:
        whole = "-" if full is None else f"{full[0]:.1f} s ({full[5]:.0f} s), {full[1]:.0f} MiB"
        loads = f"{read[3]:.1f}/{read[4]:.1f}" + (
            "" if full is None else f"; {full[3]:.1f}/{full[4]:.1f}"
        )
        print(
            f"| {form} | {records:,} | {size / 1e9:.2f} GB | {gpus} | "
            f"{read[0]:.1f} s ({read[5]:.0f} s), {read[1]:.0f} MiB | {whole} | {loads} |"
        )
    for form, kinds in recommendations.items():
        print(f"{form}: {kinds}")
    if len({json.dumps(k, sort_keys=True) for k in recommendations.values()}) > 1:
        print("the forms disagree on the recommendations", file=sys.stderr)
        return 1
    print("reproduce: .venv/bin/python bench/rightsize_scale.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
