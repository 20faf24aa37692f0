"""The extras match the three uses: what each installs (resolved from pyproject.toml and the
installed distributions' own metadata, pinned in requirements.lock), and that its modules
import with nothing else.

The agent extra must not pull Pulumi onto a GPU host; a cloud's extra must be enough for that
cloud's components. The import check runs each extra's modules in a subprocess where every
distribution outside the extra's closure is made unimportable.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST = PYPROJECT["project"]["name"]
LOCK = ROOT / "requirements.lock"


def _requirements_of_dist(name: str, extras: set[str]) -> list[Requirement]:
    """A distribution's requirements for `extras`, markers evaluated for this interpreter."""
    if canonicalize_name(name) == canonicalize_name(DIST):
        raw = [r for e in extras for r in PYPROJECT["project"]["optional-dependencies"][e]]
        raw += PYPROJECT["project"]["dependencies"]
        return [Requirement(r) for r in raw]
    found = []
    for text in metadata.requires(name) or []:
        req = Requirement(text)
        if req.marker is None or any(
            req.marker.evaluate({"extra": extra}) for extra in (extras or {""})
        ):
            found.append(req)
    return found


def closure(extra: str) -> set[str]:
    """Every distribution that `pip install 'aifinops[<extra>]'` brings (canonical names)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    dists: set[str] = set()
    todo = [(DIST, frozenset({extra}))]
    while todo:
        name, extras = todo.pop()
        if (canonicalize_name(name), extras) in seen:
            continue
        seen.add((canonicalize_name(name), extras))
        for req in _requirements_of_dist(name, set(extras)):
            if canonicalize_name(req.name) != canonicalize_name(DIST):
                dists.add(canonicalize_name(req.name))
            todo.append((req.name, frozenset(req.extras)))
    return dists


def locked() -> set[str]:
    names = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", LOCK.read_text(), re.MULTILINE)
    return {canonicalize_name(n) for n in names}


def test_agent_extra_pulls_no_pulumi() -> None:
    agent = closure("agent")
    assert {"nvidia-ml-py", "prometheus-client", "botocore"} <= agent
    heavy = sorted(d for d in agent if d.startswith("pulumi") or d in {"pydantic", "duckdb"})
    assert heavy == [], f"aifinops[agent] installs {heavy} on every GPU host"


@pytest.mark.parametrize(
    ("extra", "sdk", "others"),
    [
        ("aws", "pulumi-aws", {"pulumi-gcp", "pulumi-azure-native"}),
        ("gcp", "pulumi-gcp", {"pulumi-aws", "pulumi-azure-native"}),
        ("azure", "pulumi-azure-native", {"pulumi-aws", "pulumi-gcp"}),
    ],
)
def test_cloud_extra_brings_only_its_provider(extra: str, sdk: str, others: set[str]) -> None:
    dists = closure(extra)
    assert {"pulumi", sdk} <= dists
    assert not dists & others
    assert "pulumi-policy" not in dists  # the pack is the CLI's


def test_components_and_cli_extras() -> None:
    components = closure("components")
    assert {"pulumi-aws", "pulumi-gcp", "pulumi-azure-native"} <= components
    cli = closure("cli")
    assert components | {"pulumi-policy", "rich", "duckdb", "boto3"} <= cli


@pytest.mark.parametrize("extra", ["agent", "aws", "gcp", "azure", "components", "cli", "dev"])
def test_every_extra_is_pinned_in_the_lock(extra: str) -> None:
    if extra in ("agent", "aws", "gcp", "azure", "components", "cli"):
        assert closure(extra) <= closure("dev"), "the lock (compiled for dev) misses it"
    missing = closure(extra) - locked()
    assert not missing, f"not pinned in requirements.lock: {sorted(missing)}"


# Imports every module of a room with every distribution outside the extra's closure
# unimportable (a meta-path finder in front that refuses their top-level modules).
_BLOCKED_IMPORTS = r"""
import importlib, importlib.abc, importlib.metadata, json, pkgutil, sys
allowed = set(json.loads(sys.argv[1]))
packages = json.loads(sys.argv[2])
owners = importlib.metadata.packages_distributions()
from packaging.utils import canonicalize_name
def blocked(top):
    dists = {canonicalize_name(d) for d in owners.get(top, [])}
    return bool(dists) and not dists & allowed
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if blocked(fullname.partition(".")[0]):
            raise ModuleNotFoundError(f"{fullname} is outside the extra", name=fullname)
        return None
import packaging.utils  # the checker's own, loaded before the gate closes
sys.meta_path.insert(0, Refuse())
done = []
for name in packages:
    package = importlib.import_module(name)
    done.append(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        if ".lambdas." in info.name or ".functions." in info.name or info.name.endswith("__main__"):
            continue  # run on AWS Lambda / Cloud Functions with that runtime's boto3, not ours
        importlib.import_module(info.name)
        done.append(info.name)
print(len(done))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "packages"),
    [
        ("agent", ["agents"]),
        ("aws", ["aifinops.components.aws"]),
        ("gcp", ["aifinops.components.gcp"]),
        ("azure", ["aifinops.components.azure"]),
    ],
)
def test_extra_is_enough_to_import_its_room(extra: str, packages: list[str]) -> None:
    allowed = sorted(closure(extra) | {canonicalize_name(DIST)})
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORTS, json.dumps(allowed), json.dumps(packages)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 1
