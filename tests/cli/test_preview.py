"""`finops preview` end to end, in-process (and once as a real process for the exit code)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aifinops.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
config:
  aws:region: us-east-1
  finops:tags:
    Project: vision
    Team: ml
    Environment: dev
"""


def write_stack(tmp_path, text, name="Pulumi.t.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_dev_stack_previews_as_json_with_the_documented_shape(capsys):
    rc = main(["preview", "--stack", "dev", "--format", "json", "--project-dir", str(ROOT)])
    out = json.loads(capsys.readouterr().out)
    assert rc in (0, 1)  # 1 only when a mandatory policy fails
    assert set(out) >= {"resources", "totals", "violations", "assumptions"}
    assert set(out["totals"]) == {"monthlyUsd", "byTag"}
    for resource in out["resources"]:
        assert set(resource) >= {"type", "name", "inputs", "monthlyUsd"}
    assert out["totals"]["monthlyUsd"] == pytest.approx(
        sum(r["monthlyUsd"] for r in out["resources"]), abs=0.05
    )
    for violation in out["violations"]:
        assert set(violation) == {"policy", "resource", "level", "message"}
    assert rc == (1 if any(v["level"] == "mandatory" for v in out["violations"]) else 0)


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("    Team: ml\n", "", "finops:tags.Team: required key is missing"),
        (
            "Environment: dev\n",
            "Environment: dev\n  finops:trainingFleets:\n    - {name: t1, cloud: aws, instanceTypes: [p5.48xlarg], "
            "nodes: {min: 0, max: 1, desired: 1}, modelVersion: v1}\n",
            "finops:trainingFleets[0].instanceTypes[0]: unknown instance type 'p5.48xlarg'",
        ),
        (
            "Environment: dev\n",
            "Environment: dev\n  finops:trainingFleets:\n    - {name: t1, cloud: aws, instanceTypes: [g5.xlarge], "
            "nodes: {min: -2, max: 1, desired: 1}, modelVersion: v1}\n",
            "finops:trainingFleets[0].nodes.min: Input should be greater than or equal to 0 (got -2)",
        ),
        (
            "Environment: dev\n",
            "Environment: dev\n  finops:trainingFleets:\n    - {name: t1, cloud: ibm, instanceTypes: [g5.xlarge], "
            "nodes: {min: 0, max: 1, desired: 1}, modelVersion: v1}\n",
            "finops:trainingFleets[0].cloud: Input should be 'aws', 'gcp' or 'azure' (got 'ibm')",
        ),
    ],
    ids=["missing-tag", "unknown-instance-type", "negative-nodes", "unknown-cloud"],
)
def test_bad_stack_files_give_one_clear_line_and_exit_2(tmp_path, capsys, replace, by, expected):
    stack = write_stack(tmp_path, GOOD.replace(replace, by))
    rc = main(["preview", "--stack", stack, "--project-dir", str(ROOT)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1
    assert err[0].startswith(f"error: {stack}: ")
    assert expected in err[0]


def test_real_process_exit_code_and_no_traceback(tmp_path):
    stack = write_stack(tmp_path, GOOD.replace("    Team: ml\n", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "aifinops", "preview", "--stack", stack, "--project-dir", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {stack}: finops:tags.Team: required key is missing"


def test_markdown_and_table_formats_render(tmp_path, capsys):
    stack = write_stack(tmp_path, GOOD)
    assert (
        main(
            [
                "preview",
                "--stack",
                stack,
                "--format",
                "markdown",
                "--project-dir",
                str(ROOT),
                "--no-policies",
            ]
        )
        == 0
    )
    markdown = capsys.readouterr().out
    assert markdown.startswith("## finops preview: stack `t`")
    assert "policies skipped" in markdown
    assert (
        main(
            [
                "preview",
                "--stack",
                stack,
                "--format",
                "table",
                "--project-dir",
                str(ROOT),
                "--no-policies",
            ]
        )
        == 0
    )
    assert "finops preview - stack t" in capsys.readouterr().out
