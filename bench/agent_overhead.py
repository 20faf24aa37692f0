"""Agent overhead: CPU share of one core and RSS of `finops-agent` at 1 Hz with 8 stubbed GPUs.

Runs the real agent (`python -m aifinops.agents.cli`) in a subprocess with the stubbed `pynvml`
(tests/agents/fake_nvml) for N seconds, with Prometheus /metrics scraped every 15 s and the
export file on; `--cloudwatch` also ships to a local moto_server. CPU time is read from
/proc/<pid>/stat (utime+stime) after a warm-up, RSS from /proc/<pid>/status.
Goal (issue 5): under 0.5 % of one core and 50 MB. dcgm-exporter was reported at 15-20 % of a
core and 71 MiB.

    .venv/bin/python bench/agent_overhead.py --seconds 60 [--cloudwatch] [--rollup]

The stub answers in microseconds; a real driver costs more per call, which
bench/gpu_device_check.sh measures on a GPU host.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAKE_NVML = REPO / "tests" / "agents" / "fake_nvml"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def memory_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the agent exited {proc.returncode} before serving {url}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {url}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="measured run length (default 60)"
    )
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds excluded at start (default 5)"
    )
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument(
        "--cloudwatch", action="store_true", help="also ship to a local moto_server"
    )
    parser.add_argument(
        "--rollup", action="store_true", help="export rolled up ([export] rollup_seconds = 300)"
    )
    parser.add_argument("--real-nvml", action="store_true", help="use the host's real NVML")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    metrics_port = free_port()
    config = {
        "agent": {"sample_interval_seconds": 1.0, "window_seconds": 10.0},
        "spool": {"dir": str(work / "spool")},
        "export": {
            "path": str(work / "windows.jsonl"),
            "rollup_seconds": 300 if args.rollup else 0,
        },
        "prometheus": {"listen": f"127.0.0.1:{metrics_port}"},
        "metadata": {"provider": "none", "instance_id": "i-bench"},
    }
    moto = None
    if args.cloudwatch:
        moto_port = free_port()
        moto_bin = (
            shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
        )
        moto = subprocess.Popen(
            [moto_bin, "-H", "127.0.0.1", "-p", str(moto_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(f"http://127.0.0.1:{moto_port}/", 30)
        config["cloudwatch"] = {
            "enabled": True,
            "endpoint_url": f"http://127.0.0.1:{moto_port}",
            "region": "us-east-1",
        }
    config_path = work / "agent.json"
    config_path.write_text(json.dumps(config))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO)] if args.real_nvml else [str(FAKE_NVML), str(REPO)]
        ),
        "FINOPS_FAKE_NVML": "healthy8",  # ignored with --real-nvml (no stub on the path)
        "FINOPS_FAKE_NVML_GPUS": str(args.gpus),
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    total = args.warmup + args.seconds
    command = [
        sys.executable,
        "-m",
        "aifinops.agents.cli",
        "--config",
        str(config_path),
        "--duration",
        str(total + 5),
    ]
    started = time.monotonic()
    log = (work / "agent.log").open("wb")
    agent = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    try:
        try:
            wait_http(f"http://127.0.0.1:{metrics_port}/metrics", 20, agent)
        except SystemExit:
            log.close()
            print((work / "agent.log").read_text()[-2000:], file=sys.stderr)
            raise
        startup_cpu = cpu_seconds(agent.pid)
        time.sleep(max(0.0, started + args.warmup - time.monotonic()))
        cpu0, t0 = cpu_seconds(agent.pid), time.monotonic()
        next_scrape = t0
        while time.monotonic() - t0 < args.seconds:
            if time.monotonic() >= next_scrape:  # a Prometheus server scraping every 15 s
                urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
                next_scrape += 15
            time.sleep(0.5)
        cpu1, t1 = cpu_seconds(agent.pid), time.monotonic()
        mem = memory_kib(agent.pid)
        exported = work / "windows.jsonl"
        samples = len(exported.read_text().splitlines()) if exported.exists() else 0
    finally:
        agent.terminate()
        agent.wait(timeout=15)
        log.close()
        if moto:
            moto.terminate()
            moto.wait(timeout=10)
    share = (cpu1 - cpu0) / (t1 - t0) * 100
    source = (
        "real NVML"
        if args.real_nvml
        else f"PYTHONPATH=tests/agents/fake_nvml, {args.gpus} stubbed GPUs"
    )
    figures = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "agent_command": shlex.join(command),
        "source": source,
        "cloudwatch": args.cloudwatch,
        "rollup": args.rollup,
        "measured_seconds": round(t1 - t0, 1),
        "startup_cpu_seconds": round(startup_cpu, 3),
        "cpu_seconds": round(cpu1 - cpu0, 3),
        "cpu_percent_of_one_core": round(share, 3),
        "rss_mib": round(mem["VmRSS"] / 1024, 1),
        "rss_peak_mib": round(mem["VmHWM"] / 1024, 1),
        "export_lines": samples,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    print(f"command:  {figures['command']}")
    print(f"agent:    {figures['agent_command']}")
    print(
        f"setup:    {source}; 1 Hz, 10 s windows, /metrics scraped every 15 s, export file on"
        f"{' (rolled up)' if args.rollup else ''}, "
        f"CloudWatch {'on (moto_server)' if args.cloudwatch else 'off'}"
    )
    print(
        f"measured: {t1 - t0:.1f} s after {args.warmup:.0f} s warm-up; startup {startup_cpu:.2f} s CPU"
    )
    print(f"cpu:      {cpu1 - cpu0:.2f} s CPU = {share:.3f} % of one core (goal < 0.5 %)")
    print(
        f"rss:      {mem['VmRSS'] / 1024:.1f} MiB, peak {mem['VmHWM'] / 1024:.1f} MiB (goal < 50 MB)"
    )
    print(
        f"records:  {samples} lines in the export file (rolled up: a line per host and 5 minutes)"
    )
    print(f"python:   {figures['python']} on {os.uname().machine}, {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if share < 0.5 and mem["VmHWM"] < 50 * 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
