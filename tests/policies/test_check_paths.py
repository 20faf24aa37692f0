"""`finops check PATHS`: UNKNOWN verdicts listed with reason and count, --fail-on-unknown, what
could not be read, and "nothing checked" as an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifinops.cli import main

UNREADABLE = """
variable "itype" {}
resource "aws_instance" "a" {
  instance_type = var.itype
  tags = { Project = "p", Team = "t", Environment = "dev", ModelVersion = "v1" }
  metadata_options { http_tokens = "required" }
}
resource "aws_instance" "b" {
  instance_type = var.itype
  tags = { Project = "p", Team = "t", Environment = "dev", ModelVersion = "v1" }
  metadata_options { http_tokens = "required" }
}
module "remote" { source = "terraform-aws-modules/eks/aws" }
resource "aws_budgets_budget" "account" {
  budget_type  = "COST"
  limit_amount = "100000"
  limit_unit   = "USD"
  time_unit    = "MONTHLY"
  tags         = { Project = "p", Team = "t", Environment = "dev" }
}
"""


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", "--no-stack", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unknown_verdicts_are_listed_with_reason_and_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "main.tf").write_text(UNREADABLE)
    code, out, _ = check(capsys, str(tmp_path))
    assert code == 0  # nothing mandatory failed...
    assert "**PASS**: no mandatory violations, 0 advisory, 4 UNKNOWN" in out  # ...but says so
    assert "- 2 x `gpu-instance-oversized`: instance type cannot be read" in out
    assert "- 2 x `imdsv2-required`: instance type or metadata options cannot be read" in out
    assert (
        f"| `gpu-instance-oversized` | `{tmp_path}/main.tf:3` | `aws_instance.a` | instance type "
        "cannot be read: instance_type = var.itype |"
    ) in out
    assert "### Not read: these were not checked" in out
    assert "module.remote: module source 'terraform-aws-modules/eks/aws' is not on disk" in out


def test_fail_on_unknown_makes_unknown_verdicts_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "main.tf").write_text(UNREADABLE)
    code, out, _ = check(capsys, "--fail-on-unknown", str(tmp_path))
    assert code == 1
    assert out.splitlines()[2].startswith("**FAIL**: 0 mandatory violations")


def test_nothing_checked_is_an_error_not_a_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "README.md").write_text("no infrastructure here\n")
    code, out, err = check(capsys, str(tmp_path))
    assert (code, out) == (2, "")
    assert err == (
        f"error: nothing checked in {tmp_path}: no .tf files, Terraform plan or CloudFormation "
        "template found; give a folder with Terraform root modules, a CloudFormation template "
        "or a plan JSON\n"
    )
    (tmp_path / "main.tf").write_text('resource "aws_instance" "x" {\n  count = 0\n}\n')
    code, _, err = check(capsys, str(tmp_path))
    assert code == 2 and "1 resource blocks create nothing" in err


def test_parse_errors_are_listed_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "main.tf").write_text('resource "aws_s3_bucket" "b" {}\n')
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "main.tf").write_text('resource "aws_instance" "x" {\n  a = \n}\n')
    code, out, _ = check(capsys, str(tmp_path))
    assert code == 1  # the bucket is untagged
    assert (
        f"| `{tmp_path}/bad/main.tf:2` | expected an expression, found the end of the line |"
    ) in out


def test_terraform_findings_give_terraform_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "main.tf").write_text('resource "aws_instance" "x" {\n'
                                      '  instance_type = "g5.xlarge"\n}\n')  # fmt: skip
    code, out, _ = check(capsys, str(tmp_path))
    assert code == 1
    row = next(line for line in out.splitlines() if "`required-tags`" in line)
    assert "To fix: add the keys to `tags`, or once for every resource to the provider's " in row
    assert "finops:tags" not in out


def test_a_missing_budget_is_asked_for_in_terraform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "main.tf").write_text(
        'resource "aws_s3_bucket" "b" {\n'
        '  tags = { Project = "vision", Team = "t", Environment = "dev" }\n}\n'
    )
    code, out, _ = check(capsys, str(tmp_path))
    row = next(line for line in out.splitlines() if "`budget-required`" in line)
    assert code == 1
    assert 'cost_filter { name = "TagKeyValue", values = ["user:Project$vision"] }' in row
    assert "finops:budgets" not in row
