"""CKV_FINOPS_0 (Terraform): the inventory for the stack policies; no verdict of its own."""

from finops_checkov_base import TerraformInventory

check = TerraformInventory()
