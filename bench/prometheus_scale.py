"""`finops rightsize --source prometheus:URL` against a real Prometheus holding a fleet.

The fleet of bench/fleet_data.py (100 hosts x 8 GPUs, 4 fleets) over 14 days, one sample a
minute per series under the agent's metric names and labels (dcgm-exporter's), is backfilled
day by day with `promtool tsdb create-blocks-from openmetrics` into `--data-dir` (kept between
runs, never in the repository). Debian's `prometheus` is started on 127.0.0.1 over it, then,
each as its own process:

1. the read alone (`aifinops.rightsizing.prometheus.read_usage`: one query per figure,
   aggregated on the server);
2. `finops rightsize --stack Pulumi.fleet.yaml --source prometheus:URL --format json`.

Wall time and peak RSS are printed for both and for the server (its VmHWM), with the load
average around each run and the number of queries sent.

    .venv/bin/python bench/prometheus_scale.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import fleet_data  # noqa: E402
from rightsize_scale import kept, measured  # noqa: E402

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
STEP_SECONDS = 60
END = fleet_data.T0 + fleet_data.DAYS * 86400
READ_ONLY = """
import sys, time
from aifinops.rightsizing import prometheus
sent = []
Source = prometheus.PrometheusSource
query, query_range = Source.query, Source.query_range
Source.query = lambda self, q, at: (sent.append(q), query(self, q, at))[1]
Source.query_range = lambda self, q, a, b, st: (sent.append(q), query_range(self, q, a, b, st))[1]
began = time.perf_counter()
usages = prometheus.read_usage(Source(sys.argv[1], timeout_seconds=600), lookback_days=14,
                               end=float(sys.argv[2]))
print(len(usages), time.perf_counter() - began, len(sent))
"""


def _labels(host: fleet_data.Host, gpu: int) -> str:
    address = f"10.0.{host.number // 256}.{host.number % 256}:9401"
    return (
        f'instance="{address}",job="finops-agent",fleet="{host.fleet.name}",gpu="{gpu}",'
        f'UUID="{host.uuid(gpu)}",device="nvidia{gpu}",modelName="{host.fleet.gpu_name}",'
        f'Hostname="ip-10-0-{host.number // 256}-{host.number % 256}"'
    )


def day_openmetrics(day: int, path: Path) -> int:
    """One day of the fleet's series as OpenMetrics text; the number of samples."""
    hosts = fleet_data.hosts()
    first_minute = day * 1440
    minutes = range(first_minute, first_minute + 1440)
    samples = 0
    with path.open("w", buffering=1 << 20) as out:
        families = {
            "DCGM_FI_DEV_GPU_UTIL": "gauge",
            "DCGM_FI_DEV_FB_USED": "gauge",
            "DCGM_FI_PROF_SM_ACTIVE": "gauge",
            "finops_agent_gpu_memory_total_bytes": "gauge",
        }
        for name, kind in families.items():
            out.write(f"# TYPE {name} {kind}\n")
            for host in hosts:
                if name == "DCGM_FI_PROF_SM_ACTIVE" and not host.fleet.sm:
                    continue
                for gpu in range(fleet_data.GPUS_PER_HOST):
                    labels = _labels(host, gpu)
                    for minute in minutes:
                        t = fleet_data.T0 + minute * STEP_SECONDS
                        mean, _, memory, _ = fleet_data._minute(
                            host.fleet, host.number, gpu, minute
                        )
                        value = {
                            "DCGM_FI_DEV_GPU_UTIL": round(mean),
                            "DCGM_FI_DEV_FB_USED": round(memory * 1024),
                            "DCGM_FI_PROF_SM_ACTIVE": round(mean / 110, 4),
                            "finops_agent_gpu_memory_total_bytes": host.fleet.memory_total_gib
                            * fleet_data.GIB,
                        }[name]
                        out.write(f"{name}{{{labels}}} {value} {t:.0f}\n")
                        samples += 1
        out.write("# TYPE finops_agent_info gauge\n")
        for host in hosts:
            address = f"10.0.{host.number // 256}.{host.number % 256}:9401"
            for minute in minutes:
                out.write(
                    f'finops_agent_info{{instance="{address}",job="finops-agent",version="1",'
                    f'driver="550",instance_id="{host.instance_id}",'
                    f'instance_type="{host.fleet.instance_type}",lifecycle="on-demand",'
                    f'cloud="aws"}} 1 {fleet_data.T0 + minute * STEP_SECONDS:.0f}\n'
                )
                samples += 1
        out.write("# TYPE finops_agent_work_units counter\n")
        for host in hosts:
            address = f"10.0.{host.number // 256}.{host.number % 256}:9401"
            # the counter from the start of the history: 12 steps a minute while GPU 0 works
            total = 12 * sum(
                fleet_data._minute(host.fleet, host.number, 0, m)[3] for m in range(first_minute)
            )
            for minute in minutes:
                total += 12 * fleet_data._minute(host.fleet, host.number, 0, minute)[3]
                out.write(
                    f'finops_agent_work_units_total{{instance="{address}",job="finops-agent",'
                    f'unit="steps"}} {total} {fleet_data.T0 + minute * STEP_SECONDS:.0f}\n'
                )
                samples += 1
        out.write("# EOF\n")
    return samples


