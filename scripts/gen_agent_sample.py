"""Generate examples/agent-data/: what finops-agent writes, made by the real agent from a stub.

    .venv/bin/python scripts/gen_agent_sample.py      # rewrites examples/agent-data/*.jsonl
    .venv/bin/python scripts/gen_agent_sample.py --out DIR

So that `finops rightsize` and `finops-agent --replay` can be tried on the first day, without
a GPU or a cloud account. Deterministic (seeded, simulated clock): running it again gives the
same files byte for byte.

- A stub GPU source (NvmlSampler's shape: start, sample, shutdown) stands for one NVIDIA A10G
  (24 GiB) on each of the two g5.xlarge spot nodes of the dev stack's fleet `vision-train`
  (Pulumi.dev.yaml), running a small ResNet-50 training job that leaves them mostly waiting:
  utilisation 10-30 % with a daily swing, 6.5-9.5 GiB of memory in use, input-pipeline stalls. Readings carry the fields NVML
  gives an A10G (no GPM: sm_active_ratio and tensor_active_ratio are None before Hopper).
  The agent's host figures (/proc CPU and memory, input diagnosis) are off: they would be
  the generating machine's, so the records carry them as unknown.
- The real agent (aifinops.agents.agent.Agent, with its spool and export shipper) samples the stub
  every 30 s of a simulated clock and closes one-hour windows (`[agent] window_seconds =
  3600`) for 8 days: rightsizing wants at least 7 days of data. Its export file
  becomes `windows.jsonl`: window records exactly as agents/SPOOL_FORMAT.md and
  agents/records.py define them, the file `finops rightsize --source agent:PATH` reads.
- The first 60 readings of node 1, in the format of `finops-agent --record`, become
  `trace.jsonl`, the input of `finops-agent --replay`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aifinops.agents.agent import Agent  # noqa: E402 - after the path set-up, run as a script
from aifinops.agents.config import (  # noqa: E402
    AgentConfig,
    AgentSection,
    DiagnosisSection,
    ExportSection,
    MetadataSection,
    PrometheusSection,
    SpoolSection,
)
from aifinops.agents.records import GpuSample  # noqa: E402
from aifinops.agents.replay import sample_to_json  # noqa: E402

OUT = ROOT / "examples" / "agent-data"
START = 1767225600.0  # 2026-01-01T00:00:00Z
DAYS = 8
TICK_SECONDS = 30.0
WINDOW_SECONDS = 3600.0
TRACE_READINGS = 60
GIB = 1024**3
NODES = (("i-0a1b2c3d4e5f60001", "vision-train-1"), ("i-0a1b2c3d4e5f60002", "vision-train-2"))
TAGS = {
    "finops:fleet": "vision-train",
    "Project": "vision",
    "Team": "ml-platform",
    "Environment": "dev",
    "ModelVersion": "resnet50-v3",
}


class TrainingJobStub:
    """One A10G running a training job: NvmlSampler's interface, readings from a seeded model."""

    driver_version = "550.127.08 (stub)"

    def __init__(self, node: int) -> None:
        self.random = random.Random(node)
        self.uuid = f"GPU-5a3c0f2e-0000-4000-8000-00000000000{node}"

    def start(self) -> list[tuple[int, str, str]]:
        return [(0, self.uuid, "NVIDIA A10G")]

    def sample(self, now: float | None = None) -> list[GpuSample]:
        assert now is not None
        hour = (now - START) / 3600.0
        swing = 5.0 * math.sin(2 * math.pi * hour / 24.0)  # data loading is slower by day
        stalled = self.random.random() < 0.04  # input-pipeline stalls
        util = 2.0 if stalled else min(100.0, max(0.0, 18.0 + swing + self.random.gauss(0, 3)))
        memory = (6.5 + 3.0 * self.random.random()) * GIB
        return [
            GpuSample(
                timestamp=now,
                gpu_index=0,
                gpu_uuid=self.uuid,
                gpu_name="NVIDIA A10G",
                gpu_util_percent=round(util, 1),
                mem_util_percent=round(util * 0.55, 1),
                memory_used_bytes=int(memory),
                memory_total_bytes=24 * GIB,
                power_watts=round(60.0 + 1.2 * util, 1),
                temperature_celsius=round(38.0 + util / 4.0, 1),
                sm_clock_mhz=1710.0,
                process_count=1,
                process_memory_bytes=((4242, int(memory)),),
                ecc_corrected_volatile=0,
                ecc_uncorrected_volatile=0,
            )
        ]

    def shutdown(self) -> None:
        return None


def _config(folder: Path, instance_id: str) -> AgentConfig:
    return AgentConfig(
        agent=AgentSection(sample_interval_seconds=TICK_SECONDS, window_seconds=WINDOW_SECONDS),
        spool=SpoolSection(dir=str(folder / "spool"), fsync=False),
        export=ExportSection(path=str(folder / "windows.jsonl")),
        prometheus=PrometheusSection(enabled=False),
        # The host figures (/proc) would be the generating machine's, not the simulated
        # node's, and change from run to run: left out, so the records say they are unknown.
        diagnosis=DiagnosisSection(enabled=False),
        metadata=MetadataSection(
            provider="none",
            instance_id=instance_id,
            instance_type="g5.xlarge",
            region="us-east-1",
            lifecycle="spot",
        ),
        tags=TAGS,
    )


def run_node(node: int, instance_id: str, hostname: str, folder: Path) -> list[str]:
    """The agent on one node for DAYS simulated days; its export file's lines."""
    clock = [START]
    agent = Agent(_config(folder, instance_id), TrainingJobStub(node), clock=lambda: clock[0])
    with mock.patch("socket.gethostname", return_value=hostname):
        agent.start()
    window_start = START
    for _ in range(int(DAYS * 86400 / TICK_SECONDS)):
        if clock[0] >= window_start + WINDOW_SECONDS:
            agent.close_window(window_start, window_start + WINDOW_SECONDS)
            window_start += WINDOW_SECONDS
        agent.tick(clock[0])
        clock[0] += TICK_SECONDS
    agent.close_window(window_start, clock[0])
    agent.close(flush_seconds=60.0)
    lines = (folder / "windows.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    expected = DAYS * 86400 / WINDOW_SECONDS
    if len(lines) != expected:
        raise SystemExit(f"node {node}: the export file has {len(lines)} records, not {expected}")
    return lines


def trace_lines() -> list[str]:
    stub = TrainingJobStub(1)
    stub.start()
    return [
        json.dumps(sample_to_json(sample)) + "\n"
        for i in range(TRACE_READINGS)
        for sample in stub.sample(START + i * TICK_SECONDS)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    windows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for node, (instance_id, hostname) in enumerate(NODES, start=1):
            folder = Path(tmp) / hostname
            windows += run_node(node, instance_id, hostname, folder)
            shutil.rmtree(folder)
    windows.sort(key=lambda line: (json.loads(line)["window_start"], line))
    (out / "windows.jsonl").write_text("".join(windows), encoding="utf-8")
    (out / "trace.jsonl").write_text("".join(trace_lines()), encoding="utf-8")
    print(f"wrote {len(windows)} window records and {TRACE_READINGS} readings to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
