"""CKV_FINOPS_6 (CloudFormation): the `budget-required` policy."""

from finops_checkov_base import FinopsCloudFormationCheck

check = FinopsCloudFormationCheck("budget-required", "CKV_FINOPS_6", ("AWS::Budgets::Budget",))
