"""`finops preview` at 80 columns, as a user's terminal gets it (a real process, COLUMNS=80):
the summary first, costliest component first, with the stack total and the totals by tag; free
resources one line per component unless --all; no resource name wrapped or cut."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

ROOT = Path(__file__).resolve().parents[2]
FREE = "not priced: free or usage-based"
LONG_NAMES = """\
config:
  aws:region: us-east-1
  finops:tags: {Project: vision, Team: ml, Environment: dev}
  finops:budgets:
    - {project: vision, cloud: aws, monthlyLimitUsd: 5000, notify: [ml@example.com]}
  finops:trainingFleets:
    - name: a-fleet-whose-name-is-forty-characters-x
      cloud: aws
      instanceTypes: [g5.xlarge]
      nodes: {min: 0, max: 2, desired: 1}
      modelVersion: v1
"""


def finops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aifinops", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "COLUMNS": "80", "FINOPS_CATALOG_OVERLAY": ""},
    )


@pytest.fixture(scope="module")
def dev_json() -> dict:
    done = finops("preview", "--stack", "dev", "--format", "json", "--no-policies")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def dev_table() -> list[str]:
    done = finops("preview", "--stack", "dev", "--format", "table")
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _money(text: str) -> float:
    return float(text.replace(",", ""))


def _assert_fits(lines: list[str], width: int = 80) -> None:
    too_wide = [line for line in lines if cell_len(line.rstrip()) > width]
    assert not too_wide


def _summary(lines: list[str]) -> tuple[list[list[str]], list[str]]:
    """Rows of the summary table (between its two rules) and its total line."""
    rules = [i for i, line in enumerate(lines) if line.startswith("───")]
    assert len(rules) >= 2, lines
    rows = [line.split() for line in lines[rules[0] + 1 : rules[1]]]
    return rows, lines[rules[1] + 1].split()


def test_the_summary_comes_first_costliest_component_first(dev_table, dev_json):
    _assert_fits(dev_table)
    assert dev_table[0].startswith("finops preview - stack dev")
    assert dev_table[2].split() == ["component", "kind", "cloud", "resources", "$/month"]
    rows, total = _summary(dev_table)
    by_component = {c["name"]: c for c in dev_json["components"]}
    # the fleets' network costs nothing itself (its public IPv4 addresses are priced per node)
    assert [row[0] for row in rows] == [
        "vision-serve",
        "vision-train",
        "vision-budget",
        "network-us-east-1",
        "(stack)",
    ]
    figures = [_money(row[-1]) for row in rows]
    assert figures == sorted(figures, reverse=True)
    for row in rows:
        assert _money(row[-1]) == pytest.approx(by_component[row[0]]["monthlyUsd"])
        assert int(row[-2]) == by_component[row[0]]["resources"]
    assert total[0] == "total"
    # charge lines (a fleet's volumes, telemetry...) are listed but are not resources
    assert int(total[-2]) == len([r for r in dev_json["resources"] if r["charge"] is None])
    assert _money(total[-1]) == pytest.approx(dev_json["totals"]["monthlyUsd"])
    # the totals by tag follow the summary, before any resource is listed
    first_resource = next(
        i for i, line in enumerate(dev_table) if line.startswith("vision-serve (")
    )
    by_tag = [line for line in dev_table[:first_resource] if line.startswith("by ")]
    assert by_tag[0] == f"by Project: vision ${dev_json['totals']['monthlyUsd']:,.2f}"
    assert [line.split(":")[0] for line in by_tag] == [
        "by Project",
        "by Team",
        "by Environment",
        "by ModelVersion",
    ]


def test_free_resources_are_one_line_per_component_and_all_lists_them(dev_table, dev_json):
    free = [r for r in dev_json["resources"] if r["basis"] == FREE]
    shown = [r for r in dev_json["resources"] if r["basis"] != FREE]
    text = "\n".join(dev_table)
    for resource in shown:  # priced ones, and those priced by scale (the group at 0 nodes)
        assert re.search(rf"^  {re.escape(resource['name'])}\s", text, re.M), resource["name"]
    for resource in free:
        assert not re.search(rf"^  {re.escape(resource['name'])}\s", text, re.M)
    collapsed = {int(m[1]) for m in re.finditer(r"^  \+ (\d+) free or usage-based: ", text, re.M)}
    per_component: dict[str, int] = {}
    for resource in free:
        key = resource["component"] or "(stack)"
        per_component[key] = per_component.get(key, 0) + 1
    assert collapsed == set(per_component.values())
    assert len(re.findall(r"^  \+ \d+ free", text, re.M)) == len(per_component)

    done = finops("preview", "--stack", "dev", "--format", "table", "--all")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    _assert_fits(lines)
    assert not [line for line in lines if " free or usage-based: " in line]
    for resource in dev_json["resources"]:
        assert re.search(rf"^  {re.escape(resource['name'])}(\s|$)", done.stdout, re.M)


def test_long_names_are_never_wrapped_or_cut_at_80_columns(tmp_path):
    stack = tmp_path / "Pulumi.long.yaml"
    stack.write_text(LONG_NAMES)
    done = finops("preview", "--stack", str(stack), "--format", "json", "--no-policies")
    names = [r["name"] for r in json.loads(done.stdout)["resources"]]
    assert max(len(n) for n in names) > 60  # longer than a column can be beside a figure
    done = finops("preview", "--stack", str(stack), "--format", "table", "--all")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    _assert_fits(lines)
    listed = {line.split()[0] for line in lines if line.startswith("  ") and line.split()}
    assert set(names) <= listed


def test_markdown_follows_the_same_order(tmp_path):
    done = finops("preview", "--stack", "dev", "--format", "markdown", "--no-policies")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = lines.index("| component | kind | cloud | resources | $/month |")
    resources = lines.index("### Resources")
    assert header < resources
    rows = [line for line in lines[header + 2 : resources] if line.startswith("| `")]
    assert [row.split("|")[1].strip(" `") for row in rows][:3] == [
        "vision-serve",
        "vision-train",
        "vision-budget",
    ]
    assert any(line.startswith("- by Project: vision $") for line in lines[header:resources])
    collapsed = [line for line in lines if "free or usage-based" in line]
    assert len(collapsed) == 5  # one per component (the network too) and the stack level


def test_check_markdown_carries_the_same_summary():
    fixture = ROOT / "tests" / "fixtures" / "policies" / "untagged_p5"
    done = finops(
        "check", "--stack", str(fixture / "Pulumi.dev.yaml"), "--project-dir", str(fixture)
    )
    lines = done.stdout.splitlines()
    cost = next(i for i, line in enumerate(lines) if line.startswith("**Monthly cost: "))
    assert lines[cost + 2] == "| component | kind | cloud | resources | $/month |"
    assert lines[cost + 4].startswith("| `(stack)` |")
    assert any(line.startswith("- by Project: ") for line in lines[cost:])


def test_the_readme_shows_the_dev_stacks_preview_as_it_is(dev_table: list[str]) -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## What the dev stack costs")[1].split("```\n")[1]
    shown = [line for line in block.splitlines() if line != "  ..."]
    # the README's lines are the preview's first lines, the fleet's volumes and telemetry
    # (with their figures) included
    assert shown == dev_table[: len(shown)]
    assert any(line.startswith("  vision-train-group/telemetry") for line in shown)
