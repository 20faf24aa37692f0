"""The boot script that installs and starts the finops GPU agent on a fleet's VMs.

One script for every cloud: EC2 user data and Azure custom data (cloud-init runs them on the
first boot) and GCE startup scripts (run on every boot, so every step is idempotent). The
agent's config format, its systemd unit and the checkpoint-hook contract belong to `agents/`
(agents/README.md); this module only fills them in for one fleet. The unit is the one shipped
with the agents package, so the unit on a host is the reviewed one. The agent goes into its
own virtual environment because current Debian and Ubuntu images refuse `pip install` into
the system Python (PEP 668).
"""

import json
from collections.abc import Mapping
from importlib import resources

METADATA_PROVIDERS = ("aws", "gcp", "azure")
AGENT_USER = "finops-agent"
AGENT_CONFIG_PATH = "/etc/finops-agent.toml"
AGENT_UNIT_PATH = "/etc/systemd/system/finops-agent.service"
AGENT_VENV = "/opt/finops-agent"
# The unit's StateDirectory: the agent's spool and export file (agents/README.md).
AGENT_STATE_DIR = "/var/lib/finops-agent"
# The namespace the agent publishes to (agents/config.py `CloudWatchSection.namespace`): the
# one Compute Optimizer reads. The AWS instance role may put metrics in this namespace only.
AGENT_METRIC_NAMESPACE = "CWAgent"
# Mode "file": the agent (its own unprivileged user) writes this JSON when an interruption
# notice arrives; the training job checks for it after every step. /run/finops-agent is the
# unit's RuntimeDirectory (0755), so any user can read it.
INTERRUPTION_FILE = "/run/finops-agent/interruption.json"
FLEET_TAG = "finops:fleet"
CONFIG_MARKER = "FINOPS_AGENT_TOML"
UNIT_MARKER = "FINOPS_AGENT_UNIT"


def systemd_unit() -> str:
    """The agent's systemd unit as shipped with the agents package (agents/deploy/)."""
    return (resources.files("agents") / "deploy" / "finops-agent.service").read_text()


def _toml_string(value: str) -> str:
    # A JSON string is a TOML basic string (same quotes and escapes), except that TOML also
    # forbids a raw DEL. ensure_ascii would write astral characters as surrogate pairs,
    # which TOML rejects, so only DEL is escaped by hand.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def agent_config(
    metadata_provider: str,
    fleet: str,
    tags: Mapping[str, str],
    *,
    cloudwatch: bool = False,
    on_rebalance: bool = False,
) -> str:
    """The agent's TOML config (validated by `agents.config.parse_config`).

    The agent watches `metadata_provider` (aws, gcp or azure) for interruption notices and
    answers them with the file hook at `INTERRUPTION_FILE`; `tags` plus `finops:fleet =
    fleet` are copied into every record. `cloudwatch` publishes to `AGENT_METRIC_NAMESPACE`
    with a per-fleet copy of each metric; `on_rebalance` also runs the hook on an AWS
    rebalance recommendation.
    """
    if metadata_provider not in METADATA_PROVIDERS:
        raise ValueError(
            f"metadata_provider {metadata_provider!r} is not one of {', '.join(METADATA_PROVIDERS)}"
        )
    record_tags = {**tags, FLEET_TAG: fleet}
    lines = [
        "# written by the finops fleet component; format: agents/README.md",
        "[metadata]",
        f"provider = {_toml_string(metadata_provider)}",
        "",
    ]
    if cloudwatch:
        lines += [
            "[cloudwatch]",
            "enabled = true",
            f"namespace = {_toml_string(AGENT_METRIC_NAMESPACE)}",
            f"tag_dimensions = [{_toml_string(FLEET_TAG)}]",
            "",
        ]
    if on_rebalance:
        lines += ["[checkpoint]", "on_rebalance = true", ""]
    lines += [
        "[checkpoint.hook]",
        'mode = "file"',
        f"file = {_toml_string(INTERRUPTION_FILE)}",
        "",
        "[tags]",
        *(f"{_toml_string(k)} = {_toml_string(v)}" for k, v in sorted(record_tags.items())),
    ]
    return "\n".join(lines) + "\n"


def _heredoc(path: str, content: str, marker: str) -> str:
    # Stricter than bash needs (only a line equal to the marker ends the heredoc): the marker
    # anywhere in the content is refused, so no content can ever end it early.
    if marker in content:
        raise ValueError(
            f"agent bootstrap: the content for {path} contains the heredoc marker {marker!r}"
        )
    return f"cat > {path} <<'{marker}'\n{content.rstrip()}\n{marker}\n"


def agent_bootstrap_script(config: str, package: str, *, upgrade: bool = False) -> str:
    """A bash script that installs the agent from `package` (a pip requirement: a pinned
    version or a wheel URL) into its own venv, writes `config` (see `agent_config`) and the
    unit, checks the config and starts the agent. Every step is idempotent.

    `upgrade` passes `--upgrade` to pip, so a boot script that runs on every boot (GCE)
    follows an unpinned requirement to its latest release.

    `--check` validates the config before the unit starts, so a bad config fails the boot
    script visibly (cloud-init or startup-script log) instead of crash-looping the service.
    """
    if not package.strip() or "'" in package:
        raise ValueError(
            f"agent_package {package!r} must be a non-empty pip requirement without quotes"
        )
    pip_install = "pip install --quiet --upgrade" if upgrade else "pip install --quiet"
    return (
        "#!/bin/bash\n"
        "# finops-agent bootstrap, generated by the finops fleet component; see agents/README.md\n"
        "set -euo pipefail\n"
        f"id {AGENT_USER} >/dev/null 2>&1 || "
        f"useradd --system --no-create-home --shell /usr/sbin/nologin {AGENT_USER}\n"
        f"install -d -o {AGENT_USER} -g {AGENT_USER} -m 0750 {AGENT_STATE_DIR}\n"
        # Debian and Ubuntu ship venv without ensurepip: python3-venv adds it.
        f"if [ ! -x {AGENT_VENV}/bin/pip ]; then\n"
        f"  python3 -m venv {AGENT_VENV} || {{ apt-get update -q && apt-get install -y -q "
        f"python3-venv && python3 -m venv {AGENT_VENV}; }}\n"
        "fi\n"
        f"{AGENT_VENV}/bin/{pip_install} '{package}'\n"
        f"ln -sf {AGENT_VENV}/bin/finops-agent /usr/local/bin/finops-agent\n"
        + _heredoc(AGENT_CONFIG_PATH, config, CONFIG_MARKER)
        + f"/usr/local/bin/finops-agent --config {AGENT_CONFIG_PATH} --check\n"
        + _heredoc(AGENT_UNIT_PATH, systemd_unit(), UNIT_MARKER)
        + "systemctl daemon-reload\n"
        "systemctl enable --now finops-agent.service\n"
    )
