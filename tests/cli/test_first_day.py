"""The first day, as a new user runs it: the sample agent data under examples/ works with
`finops rightsize` and `finops-agent --replay`, is what the real agent writes, and `./dev`
forwards any command into the project's virtualenv."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "agent-data"
BIN = Path(sys.executable).parent


def run(*command: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, "FINOPS_CATALOG_OVERLAY": ""},
    )


def test_rightsize_on_the_sample_recommends_a_smaller_gpu_for_the_dev_fleet():
    done = run(
        BIN / "finops",
        "rightsize",
        "--stack",
        "dev",
        "--source",
        f"agent:{SAMPLE / 'windows.jsonl'}",
        "--format",
        "json",
    )
    assert done.returncode == 0, done.stderr
    by_target = {entry["target"]: entry for entry in json.loads(done.stdout)}
    train = by_target["vision-train"]
    assert train["status"] == "recommended"
    assert train["recommendation"]["kinds"] == ["smaller-accelerator"]
    assert train["recommendation"]["summary"].startswith("g5.xlarge -> g4dn.xlarge: ")


def test_the_agent_replays_the_sample_trace_into_window_records(tmp_path):
    done = run(
        BIN / "finops-agent",
        "--config",
        SAMPLE / "agent.toml",
        "--replay",
        SAMPLE / "trace.jsonl",
        cwd=tmp_path,  # the config writes under ./out/agent-demo
    )
    assert done.returncode == 0, done.stderr
    records = [
        json.loads(line)
        for line in (tmp_path / "out" / "agent-demo" / "windows.jsonl").read_text().splitlines()
    ]
    assert records
    assert sum(r["sample_count"] for r in records) == 60  # every reading of the trace
    assert {
        (r["schema_version"], r["instance_type"], r["tags"]["finops:fleet"]) for r in records
    } == {(1, "g5.xlarge", "vision-train")}


def test_the_committed_sample_is_what_the_real_agent_writes_today(tmp_path):
    done = run(sys.executable, ROOT / "scripts" / "gen_agent_sample.py", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("windows.jsonl", "trace.jsonl"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), (
            f"examples/agent-data/{name} is stale: run .venv/bin/python scripts/gen_agent_sample.py"
        )


def _venv_is_current() -> bool:
    """./dev rebuilds a virtualenv whose stamp does not match its lock: never inside a test."""
    stamp = ROOT / ".venv" / ".lock-sha"
    if not stamp.is_file():
        return False
    digests = [
        hashlib.sha256((ROOT / name).read_bytes()).hexdigest()
        for name in ("requirements.lock", "pyproject.toml")
    ]
    version = next(
        line.split("=", 1)[1]
        for line in (ROOT / "dev").read_text().splitlines()
        if line.startswith("BOOTSTRAP_VERSION=")
    )
    return stamp.read_text().strip() == f"{version}-{digests[0]}-{digests[1]}"


@pytest.mark.skipif(not _venv_is_current(), reason="./dev would rebuild .venv first")
def test_dev_forwards_finops_commands_and_any_program_of_the_virtualenv():
    done = run(ROOT / "dev", "catalog", "regions", "--cloud", "azure", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert {row["cloud"] for row in json.loads(done.stdout)} == {"azure"}
    done = run(ROOT / "dev", "finops-agent", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: finops-agent")
    done = run(ROOT / "dev", "python", "-c", "import sys; print(sys.prefix)")
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == ROOT / ".venv"
