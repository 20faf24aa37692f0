"""CKV_FINOPS_8 (CloudFormation): the `imdsv2-required` policy."""

from finops_checkov_base import ALL_CLOUDFORMATION, FinopsCloudFormationCheck

check = FinopsCloudFormationCheck("imdsv2-required", "CKV_FINOPS_8", ALL_CLOUDFORMATION)
