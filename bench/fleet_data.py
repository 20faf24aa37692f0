"""A large fleet's agent files, generated deterministically, for the scale benchmarks.

100 hosts x 8 GPUs (4 fleets of 25 hosts) over 14 days, in one of three forms of the same
telemetry (the same minute-by-minute model, so all three describe one fleet):

- `5m`: window records (agents/SPOOL_FORMAT.md, every field) from an agent with
  `window_seconds = 300`: 3.2 million records, 4.4 GB;
- `1m`: the default 60 s windows: 16.1 million records, 22.1 GB;
- `rollup`: the export rolled up (`[export] rollup_seconds = 300`, agents/rollup.py): 3.2
  million 5-minute GPU summaries, a host's GPUs of an interval on one line (schema_version 2,
  agents/SPOOL_FORMAT.md): 0.4 GB.

Files go one folder per host (`DIR/<instance id>/windows.jsonl`), as a fleet's export files
collected from its hosts; `Pulumi.fleet.yaml` beside them is the stack whose fleets they
describe. Nothing is random at run time: every value is a function of the host, GPU and
minute, so the same command writes the same bytes.

    .venv/bin/python bench/fleet_data.py --form 5m --out /tmp/finops-fleet/5m
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aifinops.agents.rollup import pack

T0 = 1_764_547_200.0  # 2025-12-01 00:00 UTC, a whole day
DAYS = 14
GPUS_PER_HOST = 8
GIB = 1024**3


@dataclass(frozen=True)
class Fleet:
    name: str
    instance_type: str
    gpu_name: str
    memory_total_gib: int
    util_level: float
    """Mean utilisation while a job runs, percent."""
    memory_gib: float
    """Accelerator memory a job holds, GiB."""
    busy_hours: tuple[int, int]
    """Clock hours (UTC) in which jobs run each day: [first, last)."""
    busy_gpus: int
    """GPUs of each host a job uses."""
    sm: bool
    """Hopper and later: GPM SM activity."""


FLEETS = (
    Fleet("pretrain", "p5.48xlarge", "NVIDIA H100 80GB HBM3", 80, 93.0, 71.0, (0, 24), 8, True),
    Fleet("finetune", "p4d.24xlarge", "NVIDIA A100-SXM4-40GB", 40, 31.0, 13.0, (0, 24), 8, False),
    Fleet("vision", "g5.48xlarge", "NVIDIA A10G", 24, 55.0, 9.0, (0, 24), 4, False),
    Fleet("batch", "g6e.48xlarge", "NVIDIA L40S", 48, 70.0, 30.0, (8, 20), 8, False),
)
HOSTS_PER_FLEET = 25
FORMS = ("5m", "1m", "rollup")
# small, fixed, uneven variations: by minute of the interval, by GPU, by hour
MINUTE_OFFSET = (-3.0, 1.5, 4.0, -2.0, -0.5)
BURST = (6.0, 11.0, 3.0, 14.0, 8.0, 5.0, 9.0)


def stack_text() -> str:
    lines = [
        "# The fleet of bench/fleet_data.py: 4 fleets of 25 hosts x 8 GPUs.",
        "config:",
        "  aws:region: us-east-1",
        "  finops:tags: {Project: llm, Team: ml-platform, Environment: prod}",
        "  finops:trainingFleets:",
    ]
    for fleet in FLEETS:
        lines.append(
            f"    - {{name: {fleet.name}, cloud: aws, instanceTypes: [{fleet.instance_type}], "
            f"nodes: {{min: 1, max: {HOSTS_PER_FLEET}, desired: {HOSTS_PER_FLEET}}}, "
            "capacity: on-demand, modelVersion: v1}"
        )
    return "\n".join(lines) + "\n"


def _stats(low: float, mean: float, p95: float, high: float) -> str:
    return f'{{"min":{low:.1f},"mean":{mean:.4f},"p95":{p95:.1f},"max":{high:.1f}}}'


def _minute(fleet: Fleet, host: int, gpu: int, minute: int) -> tuple[float, float, float, bool]:
    """(util mean %, util peak %, memory used GiB, job running) of one GPU in one minute."""
    hour = (minute // 60) % 24
    # hosts stop for a few hours every few days (maintenance, queue empty)
    stopped = (minute // 60 + host * 7) % 97 < 3
    running = (
        gpu < fleet.busy_gpus and fleet.busy_hours[0] <= hour < fleet.busy_hours[1] and not stopped
    )
    if not running:
        return 0.0, 0.0, 0.4, False
    mean = fleet.util_level + MINUTE_OFFSET[minute % 5] + (gpu % 3) - 1.0
    mean = min(100.0, max(0.0, mean + 4.0 * math.sin(minute / 180.0 + host)))
    peak = min(100.0, mean + BURST[(minute + gpu + host) % 7])
    memory = fleet.memory_gib * (0.92 + 0.02 * ((host + gpu) % 5))
    return round(mean, 2), round(peak, 1), memory, True


@dataclass(frozen=True)
class Host:
    number: int
    fleet: Fleet

    @property
    def instance_id(self) -> str:
        return f"i-{0x0A0000000000 + self.number:012x}"

    def uuid(self, gpu: int) -> str:
        return f"GPU-{self.number:08x}-0000-4000-8000-{gpu:012x}"

    def identity(self) -> dict[str, object]:
        """The host fields of its records (those `prefix` writes)."""
        return json.loads("{" + self.prefix() + "}")

    def prefix(self) -> str:
        return (
            f'"cloud":"aws","instance_id":"{self.instance_id}",'
            f'"instance_type":"{self.fleet.instance_type}","region":"us-east-1",'
            f'"lifecycle":"on-demand","hostname":"ip-10-0-{self.number // 256}-{self.number % 256}",'
            f'"tags":{{"finops:fleet":"{self.fleet.name}","Project":"llm"}}'
        )


def hosts() -> list[Host]:
    return [
        Host(n * len(FLEETS) + k, fleet)
        for n in range(HOSTS_PER_FLEET)
        for k, fleet in enumerate(FLEETS)
    ]


def _window_line(
    host: Host, prefix: str, gpu: int, start: float, seconds: int, minutes: list[tuple]
) -> str:
    fleet = host.fleet
    means = [m[0] for m in minutes]
    peaks = [m[1] for m in minutes]
    memory = max(m[2] for m in minutes) * GIB
    mean = sum(means) / len(means)
    busy = any(m[3] for m in minutes)
    samples = seconds  # 1 Hz
    sm = _stats(mean / 130, mean / 110, max(peaks) / 105, max(peaks) / 100) if fleet.sm else "null"
    uuid = host.uuid(gpu)
    return (
        f'{{"schema_version":1,"record_id":"{host.instance_id}/{uuid}/{start:.3f}",'
        f'"window_start":{start:.1f},"window_end":{start + seconds:.1f},{prefix},'
        f'"gpu_index":{gpu},"gpu_uuid":"{uuid}","gpu_name":"{fleet.gpu_name}","lost":false,'
        f'"sample_count":{samples},"memory_total_bytes":{fleet.memory_total_gib * GIB},'
        f'"memory_reserved_bytes":536870912,'
        f'"gpu_util_percent":{_stats(min(means), mean, max(peaks), max(peaks))},'
        f'"mem_util_percent":{_stats(mean / 3, mean / 2, mean / 1.6, mean / 1.5)},'
        f'"memory_used_bytes":{_stats(memory * 0.98, memory * 0.99, memory, memory)},'
        f'"power_watts":{_stats(80 + mean * 3, 90 + mean * 3.5, 95 + mean * 4, 100 + mean * 4)},'
        f'"temperature_celsius":{_stats(38 + mean / 4, 40 + mean / 4, 41 + mean / 4, 42 + mean / 4)},'
        f'"sm_clock_mhz":{_stats(1410.0, 1755.0, 1980.0, 1980.0)},'
        f'"sm_active_ratio":{sm},"tensor_active_ratio":{sm},'
        f'"process_count":{_stats(1.0 if busy else 0.0, 1.0 if busy else 0.0, 1.0 if busy else 0.0, 1.0 if busy else 0.0)},'
        f'"idle":{"false" if busy else "true"},"idle_sample_ratio":{0.0 if busy else 1.0},'
        f'"ecc_corrected_volatile":0,"ecc_uncorrected_volatile":0,"xid_error_count":0,'
        f'"xid_last":null,"work_units":{_work(host, minutes)},"interruption_action":null,'
        f'"mig_enabled":false,"mig_instances":[],"unsupported":{{}}}}\n'
    )


def _work(host: Host, minutes: list[tuple]) -> str:
    steps = sum(12.0 for m in minutes if m[3])
    return f'{{"steps":{steps:.1f}}}' if steps else "{}"


def _rollup_summary(host: Host, gpu: int, start: float, minutes: list[tuple]) -> dict:
    """What agents/rollup.py closes for five 60 s windows of one GPU (tests hold the two
    equal); `rollup.pack` writes a host's summaries of an interval as its lines."""
    fleet = host.fleet
    means = [m[0] for m in minutes]
    peaks = [m[1] for m in minutes]
    busy = any(m[3] for m in minutes)
    steps = sum(12.0 for m in minutes if m[3])
    return {
        "rollup_seconds": 300,
        "window_start": start,
        "window_end": start + 300,
        "windows": 5,
        "identity": host.identity(),
        "work_units": {"steps": steps} if steps else {},
        "input_verdict": None,
        "input_causes": [],
        "host_cpu_util_percent_max": None,
        "host_memory_used_bytes_max": None,
        "gpu_index": gpu,
        "sample_count": 300,
        "memory_total_bytes": fleet.memory_total_gib * GIB,
        "gpu_util_percent_max": max(peaks),
        "gpu_util_percent_mean": sum(m * 60.0 for m in means) / 300.0,
        "sm_active_ratio_max": max(p / 100 for p in peaks) if fleet.sm else None,
        "sm_active_ratio_mean": sum(m / 110 * 60.0 for m in means) / 300.0 if fleet.sm else None,
        "memory_used_bytes_max": max(m[2] for m in minutes) * GIB,
        "process_count_max": 1.0 if busy else 0.0,
    }


