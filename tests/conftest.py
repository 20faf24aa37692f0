"""Suite-wide guards: tests never read a user's catalog overlay or real cloud credentials."""

from __future__ import annotations

import os

# Set before any test module imports the catalog: the shipped snapshot only.
os.environ["FINOPS_CATALOG_OVERLAY"] = ""
for _name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# moto loads its ~1,300 default AMIs (and their snapshots) into the first EC2 backend of a
# process and keeps them for later mock_aws() blocks, whatever those set: off for every test,
# so an account a test builds holds only what it builds (the audit counts snapshots).
os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
