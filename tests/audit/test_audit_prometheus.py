"""Idle verdicts from a real Prometheus (Debian's) holding the agent's GPU series.

Thirty hours at 5-minute steps: i-idle stays at 1 %, i-busy touches 80 % once in the last
24 hours, i-short has only the last 10 hours (UNKNOWN, not idle).
"""

from __future__ import annotations

import time
from pathlib import Path

import prometheus_backfill
import pytest

from aifinops.audit import idle

pytestmark = pytest.mark.integration
END = (int(time.time()) // 3600) * 3600 - 3600
STEP = 300
HOURS = 30


def _openmetrics() -> str:
    util, info = [], []
    hosts = {"i-idle": 30, "i-busy": 30, "i-short": 10}
    for target, (instance_id, hours) in enumerate(hosts.items()):
        instance = f"10.0.0.{target + 1}:9400"
        steps = hours * 3600 // STEP
        for k in range(steps):
            t = END - (steps - 1 - k) * STEP
            value = 80 if instance_id == "i-busy" and k == steps - 30 else 1
            for gpu in range(2):
                util.append(
                    f'DCGM_FI_DEV_GPU_UTIL{{instance="{instance}",job="finops-agent",gpu="{gpu}"}} {value} {t}'
                )
            info.append(
                f'finops_agent_info{{instance="{instance}",job="finops-agent",version="1",driver="550",'
                f'instance_id="{instance_id}",instance_type="g5.12xlarge",lifecycle="on-demand",cloud="aws"}} 1 {t}'
            )
    lines = ["# TYPE DCGM_FI_DEV_GPU_UTIL gauge", *util, "# TYPE finops_agent_info gauge", *info]
    return "\n".join(lines) + "\n# EOF\n"


def test_prometheus_idle_busy_and_unknown(tmp_path: Path) -> None:
    if not prometheus_backfill.available():
        pytest.skip("prometheus/promtool not installed (Debian: apt-get install prometheus)")
    with prometheus_backfill.start_prometheus(tmp_path, _openmetrics()) as url:
        verdicts = idle.prometheus_verdicts(url, 24, END + 60)
    assert verdicts["i-idle"].state == idle.IDLE
    assert "peak GPU utilisation 1.0 % over 24 h" in verdicts["i-idle"].evidence
    assert verdicts["i-busy"].state == idle.BUSY
    assert verdicts["i-short"].state == idle.UNKNOWN
    assert "measured in 10 of 24 h" in verdicts["i-short"].evidence
