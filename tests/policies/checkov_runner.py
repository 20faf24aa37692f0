"""Run checkov (its own virtualenv, as a program) and index its JSON results."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHECKS_DIR = ROOT / "policies" / "checkov"


def checkov_binary() -> Path:
    return Path(os.environ.get("FINOPS_CHECKOV") or ROOT / ".venv-checkov" / "bin" / "checkov")


def run_checkov(
    *args: str, check: str | None = None, env: dict[str, str] | None = None
) -> dict[tuple[str, str], tuple[str, list]]:
    """(check id, resource) -> (PASSED|FAILED, details) for every result of one checkov run."""
    return results_of(checkov_process(*args, check=check, env=env).stdout)


def checkov_process(
    *args: str, check: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One checkov run with JSON output and the finops checks; `env` is added to ours."""
    command = [str(checkov_binary()), *args, "-o", "json", "--skip-download"]
    command += ["--external-checks-dir", str(CHECKS_DIR)]
    if check:
        command += ["--check", check]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def results_of(stdout: str) -> dict[tuple[str, str], tuple[str, list]]:
    """checkov's JSON report indexed: (check id, resource) -> (PASSED|FAILED, details)."""
    reports: Any = json.loads(stdout)
    found: dict[tuple[str, str], tuple[str, list]] = {}
    for report in reports if isinstance(reports, list) else [reports]:
        results = report.get("results", {})
        for kind, verdict in (("passed_checks", "PASSED"), ("failed_checks", "FAILED")):
            for result in results.get(kind, []):
                found[(result["check_id"], result["resource"])] = (verdict, result.get("details"))
    return found
