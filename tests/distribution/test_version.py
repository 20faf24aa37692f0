"""One version, written once in pyproject.toml and read back by both programs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("program", ["finops", "finops-agent"])
def test_version_flag_prints_the_pyproject_version(program: str) -> None:
    done = subprocess.run(
        [str(BIN / program), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{program} {VERSION}"


def test_packages_carry_the_same_version() -> None:
    import aifinops as finops
    from aifinops import agents

    assert finops.__version__ == agents.__version__ == VERSION


def test_changelog_has_a_section_for_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{VERSION}] - " in changelog
    assert "## [Unreleased]" in changelog
