"""Lay out `.typecheck/aifinops` as the wheel installs it, in symlinks, for mypy.

setuptools maps the folders at build time (pyproject.toml [tool.setuptools] package-dir);
an editable install serves them through an import hook that mypy does not follow, so
`./dev lint` points mypy at this tree instead (MYPYPATH=.typecheck). Every entry of a mapped
folder is a link to the real file or folder, so mypy reports the real files' lines, and the
tree is rebuilt on each run (a module added since is never missed).
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / ".typecheck"


def main() -> int:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping: dict[str, str] = setuptools.get("package-dir", {})
    if not mapping:
        print("pyproject.toml: no [tool.setuptools] package-dir to lay out", file=sys.stderr)
        return 2
    shutil.rmtree(TREE, ignore_errors=True)
    for name, folder in sorted(mapping.items()):  # parents before the packages inside them
        target = TREE.joinpath(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted((ROOT / folder).iterdir()):
            if entry.name == "__pycache__" or (target / entry.name).exists():
                continue
            (target / entry.name).symlink_to(entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
