"""Fetch the finops agent bundle from the fleet's own bucket with the instance's own identity.

This file runs on the fleet's hosts, before the agent is installed: the boot script
(components/agent_bootstrap.py) writes it out verbatim and runs it with the host's Python, so
it uses the standard library only. It downloads one object to a file; checking the bundle's
sha256 is the boot script's job, not this file's (a fetcher that could be fooled cannot vouch
for what it fetched).

- aws: IMDSv2 session token -> the instance role's temporary credentials -> an S3 GetObject
  signed with Signature Version 4 (the signature botocore's `S3SigV4Auth` computes).
- gcp: the VM service account's access token from the metadata server -> the Cloud Storage
  JSON API (`storage/v1/b/<bucket>/o/<object>?alt=media`).
- azure: a token for `https://storage.azure.com/` from IMDS for the fleet's user-assigned
  managed identity -> Blob Storage Get Blob (OAuth needs `x-ms-version` 2017-11-09 or later).

A freshly created role, role binding or role assignment can take minutes to reach the
storage service, so a refused or failed request is retried for `RETRY_SECONDS`.

    python3 agent_fetch.py aws   BUCKET KEY DEST
    python3 agent_fetch.py gcp   BUCKET OBJECT DEST
    python3 agent_fetch.py azure ACCOUNT CONTAINER BLOB CLIENT_ID DEST
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

AWS_IMDS = "http://169.254.169.254"
GCP_METADATA = "http://metadata.google.internal"
AZURE_IMDS = "http://169.254.169.254"
AZURE_STORAGE_RESOURCE = "https://storage.azure.com/"
AZURE_STORAGE_VERSION = "2021-08-06"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
TIMEOUT_SECONDS = 30
RETRY_SECONDS = 900
CHUNK_BYTES = 1 << 20


def _get(request: urllib.request.Request) -> bytes:
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        return bytes(response.read())


# --- AWS ----------------------------------------------------------------------------------
def aws_identity(imds: str = AWS_IMDS) -> tuple[dict[str, str], str]:
    """The instance role's credentials (AccessKeyId, SecretAccessKey, Token) and the region,
    through IMDSv2 (the fleets require session tokens)."""
    token = _get(
        urllib.request.Request(
            f"{imds}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"},
        )
    ).decode()
    headers = {"X-aws-ec2-metadata-token": token}
    base = f"{imds}/latest/meta-data"
    role = (
        _get(urllib.request.Request(f"{base}/iam/security-credentials/", headers=headers))
        .decode()
        .split()[0]
    )
    credentials = json.loads(
        _get(urllib.request.Request(f"{base}/iam/security-credentials/{role}", headers=headers))
    )
    region = _get(urllib.request.Request(f"{base}/placement/region", headers=headers)).decode()
    return credentials, region.strip()


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def aws_request(
    bucket: str,
    key: str,
    region: str,
    credentials: dict[str, str],
    now: dt.datetime,
    endpoint: str | None = None,
) -> urllib.request.Request:
    """A SigV4-signed S3 GetObject of `key` (virtual-hosted style, unsigned payload)."""
    host = f"{bucket}.s3.{region}.amazonaws.com"
    path = "/" + urllib.parse.quote(key, safe="/~")
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    headers = {
        "host": host,
        "x-amz-content-sha256": UNSIGNED_PAYLOAD,
        "x-amz-date": stamp,
    }
    if credentials.get("Token"):
        headers["x-amz-security-token"] = credentials["Token"]
    signed = sorted(headers)
    canonical = "\n".join(
        [
            "GET",
            path,
            "",
            "".join(f"{name}:{headers[name].strip()}\n" for name in signed),
            ";".join(signed),
            UNSIGNED_PAYLOAD,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    signing_key = _sign(
        _sign(_sign(_sign(f"AWS4{credentials['SecretAccessKey']}".encode(), day), region), "s3"),
        "aws4_request",
    )
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials['AccessKeyId']}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    url = f"{endpoint or 'https://' + host}{path}"
    return urllib.request.Request(url, headers=headers)


# --- GCP ----------------------------------------------------------------------------------
def gcp_token(metadata: str = GCP_METADATA) -> str:
    """An access token of the VM's service account."""
    answer = _get(
        urllib.request.Request(
            f"{metadata}/computeMetadata/v1/instance/service-accounts/default/token",
            headers={"Metadata-Flavor": "Google"},
        )
    )
    return str(json.loads(answer)["access_token"])


