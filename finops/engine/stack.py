"""Run this project's Pulumi program (Pulumi.yaml `main:`) for a stack file, offline."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from aifinops import config as stack_config
from aifinops.engine import StackRun, run_program
from aifinops.errors import ConfigError


def find_project_dir(start: Path | None = None) -> Path:
    """The folder holding Pulumi.yaml: `start` or its parents, else this checkout's root."""
    candidates = []
    if start is not None:
        candidates += [start.resolve(), *start.resolve().parents]
    cwd = Path.cwd()
    candidates += [cwd, *cwd.parents, Path(__file__).resolve().parents[2]]
    for folder in candidates:
        if (folder / "Pulumi.yaml").is_file():
            return folder
    raise ConfigError(
        "Pulumi.yaml not found in the current folder or its parents; pass --project-dir"
    )


def program_dir(project_dir: Path) -> Path:
    """The program folder named by Pulumi.yaml `main:` (the project folder when absent)."""
    project_file = project_dir / "Pulumi.yaml"
    document = YAML(typ="safe").load(project_file.read_text()) or {}
    main = document.get("main") or "."
    return (project_dir / main).resolve()


def run_stack(
    stack: str, project_dir: Path | None = None
) -> tuple[Path, stack_config.StackConfig, StackRun]:
    """Validate `stack` (a name or a path to `Pulumi.<name>.yaml`) and run the program for it."""
    project = find_project_dir(project_dir)
    stack_file = stack_config.resolve_stack_file(stack, project)
    raw = stack_config.read_stack_file(stack_file)
    config = stack_config.parse(raw, source=str(stack_file))
    run = run_program(
        program_dir(project),
        stack=stack_config.stack_name_of(stack_file),
        raw_config=raw,
        regions=config.regions,
    )
    return stack_file, config, run
