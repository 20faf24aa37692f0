"""A Pulumi stack exported as Terraform plan JSON: checkov's built-in checks and ours scan it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from checkov_runner import checkov_binary, run_checkov

from aifinops.engine.stack import run_stack
from aifinops.export.terraform_names import pulumi_type, terraform_type, to_terraform
from aifinops.export.tfplan import plan_document
from aifinops.policies import evaluate_stack
from aifinops.taggability import known_type

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "policies" / "untagged_p5"


def test_type_tokens_map_by_table_then_generic_rule() -> None:
    assert terraform_type("aws:ec2/launchTemplate:LaunchTemplate") == "aws_launch_template"
    assert terraform_type("aws:ec2/securityGroup:SecurityGroup") == "aws_security_group"
    assert terraform_type("aws:iam/rolePolicy:RolePolicy") == "aws_iam_role_policy"
    assert terraform_type("gcp:tpu/v2Vm:V2Vm") == "google_tpu_v2_vm"
    assert terraform_type("pulumi:providers:aws") is None
    assert pulumi_type("aws_iam_role_policy", known_type) == "aws:iam/rolePolicy:RolePolicy"
    assert pulumi_type("aws_security_group", known_type) == "aws:ec2/securityGroup:SecurityGroup"


def test_properties_snake_case_but_tag_keys_untouched() -> None:
    values = to_terraform(
        "aws_autoscaling_group",
        {
            "maxSize": 2,
            "mixedInstancesPolicy": {
                "launchTemplate": {"overrides": [{"instanceType": "g5.xlarge"}]}
            },
            "tags": [{"key": "ModelVersion", "value": "v1", "propagateAtLaunch": True}],
        },
    )
    assert values == {
        "max_size": 2,
        "mixed_instances_policy": [
            {"launch_template": [{"override": [{"instance_type": "g5.xlarge"}]}]}
        ],
        "tag": [{"key": "ModelVersion", "value": "v1", "propagate_at_launch": True}],
    }
    template = to_terraform("aws_launch_template", {"tags": {"ModelVersion": "v1"},
                                                    "metadataOptions": {"httpTokens": "required"}})  # fmt: skip
    assert template == {
        "tags": {"ModelVersion": "v1"},
        "metadata_options": [{"http_tokens": "required"}],
    }


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("plans")
    found = {}
    for label, stack, project in (
        ("dev", "dev", None),
        ("p5", str(FIXTURE / "Pulumi.dev.yaml"), FIXTURE),
    ):
        _, config, run = run_stack(stack, project)
        if label == "dev":
            assert evaluate_stack(run, config) == []  # the dev stack is the happy path
        path = folder / f"{label}.json"
        path.write_text(json.dumps(plan_document(run.resources, stack=run.stack)))
        found[label] = path
    return found


def test_plan_document_shape(plans: dict[str, Path]) -> None:
    document = json.loads(plans["p5"].read_text())
    assert document["format_version"] == "1.2"
    assert [r["address"] for r in document["planned_values"]["root_module"]["resources"]] == [
        "aws_launch_template.p5-template",
        "aws_autoscaling_group.p5-fleet",
    ]
    assert [c["change"]["actions"] for c in document["resource_changes"]] == [
        ["create"],
        ["create"],
    ]
    assert document["finops_skipped"] == []
    # references, as `terraform show -json` writes them, let checkov's graph join resources
    group = document["configuration"]["root_module"]["resources"][1]
    assert group["expressions"] == {
        "launch_template": [
            {
                "id": {
                    "references": [
                        "aws_launch_template.p5-template.id",
                        "aws_launch_template.p5-template",
                    ]
                }
            }
        ]
    }


@pytest.mark.skipif(not checkov_binary().exists(), reason="checkov's virtualenv is missing")
def test_checkov_builtin_and_finops_checks_scan_the_exported_stacks(plans: dict[str, Path]) -> None:
    results = run_checkov(
        "--framework", "terraform_plan", "-f", str(plans["dev"]), "-f", str(plans["p5"])
    )
    # checkov's own IMDSv2 check reads metadata_options.http_tokens from our export
    assert results[("CKV_AWS_79", "aws_launch_template.p5-template")][0] == "FAILED"
    assert (
        results[("CKV_AWS_79", "aws_launch_template.vision-train-launch-template")][0] == "PASSED"
    )
    # ours, on the same plan
    assert results[("CKV_FINOPS_2", "aws_launch_template.p5-template")] == (
        "FAILED",
        ["p5.48xlarge (8 x H100, $55.04/h) in dev: 8 accelerators > 1 allowed, H100 is not "
         "allowed, $55.04/h > $5.00/h"],
    )  # fmt: skip
    assert results[("CKV_FINOPS_1", "aws_autoscaling_group.p5-fleet")] == (
        "FAILED",
        ["tags: missing Project, Team, Environment"],
    )
    # graph checks see the bucket's separate public-access-block, lifecycle and encryption
    # resources, and the security group the launch template uses, through the references
    for check, resource in (
        ("CKV2_AWS_6", "aws_s3_bucket.vision-train-checkpoints"),
        ("CKV2_AWS_61", "aws_s3_bucket.vision-train-checkpoints"),
        ("CKV_AWS_300", "aws_s3_bucket_lifecycle_configuration.vision-train-checkpoints-lifecycle"),
        ("CKV2_AWS_5", "aws_security_group.vision-train-security-group"),
    ):
        assert results[(check, resource)][0] == "PASSED", (check, resource)
    dev_finops = {
        key: verdict
        for key, verdict in results.items()
        if key[0].startswith("CKV_FINOPS_") and ".vision-" in key[1]
    }
    assert dev_finops and {v[0] for v in dev_finops.values()} == {"PASSED"}
