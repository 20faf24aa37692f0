"""The scale benchmark's generated files are what the agent writes.

bench/fleet_data.py writes window records and rolled-up records from templates (the agent's
own code would take hours for 16 million records): one host's first hours are held to
`WindowRecord` (the window contract) and to `aifinops.agents.rollup.Rollup` over the same windows.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from aifinops.agentfiles import gpu_summaries
from aifinops.agents.records import WindowRecord
from aifinops.agents.rollup import Rollup

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import fleet_data

HOURS = 5 / 24  # host 0 is stopped the first 3 hours, then works
INTERVALS = round(HOURS * 24 * 12)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-4)  # window records write means to 4 decimals
    return bool(a == b)


def test_generated_windows_are_window_records_and_roll_up_as_the_agent_does() -> None:
    host = fleet_data.hosts()[0]  # the H100 fleet: SM activity too
    minutes = list(fleet_data.host_lines(host, "1m", days=HOURS))
    for line in minutes[:50] + list(fleet_data.host_lines(host, "5m", days=HOURS))[:50]:
        WindowRecord.from_line(line)  # every field of the contract, typed
    rollup = Rollup(300)
    for line in minutes:
        rollup.add(json.loads(line), line)
    rolled = [json.loads(out) for out in rollup.take()]
    generated = [json.loads(line) for line in fleet_data.host_lines(host, "rollup", days=HOURS)]
    assert len(generated) == len(rolled) == INTERVALS  # a line per interval: 8 GPUs alike
    assert all(_close(g, r) for g, r in zip(generated, rolled, strict=True))
    summaries = [s for g in generated for s in gpu_summaries("generated", g)]
    assert len(summaries) == INTERVALS * 8
    busy = [s for s in summaries if s["gpu_util_percent"]["mean"] > 0]
    assert busy and summaries[0]["sm_active_ratio"] is not None
