"""CKV_FINOPS_4 (CloudFormation): the `previous-generation-accelerator` policy."""

from finops_checkov_base import COMPUTE_CLOUDFORMATION, FinopsCloudFormationCheck

check = FinopsCloudFormationCheck(
    "previous-generation-accelerator", "CKV_FINOPS_4", COMPUTE_CLOUDFORMATION
)
