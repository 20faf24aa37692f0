"""The agent's room: it imports nothing of the other rooms, and its modules form no circle."""

from __future__ import annotations

import ast
from pathlib import Path

AGENTS = Path(__file__).resolve().parents[2] / "agents"
ROOMS = ("finops", "components", "policies", "agents")


def room_of(module: str) -> str | None:
    """The room a module name belongs to, under the top-level names or the `aifinops`
    namespace (`aifinops.agents.x` is the agent's, any other `aifinops.x` the core's)."""
    parts = module.split(".")
    if parts[0] == "aifinops":
        return parts[1] if len(parts) > 1 and parts[1] in ROOMS[1:] else "finops"
    return parts[0] if parts[0] in ROOMS else None


def short(module: str) -> str:
    """A module of ours by its name under the four top-level names (the `aifinops.` prefix
    dropped), so the import graph reads the same before and after the rename."""
    return module.removeprefix("aifinops.")


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (lazy imports in functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {f"agents.{p.stem}": p for p in AGENTS.glob("*.py") if p.stem != "__init__"}
    return {
        name: {short(m) for m in imports_of(path) if short(m) in modules}
        for name, path in modules.items()
    }


def test_the_agent_imports_no_other_room() -> None:
    for path in AGENTS.glob("*.py"):
        foreign = {m for m in imports_of(path) if room_of(m) not in (None, "agents")}
        assert not foreign, f"{path.name} imports {sorted(foreign)}"


def test_agent_modules_import_each_other_without_a_circle() -> None:
    edges = graph()
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, "import circle: " + " -> ".join([*visiting, module])
        visiting.append(module)
        for dep in sorted(edges[module]):
            visit(dep)
        visiting.pop()
        done.add(module)

    for module in sorted(edges):
        visit(module)
