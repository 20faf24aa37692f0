"""Preview benchmark: `finops preview` on generated AWS, GCP, Azure and mixed stacks.

Generates stack files whose training fleets, inference endpoints and budgets expand to about
N resources through the real program (infra/) and components, runs `finops preview` on each
as a separate process (start-up included, exactly what a user waits for; policies included)
and reports wall time, peak RSS and the per-resource overhead (slope between the smallest and
largest stack of each kind).

    .venv/bin/python bench/preview_bench.py                     # every kind, 20 and 200 resources
    .venv/bin/python bench/preview_bench.py --kinds mixed --sizes 20 200 400 --runs 5

Kinds: `aws` (GPU fleets on g5/g6/g4dn, Inferentia endpoints, a budget), `gcp` (G2 fleets with
their fallback controller, TPU v5e endpoints, a budget), `azure` (NCasT4_v3 and NC A100 v4
fleets), `mixed` (all of the above in one stack, each cloud's share about a third).

Goal (issue 13): any stack of 200 resources on any mix of clouds under 3 s wall and 250 MB
peak on the project's 2-core machine. Timings on a shared machine are noisy: the load average
is printed with the figures; compare medians taken when it is low.
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("aws", "gcp", "azure", "mixed")
AWS_FLEET_TYPES = (
    ["g5.xlarge", "g6.xlarge", "g5.2xlarge"],
    ["g4dn.xlarge", "g4dn.2xlarge", "g5.xlarge"],
)
AZURE_VM_SIZES = ("Standard_NC4as_T4_v3", "Standard_NC24ads_A100_v4")
GCP_MACHINE_TYPES = ("g2-standard-8", "a2-highgpu-1g")
HEADER = [
    "config:",
    "  aws:region: us-east-1",
    "  gcp:project: bench-project",
    "  gcp:region: us-central1",
    "  azure-native:location: eastus",
    "  finops:gcpBillingAccount: 012345-6789AB-CDEF01",
    "  finops:azureSshPublicKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchKeyOnly bench",
    "  finops:tags: {Project: bench, Team: perf, Environment: staging}",
]


def _aws_fleet(i: int) -> str:
    return (
        f"{{name: aws-fleet-{i}, cloud: aws, instanceTypes: {json.dumps(AWS_FLEET_TYPES[i % 2])}, "
        f"nodes: {{min: 0, max: 4, desired: 2}}, modelVersion: v{i}}}"
    )


def _gcp_fleet(i: int) -> str:
    machine = GCP_MACHINE_TYPES[i % 2]
    return (
        f"{{name: gcp-fleet-{i}, cloud: gcp, instanceTypes: [{machine}], "
        f"nodes: {{min: 0, max: 4, desired: 2}}, modelVersion: v{i}}}"
    )


def _azure_fleet(i: int) -> str:
    return (
        f"{{name: azure-fleet-{i}, cloud: azure, instanceTypes: [{AZURE_VM_SIZES[i % 2]}], "
        f"nodes: {{min: 0, max: 4, desired: 2}}, onDemandBase: 1, modelVersion: v{i}}}"
    )


def _aws_endpoint(i: int) -> str:
    return (
        f"{{name: aws-endpoint-{i}, cloud: aws, instanceType: ml.inf2.xlarge, "
        f"replicas: {{min: 1, max: 2}}, modelVersion: v{i}, "
        f"serving: model-archive, modelDataUrl: s3://bench-models/endpoint-{i}/model.tar.gz}}"
    )


def _gcp_endpoint(i: int) -> str:
    return (
        f"{{name: gcp-endpoint-{i}, cloud: gcp, instanceType: v5litepod-4, "
        f"replicas: {{min: 1, max: 2}}, modelVersion: v{i}, "
        "serving: llm, modelId: google/gemma-2-9b-it}"
    )


Unit = Callable[[int], str]
FLEETS: dict[str, list[Unit]] = {
    "aws": [_aws_fleet],
    "gcp": [_gcp_fleet],
    "azure": [_azure_fleet],
    "mixed": [_aws_fleet, _gcp_fleet, _azure_fleet],
}
ENDPOINTS: dict[str, list[Unit]] = {
    "aws": [_aws_endpoint],
    "gcp": [_gcp_endpoint],
    "azure": [],
    "mixed": [_aws_endpoint, _gcp_endpoint],
}
BUDGET_CLOUDS = {"aws": ["aws"], "gcp": ["gcp"], "azure": [], "mixed": ["aws", "gcp"]}


def stack_text(fleets: int, endpoints: int, kind: str = "aws") -> str:
    """A stack file of `kind` with `fleets` fleets and `endpoints` endpoints (spread round-robin
    over the kind's clouds) and one budget per cloud that has budgets (bench/contracts_bench.py
    uses the AWS kind)."""
    lines = list(HEADER)
    budgets = BUDGET_CLOUDS[kind]
    if budgets:
        lines.append("  finops:budgets:")
        for cloud in budgets:
            lines.append(
                f"    - {{project: bench, cloud: {cloud}, monthlyLimitUsd: 1000000, "
                "notify: [perf@example.com]}"
            )
    if fleets:
        lines.append("  finops:trainingFleets:")
        makers = FLEETS[kind]
        lines += [f"    - {makers[i % len(makers)](i)}" for i in range(fleets)]
    if endpoints and ENDPOINTS[kind]:
        lines.append("  finops:inferenceEndpoints:")
        makers = ENDPOINTS[kind]
        lines += [f"    - {makers[i % len(makers)](i)}" for i in range(endpoints)]
    return "\n".join(lines) + "\n"


def run_preview(stack_file: Path) -> tuple[float, float, int, float]:
    """(wall seconds, peak RSS MiB, resource count, CPU seconds) of one `finops preview`
    process. CPU time (user + system) is what the wall time would be on an idle machine, give
    or take the gRPC threads; on a shared machine it is the steadier figure."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aifinops",
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
        resources = json.loads(out.read())["resources"]
        count = sum(1 for r in resources if r.get("charge") is None)  # lines are not resources
    return wall, usage.ru_maxrss / 1024, count, usage.ru_utime + usage.ru_stime


