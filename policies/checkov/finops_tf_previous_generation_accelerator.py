"""CKV_FINOPS_4 (Terraform): the `previous-generation-accelerator` policy."""

from finops_checkov_base import COMPUTE_TERRAFORM, FinopsTerraformCheck

check = FinopsTerraformCheck("previous-generation-accelerator", "CKV_FINOPS_4", COMPUTE_TERRAFORM)
