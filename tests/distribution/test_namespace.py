"""Our packages are installed under `aifinops` only: nothing of ours imports the top-level
names `finops`, `components`, `policies` or `agents`, which a user's program may have (a
`components/` folder is common in Pulumi projects) and which, run from the repository root,
are the bare folders rather than the installed packages.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OLD = {"finops", "components", "policies", "agents"}
FOLDERS = [
    "finops",
    "components",
    "policies",
    "agents",
    "infra",
    "bench",
    "scripts",
    "tests",
    "tools",
]


def top_level_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in OLD
        ]
    return found


def test_no_module_of_ours_imports_a_top_level_name() -> None:
    found = [
        line
        for folder in FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "fixtures" not in path.parts
        for line in top_level_imports(path)
    ]
    assert found == [], "\n".join(found[:20])


@pytest.mark.slow
def test_every_room_loads_without_a_top_level_name() -> None:
    """From the repository root (the bare folders importable, as under pytest): the CLI, the
    components of every cloud, the pack and the agent load, and none of the old names."""
    code = (
        "import json, sys\n"
        "import aifinops.cli, aifinops.components.aws, aifinops.components.gcp\n"
        "import aifinops.components.azure, aifinops.policies.pack, aifinops.agents.cli\n"
        "aifinops.cli.build_parser()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = json.loads(done.stdout.splitlines()[-1])
    assert [m for m in modules if m.split(".")[0] in OLD] == []


def test_the_rename_script_has_nothing_left_to_rewrite() -> None:
    """Code written with the old names (or a package added since the package list was
    written) is found: rerun `python tools/rename_namespace.py`."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "rename_namespace.py"), "--check"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