def _count(kind: str, fleets: int, endpoints: int, workdir: Path) -> int:
    path = workdir / f"Pulumi.probe-{kind}-{fleets}-{endpoints}.yaml"
    path.write_text(stack_text(fleets, endpoints, kind))
    return run_preview(path)[2]


def plan(kind: str, target: int, workdir: Path) -> tuple[int, int]:
    """(fleets, endpoints) that expand to about `target` resources: endpoints about a tenth."""
    base = _count(kind, 0, 0, workdir)
    per_cycle = len(FLEETS[kind])  # one fleet per cloud of the kind, so every cloud is probed
    per_fleet = (_count(kind, per_cycle, 0, workdir) - base) / per_cycle
    per_endpoint = 0.0
    if ENDPOINTS[kind]:
        cycle = len(ENDPOINTS[kind])
        per_endpoint = (_count(kind, 0, cycle, workdir) - base) / cycle
    endpoints = max(1, round(target / 10 / per_endpoint)) if per_endpoint else 0
    fleets = max(1, round((target - base - endpoints * per_endpoint) / per_fleet))
    return fleets, endpoints


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[20, 200], help="target resource counts"
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    load_before = load_average()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for kind in args.kinds:
            for target in args.sizes:
                fleets, endpoints = plan(kind, target, workdir)
                path = workdir / f"Pulumi.bench-{kind}-{target}.yaml"
                path.write_text(stack_text(fleets, endpoints, kind))
                walls, peaks, cpus, count = [], [], [], 0
                for _ in range(args.runs):
                    wall, peak, count, cpu = run_preview(path)
                    walls.append(wall)
                    peaks.append(peak)
                    cpus.append(cpu)
                    print(
                        f"  {kind} {count} resources: {wall:.2f} s wall, {cpu:.2f} s CPU, "
                        f"{peak:.0f} MiB",
                        file=sys.stderr,
                    )
                rows.append(
                    (
                        kind,
                        count,
                        fleets,
                        endpoints,
                        statistics.median(walls),
                        min(walls),
                        statistics.median(cpus),
                        max(peaks),
                    )
                )
    print(
        f"finops preview benchmark - {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {args.runs} runs per "
        f"stack; load average (1/5/15 min) before {load_before}, after {load_average()}"
    )
    print(
        f"{'kind':>6} {'resources':>9} {'fleets':>6} {'endpoints':>9} {'wall s (median)':>16} "
        f"{'wall s (best)':>14} {'CPU s (median)':>15} {'peak RSS MiB':>13}"
    )
    for kind, count, fleets, endpoints, median, best, cpu, peak in rows:
        print(
            f"{kind:>6} {count:>9} {fleets:>6} {endpoints:>9} {median:>16.2f} {best:>14.2f} "
            f"{cpu:>15.2f} {peak:>13.0f}"
        )
    for kind in args.kinds:
        mine = [r for r in rows if r[0] == kind]
        if len(mine) >= 2:
            first, last = mine[0], mine[-1]
            resources = last[1] - first[1]
            print(
                f"{kind}: per-resource overhead {(last[4] - first[4]) / resources * 1000:.1f} ms "
                f"wall, {(last[6] - first[6]) / resources * 1000:.1f} ms CPU (slope of the "
                f"medians between {first[1]} and {last[1]} resources)"
            )
    print("reproduce: .venv/bin/python bench/preview_bench.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
