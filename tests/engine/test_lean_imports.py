"""Offline runs import only the provider SDK modules a program uses, and every name resolves to
the object the SDK itself defines. Each check runs in a fresh interpreter: the test process has
long since imported whole SDKs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_gcp_and_azure_stack_loads_no_aws_sdk_and_a_sliver_of_each_sub_package():
    found = _python(
        "import json, sys\n"
        "from aifinops.engine.stack import run_stack\n"
        "run_stack('examples/Pulumi.multicloud.yaml')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    assert not [m for m in found if m.startswith(("pulumi_aws", "aifinops.components.aws"))]
    gcp_compute = [m for m in found if m.startswith("pulumi_gcp.compute.")]
    azure_network = [m for m in found if m.startswith("pulumi_azure_native.network.")]
    assert "pulumi_gcp.compute.instance_template" in gcp_compute
    assert "pulumi_azure_native.network.subnet" in azure_network
    # The SDK's own sub-package __init__ would load ~290 modules of each.
    assert len(gcp_compute) < 20, gcp_compute
    assert len(azure_network) < 20, azure_network


NAMES = [
    ("pulumi_gcp", "compute", "InstanceTemplate"),  # a resource -> instance_template
    ("pulumi_gcp", "compute", "InstanceTemplateArgs"),  # its args, same module
    ("pulumi_gcp", "compute", "InstanceTemplateDiskArgs"),  # nested args -> _inputs
    ("pulumi_gcp", "organizations", "get_project_output"),  # -> get_project
    ("pulumi_gcp", "organizations", "get_project"),  # the function, not the module
    ("pulumi_gcp", "projects", "IAMCustomRole"),  # acronyms -> iam_custom_role
    ("pulumi_gcp", "tpu", "V2Vm"),  # digits -> v2_vm
    ("pulumi_gcp", "compute", "outputs"),  # a sub-module
    ("pulumi_azure_native", "compute", "CachingTypes"),  # an enum -> _enums
    ("pulumi_aws", "cloudwatch", "EventRuleArgs"),
    ("pulumi_aws", "lambda_", "Function"),
]


def test_every_name_is_the_sdks_own_object_and_unknown_names_load_the_whole_package():
    found = _python(
        "import importlib, json, sys\n"
        "from aifinops.engine import lean_imports\n"
        "assert lean_imports.install()\n"
        f"names = {NAMES!r}\n"
        "lean = {}\n"
        "for provider, package, name in names:\n"
        "    sub = getattr(importlib.import_module(provider), package)\n"
        "    assert type(sub) is lean_imports.LeanPackage, (package, type(sub))\n"
        "    lean[(provider, package, name)] = getattr(sub, name)\n"
        "still_lean = type(sys.modules['pulumi_gcp.compute']) is lean_imports.LeanPackage\n"
        "full = {}\n"
        "for provider, package, name in names:\n"
        "    sub = getattr(importlib.import_module(provider), package)\n"
        "    dir(sub)  # everything, as the SDK's own __init__ loads it\n"
        "    full[(provider, package, name)] = getattr(sub, name)\n"
        "same = [all(lean[k] is full[k] for k in names)]\n"
        "sub = importlib.import_module('pulumi_gcp.pubsub')\n"
        "sub.Topic\n"
        "before = type(sub).__name__\n"
        "sub.SomethingNoModuleDefines if hasattr(sub, 'SomethingNoModuleDefines') else None\n"
        "print(json.dumps({'still_lean': still_lean, 'same': same[0], 'before': before,\n"
        "    'after': type(sub).__name__, 'callable': callable(lean[names[4]]),\n"
        "    'routers': 'pulumi_gcp.compute.router_peer' in sys.modules}))\n"
    )
    assert found["still_lean"]  # the names above did not need the whole sub-package
    assert found["same"]
    assert found["callable"]  # organizations.get_project is the function
    assert found["routers"]  # dir() loaded everything, as the SDK does
    assert (found["before"], found["after"]) == ("LeanPackage", "module")
