"""The checkov adapter: one checkov check per policy and framework, calling the shared rules.

checkov runs these in its own virtualenv, where finops is not installed: the repository root
goes on `sys.path` so that `policies` and finops' standard-library core import from the
checkout. Verdicts: a finding -> FAILED (its message in the result's `details`); a rule that
cannot read a value (a `${var...}` reference, a CloudFormation `Ref`) -> UNKNOWN; else PASSED.
Thresholds come from the JSON file named by FINOPS_POLICY_CONFIG; the stack environment for
resources without an Environment tag from FINOPS_ENVIRONMENT (default: dev, the strictest).

The stack policies (every project has a budget, the cost stays under the ceiling) need every
resource at once, which a checkov check never sees: with FINOPS_INVENTORY set to a file, the
inventory checks (CKV_FINOPS_0, no verdict of their own) append each normalised, priced
resource to it as a JSON line, and `finops check` runs the stack policies over them.
"""

from __future__ import annotations

import json
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

from policies import pricing  # noqa: E402
from policies import settings as policy_settings  # noqa: E402
from policies.context import Context  # noqa: E402
from policies.model import Finding, Resource, to_record  # noqa: E402
from policies.normalize.cloudformation import CFN_TO_PULUMI, normalize_cloudformation  # noqa: E402
from policies.normalize.terraform import normalize_terraform  # noqa: E402
from policies.registry import BY_NAME, INVENTORY_CHECK_ID, Policy  # noqa: E402

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
INVENTORY_ENV = "FINOPS_INVENTORY"


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


class _FinopsCheck:
    """What every finops check declares to checkov: one policy, its ID and its resource types."""

    def __init__(self, policy_name: str, check_id: str, resources: tuple[str, ...]) -> None:
        self.policy = BY_NAME[policy_name]
        super().__init__(  # type: ignore[call-arg]  # the checkov base class is next in the MRO
            name=f"finops {policy_name}: {self.policy.description}",
            id=check_id,
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=resources,
            guideline=GUIDELINE,
        )


class FinopsTerraformCheck(_FinopsCheck, TerraformCheck):
    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.details: list[str] = []
        return verdict(self, self.policy, normalize_terraform(self.entity_type, conf))


class _NamedCloudFormationCheck(CloudFormationCheck):
    """checkov hands a CloudFormation check no logical ID; `run` has it, so keep it."""

    logical_name = ""

    def run(
        self,
        scanned_file: str,
        entity_configuration: dict[str, Any],
        entity_name: str,
        entity_type: str,
        skip_info: Any,
    ) -> Any:
        self.logical_name = f"{entity_type}.{entity_name}"
        return super().run(scanned_file, entity_configuration, entity_name, entity_type, skip_info)


class FinopsCloudFormationCheck(_FinopsCheck, _NamedCloudFormationCheck):
    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.details: list[str] = []
        resource = normalize_cloudformation(
            self.entity_type, conf.get("Properties") or {}, self.logical_name or self.entity_type
        )
        return verdict(self, self.policy, resource)


def record(resource: Resource | None) -> CheckResult:
    """Append the resource to the FINOPS_INVENTORY file (when set); never a verdict."""
    path = os.environ.get(INVENTORY_ENV)
    if path and resource is not None:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(to_record(pricing.priced(resource))) + "\n")
    return CheckResult.UNKNOWN


class TerraformInventory(TerraformCheck):
    def __init__(self) -> None:
        super().__init__(
            name="finops inventory: resources for the stack policies (FINOPS_INVENTORY)",
            id=INVENTORY_CHECK_ID,
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=ALL_TERRAFORM,
            guideline=GUIDELINE,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        return record(normalize_terraform(self.entity_type, conf))


class CloudFormationInventory(_NamedCloudFormationCheck):
    def __init__(self) -> None:
        super().__init__(
            name="finops inventory: resources for the stack policies (FINOPS_INVENTORY)",
            id=INVENTORY_CHECK_ID,
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=ALL_CLOUDFORMATION,
            guideline=GUIDELINE,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        properties = conf.get("Properties") or {}
        name = self.logical_name or self.entity_type
        return record(normalize_cloudformation(self.entity_type, properties, name))
