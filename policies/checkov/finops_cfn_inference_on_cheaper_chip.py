"""CKV_FINOPS_5 (CloudFormation): the `inference-on-cheaper-chip` policy."""

from finops_checkov_base import COMPUTE_CLOUDFORMATION, FinopsCloudFormationCheck

check = FinopsCloudFormationCheck(
    "inference-on-cheaper-chip", "CKV_FINOPS_5", COMPUTE_CLOUDFORMATION
)
