"""Writes the example agent export files of two hosts (the README's `finops track cost`).

    .venv/bin/python examples/track/make_records.py

Host i-0a1 (spot g5.xlarge, 1 GPU, the data loader starved it for the first 30 minutes, a
spot interruption notice in the last windows) and host i-0b2 (on-demand g5.12xlarge, 4 GPUs)
ran one job from 2026-01-05 10:05 to 11:05 UTC in 10-minute windows; the job reported 100
and 400 steps per window. Written by the agent's own record writer (agents/records.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parents[1] / "tests" / "track")]

from track_helpers import host_records, write  # noqa: E402

FIRST = 1767607200.0  # 2026-01-05T10:00:00Z

write(
    HERE / "i-0a1.jsonl",
    host_records(
        instance_id="i-0a1", instance_type="g5.xlarge", lifecycle="spot", gpus=1, windows=7,
        util=40.0, first=FIRST, steps_per_window=100.0,
        verdicts={0: "waiting-on-data", 1: "waiting-on-data", 2: "waiting-on-data"},
        interrupted=(5, 6),
    ),
)  # fmt: skip
write(
    HERE / "i-0b2.jsonl",
    host_records(
        instance_id="i-0b2", instance_type="g5.12xlarge", lifecycle="on-demand", gpus=4,
        windows=7, util=80.0, first=FIRST, steps_per_window=400.0,
    ),
)  # fmt: skip
