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


def run_checkov(*args: str, check: str | None = None) -> dict[tuple[str, str], tuple[str, list]]:
    """(check id, resource) -> (PASSED|FAILED, details) for every result of one checkov run."""
    command = [str(checkov_binary()), *args, "-o", "json", "--skip-download"]
    command += ["--external-checks-dir", str(CHECKS_DIR)]
    if check:
        command += ["--check", check]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed ({done.returncode}): {done.stderr[-2000:]}")
    reports: Any = json.loads(done.stdout)
    found: dict[tuple[str, str], tuple[str, list]] = {}
    for report in reports if isinstance(reports, list) else [reports]:
        results = report.get("results", {})
        for kind, verdict in (("passed_checks", "PASSED"), ("failed_checks", "FAILED")):
            for result in results.get(kind, []):
                found[(result["check_id"], result["resource"])] = (verdict, result.get("details"))
    return found
