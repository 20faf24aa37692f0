"""The agent bootstrap every fleet runs: its config parses with the agent's own parser, the
script runs each step once, installs only a hash-verified artefact, and content that would
end a heredoc early is refused. (The install step itself runs in test_agent_install.py.)"""

import re
import subprocess
import tomllib

import pytest

from aifinops.agents.config import parse_config
from aifinops.components.agent_bootstrap import (
    AGENT_METRIC_NAMESPACE,
    FLEET_TAG,
    INSTALL_BEGIN,
    INSTALL_END,
    INTERRUPTION_FILE,
    BundleInstall,
    RequirementsInstall,
    agent_bootstrap_script,
    agent_config,
    fetcher_source,
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


SHA = "ab" * 32
BUNDLE = BundleInstall(
    SHA, ("aws", "train-ckpt-1234567", "agent/finops-agent-abababababababab.tar")
)
PINNED = (
    "aifinops[agent]==0.1.0 --hash=sha256:" + "1" * 64,
    "boto3==1.44.8 --hash=sha256:" + "2" * 64 + " --hash=sha256:" + "3" * 64,
)
PRIVATE = RequirementsInstall(PINNED, "https://pypi.internal.example/simple")

STEPS = [
    "set -euo pipefail\n",
    "id finops-agent >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin finops-agent\n",
    "install -d -o finops-agent -g finops-agent -m 0750 /var/lib/finops-agent\n",
    "if ! PY=$(finops_python); then\n",
    "cat > /var/cache/finops-agent/agent_fetch.py <<'FINOPS_AGENT_FETCH'\n",
    'finops_fetch() { "$PY" /var/cache/finops-agent/agent_fetch.py aws train-ckpt-1234567 agent/finops-agent-abababababababab.tar "$1"; }\n',
    INSTALL_BEGIN + "\n",
    INSTALL_END + "\n",
    "finops_install_agent\n",
    "ln -sf /opt/finops-agent/bin/finops-agent /usr/local/bin/finops-agent\n",
    "cat > /etc/finops-agent.toml <<'FINOPS_AGENT_TOML'\n",
    "/usr/local/bin/finops-agent --config /etc/finops-agent.toml --check\n",
    "cat > /etc/systemd/system/finops-agent.service <<'FINOPS_AGENT_UNIT'\n",
    "systemctl daemon-reload\n",
    "systemctl enable --now finops-agent.service\n",
]


def test_script_runs_each_step_once_in_order() -> None:
    script = agent_bootstrap_script(agent_config("aws", "train", TAGS), BUNDLE)
    assert script.startswith("#!/bin/bash\n")
    assert [script.count(step) for step in STEPS] == [1] * len(STEPS)
    positions = [script.index(step) for step in STEPS]
    assert positions == sorted(positions)
    assert script.endswith("systemctl enable --now finops-agent.service\n")


@pytest.mark.parametrize("install", [BUNDLE, PRIVATE], ids=["bundle", "private-index"])
def test_script_is_valid_bash(install) -> None:
    script = agent_bootstrap_script(agent_config("gcp", "train", TAGS), install)
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


def pip_installs(script: str) -> list[str]:
    return [line for line in script.splitlines() if re.search(r"\bpip3?\"? install\b", line)]


def test_bundle_is_verified_and_installed_from_its_own_wheels_only() -> None:
    script = agent_bootstrap_script(agent_config("aws", "train", TAGS), BUNDLE)
    step = script.split(INSTALL_BEGIN, 1)[1].split(INSTALL_END, 1)[0]
    check = 'if ! echo "$sha  $bundle" | sha256sum --check --status; then'
    assert f"local sha={SHA}" in step
    assert step.index('finops_fetch "$bundle"') < step.index(check) < step.index('pip" install')
    [install] = pip_installs(script)
    assert "--no-index" in install and "--require-hashes" in install
    assert '--find-links "$FINOPS_DIST/wheels"' in install
    assert "aifinops" not in install and "finops[" not in install  # no name looked up anywhere


def test_private_index_requirements_must_carry_hashes_and_replace_the_public_index() -> None:
    script = agent_bootstrap_script(agent_config("azure", "train", TAGS), PRIVATE)
    [install] = pip_installs(script)
    assert "--require-hashes" in install
    assert "--index-url https://pypi.internal.example/simple" in install
    assert "--extra-index-url" not in script
    written = re.search(
        r"<<'FINOPS_AGENT_REQUIREMENTS'\n(.*?)\nFINOPS_AGENT_REQUIREMENTS\n", script, re.S
    )
    assert written and tuple(written.group(1).splitlines()) == PINNED
    assert "agent_fetch.py" not in script  # nothing to fetch from the bucket


@pytest.mark.parametrize(
    ("requirements", "index_url", "message"),
    [
        (("aifinops[agent]",), "https://pypi.internal.example/simple", "is not pinned with a hash"),
        (("aifinops==0.1.0",), "https://pypi.internal.example/simple", "is not pinned with a hash"),
        (("aifinops==0.1.0 --hash=md5:" + "a" * 32,), "https://x.example", "not pinned"),
        (PINNED, "http://pypi.internal.example/simple", "an https:// URL"),
        ((), "https://pypi.internal.example/simple", "at least one"),
    ],
)
def test_unpinned_requirements_or_plain_http_are_refused(requirements, index_url, message) -> None:
    with pytest.raises(ValueError, match=message):
        agent_bootstrap_script(
            agent_config("aws", "train", TAGS), RequirementsInstall(requirements, index_url)
        )


@pytest.mark.parametrize("sha", ["", "AB" * 32, "ab" * 31, "zz" * 32])
def test_a_bundle_without_a_proper_sha256_is_refused(sha: str) -> None:
    with pytest.raises(ValueError, match="is not 64 lower-case hex digits"):
        agent_bootstrap_script(agent_config("aws", "train", TAGS), BundleInstall(sha, BUNDLE.fetch))


def test_fetch_arguments_are_shell_quoted() -> None:
    hostile = BundleInstall(SHA, ("gcp", "bucket; rm -rf /", "agent/x.tar"))
    script = agent_bootstrap_script(agent_config("gcp", "train", TAGS), hostile)
    assert "'bucket; rm -rf /'" in script


def test_the_fetcher_is_written_out_verbatim() -> None:
    script = agent_bootstrap_script(agent_config("aws", "train", TAGS), BUNDLE)
    written = re.search(r"<<'FINOPS_AGENT_FETCH'\n(.*?\n)FINOPS_AGENT_FETCH\n", script, re.S)
    assert written and written.group(1) == fetcher_source()


def test_script_writes_the_config_and_the_shipped_unit_verbatim() -> None:
    config = agent_config("azure", "train", TAGS)
    script = agent_bootstrap_script(config, BUNDLE)
    assert config_in(script) == config
    unit = re.search(r"<<'FINOPS_AGENT_UNIT'\n(.*?\n)FINOPS_AGENT_UNIT\n", script, re.S)
    assert unit and unit.group(1) == systemd_unit()
    assert "ExecStart=/usr/local/bin/finops-agent --config /etc/finops-agent.toml" in unit.group(1)


def test_heredoc_marker_in_the_config_is_refused() -> None:
    config = agent_config("aws", "train", {"Note": "x FINOPS_AGENT_TOML y"})
    with pytest.raises(
        ValueError,
        match=re.escape("/etc/finops-agent.toml contains the heredoc marker 'FINOPS_AGENT_TOML'"),
    ):
        agent_bootstrap_script(config, BUNDLE)


def test_heredoc_marker_in_the_unit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from aifinops.components import agent_bootstrap

    monkeypatch.setattr(agent_bootstrap, "systemd_unit", lambda: "[Unit]\nFINOPS_AGENT_UNIT\n")
    with pytest.raises(
        ValueError,
        match=re.escape("finops-agent.service contains the heredoc marker 'FINOPS_AGENT_UNIT'"),
    ):
        agent_bootstrap_script(agent_config("aws", "train", TAGS), BUNDLE)


def test_user_data_fits_ec2_limit() -> None:
    """EC2 refuses user data over 16 KiB (before base64); stack tags are the variable part."""
    tags = {**TAGS, **{f"Extra{i}": "v" * 64 for i in range(20)}}
    config = agent_config("aws", "a" * 40, tags, cloudwatch=True, on_rebalance=True)
    assert len(agent_bootstrap_script(config, BUNDLE).encode()) < 16 * 1024


def python_step_in(tmp_path, pythons: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the script's Python step with only `pythons` (name -> exit status of the version
    check) on PATH: no dnf, no apt-get."""
    from aifinops.components.agent_bootstrap import _python_step

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, status in pythons.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\nexit {status}\n")
        path.chmod(0o755)
    return subprocess.run(
        ["/bin/bash", "-c", "set -euo pipefail\n" + _python_step() + 'echo "PY=$PY"\n'],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
    )


def test_the_first_python_3_11_or_later_is_used(tmp_path) -> None:
    found = python_step_in(tmp_path, {"python3": "0", "python3.12": "0", "python3.11": "0"})
    assert found.returncode == 0 and found.stdout.strip().endswith("/bin/python3.12")


def test_without_python_3_11_the_boot_stops_with_the_reason(tmp_path) -> None:
    """Debian 11's python3 is 3.9 and it has no python3.11 package."""
    missing = python_step_in(tmp_path, {"python3": "1"})  # the version check fails
    assert missing.returncode == 1
    assert "finops-agent: needs Python 3.11 or later and none could be installed" in missing.stderr
