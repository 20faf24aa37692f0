"""The measuring half of bench/gpu_device_check.sh: watch the agent, then judge the run.

    python bench/gpu_check_report.py monitor --pid PID --seconds S --out overhead.jsonl
    python bench/gpu_check_report.py report --work DIR --out figures.json

`monitor` reads the agent's CPU time and RSS from /proc/PID at 1 Hz. `report` compares the
agent's readings (its `--record` trace) with `nvidia-smi --query-gpu` taken at the same
time, checks that utilisation, SM activity and power move with the load, and writes every
figure as JSON. Standard library only; runs with the agent's own Python.

Tolerances (agent vs nvidia-smi, means over the steady part of each phase): utilisation
5 percentage points; memory used 64 MiB; power 10 % or 10 W (nvidia-smi may average over its own
window, NVML's power reading is instantaneous); temperature 2 C; SM clock 5 %.
Movement: utilisation +50 points under load, SM activity +0.3, power +20 % (or +20 W).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")
EDGE_SECONDS = 3.0  # the first and last seconds of a phase are transitions: left out
EDGE_SHARE = 0.25  # ... but never more than a quarter of a short phase at each end

SMI_FIELDS = (
    "timestamp",
    "index",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "power.draw",
    "temperature.gpu",
    "clocks.sm",
)
TOLERANCES = {
    "gpu_util_percent": {"abs": 5.0},
    "power_watts": {"abs": 10.0, "rel": 0.10},
    "temperature_celsius": {"abs": 2.0},
    "sm_clock_mhz": {"rel": 0.05},
}


# -- monitor ------------------------------------------------------------------------------------
def monitor(pid: int, seconds: float, out: Path) -> int:
    """CPU seconds and RSS of `pid` once a second for `seconds` (or until it exits)."""
    started = time.monotonic()
    with open(out, "w") as f:
        while time.monotonic() - started < seconds:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                break  # the agent exited
            rss = next(
                (int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS:")), 0
            )
            row = {
                "t": time.time(),
                "cpu_seconds": (int(stat[11]) + int(stat[12])) / TICKS,
                "rss_kib": rss,
            }
            f.write(json.dumps(row) + "\n")
            f.flush()
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started) % 1.0))
    return 0


# -- report -------------------------------------------------------------------------------------
def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def smi_rows(path: Path) -> list[dict[str, Any]]:
    """nvidia-smi CSV (noheader, nounits) in SMI_FIELDS order; unknown values dropped."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    for raw in csv.reader(path.read_text().splitlines()):
        if len(raw) != len(SMI_FIELDS):
            continue
        row: dict[str, Any] = {}
        for name, value in zip(SMI_FIELDS, (v.strip() for v in raw), strict=True):
            if name == "timestamp":
                row["t"] = parse_smi_time(value)
            else:
                try:
                    row[name] = float(value)
                except ValueError:
                    row[name] = None  # "[N/A]", "[Not Supported]"
        if row.get("t") is not None and row.get("index") is not None:
            rows.append(row)
    return rows


def parse_smi_time(text: str) -> float | None:
    """nvidia-smi's timestamp ("2026/12/04 22:41:02.847", local time) as unix seconds."""
    whole, _, fraction = text.partition(".")
    try:
        seconds = time.mktime(time.strptime(whole, "%Y/%m/%d %H:%M:%S"))
    except ValueError:
        return None
    return seconds + (float("0." + fraction) if fraction.isdigit() else 0.0)


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def within(name: str, agent: float | None, smi: float | None) -> dict[str, Any]:
    """Compare one figure; `ok` is None when either side has no value."""
    if agent is None or smi is None:
        return {"agent": agent, "nvidia_smi": smi, "ok": None}
    diff = abs(agent - smi)
    if name == "memory_used_mib":
        allowed = 64.0  # both read the same counter; only the moment of reading differs
    else:
        tol = TOLERANCES[name]
        allowed = max(tol.get("abs", 0.0), tol.get("rel", 0.0) * abs(smi))
    return {
        "agent": round(agent, 3),
        "nvidia_smi": round(smi, 3),
        "diff": round(diff, 3),
        "allowed": round(allowed, 3),
        "ok": diff <= allowed,
    }


