"""Every `finops` command builds the whole parser, so each subcommand module's imports are paid
by all of them: a provider SDK imported at the top of one (preflight's AWS checks imported the
AWS components) made every preview start 75 MiB and about a second heavier."""

from __future__ import annotations

import json
import subprocess
import sys

PROVIDER_SDKS = ("pulumi_aws", "pulumi_aws_native", "pulumi_gcp", "pulumi_azure_native")


def test_building_the_parser_loads_no_provider_sdk():
    script = (
        "import json, sys\n"
        "from aifinops.cli import build_parser\n"
        "build_parser()\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert loaded.isdisjoint(PROVIDER_SDKS), sorted(loaded & set(PROVIDER_SDKS))