def gcp_request(
    bucket: str, name: str, token: str, endpoint: str = "https://storage.googleapis.com"
) -> urllib.request.Request:
    """Cloud Storage JSON API media download of one object."""
    obj = urllib.parse.quote(name, safe="")
    return urllib.request.Request(
        f"{endpoint}/storage/v1/b/{bucket}/o/{obj}?alt=media",
        headers={"Authorization": f"Bearer {token}"},
    )


# --- Azure --------------------------------------------------------------------------------
def azure_token(client_id: str, imds: str = AZURE_IMDS) -> str:
    """A Blob Storage token of the user-assigned managed identity `client_id`."""
    query = urllib.parse.urlencode(
        {"api-version": "2018-02-01", "resource": AZURE_STORAGE_RESOURCE, "client_id": client_id}
    )
    answer = _get(
        urllib.request.Request(
            f"{imds}/metadata/identity/oauth2/token?{query}", headers={"Metadata": "true"}
        )
    )
    return str(json.loads(answer)["access_token"])


def azure_request(
    account: str, container: str, blob: str, token: str, endpoint: str | None = None
) -> urllib.request.Request:
    """Blob Storage Get Blob with an OAuth bearer token."""
    path = f"/{container}/{urllib.parse.quote(blob, safe='/')}"
    return urllib.request.Request(
        f"{endpoint or f'https://{account}.blob.core.windows.net'}{path}",
        headers={"Authorization": f"Bearer {token}", "x-ms-version": AZURE_STORAGE_VERSION},
    )


# --- download -----------------------------------------------------------------------------
def download(request: urllib.request.Request, dest: str) -> int:
    """Stream the response body to `dest` (through `dest.part`); the bytes written."""
    part = dest + ".part"
    written = 0
    with (
        urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response,
        open(part, "wb") as out,
    ):
        while chunk := response.read(CHUNK_BYTES):
            out.write(chunk)
            written += len(chunk)
    os.replace(part, dest)
    return written


def with_retries(
    attempt: Callable[[], int],
    retry_seconds: float = RETRY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run `attempt` until it succeeds or `retry_seconds` have passed (backoff up to 60 s)."""
    deadline = clock() + retry_seconds
    delay = 5.0
    while True:
        try:
            return attempt()
        except (urllib.error.URLError, OSError, KeyError, ValueError, IndexError) as exc:
            if clock() + delay > deadline:
                raise
            print(f"finops-agent fetch: {exc}; retrying in {delay:.0f} s", file=sys.stderr)
            sleep(delay)
            delay = min(delay * 2, 60.0)


def fetch(cloud: str, args: list[str]) -> int:
    """Download the bundle the arguments name (see the module docstring) to the last one."""
    if cloud == "aws" and len(args) == 3:
        bucket, key, dest = args

        def attempt() -> int:
            credentials, region = aws_identity()
            now = dt.datetime.now(dt.UTC)
            return download(aws_request(bucket, key, region, credentials, now), dest)

    elif cloud == "gcp" and len(args) == 3:
        bucket, name, dest = args

        def attempt() -> int:
            return download(gcp_request(bucket, name, gcp_token()), dest)

    elif cloud == "azure" and len(args) == 5:
        account, container, blob, client_id, dest = args

        def attempt() -> int:
            return download(azure_request(account, container, blob, azure_token(client_id)), dest)

    else:
        raise SystemExit(f"usage: agent_fetch.py aws|gcp|azure ... DEST (got {cloud} {args})")
    return with_retries(attempt)


if __name__ == "__main__":
    size = fetch(sys.argv[1] if len(sys.argv) > 1 else "", sys.argv[2:])
    print(f"finops-agent fetch: {size} bytes", file=sys.stderr)
