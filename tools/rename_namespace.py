"""Move the installed packages under the `aifinops` namespace (issue 17); idempotent.

The repository's folders stay where they are (finops/, components/, policies/, agents/);
setuptools maps them at build time: `aifinops` -> finops/, `aifinops.components` ->
components/, `aifinops.policies` -> policies/, `aifinops.agents` -> agents/. This script
rewrites every name that refers to them:

- imports in Python files and in Python code inside strings and Markdown
  (`from finops.x import y`, `import agents.spool as s`, `import policies`...);
- module paths in strings: `"finops.cli.preview"`, mock/patch targets `"agents.prom.time"`,
  `importlib.resources.files("agents")`, `python -m finops`, `"-m", "agents.cli"` (a dotted
  string counts only when its first two names are a module or package of ours, so metric
  names such as "finops.cost_usd" stay);
- pyproject.toml: entry points, package-dir mapping, the package list (walked from the
  folders), package data, ruff's first-party name; `./dev lint`'s mypy targets; the checkov
  adapter's repository root on sys.path (it mounts the folders under the new names).

Run it from anywhere: `python tools/rename_namespace.py [--check]`. It runs `ruff` (import
order, format) on the files it changed when `.venv/bin/ruff` exists. `--check` changes
nothing and exits 1 if something is left to rename (a test runs it so).
Files it leaves alone: the user's program in examples/reuse (its own `components` and
`policies` are the point), CHANGELOG.md (history), the locks, and this script.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tokenize
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "aifinops"
ROOMS = {"finops": NAMESPACE, "components": f"{NAMESPACE}.components",
         "policies": f"{NAMESPACE}.policies", "agents": f"{NAMESPACE}.agents"}  # fmt: skip
OLD = "|".join(ROOMS)
SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".sh", ".txt", ".cfg", ".ini", ".in"}
SKIP = ("examples/reuse/", "CHANGELOG.md", "tools/rename_namespace.py", "requirements")


def new_name(old: str) -> str:
    """`finops.x` -> `aifinops.x`, `agents.x` -> `aifinops.agents.x`."""
    top, _, rest = old.partition(".")
    return ROOMS[top] + ("." + rest if rest else "")


def our_modules() -> set[str]:
    """Dotted names (old spelling) of every package and module in the four folders."""
    found = set(ROOMS)
    for top in ROOMS:
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            for depth in range(2, len(parts) + 1):
                found.add(".".join(parts[:depth]))
    return found


MODULES = our_modules()

# `from finops.x import`, `import agents.spool as s`: at a line's start, or starting Python
# code inside a string ("from finops.engine.stack import run_stack\n").
FROM_IMPORT = re.compile(rf"(?m)(^[ \t>]*|[\"'`;]\s*)from\s+({OLD})((?:\.\w+)*)(\s+import\b)")
IMPORT = re.compile(
    rf"(?m)(^[ \t>]*|[\"'`;]\s*)import\s+({OLD})((?:\.\w+)*)(\s+as\s+\w+)?(?=\s*(?:$|[;\"'`\\#]))"
)
# "finops.cli.preview", 'agents.prom.time', `components.aws` (the dotted string as a whole,
# or its start up to a colon: "finops.cli:main")
DOTTED = re.compile(rf"(?<![\w.\-/])({OLD})((?:\.\w+)+)(?=[\"'`:\s)\],]|$)", re.MULTILINE)
FILES = re.compile(rf"(files\(\s*)([\"'])({OLD})\2")
DASH_M = re.compile(rf"((?:-m\s+)|(?:[\"']-m[\"'],\s*[\"']))({OLD})(?=[\s.\"'`]|$)")


def _dotted(match: re.Match[str]) -> str:
    top, rest = match.group(1), match.group(2)
    names = rest.split(".")[1:]
    if f"{top}.{names[0]}" not in MODULES:
        return match.group(0)  # a metric, logger or file name that merely starts alike
    return new_name(top + rest)


def ours(top: str, rest: str) -> bool:
    """`components.storage` in a user's example is theirs: only names of our tree move."""
    return not rest or f"{top}.{rest.split('.')[1]}" in MODULES


def _from_import(match: re.Match[str]) -> str:
    lead, top, rest, tail = match.group(1), match.group(2), match.group(3), match.group(4)
    return f"{lead}from {new_name(top + rest)}{tail}" if ours(top, rest) else match.group(0)


def _import(match: re.Match[str]) -> str:
    lead, top, rest, alias = match.group(1), match.group(2), match.group(3), match.group(4)
    if not ours(top, rest):
        return match.group(0)
    target = new_name(top + rest)
    if alias:
        return f"{lead}import {target}{alias}"
    if not rest:  # `import policies` binds `policies`
        if top == "finops":
            return f"{lead}import {NAMESPACE} as finops"
        return f"{lead}from {NAMESPACE} import {top}"
    # `import components.gcp` binds `components` with `gcp` loaded: both (one line in a string)
    if lead.strip():
        return f"{lead}import {target}; from {NAMESPACE} import {top}"
    loads = f"  # noqa: F401 (loads {top}{rest})"
    return f"{lead}import {target}{loads}\n{lead.lstrip(chr(10))}from {NAMESPACE} import {top}"


def _names(text: str) -> str:
    """Dotted module names inside prose, strings and comments."""
    return DOTTED.sub(_dotted, text)


def _imports(text: str) -> str:
    """Imports, `files("agents")` and `-m finops`: patterns that cannot be mistaken for code."""
    text = FROM_IMPORT.sub(_from_import, text)
    text = IMPORT.sub(_import, text)
    text = FILES.sub(lambda m: f"{m.group(1)}{m.group(2)}{new_name(m.group(3))}{m.group(2)}", text)
    return DASH_M.sub(lambda m: m.group(1) + new_name(m.group(2)), text)


