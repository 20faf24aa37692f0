"""checkov's Terraform and CloudFormation runners in one process, for bench/policies_bench.py.

Run with checkov's own interpreter (`.venv-checkov/bin/python`): it has checkov, not finops.
The finops checks are loaded once (`--external-checks-dir policies/checkov`); each scan sets
FINOPS_CHECKOV_ROOTS to the folder scanned and empties the checks' per-configuration caches,
so a repeated scan reads the configuration again, as a new checkov run would.

    .venv-checkov/bin/python bench/checkov_inprocess.py results FOLDER...
        -> JSON {folder: [[check id, resource, PASSED|FAILED], ...]}
    .venv-checkov/bin/python bench/checkov_inprocess.py time --repeat 6 FOLDER
        -> JSON {"seconds": [...], "cpu_seconds": [...], "resources": N} (one scan per
           repeat; the first is cold)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import time
from pathlib import Path
from typing import Any

from checkov.cloudformation.checks.resource.registry import cfn_registry
from checkov.cloudformation.runner import Runner as CloudFormationRunner
from checkov.runner_filter import RunnerFilter
from checkov.terraform.checks.resource.registry import resource_registry as tf_registry
from checkov.terraform.runner import Runner as TerraformRunner

CHECKS = str(Path(__file__).resolve().parents[1] / "policies" / "checkov")
CHECK_IDS = [f"CKV_FINOPS_{n}" for n in (1, 2, 3, 4, 5, 6, 8)]
_loaded = False


def _adapters() -> list[dict[str, Any]]:
    """The namespaces of the adapter module the loaded finops checks run in (checkov executes
    `finops_checkov_base.py` as a check file too, so there may be two copies)."""
    found: dict[int, dict[str, Any]] = {}
    for registry in (tf_registry, cfn_registry):
        for checks in registry.checks.values():
            for check in checks:
                if check.id.startswith("CKV_FINOPS_"):
                    namespace = type(check).scan_resource_conf.__globals__
                    found[id(namespace)] = namespace
    return list(found.values())


def scan(folder: str, frameworks: tuple[str, ...]) -> list[Any]:
    """One checkov scan of `folder` with only the finops checks: its reports."""
    global _loaded
    os.environ["FINOPS_CHECKOV_ROOTS"] = os.path.abspath(folder)
    for namespace in _adapters():
        namespace["_terraform"].cache_clear()
        namespace["_template"].cache_clear()
    external = None if _loaded else [CHECKS]
    _loaded = True
    reports = []
    for framework in frameworks:
        runner = TerraformRunner() if framework == "terraform" else CloudFormationRunner()
        flt = RunnerFilter(framework=[framework], checks=CHECK_IDS, show_progress_bar=False)
        found = runner.run(root_folder=folder, external_checks_dir=external, runner_filter=flt)
        reports += found if isinstance(found, list) else [found]
    return reports


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (checkov forks workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    logging.disable(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("results", "time"))
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--repeat", type=int, default=6)
    args = parser.parse_args()
    both = ("terraform", "cloudformation")
    if args.mode == "results":
        out: dict[str, list[list[str]]] = {}
        for folder in args.folders:
            rows = out.setdefault(folder, [])
            for report in scan(folder, both):
                for verdict, records in (("PASSED", report.passed_checks),
                                         ("FAILED", report.failed_checks)):  # fmt: skip
                    rows += [[r.check_id, r.resource, verdict] for r in records]
        print(json.dumps(out))
        return
    seconds, cpu_seconds, resources = [], [], 0
    for _ in range(args.repeat):
        started, cpu = time.perf_counter(), _cpu_s()
        reports = scan(args.folders[0], ("terraform",))
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(_cpu_s() - cpu)
        resources = sum(r.get_summary()["resource_count"] for r in reports)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "resources": resources}))


if __name__ == "__main__":
    main()
