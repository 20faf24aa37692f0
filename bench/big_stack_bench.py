"""`finops preview` and `finops check` on a stack of about 1,000 resources: time and memory.

The stack is bench/preview_bench.py's generator (training fleets, inference endpoints and a
budget through the real program and components) sized to ~1,000 resources. Each command runs
as its own process, as a user runs it; `finops check` starts the policy pack as the engine
does (a second Python process, `python -u -m pulumi.policy`). Memory is the peak of the
whole process tree's RSS, sampled every 20 ms from /proc, next to the `finops` process's own
peak (its rusage); the load average is printed around each run.

    .venv/bin/python bench/big_stack_bench.py [--fleets 36 --endpoints 14] [--runs 3]

Goal (issue 18): a 1,000-resource stack previews and is checked in under 1 GB.
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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from preview_bench import stack_text  # noqa: E402


def _tree_rss_kib(root: int) -> int:
    """RSS of `root` and every process below it, KiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        children.setdefault(int(fields["PPid"].strip()), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def run(command: list[str]) -> tuple[float, float, float, int, str, float]:
    """(wall s, tree peak MiB, own peak MiB, exit code, stdout, load before)."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.02):
                peak = max(peak, _tree_rss_kib(proc.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        sampler.join()
        wall = time.perf_counter() - began
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if code not in (0, 1):
            raise SystemExit(f"{' '.join(command)} failed ({code}): {err.read()[-2000:]}")
        return wall, peak / 1024, usage.ru_maxrss / 1024, code, out.read(), load


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fleets", type=int, default=36)
    parser.add_argument("--endpoints", type=int, default=14)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Path(tmp) / "Pulumi.big.yaml"
        stack.write_text(stack_text(args.fleets, args.endpoints))
        common = ["--stack", str(stack), "--project-dir", str(ROOT)]
        commands = {
            "finops preview": [
                sys.executable,
                "-m",
                "aifinops",
                "preview",
                *common,
                "--format",
                "json",
            ],
            "finops check": [sys.executable, "-m", "aifinops", "check", *common],
        }
        rows = []
        resources = 0
        for name, command in commands.items():
            results = [run(command) for _ in range(args.runs)]
            if name == "finops preview":
                resources = len(json.loads(results[0][4])["resources"])
            rows.append((name, results))
    print(
        f"preview and check of a {resources}-resource stack - {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {args.runs} runs"
    )
    print("| command | wall (median) | peak RSS, process tree | peak RSS, finops | load avg |")
    print("|---|---:|---:|---:|---|")
    for name, results in rows:
        print(
            f"| `{name}` | {statistics.median(r[0] for r in results):.1f} s | "
            f"{max(r[1] for r in results):.0f} MiB | {max(r[2] for r in results):.0f} MiB | "
            f"{min(r[5] for r in results):.1f}-{max(r[5] for r in results):.1f} |"
        )
    print("reproduce: .venv/bin/python bench/big_stack_bench.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
