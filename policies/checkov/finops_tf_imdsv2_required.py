"""CKV_FINOPS_8 (Terraform): the `imdsv2-required` policy."""

from finops_checkov_base import COMPUTE_TERRAFORM, FinopsTerraformCheck

check = FinopsTerraformCheck("imdsv2-required", "CKV_FINOPS_8", COMPUTE_TERRAFORM)
