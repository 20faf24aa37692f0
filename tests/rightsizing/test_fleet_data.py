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

from aifinops.agents.records import WindowRecord
from aifinops.agents.rollup import Rollup

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import fleet_data

HOURS = 5 / 24  # host 0 is stopped the first 3 hours, then works


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-4)  # window records write means to 4 decimals
    return bool(a == b)


def test_generated_windows_are_window_records_and_roll_up_as_the_agent_does() -> None:
    host = fleet_data.hosts()[0]  # the H100 fleet: SM activity too
    minutes = list(fleet_data.host_lines(host, "1m", days=HOURS))
    for line in minutes[:50] + list(fleet_data.host_lines(host, "5m", days=HOURS))[:50]:
        WindowRecord.from_line(line)  # every field of the contract, typed
    rollup = Rollup(300)
    rolled = [json.loads(out) for line in minutes for out in rollup.add(json.loads(line), line)]
    generated = [json.loads(line) for line in fleet_data.host_lines(host, "rollup", days=HOURS)]
    key = "record_id"
    assert [r[key] for r in generated] == sorted(
        (r[key] for r in rolled), key=[g[key] for g in generated].index
    )
    by_id = {r[key]: r for r in rolled}
    assert all(_close(g, by_id[g[key]]) for g in generated)
    busy = [g for g in generated if g["gpu_util_percent"]["mean"] > 0]
    assert busy and generated[0]["sm_active_ratio"] is not None
