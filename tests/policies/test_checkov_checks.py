"""The finops checkov checks through checkov's own runner, in checkov's own virtualenv."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from checkov_runner import checkov_binary, checkov_process, results_of, run_checkov

from aifinops.policies.registry import POLICIES

pytestmark = pytest.mark.skipif(
    not checkov_binary().exists(), reason="checkov's virtualenv is missing: run ./dev setup"
)
CHECK_IDS = {p.name: p.checkov_id for p in POLICIES if p.checkov_id}
FIXTURES = "tests/fixtures/policies"


@pytest.fixture(scope="module")
def results() -> dict[tuple[str, str], tuple[str, list]]:
    return run_checkov("-d", FIXTURES, check=",".join(CHECK_IDS.values()))


def _policy_of(resource: str) -> tuple[str, str] | None:
    """'aws_instance.fail_gpu_instance_oversized_p5' -> ('FAILED', 'gpu-instance-oversized');
    'AWS::EC2::LaunchTemplate.PassRequiredTagsTemplate' -> ('PASSED', 'required-tags')."""
    name = resource.rsplit(".", 1)[-1]
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    for prefix, verdict in (("pass_", "PASSED"), ("fail_", "FAILED")):
        if snake.startswith(prefix):
            for policy in CHECK_IDS:
                if snake[len(prefix) :].startswith(policy.replace("-", "_")):
                    return verdict, policy
    return None


def test_every_pass_and_fail_fixture_gets_its_verdict(results) -> None:
    resources = {resource for _, resource in results}
    named = {r: found for r in resources if (found := _policy_of(r)) is not None}
    assert len(named) == 23  # every pass_*/fail_* fixture was scanned
    wrong = {}
    for resource, (expected, policy) in named.items():
        got = results.get((CHECK_IDS[policy], resource))
        if got is None or got[0] != expected:
            wrong[resource] = (expected, got)
    assert wrong == {}


def test_terraform_failures_carry_the_rule_messages(results) -> None:
    def details(check: str, resource: str) -> list:
        return results[(CHECK_IDS[check], resource)][1]

    assert details("required-tags", "aws_launch_template.fail_required_tags_no_volume_tags") == [
        "tags do not reach launched volumes (no tag specification)"
    ]
    assert details("required-tags", "aws_s3_bucket.fail_required_tags_bucket") == [
        "tags: missing Team, Environment"
    ]
    assert details("gpu-instance-oversized", "aws_instance.fail_gpu_instance_oversized_p5") == [
        "p5.48xlarge (8 x H100, $55.04/h) in dev: 8 accelerators > 1 allowed, H100 is not "
        "allowed, $55.04/h > $5.00/h"
    ]
    assert details(
        "gpu-instance-oversized", "aws_autoscaling_group.fail_gpu_instance_oversized_fleet"
    ) == ["fleet can scale to 16 x g5.xlarge = 16 accelerators > 4 allowed in dev"]
    assert details(
        "training-on-spot", "aws_autoscaling_group.fail_training_on_spot_on_demand_fleet"
    ) == [
        "100% of capacity above an on-demand base of 1 node is on demand; at most 20% allowed "
        "in dev"
    ]
    assert details(
        "imdsv2-required", "aws_launch_template.fail_imdsv2_required_optional_tokens"
    ) == [
        "metadata_options.http_tokens is 'optional', so IMDSv1 is allowed; set it to \"required\""
    ]
    assert details("budget-required", "aws_budgets_budget.fail_budget_required_service_only") == [
        "budget filters on something other than the Project tag, so it covers no project"
    ]


def test_resources_that_cannot_carry_tags_pass(results) -> None:
    mig = "google_compute_instance_group_manager.pass_required_tags_mig_cannot_carry_labels"
    assert results[(CHECK_IDS["required-tags"], mig)] == ("PASSED", [])


def test_cloudformation_parameter_is_unknown_not_a_verdict(results) -> None:
    resource = "AWS::EC2::LaunchTemplate.UnknownInstanceTypeFromParameter"
    assert (CHECK_IDS["gpu-instance-oversized"], resource) not in results  # UNKNOWN
    assert results[(CHECK_IDS["required-tags"], resource)][0] == "PASSED"


def test_checkov_resources_are_judged_as_terraform_reads_them() -> None:
    """checkov renders `false && true ? 1 : 0` as 1 and fills `var.tags` (no default) with an
    empty map; the finops checks place its resources in the configuration as Terraform reads
    it: the disabled module's p5 is not judged while the same block called by another module
    is, the merged tags are UNKNOWN (left out of checkov's report), not a failure. A
    CloudFormation resource whose properties checkov rebuilt (`!If`) is still found in its
    template and judged from the parameter defaults."""
    results = run_checkov(
        "-d", "tests/fixtures/policies/checkov_semantics",
        check=",".join((CHECK_IDS["required-tags"], CHECK_IDS["gpu-instance-oversized"])),
    )  # fmt: skip
    assert not [key for key in results if key[1].startswith(("module.disabled", "module.none"))]
    for check in ("required-tags", "gpu-instance-oversized"):
        assert results[(CHECK_IDS[check], "module.enabled.aws_instance.p5[0]")][0] == "FAILED"
    assert (CHECK_IDS["required-tags"], "aws_instance.merged_tags") not in results
    assert results[(CHECK_IDS["gpu-instance-oversized"], "AWS::EC2::Instance.Trainer")][0] == (
        "FAILED"
    )
    assert results[(CHECK_IDS["gpu-instance-oversized"], "aws_instance.merged_tags")] == (
        "PASSED", [],
    )  # fmt: skip


def test_without_python_hcl2_the_checks_say_so_once_and_judge_checkovs_reading(
    tmp_path: Path,
) -> None:
    """checkov's virtualenv holds its own `hcl2` (bc-python-hcl2); the reader's python-hcl2
    comes from a folder of its own. Without it the Terraform checks still run, on checkov's
    reading (which renders the disabled module's `false && true ? 1 : 0` as 1), and stderr
    says why, once."""
    done = checkov_process(
        "-d", "tests/fixtures/policies/checkov_semantics",
        check=CHECK_IDS["gpu-instance-oversized"],
        env={"FINOPS_PYTHON_HCL2": str(tmp_path)},
    )  # fmt: skip
    said = [line for line in done.stderr.splitlines() if line.startswith("finops checks:")]
    assert len(said) == 1 and f"needs python-hcl2 in {tmp_path}" in said[0]
    results = results_of(done.stdout)
    assert (
        results[(CHECK_IDS["gpu-instance-oversized"], "module.disabled.aws_instance.p5[0]")][0]
        == "FAILED"
    )
