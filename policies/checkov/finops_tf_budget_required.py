"""CKV_FINOPS_6 (Terraform): the `budget-required` policy."""

from finops_checkov_base import BUDGET_TERRAFORM, FinopsTerraformCheck

check = FinopsTerraformCheck("budget-required", "CKV_FINOPS_6", BUDGET_TERRAFORM)
