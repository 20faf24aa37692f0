"""CKV_FINOPS_5 (Terraform): the `inference-on-cheaper-chip` policy."""

from finops_checkov_base import COMPUTE_TERRAFORM, FinopsTerraformCheck

check = FinopsTerraformCheck("inference-on-cheaper-chip", "CKV_FINOPS_5", COMPUTE_TERRAFORM)