def _minutes(host: Host, gpu: int, interval: int) -> list[tuple]:
    return [_minute(host.fleet, host.number, gpu, interval * 5 + k) for k in range(5)]


def host_lines(host: Host, form: str, days: float = DAYS) -> Iterator[str]:
    """The lines of one host's export file, oldest first."""
    prefix = host.prefix()
    intervals = int(days * 86400 // 300)
    for interval in range(intervals):
        start = T0 + interval * 300
        if form == "rollup":
            yield from pack(
                [
                    _rollup_summary(host, gpu, start, _minutes(host, gpu, interval))
                    for gpu in range(GPUS_PER_HOST)
                ]
            )
            continue
        for gpu in range(GPUS_PER_HOST):
            minutes = _minutes(host, gpu, interval)
            if form == "5m":
                yield _window_line(host, prefix, gpu, start, 300, minutes)
            else:
                for k, minute in enumerate(minutes):
                    yield _window_line(host, prefix, gpu, start + 60 * k, 60, [minute])


def _summaries(line: str) -> int:
    """Window records or GPU summaries in a line (a rolled-up line holds a host's GPUs)."""
    return line.count("],[") + 1 if line.startswith('{"schema_version":2') else 1


def write(form: str, out: Path, days: float = DAYS) -> tuple[int, int]:
    """Write every host's file under `out` (skipped when complete); (records, bytes)."""
    out.mkdir(parents=True, exist_ok=True)
    done = out / "COMPLETE.json"
    wanted = {
        "form": form,
        "days": days,
        "hosts": len(hosts()),
        "version": 3 if form == "rollup" else 2,
    }
    if done.exists() and json.loads(done.read_text()).get("wanted") == wanted:
        info = json.loads(done.read_text())
        return int(info["records"]), int(info["bytes"])
    (out / "Pulumi.fleet.yaml").write_text(stack_text())
    records = size = 0
    began = time.monotonic()
    all_hosts = hosts()
    for n, host in enumerate(all_hosts):
        folder = out / host.instance_id
        folder.mkdir(exist_ok=True)
        with (folder / "windows.jsonl").open("w", buffering=1 << 20) as handle:
            for line in host_lines(host, form, days):
                handle.write(line)
                records += _summaries(line)
                size += len(line)
        print(
            f"\r{form}: host {n + 1}/{len(all_hosts)}, {records:,} records, "
            f"{size / 1e9:.2f} GB, {time.monotonic() - began:.0f} s",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
    done.write_text(json.dumps({"wanted": wanted, "records": records, "bytes": size}))
    return records, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--form", choices=FORMS, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder (created)")
    parser.add_argument("--days", type=float, default=DAYS)
    args = parser.parse_args()
    records, size = write(args.form, args.out, args.days)
    print(f"{args.out}: {records:,} records, {size / 1e9:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
