"""The checkov adapter: one checkov check per policy and framework, calling the shared rules.

checkov runs these in its own virtualenv, where finops is not installed: the repository root
goes on `sys.path` so that `policies` and finops' standard-library core import from the
checkout. Verdicts: a finding -> FAILED (its message in the result's `details`); a rule that
cannot read a value (a `${var...}` reference, a CloudFormation `Ref`) -> UNKNOWN; else PASSED.
Thresholds come from the JSON file named by FINOPS_POLICY_CONFIG; the stack environment for
resources without an Environment tag from FINOPS_ENVIRONMENT (default: dev, the strictest).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from checkov.cloudformation.checks.resource.base_resource_check import (  # noqa: E402
    BaseResourceCheck as CloudFormationCheck,
)
from checkov.common.models.enums import CheckCategories, CheckResult  # noqa: E402
from checkov.terraform.checks.resource.base_resource_check import (  # noqa: E402
    BaseResourceCheck as TerraformCheck,
)

from policies import settings as policy_settings  # noqa: E402
from policies.context import Context  # noqa: E402
from policies.model import Finding, Resource  # noqa: E402
from policies.normalize.cloudformation import CFN_TO_PULUMI, normalize_cloudformation  # noqa: E402
from policies.normalize.terraform import normalize_terraform  # noqa: E402
from policies.registry import BY_NAME, Policy  # noqa: E402

GUIDELINE = "docs/policies.md in the finops repository"
ALL_TERRAFORM = ("aws_*", "google_*", "azurerm_*")
COMPUTE_TERRAFORM = (
    "aws_instance",
    "aws_launch_template",
    "aws_autoscaling_group",
    "aws_sagemaker_endpoint_configuration",
    "google_compute_instance",
    "google_compute_instance_template",
    "google_compute_region_instance_template",
    "google_tpu_v2_vm",
    "azurerm_linux_virtual_machine_scale_set",
)
BUDGET_TERRAFORM = (
    "aws_budgets_budget",
    "google_billing_budget",
    "azurerm_consumption_budget_subscription",
    "azurerm_consumption_budget_resource_group",
)
ALL_CLOUDFORMATION = tuple(CFN_TO_PULUMI)


def _context() -> Context:
    return Context(environment=os.environ.get("FINOPS_ENVIRONMENT", "dev"))


def verdict(check: Any, policy: Policy, resource: Resource | None) -> CheckResult:
    """Run the policy's rule on one resource; put finding messages in `check.details`."""
    if resource is None:
        return CheckResult.UNKNOWN
    config = policy_settings.from_env()[policy.name]
    findings: list[Finding]
    if policy.resource_rule is not None:
        findings = policy.resource_rule(resource, config, _context())
    else:
        findings = _budget_findings(policy, resource)
    definite = [f for f in findings if not f.unknown]
    check.details.extend(f.message for f in findings)
    if definite:
        return CheckResult.FAILED
    return CheckResult.UNKNOWN if findings else CheckResult.PASSED


def _budget_findings(policy: Policy, resource: Resource) -> list[Finding]:
    """`budget-required` on one budget: it must cover a project (or the whole account); which
    projects lack a budget is a stack question `finops check` answers."""
    if "budget_projects" in resource.unknown:
        return [Finding(policy.name, resource.name, "budget filter unknown", resource.urn, True)]
    if resource.budget_projects is None:
        return [
            Finding(
                policy.name,
                resource.name,
                "budget filters on something other than the Project tag, so it covers no project",
                resource.urn,
            )
        ]
    return []


class FinopsTerraformCheck(TerraformCheck):
    def __init__(self, policy_name: str, check_id: str, resources: tuple[str, ...]) -> None:
        self.policy = BY_NAME[policy_name]
        super().__init__(
            name=f"finops {policy_name}: {self.policy.description}",
            id=check_id,
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=resources,
            guideline=GUIDELINE,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.details: list[str] = []
        return verdict(self, self.policy, normalize_terraform(self.entity_type, conf))


class FinopsCloudFormationCheck(CloudFormationCheck):
    def __init__(self, policy_name: str, check_id: str, resources: tuple[str, ...]) -> None:
        self.policy = BY_NAME[policy_name]
        super().__init__(
            name=f"finops {policy_name}: {self.policy.description}",
            id=check_id,
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=resources,
            guideline=GUIDELINE,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.details: list[str] = []
        resource = normalize_cloudformation(
            self.entity_type, conf.get("Properties") or {}, self.entity_type
        )
        return verdict(self, self.policy, resource)
