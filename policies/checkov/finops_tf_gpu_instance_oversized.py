"""CKV_FINOPS_2 (Terraform): the `gpu-instance-oversized` policy."""

from finops_checkov_base import COMPUTE_TERRAFORM, FinopsTerraformCheck

check = FinopsTerraformCheck("gpu-instance-oversized", "CKV_FINOPS_2", COMPUTE_TERRAFORM)
