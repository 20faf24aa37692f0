"""The policies on whole stacks: `finops preview`, `finops check`, and the dev stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "policies" / "untagged_p5"


def finops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aifinops", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_preview_fails_an_untagged_p5_fleet_naming_resource_and_rule() -> None:
    done = finops(
        "preview",
        "--stack",
        str(FIXTURE / "Pulumi.dev.yaml"),
        "--project-dir",
        str(FIXTURE),
        "--format",
        "markdown",
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "6 mandatory policy violation(s): required-tags on p5-template; required-tags on "
        "p5-fleet; gpu-instance-oversized on p5-template; gpu-instance-oversized on p5-fleet; "
        "training-on-spot on p5-fleet; imdsv2-required on p5-template"
    )
    assert (
        "| mandatory | `gpu-instance-oversized` | `p5-fleet` | p5.48xlarge (8 x H100, "
        "$55.04/h) in dev: 8 accelerators > 1 allowed, H100 is not allowed, $55.04/h > "
        "$5.00/h; fleet can scale to 2 x p5.48xlarge = 16 accelerators > 4 allowed in dev |"
    ) in done.stdout.splitlines()


def test_check_runs_the_pack_and_the_paths_and_shows_the_cost_delta() -> None:
    done = finops(
        "check",
        "--stack",
        str(FIXTURE / "Pulumi.dev.yaml"),
        "--project-dir",
        str(FIXTURE),
        "--base-stack",
        str(FIXTURE / "Pulumi.base.yaml"),
        "tests/fixtures/policies/terraform",
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    # 6 on the stack, 13 on the Terraform fixtures, the Terraform cost ceiling
    assert lines[:3] == [
        "## finops check: stack `dev`",
        "",
        "**FAIL**: 20 mandatory violations, 2 advisory, 0 UNKNOWN (18 path resources checked).",
    ]
    assert (
        "| mandatory | `gpu-instance-oversized` | `tests/fixtures/policies/terraform/main.tf:84` | "
        "`aws_instance.fail_gpu_instance_oversized_p5` | p5.48xlarge (8 x H100, $55.04/h) in "
        "dev: 8 accelerators > 1 allowed, H100 is not allowed, $55.04/h > $5.00/h. To fix: "
        "choose a smaller instance type (`finops catalog cheapest ACCELERATOR COUNT`), lower "
        "the fleet's maximum size, or raise this environment's limit in the policy config "
        "(FINOPS_POLICY_CONFIG / --policy-config) |"
    ) in lines
    # the stack policies over every path resource: two budgets of $1,000 are the ceiling,
    # nine priced resources
    ceiling = next(line for line in lines if "`stack-cost-ceiling` | paths" in line)
    assert ceiling.startswith(
        "| mandatory | `stack-cost-ceiling` | paths | `(stack)` | estimated "
        "$96,437.01/month exceeds the budget of $2,000.00/month by $94,437.01; by resource: "
        "aws_instance.fail_gpu_instance_oversized_p5 $40,179.20, "
    )
    assert lines[4] == (
        f"**Monthly cost: $40,179.20** (base stack `{FIXTURE / 'Pulumi.base.yaml'}`: $0.00; "
        "**+40,179.20 USD/month**)"
    )
    assert "| `p5-fleet` | 0.00 | 40,179.20 | +40,179.20 |" in lines
    assert (
        "| mandatory | `imdsv2-required` | stack `dev` | `p5-template` | metadata httpTokens is "
        'not set, so IMDSv1 is allowed; set it to "required" |'
    ) in lines
    assert (
        "| mandatory | `required-tags` | stack `dev` | `p5-fleet` | tags: missing Project, Team, "
        "Environment |"
    ) in lines
    # from the whole run: the group's type is in its launch template
    assert (
        "| mandatory | `training-on-spot` | stack `dev` | `p5-fleet` | 100% of capacity above an "
        "on-demand base of 0 nodes is on demand; at most 20% allowed in dev |"
    ) in lines


def test_check_passes_when_thresholds_allow_it(tmp_path: Path) -> None:
    settings = tmp_path / "policies.json"
    settings.write_text(
        '{"required-tags": "disabled", "imdsv2-required": "advisory",'
        ' "gpu-instance-oversized": {"enforcementLevel": "advisory"}, "training-on-spot": "advisory"}'
    )
    done = finops(
        "check",
        "--stack",
        str(FIXTURE / "Pulumi.dev.yaml"),
        "--project-dir",
        str(FIXTURE),
        "--policy-config",
        str(settings),
    )
    assert done.returncode == 0, done.stderr
    assert "**PASS**: no mandatory violations, 4 advisory." in done.stdout
