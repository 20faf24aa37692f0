"""The boot script that installs and starts the finops GPU agent on a fleet's VMs.

One script for every cloud: EC2 user data and Azure custom data (cloud-init runs them on the
first boot) and GCE startup scripts (run on every boot, so every step is idempotent). The
agent's config format, its systemd unit and the checkpoint-hook contract belong to `agents/`
(agents/README.md); this module only fills them in for one fleet. The unit is the one shipped
with the agents package, so the unit on a host is the reviewed one. The agent goes into its
own virtual environment because current Debian and Ubuntu images refuse `pip install` into
the system Python (PEP 668).

What gets installed is never a name looked up on the public package index. Either
(`BundleInstall`) the stack's own bundle (components/agent_artifact.py): fetched from the
fleet's bucket with the instance's identity (components/agent_fetch.py, written out by the
script), checked against the sha256 the stack computed, then installed with
`pip install --no-index --require-hashes` from the wheels inside it; or
(`RequirementsInstall`) requirements the user pinned with `--hash`, installed with
`--require-hashes` from the user's own index only. The install step is one shell function
between `INSTALL_BEGIN` and `INSTALL_END`, so a test can run exactly that step.
"""

import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from aifinops.config import pinned_requirement_problem

METADATA_PROVIDERS = ("aws", "gcp", "azure")
AGENT_USER = "finops-agent"
AGENT_CONFIG_PATH = "/etc/finops-agent.toml"
AGENT_UNIT_PATH = "/etc/systemd/system/finops-agent.service"
AGENT_VENV = "/opt/finops-agent"
# Root-only: the fetcher, the bundle and its unpacked wheels.
AGENT_DIST = "/var/cache/finops-agent"
# The agent needs Python 3.11 (tomllib, datetime.UTC); hosts' default python3 may be older.
MIN_PYTHON = (3, 11)
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
FETCHER_MARKER = "FINOPS_AGENT_FETCH"
REQUIREMENTS_MARKER = "FINOPS_AGENT_REQUIREMENTS"
INSTALL_BEGIN = "# --- finops: install step begin"
INSTALL_END = "# --- finops: install step end"
FETCHER_PATH = f"{AGENT_DIST}/agent_fetch.py"


@dataclass(frozen=True)
class BundleInstall:
    """Install the stack's bundle: `fetch` is the fetcher's arguments before the destination
    (`("aws", bucket, key)`, `("gcp", bucket, object)`, `("azure", account, container, blob,
    client_id)`); `sha256` is the bundle's, computed by the stack."""

    sha256: str
    fetch: tuple[str, ...]


@dataclass(frozen=True)
class RequirementsInstall:
    """Install from a private index: every requirement pinned `name==version --hash=...`."""

    requirements: tuple[str, ...]
    index_url: str


AgentInstall = BundleInstall | RequirementsInstall