def rewrite_text(text: str) -> str:
    """Markdown, YAML, TOML, shell: imports in code samples and module names anywhere."""
    return _names(_imports(text))


def rewrite_python(text: str) -> str:
    """Imports, and module names only inside string literals and comments: in code,
    `components.aws` is an attribute of a name the import rewrite already bound."""
    text = _imports(text)
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    spans = [
        (offsets[tok.start[0] - 1] + tok.start[1], offsets[tok.end[0] - 1] + tok.end[1])
        for tok in tokenize.generate_tokens(io.StringIO(text).readline)
        if tok.type in (tokenize.STRING, tokenize.COMMENT)
    ]
    for start, end in reversed(spans):
        text = text[:start] + _names(text[start:end]) + text[end:]
    return text


def packages() -> dict[str, str]:
    """Every package to ship (new name -> folder), walked from the four folders."""
    found: dict[str, str] = {}
    for top, new in ROOMS.items():
        for init in sorted((ROOT / top).rglob("__init__.py")):
            folder = init.parent.relative_to(ROOT)
            if "__pycache__" in folder.parts:
                continue
            found[new + "".join("." + p for p in folder.parts[1:])] = folder.as_posix()
    return found


def _toml_list(values: list[str], indent: str = "  ") -> str:
    return "[\n" + "".join(f'{indent}"{v}",\n' for v in values) + "]"


def rewrite_pyproject(text: str) -> str:
    """The setuptools tables for the mapped layout; the rest through `rewrite_text`."""
    package_data = {  # the globs as they are, under the packages' new names
        (name if name.startswith(NAMESPACE) else new_name(name)): globs
        for name, globs in tomllib.loads(text)["tool"]["setuptools"]["package-data"].items()
    }
    text = rewrite_text(text)
    start = text.find("[tool.setuptools")
    end = text.find("\n[", text.find("[tool.setuptools.package-data]") + 1)
    if start < 0 or end < 0:
        raise SystemExit("pyproject.toml: no [tool.setuptools...] tables to rewrite")
    mapped = packages()
    dirs = {name: folder for name, folder in mapped.items() if name in ROOMS.values()}
    tables = (
        "[tool.setuptools]\n"
        "# The folders stay; the installed packages live under one namespace of ours\n"
        "# (tools/rename_namespace.py writes these tables: rerun it after adding a package).\n"
        "package-dir = { "
        + ", ".join(f'"{name}" = "{folder}"' for name, folder in dirs.items())
        + " }\n"
        f"packages = {_toml_list(list(mapped))}\n\n"
        "[tool.setuptools.package-data]\n"
        + "".join(
            f'"{name}" = [{", ".join(chr(34) + g + chr(34) for g in globs)}]\n'
            for name, globs in package_data.items()
        )
    )
    text = text[:start] + tables + text[end:]
    if "known-first-party" not in text:
        text = text.replace(
            'ignore = ["RUF012", "E501"]\n',
            'ignore = ["RUF012", "E501"]\n\n[tool.ruff.lint.isort]\n'
            f'known-first-party = ["{NAMESPACE}", "infra"]\n',
            1,
        )
    return text


# The checkov adapter put the repository root on sys.path for the top-level names; it mounts
# the folders under the aifinops names instead (policies/checkov/finops_checkov_base.py).
CHECKOV_BASE = "policies/checkov/finops_checkov_base.py"
CHECKOV_ROOT_ON_PATH = """_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


"""

DEV_MYPY_OLD = ".venv/bin/mypy finops agents components policies infra bench scripts"
DEV_MYPY_NEW = (
    ".venv/bin/python tools/typecheck_tree.py && "
    "MYPYPATH=.typecheck .venv/bin/mypy .typecheck/aifinops infra bench scripts"
)


def candidates() -> list[Path]:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "-co", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    paths = []
    for name in filter(None, (item.decode() for item in listed)):
        if name.startswith(SKIP) or Path(name).suffix not in SUFFIXES:
            continue
        if (ROOT / name).is_file():
            paths.append(ROOT / name)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if needed")
    args = parser.parse_args(argv)
    changed: list[Path] = []
    for path in [*candidates(), ROOT / "dev"]:
        old = path.read_text(encoding="utf-8")
        if path.name == "pyproject.toml" and path.parent == ROOT:
            new = rewrite_pyproject(old)
        elif path.name == "dev" and path.parent == ROOT:
            new = old.replace(DEV_MYPY_OLD, DEV_MYPY_NEW)
        elif path.suffix == ".py":
            new = rewrite_python(old)
            if path.relative_to(ROOT).as_posix() == CHECKOV_BASE:
                new = new.replace(CHECKOV_ROOT_ON_PATH, "")
        else:
            new = rewrite_text(old)
        if new != old:
            changed.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for path in changed:
        print(f"{'would rewrite' if args.check else 'rewrote'} {path.relative_to(ROOT)}")
    if args.check:
        return 1 if changed else 0
    ruff = ROOT / ".venv" / "bin" / "ruff"
    python_files = [str(p) for p in changed if p.suffix == ".py"]
    if python_files and ruff.exists():
        # `import a; from b import c` on one line, and the new first-party order
        subprocess.run([str(ruff), "check", "-q", "--fix", "--select", "I,E702", *python_files],
                       cwd=ROOT, check=False)  # fmt: skip
        subprocess.run([str(ruff), "format", "-q", *python_files], cwd=ROOT, check=False)
    print(f"{len(changed)} file(s) rewritten", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