def phase_of(t: float, phases: dict[str, list[float]]) -> str | None:
    """The phase `t` falls in, leaving out the transition at each end; None between."""
    for name, (start, end) in phases.items():
        edge = min(EDGE_SECONDS, (end - start) * EDGE_SHARE)
        if start + edge <= t <= end - edge:
            return name
    return None


def report(work: Path, out: Path) -> int:
    meta = json.loads((work / "run.json").read_text())
    phases: dict[str, list[float]] = meta["phases"]  # name -> [start, end] unix seconds
    loaded: list[int] = meta["loaded_gpus"]
    trace = read_jsonl(work / "agent" / "trace.jsonl")
    smi = smi_rows(work / "smi.csv")
    overhead = read_jsonl(work / "overhead.jsonl")
    once = json.loads((work / "once.json").read_text()) if (work / "once.json").exists() else {}
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool | None, detail: str, **figures: Any) -> None:
        status = "unavailable" if ok is None else ("pass" if ok else "fail")
        checks.append({"check": name, "status": status, "detail": detail, **figures})

    gpus: dict[str, Any] = {}
    indexes = sorted({int(s["gpu_index"]) for s in trace} | {int(r["index"]) for r in smi})
    for index in indexes:
        agent_by_phase: dict[str, dict[str, list[float]]] = {p: {} for p in phases}
        smi_by_phase: dict[str, dict[str, list[float]]] = {p: {} for p in phases}
        for s in trace:
            if int(s["gpu_index"]) != index or s.get("lost"):
                continue
            phase = phase_of(float(s["timestamp"]), phases)
            if phase is None:
                continue
            for key, value in (
                ("gpu_util_percent", s.get("gpu_util_percent")),
                ("sm_active_ratio", s.get("sm_active_ratio")),
                ("power_watts", s.get("power_watts")),
                ("temperature_celsius", s.get("temperature_celsius")),
                ("sm_clock_mhz", s.get("sm_clock_mhz")),
                (
                    "memory_used_mib",
                    None if s.get("memory_used_bytes") is None else s["memory_used_bytes"] / 2**20,
                ),
            ):
                if value is not None:
                    agent_by_phase[phase].setdefault(key, []).append(float(value))
        for r in smi:
            if int(r["index"]) != index:
                continue
            phase = phase_of(float(r["t"]), phases)
            if phase is None:
                continue
            for key, field in (
                ("gpu_util_percent", "utilization.gpu"),
                ("power_watts", "power.draw"),
                ("temperature_celsius", "temperature.gpu"),
                ("sm_clock_mhz", "clocks.sm"),
                ("memory_used_mib", "memory.used"),
            ):
                if r.get(field) is not None:
                    smi_by_phase[phase].setdefault(key, []).append(float(r[field]))
        figures: dict[str, Any] = {"loaded": index in loaded, "phases": {}}
        for phase in phases:
            comparisons = {
                key: within(
                    key,
                    mean(agent_by_phase[phase].get(key, [])),
                    mean(smi_by_phase[phase].get(key, [])),
                )
                for key in (
                    "gpu_util_percent",
                    "memory_used_mib",
                    "power_watts",
                    "temperature_celsius",
                    "sm_clock_mhz",
                )
            }
            figures["phases"][phase] = {
                "samples": len(agent_by_phase[phase].get("gpu_util_percent", [])),
                "sm_active_ratio": mean(agent_by_phase[phase].get("sm_active_ratio", [])),
                "vs_nvidia_smi": comparisons,
            }
            for key, c in comparisons.items():
                check(
                    f"gpu{index} {phase} {key} agrees with nvidia-smi",
                    c["ok"],
                    f"agent {c['agent']} vs nvidia-smi {c['nvidia_smi']}"
                    + (f" (allowed +-{c['allowed']})" if c["ok"] is not None else ""),
                )
        if index in loaded and "idle" in phases and "load" in phases:
            idle, load = figures["phases"]["idle"], figures["phases"]["load"]
            u0 = idle["vs_nvidia_smi"]["gpu_util_percent"]["agent"]
            u1 = load["vs_nvidia_smi"]["gpu_util_percent"]["agent"]
            check(
                f"gpu{index} utilisation moves with the load",
                None if u0 is None or u1 is None else u1 - u0 >= 50.0,
                f"idle {u0} % -> load {u1} %",
            )
            a0, a1 = idle["sm_active_ratio"], load["sm_active_ratio"]
            gpm_reason = (
                "no SM activity from GPM for the agent's user "
                f"(GPM GPUs as that user: {once.get('gpm_gpus')}; as root: "
                f"{meta.get('gpm_gpus_as_root')})"
            )
            check(
                f"gpu{index} SM activity moves with the load",
                None if a0 is None or a1 is None else a1 - a0 >= 0.3,
                gpm_reason if a0 is None or a1 is None else f"idle {a0:.3f} -> load {a1:.3f}",
            )
            p0 = idle["vs_nvidia_smi"]["power_watts"]["agent"]
            p1 = load["vs_nvidia_smi"]["power_watts"]["agent"]
            check(
                f"gpu{index} power moves with the load",
                None if p0 is None or p1 is None else (p1 >= p0 * 1.2 or p1 - p0 >= 20.0),
                f"idle {p0} W -> load {p1} W",
            )
        gpus[str(index)] = figures

    cpu = agent_overhead(overhead, phases.get("load"))
    if cpu:
        check(
            "agent CPU under 0.5 % of one core at 1 Hz under load",
            cpu["cpu_percent_of_one_core"] < 0.5,
            f"{cpu['cpu_percent_of_one_core']} % of one core",
        )
        check(
            "agent RSS under 50 MB",
            cpu["rss_peak_mib"] * 2**20 < 50e6,
            f"peak {cpu['rss_peak_mib']} MiB",
        )
    check(
        "the agent's /metrics served dcgm-exporter's series under load",
        bool(meta.get("metrics_ok")),
        str(meta.get("metrics_detail", "")),
    )
    failed = [c for c in checks if c["status"] == "fail"]
    figures_out = {
        "host": meta.get("host"),
        "driver_version": once.get("driver_version"),
        "python": meta.get("python"),
        "agent_user": meta.get("agent_user"),
        "mig": meta.get("mig"),
        "gpm_gpus_as_agent_user": once.get("gpm_gpus"),
        "gpm_gpus_as_root": meta.get("gpm_gpus_as_root"),
        "failed_gpus": once.get("failed_gpus"),
        "sample_latency_ms": once.get("sample_latency_ms"),
        "phases": phases,
        "loaded_gpus": loaded,
        "load": meta.get("load"),
        "gpus": gpus,
        "agent_overhead": cpu,
        "tolerances": {**TOLERANCES, "memory_used_mib": {"abs": 64.0}},
        "checks": checks,
        "passed": not failed,
        "elapsed_seconds": meta.get("elapsed_seconds"),
    }
    out.write_text(json.dumps(figures_out, indent=2) + "\n")
    for c in checks:
        print(f"{c['status']:>11}  {c['check']}: {c['detail']}")
    counts = {
        s: sum(1 for c in checks if c["status"] == s) for s in ("pass", "fail", "unavailable")
    }
    print(
        f"checks: {counts['pass']} pass, {counts['fail']} fail, {counts['unavailable']} unavailable"
    )
    return 1 if failed else 0


