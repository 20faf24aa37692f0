"""The EC2 user data of a training fleet: install the finops agent, write its config, start it.

The agent's config format, its systemd unit and the checkpoint-hook contract belong to
`agents/` (agents/README.md); this module only fills them in for one fleet. The unit file is
read from `agents/deploy/finops-agent.service` so there is one copy of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

AGENT_CONFIG_PATH = "/etc/finops-agent.toml"
AGENT_UNIT = Path(__file__).resolve().parents[2] / "agents" / "deploy" / "finops-agent.service"
# The namespace the agent publishes to (agents/config.py `CloudWatchSection.namespace`): the
# one Compute Optimizer reads. The instance role may put metrics in this namespace only.
AGENT_METRIC_NAMESPACE = "CWAgent"
# Mode "file": the agent (its own unprivileged user) writes this JSON when a spot interruption
# notice arrives; the training job checks for it after every step. /run/finops-agent is the
# unit's RuntimeDirectory (0755), so any user can read it.
INTERRUPTION_FILE = "/run/finops-agent/interruption.json"
FLEET_TAG = "finops:fleet"


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def agent_config(fleet: str, tags: Mapping[str, str]) -> str:
    """The agent's TOML config for one fleet (validated by `agents.config.parse_config`)."""
    record_tags = {FLEET_TAG: fleet, **{k: v for k, v in tags.items() if k != FLEET_TAG}}
    lines = [
        "# written by finops:aws:GpuTrainingFleet; format: agents/README.md",
        "[metadata]",
        'provider = "aws"',
        "",
        "[cloudwatch]",
        "enabled = true",
        f"namespace = {_toml_string(AGENT_METRIC_NAMESPACE)}",
        f"tag_dimensions = [{_toml_string(FLEET_TAG)}]",
        "",
        "[checkpoint]",
        "on_rebalance = true",
        "",
        "[checkpoint.hook]",
        'mode = "file"',
        f"file = {_toml_string(INTERRUPTION_FILE)}",
        "",
        "[tags]",
        *(f"{_toml_string(k)} = {_toml_string(v)}" for k, v in sorted(record_tags.items())),
    ]
    return "\n".join(lines) + "\n"


def unit_file() -> str:
    """The agent's systemd unit, as shipped in agents/deploy/."""
    return AGENT_UNIT.read_text()


def user_data(fleet: str, tags: Mapping[str, str], agent_package: str) -> str:
    """A cloud-init shell script: venv + `pip install <agent_package>`, config, unit, start.

    `--check` validates the config before the unit starts, so a bad config fails the boot
    script visibly (cloud-init output log) instead of crash-looping the service.
    """
    config = agent_config(fleet, tags)
    unit = unit_file()
    for text, marker in ((config, "FINOPS_AGENT_CONFIG"), (unit, "FINOPS_AGENT_UNIT")):
        if marker in text:
            raise ValueError(f"user data: the heredoc marker {marker} appears in its own content")
    return f"""#!/bin/bash
# finops:aws:GpuTrainingFleet {fleet}: install and start the finops GPU agent (agents/README.md)
set -euo pipefail
python3 -m venv /opt/finops-agent
/opt/finops-agent/bin/pip install --quiet '{agent_package}'
ln -sf /opt/finops-agent/bin/finops-agent /usr/local/bin/finops-agent
id finops-agent >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin finops-agent
install -d -o finops-agent -g finops-agent -m 0750 /var/lib/finops-agent
cat > {AGENT_CONFIG_PATH} <<'FINOPS_AGENT_CONFIG'
{config}FINOPS_AGENT_CONFIG
cat > /etc/systemd/system/finops-agent.service <<'FINOPS_AGENT_UNIT'
{unit}FINOPS_AGENT_UNIT
/usr/local/bin/finops-agent --config {AGENT_CONFIG_PATH} --check
systemctl daemon-reload
systemctl enable --now finops-agent.service
"""
