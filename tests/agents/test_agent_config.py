"""The config file the fleets' user data writes: defaults, the README example, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aifinops.agents.config import ConfigError, load_config

README = Path(__file__).resolve().parents[2] / "agents" / "README.md"


def write(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def readme_block(n: int) -> str:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), re.S)
    return blocks[n]


def test_readme_minimal_example_is_valid(tmp_path: Path) -> None:
    install = re.search(r"cat > /etc/finops-agent.toml <<'EOF'\n(.*?)EOF", README.read_text(), re.S)
    assert install
    cfg = load_config(write(tmp_path, install.group(1)))
    assert cfg.metadata.provider == "aws"
    assert cfg.cloudwatch.enabled is True
    assert cfg.checkpoint.hook.mode == "file"
    assert cfg.checkpoint.hook.file == "/run/finops-agent/interruption.json"
    assert cfg.work.listen == "127.0.0.1:9402"
    assert cfg.tags == {"finops:fleet": "train-a"}


def test_readme_full_reference_equals_the_defaults(tmp_path: Path) -> None:
    documented = load_config(write(tmp_path, readme_block(0)))
    defaults = load_config(write(tmp_path, "", "empty.toml"))
    assert documented.agent == defaults.agent
    assert documented.spool == defaults.spool
    assert documented.export == defaults.export
    assert documented.prometheus == defaults.prometheus
    assert documented.cloudwatch == defaults.cloudwatch
    assert documented.metadata == defaults.metadata
    assert documented.checkpoint == defaults.checkpoint
    assert documented.idle == defaults.idle
    assert documented.work == defaults.work


def test_json_config_is_accepted(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '{"agent": {"window_seconds": 30}}', "agent.json"))
    assert cfg.agent.window_seconds == 30.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[idle]\nminute = 3\n", r"\[idle\] 'minute' is not a known key; did you mean 'minutes'\?"),
        ("[agnet]\n", r"section 'agnet' is not a known key; did you mean 'agent'\?"),
        ("[agent]\nwindow_seconds = 'x'\n", r"\[agent\] window_seconds must be a number"),
        (
            "[metadata]\nprovider = 'aws2'\n",
            r"\[metadata\] provider must be one of .*did you mean 'aws'",
        ),
        ("[prometheus]\nlisten = '0.0.0.0:9401'\n", r"\[prometheus\] listen must be a loopback"),
        ("[checkpoint.hook]\nmode = 'signal'\n", r"\[checkpoint.hook\] mode 'signal' needs pid"),
        ("[checkpoint.hook]\nmode = 'command'\n", r"\[checkpoint.hook\] mode 'command' needs"),
        ("[idle.hook]\nmode = 'signal'\nsignal = 'USR1'\npid = 3\n", r"not a signal name"),
        ("[cloudwatch]\ntag_dimensions = ['team']\n", r"tag_dimensions must be keys present"),
        ("[agent]\nsample_interval_seconds = 5\nwindow_seconds = 1\n", r"window_seconds must be"),
        ("[spool]\nfsync = 1\n", r"\[spool\] fsync must be true or false"),
        (
            "[cloudwatch]\nextra_dimensions = ['Name']\n",
            r"extra_dimensions must be one of .*did you mean 'name'",
        ),
        ("agent = 3\n", r"\[agent\] must be a table"),
        (
            "[agent]\nsample_interval_seconds = 0.05\n",
            r"\[agent\] sample_interval_seconds 0.05 is under GPM's 0.1 s minimum.*gpm = false",
        ),
        ("checkpoint = 'now'\n", r"\[checkpoint\] must be a table"),
        (
            "[export]\nrollup_seconds = 60\n",
            r"\[export\] rollup_seconds must be 0 \(every window\) or 300 .*not 60",
        ),
        ("[idle]\nhook = 1\n", r"\[idle.hook\] must be a table"),
        ("[lifecycle]\nmax_wait_seconds = 0\n", r"\[lifecycle\] max_wait_seconds must be in"),
        ("[lifecycle]\nheartbeat_seconds = 0.5\n", r"\[lifecycle\] heartbeat_seconds must be"),
        ("[lifecycle]\nhook_name = 'x'\n", r"did you mean 'aws_hook_name'"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert str(err.value).startswith(str(path))


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ('team = ""', r"\[tags\] 'team' = '' is a CloudWatch dimension value .* is empty"),
        ('team = "  "', r"is empty"),
        ('team = "équipe"', r"has a character CloudWatch refuses \(ASCII only"),
        (
            '":team" = "a"',
            r"tag_dimensions: ':team' as a dimension name must not start with a colon",
        ),
    ],
)
def test_a_cloudwatch_dimension_cloudwatch_would_refuse_is_a_config_error(
    tmp_path: Path, tags: str, message: str
) -> None:
    key = tags.split(" =")[0].strip('"')
    text = f'[cloudwatch]\nenabled = true\ntag_dimensions = ["{key}"]\n[tags]\n{tags}\n'
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_short_sample_intervals_need_gpm_off(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[agent]\nsample_interval_seconds = 0.05\ngpm = false\n"))
    assert cfg.agent.sample_interval_seconds == 0.05 and cfg.agent.gpm is False


def test_unparsable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[agent\n"))
    with pytest.raises(ConfigError, match="cannot read the agent config"):
        load_config(tmp_path / "nope.toml")
