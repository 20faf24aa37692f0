"""examples/reuse/python from the built wheel: a platform team's Pulumi program with its own
`components` and `policies` packages, run offline through the engine in a fresh virtualenv
that holds only `aifinops[aws]` as the program's requirements.txt asks.

The wheel is built as the agent bundle builds it (bench/build_agent_bundle.py: from a clean
copy of the tree, no build isolation); the virtualenv is installed by uv with no network, from
its cache, at the versions of requirements.lock. The program runs from its own folder, so the
repository's folders are nowhere on sys.path: both the user's modules and aifinops must import,
and the resources must come out tagged with the team's tags and priced.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "reuse" / "python"
UV = Path(sys.executable).parent / "uv"
TAGS = {
    "Project": "research-llm",
    "Team": "research",
    "Environment": "dev",
    "CostCenter": "CC-4711",
}

# Runs in the fresh virtualenv, from the program's folder: the engine runs the program as the
# Python language host would (its folder first on sys.path), then the cost model prices it.
DRIVER = r"""
import json, sys
from pathlib import Path
from ruamel.yaml import YAML
from aifinops.config import StackConfig
from aifinops.cost import estimate
from aifinops.engine import run_program
from aifinops.taggability import is_taggable

program = Path.cwd()
raw = YAML(typ="safe").load((program / "Pulumi.dev.yaml").read_text())["config"]
run = run_program(program, "dev", raw, regions={"aws": raw["aws:region"]}, project="gpu-platform")
import aifinops, components, policies
config = StackConfig.model_validate({"tags": json.loads(sys.argv[1]), "regions": {"aws": raw["aws:region"]}})
report = estimate(run, config)
print(json.dumps({
    "files": {m.__name__: m.__file__ for m in (aifinops, components, policies)},
    "modules": sorted(sys.modules),
    "total": report.total_monthly_usd,
    "resources": [
        {"type": c.type, "name": c.name, "monthly": c.monthly_usd, "priced": c.priced,
         "tags": c.tags, "taggable": is_taggable(c.type), "component": c.component}
        for c in report.resources
    ],
}))
"""


def _bundle_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "build_agent_bundle", ROOT / "bench" / "build_agent_bundle.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("reuse")
    wheel, metadata = _bundle_module().project_wheel(work)
    requirement = (EXAMPLE / "requirements.txt").read_text().split("#")[-1].split()[-1]
    name, _, version = requirement.partition("==")
    assert metadata["version"] == version, "requirements.txt pins another version than built"
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    installed = subprocess.run(
        [str(UV), "pip", "install", "--offline", "--python", str(venv / "bin" / "python"),
         "-c", str(ROOT / "requirements.lock"),
         f"{name.split('[')[0]}[{name.split('[')[1]} @ {wheel.as_uri()}"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    program = work / "program"
    shutil.copytree(EXAMPLE, program, ignore=shutil.ignore_patterns("__pycache__"))
    (program / "wheels").mkdir()
    shutil.copy2(wheel, program / "wheels" / wheel.name)  # the agent the fleet bundles
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", DRIVER, json.dumps(TAGS)],
        cwd=program, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    result["venv"], result["program"] = str(venv), str(program)
    result["installed"] = installed.stderr
    return result


def test_user_modules_and_aifinops_both_import_from_their_own_places(ran: dict) -> None:
    files = ran["files"]
    assert files["components"] == f"{ran['program']}/components/__init__.py"
    assert files["policies"] == f"{ran['program']}/policies/__init__.py"
    assert files["aifinops"].startswith(f"{ran['venv']}/lib/")  # the wheel, not the checkout
    ours = [m for m in ran["modules"] if m.split(".")[0] in ("finops", "agents")]
    assert ours == [], "a top-level name of ours was imported"


def test_only_the_aws_extra_was_installed(ran: dict) -> None:
    assert "pulumi-aws==" in ran["installed"]
    assert "pulumi-gcp" not in ran["installed"] and "pulumi-azure-native" not in ran["installed"]
    assert "pulumi-policy" not in ran["installed"]


def test_every_taggable_resource_carries_the_teams_tags(ran: dict) -> None:
    taggable = [r for r in ran["resources"] if r["taggable"]]
    components = {r["component"] for r in taggable}
    assert {
        "research-train",
        "research-serve",
        "research-budget",
        "research-datasets",
    } <= components
    for resource in taggable:
        assert resource["tags"].items() >= TAGS.items(), resource["name"]


def test_the_fleet_and_the_endpoint_are_priced(ran: dict) -> None:
    priced = {r["name"]: r["monthly"] for r in ran["resources"] if r["priced"]}
    assert priced["research-train-group"] > 0  # spot nodes at catalog prices
    assert priced["research-serve-config"] == pytest.approx(1.408 * 730)  # 1 x ml.g5.xlarge
    assert ran["total"] == pytest.approx(sum(r["monthly"] for r in ran["resources"]))
    budget = [r for r in ran["resources"] if r["type"] == "aws:budgets/budget:Budget"]
    assert [r["name"] for r in budget] == ["research-budget-budget"]
