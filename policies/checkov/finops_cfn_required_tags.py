"""CKV_FINOPS_1 (CloudFormation): the `required-tags` policy."""

from finops_checkov_base import ALL_CLOUDFORMATION, FinopsCloudFormationCheck

check = FinopsCloudFormationCheck("required-tags", "CKV_FINOPS_1", ALL_CLOUDFORMATION)
