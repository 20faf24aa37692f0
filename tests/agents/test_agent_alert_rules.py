"""Alert rules (promtool) and the systemd unit shipped in agents/deploy."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "agents" / "deploy" / "alerts.yml"
RULE_TESTS = Path(__file__).resolve().parent / "alerts_test.yml"
UNIT = REPO / "agents" / "deploy" / "finops-agent.service"

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (Debian's prometheus package; ./dev setup installs it)",
)


@needs_promtool
def test_alert_rules_are_valid() -> None:
    proc = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 7 rules found" in proc.stdout


@needs_promtool
def test_alert_rules_fire_as_specified() -> None:
    proc = subprocess.run(
        ["promtool", "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_promtool_case() -> None:
    alerts = set(re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.M))
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert alerts == {
        "FinopsGpuIdle",
        "FinopsGpuMemoryNearFull",
        "FinopsAgentDown",
        "FinopsAgentSpoolDropping",
        "FinopsAgentSpoolWriteFailing",
        "FinopsGpuLost",
        "FinopsGpuWaitingOnData",
    }
    assert alerts == tested


def test_alert_rules_only_use_metrics_the_agent_exports(tmp_path: Path, fake_nvml) -> None:
    from aifinops.agents.agent import Agent
    from aifinops.agents.config import parse_config
    from aifinops.agents.nvml import NvmlSampler
    from aifinops.agents.prom import build_registry, exposition

    fake_nvml("healthy8")
    cfg = parse_config(
        {
            "spool": {"dir": str(tmp_path / "spool")},
            "export": {"path": str(tmp_path / "w.jsonl")},
            "prometheus": {"enabled": False},
        }
    )
    agent = Agent(cfg, NvmlSampler())
    agent.start()
    agent.tick(1.0)
    agent.close_window(0.0, 2.0)  # the window families (input verdict) need a closed window
    exposed = set(
        re.findall(r"^(\w+)[{ ]", exposition(build_registry(agent.snapshot)).decode(), re.M)
    )
    agent.close()
    used = set(re.findall(r"\b(finops_agent_\w+|DCGM_FI_\w+)", RULES.read_text()))
    assert used and used <= exposed, used - exposed


def test_systemd_unit_runs_unprivileged_with_state_directory() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    assert service["User"] not in ("", "root")
    assert service["ExecStart"].split()[1:] == ["--config", "/etc/finops-agent.toml"]
    assert service["ExecStart"].split()[0].endswith("/finops-agent")
    assert service["StateDirectory"] == "finops-agent"  # /var/lib/finops-agent: the spool
    assert service["NoNewPrivileges"] == "yes"
    assert service["Restart"] == "always"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