def backfill(data: Path) -> tuple[int, float]:
    """The TSDB under `data` (built once); (samples, seconds promtool took in all)."""
    done = data / "COMPLETE.json"
    if done.exists():
        info = json.loads(done.read_text())
        return int(info["samples"]), float(info["seconds"])
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    samples, took = 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for day in range(fleet_data.DAYS):
            text = Path(tmp) / f"day-{day}.om"
            samples += day_openmetrics(day, text)
            began = time.perf_counter()
            subprocess.run(
                [
                    PROMTOOL,
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    "--max-block-duration=24h",
                    "-q",
                    str(text),
                    str(data / "tsdb"),
                ],
                check=True,
                capture_output=True,
            )
            took += time.perf_counter() - began
            text.unlink()
            print(f"\rbackfilled day {day + 1}/{fleet_data.DAYS}", end="", file=sys.stderr)
    print(file=sys.stderr)
    done.write_text(json.dumps({"samples": samples, "seconds": took}))
    return samples, took


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "finops-fleet" / "prom"
    )
    args = parser.parse_args()
    if not (Path(PROMETHEUS).exists() and Path(PROMTOOL).exists()):
        print("prometheus/promtool not installed (Debian: apt-get install prometheus)")
        return 2
    samples, promtool_seconds = backfill(args.data_dir)
    stack = args.data_dir / "Pulumi.fleet.yaml"
    stack.write_text(fleet_data.stack_text())
    config = args.data_dir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (args.data_dir / "prometheus.log").open("w")
    server = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={args.data_dir / 'tsdb'}",
            "--storage.tsdb.retention.time=20y",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        for _ in range(1200):
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
        else:
            raise SystemExit("prometheus did not become ready")
        read = measured([sys.executable, "-c", READ_ONLY, url, str(END)])
        gpus, _, queries = read[2].split()
        full = measured(
            [
                sys.executable,
                "-m",
                "aifinops",
                "rightsize",
                "--stack",
                str(stack),
                "--source",
                f"prometheus:{url}",
                "--end",
                str(END),
                "--format",
                "json",
                "--project-dir",
                str(ROOT),
            ]
        )
        status = Path(f"/proc/{server.pid}/status").read_text()
        server_peak = next(line.split()[1] for line in status.splitlines() if "VmHWM" in line)
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(
        f"finops rightsize from Prometheus - {platform.machine()}, {os.cpu_count()} cores; "
        f"{samples:,} samples (800 GPUs x 14 days, one a minute), promtool "
        f"{promtool_seconds:.0f} s"
    )
    print("| step | wall | peak RSS | load avg before/after |")
    print("|---|---:|---:|---|")
    print(
        f"| read ({gpus} GPUs, {queries} queries) | {read[0]:.1f} s (CPU {read[5]:.1f} s) | "
        f"{read[1]:.0f} MiB | "
        f"{read[3]:.1f}/{read[4]:.1f} |"
    )
    print(
        f"| `finops rightsize` | {full[0]:.1f} s (CPU {full[5]:.1f} s) | {full[1]:.0f} MiB | "
        f"{full[3]:.1f}/{full[4]:.1f} |"
    )
    print(f"| prometheus server (VmHWM) | | {int(server_peak) / 1024:.0f} MiB | |")
    print(f"recommendations: {kept(full[2])}")
    print("reproduce: .venv/bin/python bench/prometheus_scale.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
