"""The agent bootstrap every fleet runs: its config parses with the agent's own parser, the
script runs each step once, and content that would end a heredoc early is refused."""

import re
import tomllib

import pytest

from agents.config import parse_config
from components.agent_bootstrap import (
    AGENT_METRIC_NAMESPACE,
    FLEET_TAG,
    INTERRUPTION_FILE,
    agent_bootstrap_script,
    agent_config,
    systemd_unit,
)

TAGS = {"Project": "vision", "ModelVersion": "resnet50-v3"}


def parsed(config: str):
    return parse_config(tomllib.loads(config), source="test")


def config_in(script: str) -> str:
    match = re.search(r"<<'FINOPS_AGENT_TOML'\n(.*?\n)FINOPS_AGENT_TOML\n", script, re.S)
    assert match, script
    return match.group(1)


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure"])
def test_config_parses_for_each_provider(provider: str) -> None:
    config = parsed(agent_config(provider, "train", TAGS))
    assert config.metadata.provider == provider
    assert config.checkpoint.hook.mode == "file"
    assert config.checkpoint.hook.file == INTERRUPTION_FILE
    assert dict(config.tags) == {**TAGS, FLEET_TAG: "train"}
    assert not config.cloudwatch.enabled
    assert not config.checkpoint.on_rebalance


def test_unknown_provider_is_refused() -> None:
    with pytest.raises(ValueError, match=r"metadata_provider 'none' is not one of aws, gcp, azure"):
        agent_config("none", "train", TAGS)


def test_fleet_tag_is_the_fleet_name_whatever_the_tags_say() -> None:
    config = parsed(agent_config("aws", "train", {**TAGS, FLEET_TAG: "other"}))
    assert config.tags[FLEET_TAG] == "train"


def test_cloudwatch_section_only_when_asked() -> None:
    assert "[cloudwatch]" not in agent_config("aws", "train", TAGS)
    text = agent_config("aws", "train", TAGS, cloudwatch=True)
    assert text.count("[cloudwatch]") == 1
    config = parsed(text)
    assert config.cloudwatch.enabled
    assert config.cloudwatch.namespace == AGENT_METRIC_NAMESPACE == "CWAgent"
    assert list(config.cloudwatch.tag_dimensions) == [FLEET_TAG]


def test_on_rebalance_only_when_asked() -> None:
    assert "[checkpoint]\n" not in agent_config("aws", "train", TAGS)
    assert parsed(agent_config("aws", "train", TAGS, on_rebalance=True)).checkpoint.on_rebalance


@pytest.mark.parametrize(
    "value",
    ['quote " and backslash \\', "new\nline", "tab\t", "del\x7f", "\u00e9t\u00e9 \U0001f680", ""],
)
def test_tag_values_survive_the_toml_round_trip(value: str) -> None:
    config = parsed(agent_config("gcp", "train", {"Note": value, f"key {value}": "x"}))
    assert config.tags["Note"] == value
    assert config.tags[f"key {value}"] == "x"


STEPS = [
    "set -euo pipefail\n",
    "id finops-agent >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin finops-agent\n",
    "install -d -o finops-agent -g finops-agent -m 0750 /var/lib/finops-agent\n",
    "if [ ! -x /opt/finops-agent/bin/pip ]; then\n",
    "apt-get install -y -q python3-venv",
    "/opt/finops-agent/bin/pip install --quiet 'finops[agent]==1.2.3'\n",
    "ln -sf /opt/finops-agent/bin/finops-agent /usr/local/bin/finops-agent\n",
    "cat > /etc/finops-agent.toml <<'FINOPS_AGENT_TOML'\n",
    "/usr/local/bin/finops-agent --config /etc/finops-agent.toml --check\n",
    "cat > /etc/systemd/system/finops-agent.service <<'FINOPS_AGENT_UNIT'\n",
    "systemctl daemon-reload\n",
    "systemctl enable --now finops-agent.service\n",
]


def test_script_runs_each_step_once_in_order() -> None:
    script = agent_bootstrap_script(agent_config("aws", "train", TAGS), "finops[agent]==1.2.3")
    assert script.startswith("#!/bin/bash\n")
    assert [script.count(step) for step in STEPS] == [1] * len(STEPS)
    positions = [script.index(step) for step in STEPS]
    assert positions == sorted(positions)
    assert script.endswith("systemctl enable --now finops-agent.service\n")


def test_script_idempotent_steps() -> None:
    script = agent_bootstrap_script(agent_config("gcp", "train", TAGS), "finops[agent]")
    assert "id finops-agent >/dev/null 2>&1 || useradd" in script
    venv_block = script.split("if [ ! -x /opt/finops-agent/bin/pip ]; then\n", 1)[1]
    assert venv_block.split("fi\n", 1)[0].count("python3 -m venv /opt/finops-agent") == 2


def test_script_writes_the_config_and_the_shipped_unit_verbatim() -> None:
    config = agent_config("azure", "train", TAGS)
    script = agent_bootstrap_script(config, "finops[agent]")
    assert config_in(script) == config
    unit = re.search(r"<<'FINOPS_AGENT_UNIT'\n(.*?\n)FINOPS_AGENT_UNIT\n", script, re.S)
    assert unit and unit.group(1) == systemd_unit()
    assert "ExecStart=/usr/local/bin/finops-agent --config /etc/finops-agent.toml" in unit.group(1)


def test_upgrade_only_when_asked() -> None:
    config = agent_config("gcp", "train", TAGS)
    assert "pip install --quiet --upgrade 'finops[agent]'\n" in agent_bootstrap_script(
        config, "finops[agent]", upgrade=True
    )
    assert "--upgrade" not in agent_bootstrap_script(config, "finops[agent]")


@pytest.mark.parametrize("package", ["", "  ", "finops'; rm -rf /"])
def test_package_that_would_break_the_quoting_is_refused(package: str) -> None:
    with pytest.raises(ValueError, match="must be a non-empty pip requirement without quotes"):
        agent_bootstrap_script(agent_config("aws", "train", TAGS), package)


def test_heredoc_marker_in_the_config_is_refused() -> None:
    config = agent_config("aws", "train", {"Note": "x FINOPS_AGENT_TOML y"})
    with pytest.raises(
        ValueError,
        match=re.escape("/etc/finops-agent.toml contains the heredoc marker 'FINOPS_AGENT_TOML'"),
    ):
        agent_bootstrap_script(config, "finops[agent]")


def test_heredoc_marker_in_the_unit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from components import agent_bootstrap

    monkeypatch.setattr(agent_bootstrap, "systemd_unit", lambda: "[Unit]\nFINOPS_AGENT_UNIT\n")
    with pytest.raises(
        ValueError,
        match=re.escape("finops-agent.service contains the heredoc marker 'FINOPS_AGENT_UNIT'"),
    ):
        agent_bootstrap_script(agent_config("aws", "train", TAGS), "finops[agent]")


def test_user_data_fits_ec2_limit() -> None:
    config = agent_config("aws", "train", TAGS, cloudwatch=True, on_rebalance=True)
    assert len(agent_bootstrap_script(config, "finops[agent]").encode()) < 16 * 1024
