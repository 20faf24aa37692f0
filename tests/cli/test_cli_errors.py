"""Mistakes a new user makes, through the real `finops` process: one line per problem, every
problem of a stack file in one run, exit 2, never a traceback; `| head` ends quietly."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOUR_MISTAKES = """\
config:
  aws:region: us-east-1
  finops:tags:
    project: vision
    Team: ml
    Environment: qa
  finops:trainingFleets:
    - name: train
      cloud: aws
      instanceTypes: [g5.xlarg]
      nodes: {min: 0, max: 4, desired: 9}
      modelVersion: v1
"""


def finops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aifinops", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "FINOPS_CATALOG_OVERLAY": ""},
    )


def errors(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    return lines


def test_every_problem_of_a_stack_file_in_one_run(tmp_path):
    stack = tmp_path / "Pulumi.four.yaml"
    stack.write_text(FOUR_MISTAKES)
    lines = errors(finops("preview", "--stack", str(stack)))
    prefix = f"error: {stack}: finops:"
    assert lines == [
        f"{prefix}tags.project: did you mean Project? (tag keys are case-sensitive; Project is "
        "required)",
        f"{prefix}tags.Environment: Input should be 'dev', 'staging' or 'prod' (got 'qa')",
        f"{prefix}trainingFleets[0].nodes: must satisfy min <= desired <= max (got min=0, "
        "desired=9, max=4)",
        f"{prefix}trainingFleets[0].instanceTypes[0]: unknown instance type 'g5.xlarg' (did you "
        "mean g5.xlarge, g5g.xlarge, g5.8xlarge?)",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the stack file is empty; it needs a config: mapping with at least finops:tags"),
        (b"# only a comment\n", "the stack file has only comments"),
        (b"encryptionsalt: v1:abc\n", "no config: values; it needs at least finops:tags"),
        (
            "config:\n  finops:tags: {Project: caf\u00e9, Team: ml, Environment: dev}\n".encode(
                "latin-1"
            ),
            ":2: not UTF-8 text (byte 0xe9 at column 29); save the file as UTF-8",
        ),
    ],
    ids=["empty", "comments-only", "no-config", "latin-1"],
)
def test_stack_files_that_cannot_be_read_say_why(tmp_path, content, expected):
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_bytes(content)
    (line,) = errors(finops("preview", "--stack", str(stack)))
    assert line.startswith(f"error: {stack}")
    assert expected in line


def test_a_folder_given_as_stack_file(tmp_path):
    (line,) = errors(finops("preview", "--stack", str(tmp_path)))
    assert line == f"error: {tmp_path}: is a folder, not a stack file"


def test_an_agent_trace_given_to_rightsize_says_what_it_is(tmp_path):
    trace = tmp_path / "trace.jsonl"
    trace.write_text(
        '{"timestamp": 1700000000.0, "gpu_index": 0, "gpu_uuid": "GPU-0", '
        '"gpu_name": "NVIDIA A10G", "gpu_util_percent": 50.0}\n'
    )
    (line,) = errors(finops("rightsize", "--stack", "dev", "--source", f"agent:{trace}"))
    assert line.startswith(f"error: {trace}:1: a `finops-agent --record` trace")


def test_a_reader_that_stops_early_ends_the_command_quietly():
    # --all-regions JSON is over a megabyte: more than a pipe buffers, so a write meets the
    # closed pipe.
    proc = subprocess.Popen(
        [sys.executable, "-m", "aifinops", "catalog", "list", "--all-regions", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "FINOPS_CATALOG_OVERLAY": ""},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # as a program ended by SIGPIPE
    assert stderr == ""


class _ClosedPipe(io.TextIOBase):
    """A stdout whose reader has gone: every write fails as a closed pipe does."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return False


def test_a_closed_pipe_under_a_rich_table_ends_quietly_too(tmp_path, monkeypatch, capsys):
    # rich catches the error itself and raises SystemExit(1), which for `finops preview`
    # would read as "a mandatory policy failed".
    from aifinops.cli import main

    with open(tmp_path / "stdout", "w") as target:
        monkeypatch.setattr(sys, "stdout", _ClosedPipe(target.fileno()))
        assert main(["catalog", "list", "--cloud", "azure"]) == 141
    assert capsys.readouterr().err == ""
