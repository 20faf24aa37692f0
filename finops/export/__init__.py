"""Exports of an offline stack run for other tools (Terraform plan JSON for checkov)."""
