"""CKV_FINOPS_3 (CloudFormation): the `training-on-spot` policy."""

from finops_checkov_base import COMPUTE_CLOUDFORMATION, FinopsCloudFormationCheck

check = FinopsCloudFormationCheck("training-on-spot", "CKV_FINOPS_3", COMPUTE_CLOUDFORMATION)
