"""CKV_FINOPS_8 (CloudFormation): the `imdsv2-required` policy."""

from finops_checkov_base import COMPUTE_CLOUDFORMATION, FinopsCloudFormationCheck

check = FinopsCloudFormationCheck("imdsv2-required", "CKV_FINOPS_8", COMPUTE_CLOUDFORMATION)
