"""CKV_FINOPS_2 (CloudFormation): the `gpu-instance-oversized` policy."""

from finops_checkov_base import COMPUTE_CLOUDFORMATION, FinopsCloudFormationCheck

check = FinopsCloudFormationCheck("gpu-instance-oversized", "CKV_FINOPS_2", COMPUTE_CLOUDFORMATION)