def agent_overhead(rows: list[dict[str, Any]], window: list[float] | None) -> dict[str, Any]:
    """CPU share of one core and RSS over `window` (the load phase), from the 1 Hz rows."""
    if window:
        rows = [r for r in rows if window[0] <= r["t"] <= window[1]] or rows
    if len(rows) < 2:
        return {}
    seconds = rows[-1]["t"] - rows[0]["t"]
    cpu = rows[-1]["cpu_seconds"] - rows[0]["cpu_seconds"]
    return {
        "samples": len(rows),
        "measured_seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 3),
        "cpu_percent_of_one_core": round(cpu / seconds * 100, 3) if seconds > 0 else math.nan,
        "rss_mib": round(rows[-1]["rss_kib"] / 1024, 1),
        "rss_peak_mib": round(max(r["rss_kib"] for r in rows) / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    mon = sub.add_parser("monitor")
    mon.add_argument("--pid", type=int, required=True)
    mon.add_argument("--seconds", type=float, required=True)
    mon.add_argument("--out", type=Path, required=True)
    rep = sub.add_parser("report")
    rep.add_argument("--work", type=Path, required=True)
    rep.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "monitor":
        return monitor(args.pid, args.seconds, args.out)
    return report(args.work, args.out)


if __name__ == "__main__":
    sys.exit(main())
