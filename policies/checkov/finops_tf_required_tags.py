"""CKV_FINOPS_1 (Terraform): the `required-tags` policy."""

from finops_checkov_base import ALL_TERRAFORM, FinopsTerraformCheck

check = FinopsTerraformCheck("required-tags", "CKV_FINOPS_1", ALL_TERRAFORM)
