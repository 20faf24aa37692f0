"""`finops-agent`: run the agent, validate its config, print a snapshot, replay a trace."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from aifinops.agents import __version__
from aifinops.agents.config import AgentConfig, ConfigError, load_config
from aifinops.agents.nvml import NvmlSampler, NvmlUnavailable

log = logging.getLogger("finops_agent")

EXIT_CONFIG = 2
EXIT_NO_GPU = 3

DEFAULT_CONFIG = "/etc/finops-agent.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="finops-agent",
        description="On-host GPU agent: NVML sampling, windows, spool, Prometheus/CloudWatch "
        "export, interruption and idle hooks, work reporting.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config", default=None, help=f"config file (default {DEFAULT_CONFIG} if it exists)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--once", action="store_true", help="print one snapshot of every GPU (JSON) and exit"
    )
    mode.add_argument(
        "--check", action="store_true", help="validate the config, print it (JSON) and exit"
    )
    mode.add_argument(
        "--replay", metavar="FILE", help="replay a recorded trace instead of reading NVML"
    )
    mode.add_argument(
        "--scale-in",
        action="store_true",
        help="the fleet is removing this node (a GCE shutdown script calls this): run the "
        "checkpoint hook, wait until it is done and the job has left the GPUs, at most "
        "[lifecycle] max_wait_seconds, and exit",
    )
    parser.add_argument(
        "--record", metavar="FILE", help="also append every reading to FILE (a trace for --replay)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop after SECONDS (default: run until SIGTERM)",
    )
    args = parser.parse_args(argv)

    try:
        cfg = _load(args.config)
    except ConfigError as exc:
        print(f"finops-agent: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    from aifinops.agents.logs import setup_logging

    setup_logging(cfg.agent.log_level, cfg.agent.log_format)
    if args.check:
        print(json.dumps(_as_json(cfg), indent=2, default=list))
        return 0
    if args.once:
        return _once(cfg)
    if args.scale_in:
        from aifinops.agents.lifecycle import scale_in_now

        outcome = scale_in_now(cfg)
        print(json.dumps({"scale_in": outcome}))
        return 0
    return _run(cfg, replay=args.replay, record=args.record, duration=args.duration)


def _load(path: str | None) -> AgentConfig:
    if path:
        return load_config(path)
    if Path(DEFAULT_CONFIG).exists():
        return load_config(DEFAULT_CONFIG)
    return AgentConfig()


def _as_json(cfg: AgentConfig) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(cfg)


def _once(cfg: AgentConfig) -> int:
    from aifinops.agents.metadata import make_client, resolve_host
    from aifinops.agents.replay import sample_to_json

    sampler = NvmlSampler(gpm=cfg.agent.gpm)
    try:
        sampler.start()
    except NvmlUnavailable as exc:
        print(f"finops-agent: {exc}", file=sys.stderr)
        return EXIT_NO_GPU
    try:
        t0 = time.perf_counter()
        sampler.sample()
        first_ms = (time.perf_counter() - t0) * 1000
        time.sleep(min(cfg.agent.sample_interval_seconds, 1.0))  # GPM rates need two readings
        t0 = time.perf_counter()
        samples = sampler.sample()
        second_ms = (time.perf_counter() - t0) * 1000
    finally:
        sampler.shutdown()
    host = resolve_host(
        make_client(cfg.metadata), cfg.metadata, socket.gethostname(), dict(cfg.tags)
    )
    snapshot = {
        "host": {
            "instance_id": host.instance_id,
            "instance_type": host.instance_type,
            "region": host.region,
            "lifecycle": host.lifecycle,
            "cloud": host.cloud,
            "hostname": host.hostname,
        },
        "driver_version": sampler.driver_version,
        "gpm_gpus": sampler.gpm_gpus(),  # GPUs whose GPM sample this user really read
        "failed_gpus": {str(k): v for k, v in sampler.failed_gpus().items()},
        "mig_gpus": [s.gpu_index for s in samples if s.mig_enabled],
        "sample_latency_ms": {"first": round(first_ms, 3), "second": round(second_ms, 3)},
        "gpus": [sample_to_json(s) for s in samples],
    }
    print(json.dumps(snapshot, indent=2))
    return 0


def _run(
    cfg: AgentConfig, *, replay: str | None, record: str | None, duration: float | None
) -> int:
    from aifinops.agents.agent import Agent, SampleSource
    from aifinops.agents.replay import ReplaySource

    source: SampleSource
    if replay:
        source = ReplaySource(replay)
        if cfg.metadata.provider != "none":  # a demo must not wait on a metadata server
            cfg = replace(cfg, metadata=replace(cfg.metadata, provider="none"))
        # this host's /proc says nothing of the host the trace was recorded on
        cfg = replace(cfg, diagnosis=replace(cfg.diagnosis, enabled=False))
    else:
        source = NvmlSampler(gpm=cfg.agent.gpm)
    if record:
        source = _Recording(source, Path(record))
    agent = Agent(cfg, source)
    try:
        agent.start()
    except NvmlUnavailable as exc:
        log.critical("cannot start", extra={"error": str(exc)})
        print(f"finops-agent: {exc}", file=sys.stderr)
        return EXIT_NO_GPU
    except (ValueError, OSError) as exc:
        log.critical("cannot start", extra={"error": str(exc)})
        print(f"finops-agent: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        agent.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info(
        "agent running",
        extra={
            "prometheus_port": agent.prometheus_port,
            "work_port": agent.work_port,
            "sinks": [s.sink for s in agent.shippers],
        },
    )
    try:
        agent.run(duration_seconds=duration)
    finally:
        agent.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


class _Recording:
    """Wraps a source and appends each reading to a trace file (for --replay)."""

    def __init__(self, inner: Any, path: Path) -> None:
        self.inner = inner
        self.path = path
        self.driver_version = getattr(inner, "driver_version", "")

    def start(self) -> list[tuple[int, str, str]]:
        return list(self.inner.start())

    def sample(self, now: float | None = None) -> list[Any]:
        from aifinops.agents.replay import sample_to_json

        samples = list(self.inner.sample(now))
        self.driver_version = getattr(self.inner, "driver_version", "")
        with open(self.path, "a", encoding="utf-8") as f:
            for s in samples:
                f.write(json.dumps(sample_to_json(s)) + "\n")
        return samples

    def shutdown(self) -> None:
        self.inner.shutdown()

    @property
    def exhausted(self) -> bool:
        return bool(getattr(self.inner, "exhausted", False))


if __name__ == "__main__":
    sys.exit(main())