def systemd_unit() -> str:
    """The agent's systemd unit as shipped with the agents package (agents/deploy/)."""
    return (resources.files("aifinops.agents") / "deploy" / "finops-agent.service").read_text()


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
    lifecycle_hook: str = "",
    checkpoint_grace_seconds: int = 0,
) -> str:
    """The agent's TOML config (validated by `aifinops.agents.config.parse_config`).

    The agent watches `metadata_provider` (aws, gcp or azure) for interruption notices and
    answers them with the file hook at `INTERRUPTION_FILE`; `tags` plus `finops:fleet =
    fleet` are copied into every record. `cloudwatch` publishes to `AGENT_METRIC_NAMESPACE`
    with a per-fleet copy of each metric; `on_rebalance` also runs the hook on an AWS
    rebalance recommendation. `checkpoint_grace_seconds` bounds how long a node the fleet
    removes waits for the job's checkpoint; `lifecycle_hook` (AWS) is the termination
    lifecycle hook whose action the agent completes when the checkpoint is done.
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
    if lifecycle_hook or checkpoint_grace_seconds:
        lines += ["[lifecycle]"]
        if lifecycle_hook:
            lines += [f"aws_hook_name = {_toml_string(lifecycle_hook)}"]
        if checkpoint_grace_seconds:
            lines += [f"max_wait_seconds = {int(checkpoint_grace_seconds)}"]
        lines += [""]
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


def fetcher_source() -> str:
    """components/agent_fetch.py, which the script writes out and runs on the host."""
    return (Path(__file__).parent / "agent_fetch.py").read_text()


def _python_step() -> str:
    """Sets PY to a Python >= 3.11, installing one from the distribution when missing (Amazon
    Linux 2023: dnf python3.11; Debian/Ubuntu: apt python3.11)."""
    major, minor = MIN_PYTHON
    return (
        "finops_python() {\n"
        "  local candidate\n"
        "  for candidate in python3.13 python3.12 python3.11 python3; do\n"
        '    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c '
        f"'import sys; sys.exit(sys.version_info < ({major}, {minor}))' 2>/dev/null; then\n"
        '      command -v "$candidate"; return 0\n'
        "    fi\n"
        "  done\n"
        "  return 1\n"
        "}\n"
        "if ! PY=$(finops_python); then\n"
        # a distribution without the package (Debian 11) gets the message below, not apt's
        "  if command -v dnf >/dev/null 2>&1; then dnf install -y -q python3.11 || true\n"
        "  elif command -v apt-get >/dev/null 2>&1; then\n"
        "    { apt-get update -q && apt-get install -y -q python3.11 python3.11-venv; } || true\n"
        "  fi\n"
        f'  PY=$(finops_python) || {{ echo "finops-agent: needs Python {major}.{minor} or later '
        'and none could be installed" >&2; exit 1; }\n'
        "fi\n"
    )


def _venv_lines() -> list[str]:
    # Debian and Ubuntu ship venv without ensurepip: python3.X-venv adds it.
    return [
        '  if [ ! -x "$FINOPS_VENV/bin/pip" ]; then',
        '    "$PY" -m venv "$FINOPS_VENV" || { apt-get update -q && apt-get install -y -q '
        '"$(basename "$PY")-venv" && rm -rf "$FINOPS_VENV" && "$PY" -m venv "$FINOPS_VENV"; }',
        "  fi",
    ]


def _bundle_install_step(install: BundleInstall) -> str:
    sha = install.sha256
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"agent bundle sha256 {sha!r} is not 64 lower-case hex digits")
    lines = [
        INSTALL_BEGIN,
        "finops_install_agent() {",
        f"  local sha={sha}",
        f'  local bundle="$FINOPS_DIST/finops-agent-{sha[:16]}.tar"',
        '  if [ "$(cat "$FINOPS_VENV/.bundle-sha256" 2>/dev/null)" = "$sha" ]; then return 0; fi',
        '  finops_fetch "$bundle"',
        '  if ! echo "$sha  $bundle" | sha256sum --check --status; then',
        '    echo "finops-agent: $bundle does not have the sha256 the stack built ($sha): '
        'refusing to install it" >&2',
        '    rm -f "$bundle"',
        "    return 1",
        "  fi",
        '  rm -rf "$FINOPS_DIST/wheels" && mkdir -p "$FINOPS_DIST/wheels"',
        '  tar -xf "$bundle" -C "$FINOPS_DIST/wheels" --strip-components=1 --no-same-owner',
        *_venv_lines(),
        '  "$FINOPS_VENV/bin/pip" install --quiet --disable-pip-version-check --no-index '
        '--find-links "$FINOPS_DIST/wheels" --require-hashes '
        '--requirement "$FINOPS_DIST/wheels/requirements.txt"',
        '  echo "$sha" > "$FINOPS_VENV/.bundle-sha256"',
        "}",
        INSTALL_END,
    ]
    return "\n".join(lines) + "\n"


def check_requirements(requirements: tuple[str, ...], index_url: str) -> None:
    """ValueError naming the first requirement that is not pinned with a sha256, or an index
    that is not https."""
    if not requirements:
        raise ValueError("agent requirements: give at least one pinned requirement")
    for i, line in enumerate(requirements):
        problem = pinned_requirement_problem(line)
        if problem:
            raise ValueError(f"agent requirements[{i}]: {problem}")
    if not index_url.startswith("https://") or "'" in index_url or " " in index_url:
        raise ValueError(f"agent index_url {index_url!r}: an https:// URL of your package index")


def _requirements_install_step(install: RequirementsInstall) -> str:
    check_requirements(install.requirements, install.index_url)
    text = "\n".join(install.requirements) + "\n"
    sha = hashlib.sha256(text.encode()).hexdigest()
    lines = [
        INSTALL_BEGIN,
        "finops_install_agent() {",
        f"  local sha={sha}",
        '  if [ "$(cat "$FINOPS_VENV/.requirements-sha256" 2>/dev/null)" = "$sha" ]; then '
        "return 0; fi",
        _heredoc('"$FINOPS_DIST/requirements.txt"', text, REQUIREMENTS_MARKER).rstrip("\n"),
        *_venv_lines(),
        # --index-url replaces the public index (no --extra-index-url: no dependency
        # confusion); --require-hashes refuses anything not pinned with a hash.
        '  "$FINOPS_VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes '
        f"--index-url {shlex.quote(install.index_url)} "
        '--requirement "$FINOPS_DIST/requirements.txt"',
        '  echo "$sha" > "$FINOPS_VENV/.requirements-sha256"',
        "}",
        INSTALL_END,
    ]
    return "\n".join(lines) + "\n"


def install_step(install: AgentInstall) -> str:
    """The shell function `finops_install_agent` (between INSTALL_BEGIN and INSTALL_END). It
    reads FINOPS_VENV, FINOPS_DIST and PY, and calls `finops_fetch DEST` for a bundle."""
    if isinstance(install, BundleInstall):
        return _bundle_install_step(install)
    return _requirements_install_step(install)


def agent_bootstrap_script(config: str, install: AgentInstall) -> str:
    """A bash script that installs the agent (`install`) into its own venv, writes `config`
    (see `agent_config`) and the unit, checks the config and starts the agent. Every step is
    idempotent, and an installed bundle or requirements set is not installed again.

    `--check` validates the config before the unit starts, so a bad config fails the boot
    script visibly (cloud-init or startup-script log) instead of crash-looping the service.
    """
    fetch = ""
    if isinstance(install, BundleInstall):
        if not install.fetch or install.fetch[0] not in METADATA_PROVIDERS:
            raise ValueError(f"agent bundle fetch {install.fetch!r}: starts with aws, gcp or azure")
        arguments = " ".join(shlex.quote(str(a)) for a in install.fetch)
        fetch = _heredoc(FETCHER_PATH, fetcher_source(), FETCHER_MARKER) + (
            f'finops_fetch() {{ "$PY" {FETCHER_PATH} {arguments} "$1"; }}\n'
        )
    return (
        "#!/bin/bash\n"
        "# finops-agent bootstrap, generated by the finops fleet component; see agents/README.md\n"
        "set -euo pipefail\n"
        f"FINOPS_VENV={AGENT_VENV}\n"
        f"FINOPS_DIST={AGENT_DIST}\n"
        f"id {AGENT_USER} >/dev/null 2>&1 || "
        f"useradd --system --no-create-home --shell /usr/sbin/nologin {AGENT_USER}\n"
        f"install -d -o {AGENT_USER} -g {AGENT_USER} -m 0750 {AGENT_STATE_DIR}\n"
        'install -d -m 0700 "$FINOPS_DIST"\n'
        + _python_step()
        + fetch
        + install_step(install)
        + "finops_install_agent\n"
        + f"ln -sf {AGENT_VENV}/bin/finops-agent /usr/local/bin/finops-agent\n"
        + _heredoc(AGENT_CONFIG_PATH, config, CONFIG_MARKER)
        + f"/usr/local/bin/finops-agent --config {AGENT_CONFIG_PATH} --check\n"
        + _heredoc(AGENT_UNIT_PATH, systemd_unit(), UNIT_MARKER)
        + "systemctl daemon-reload\n"
        "systemctl enable --now finops-agent.service\n"
    )


# Compute Engine's limit on a graceful shutdown (`scheduling.gracefulShutdown.maxDuration`).
GCE_GRACEFUL_SHUTDOWN_MAX_SECONDS = 3600


def gce_shutdown_script(max_wait_seconds: int) -> str:
    """The GCE `shutdown-script` of a training node: a managed instance group deleting the VM
    (fallback drain, scale-in, budget stop) gives the job its checkpoint signal through the
    agent (`finops-agent --scale-in`, agents/lifecycle.py) and waits for it, at most
    `max_wait_seconds`. A preempted Spot VM is left to the running agent, which has already
    seen `instance/preempted` (GCE gives it 30 s)."""
    return (
        "#!/bin/bash\n"
        "# finops: the fleet is removing this VM; see agents/lifecycle.py\n"
        "preempted=$(curl -sf -H 'Metadata-Flavor: Google' "
        "http://metadata.google.internal/computeMetadata/v1/instance/preempted || true)\n"
        'if [ "$preempted" = "TRUE" ]; then exit 0; fi\n'
        f"exec timeout {int(max_wait_seconds) + 15} /usr/local/bin/finops-agent "
        f"--config {AGENT_CONFIG_PATH} --scale-in\n"
    )
