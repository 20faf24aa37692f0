"""Lambda handlers the AWS components deploy. Each module is self-contained (standard library
and boto3 only): it is shipped to Lambda as a single file."""
