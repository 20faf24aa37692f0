"""CKV_FINOPS_3 (Terraform): the `training-on-spot` policy."""

from finops_checkov_base import COMPUTE_TERRAFORM, FinopsTerraformCheck

check = FinopsTerraformCheck("training-on-spot", "CKV_FINOPS_3", COMPUTE_TERRAFORM)
