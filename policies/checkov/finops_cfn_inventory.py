"""CKV_FINOPS_0 (CloudFormation): the inventory for the stack policies; no verdict of its own."""

from finops_checkov_base import CloudFormationInventory

check = CloudFormationInventory()
