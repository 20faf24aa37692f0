"""checkov external checks: `checkov --external-checks-dir policies/checkov`.

checkov loads every `.py` file here as a top-level module named after the file, so file names
are unique and never those of real packages; `finops_checkov_base` holds the shared adapter.
"""
