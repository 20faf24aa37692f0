"""The fetcher the boot script runs on a host (components/agent_fetch.py), held to the real
contracts: its S3 request carries the Signature Version 4 that botocore computes for the same
request; the metadata calls are the ones each cloud documents (IMDSv2 session token,
`Metadata-Flavor: Google`, Azure IMDS with the identity's client id); refused requests are
retried until a deadline. Run against a local stand-in for the metadata and storage servers."""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.error
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from aifinops.components import agent_fetch

NOW = dt.datetime(2026, 1, 15, 12, 30, 45, tzinfo=dt.UTC)
CREDENTIALS = {
    "AccessKeyId": "ASIAFINOPSTEST000001",
    "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFINOPSKEY",
    "Token": "IQoJb3JpZ2luX2VjEFINOPS//token==",
}


@pytest.mark.parametrize(
    "key", ["agent/finops-agent-0123456789abcdef.tar", "agent/with space+plus~tilde.tar"]
)
def test_s3_request_is_signed_exactly_as_botocore_signs_it(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = agent_fetch.aws_request("train-ckpt-abc", key, "eu-west-1", CREDENTIALS, NOW)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))
    theirs = AWSRequest(method="GET", url=ours.full_url)
    theirs.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(
        Credentials(
            CREDENTIALS["AccessKeyId"], CREDENTIALS["SecretAccessKey"], CREDENTIALS["Token"]
        ),
        "s3",
        "eu-west-1",
    ).add_auth(theirs)
    assert ours.full_url == (
        "https://train-ckpt-abc.s3.eu-west-1.amazonaws.com/" + urllib.parse.quote(key, safe="/~")
    )
    assert ours.get_method() == "GET"
    assert ours.headers["Authorization"] == theirs.headers["Authorization"]
    assert ours.headers["X-amz-date"] == theirs.headers["X-Amz-Date"]
    assert ours.headers["X-amz-security-token"] == theirs.headers["X-Amz-Security-Token"]
    assert ours.headers["X-amz-content-sha256"] == theirs.headers["X-Amz-Content-SHA256"]


def test_gcs_and_blob_requests_follow_the_documented_apis() -> None:
    gcs = agent_fetch.gcp_request("train-ckpt", "agent/finops-agent-x.tar", "ya29.token")
    assert gcs.full_url == (
        "https://storage.googleapis.com/storage/v1/b/train-ckpt/o/"
        "agent%2Ffinops-agent-x.tar?alt=media"
    )
    assert gcs.headers == {"Authorization": "Bearer ya29.token"}
    blob = agent_fetch.azure_request("fatrain01", "agent", "agent/finops-agent-x.tar", "eyJ0")
    assert blob.full_url == "https://fatrain01.blob.core.windows.net/agent/agent/finops-agent-x.tar"
    assert blob.headers["Authorization"] == "Bearer eyJ0"
    # OAuth on Blob Storage needs x-ms-version 2017-11-09 or later
    assert blob.headers["X-ms-version"] >= "2017-11-09"


class FakeCloud(BaseHTTPRequestHandler):
    """Metadata servers and object stores of the three clouds, strict about their headers."""

    payload = b"bundle bytes"
    refusals = 0
    seen: list[tuple[str, str, dict[str, str]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:
        FakeCloud.seen.append(("PUT", self.path, dict(self.headers)))
        if self.path == "/latest/api/token" and self.headers.get(
            "X-aws-ec2-metadata-token-ttl-seconds"
        ):
            self._send(200, b"imds-session")
        else:
            self._send(400, b"")

    def do_GET(self) -> None:
        FakeCloud.seen.append(("GET", self.path, dict(self.headers)))
        path = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(path.query)
        if path.path.startswith("/latest/meta-data/"):
            if self.headers.get("X-aws-ec2-metadata-token") != "imds-session":
                return self._send(401, b"")  # IMDSv2 only, as the fleets require
            answers = {
                "/latest/meta-data/iam/security-credentials/": b"train-instance-role\n",
                "/latest/meta-data/iam/security-credentials/train-instance-role": json.dumps(
                    CREDENTIALS
                ).encode(),
                "/latest/meta-data/placement/region": b"us-east-1",
            }
            return self._send(200, answers[path.path])
        if path.path == "/computeMetadata/v1/instance/service-accounts/default/token":
            if self.headers.get("Metadata-Flavor") != "Google":
                return self._send(403, b"")
            return self._send(200, json.dumps({"access_token": "ya29.gcp"}).encode())
        if path.path == "/metadata/identity/oauth2/token":
            if self.headers.get("Metadata") != "true" or query.get("client_id") != ["cid-1"]:
                return self._send(400, b"")
            assert query["resource"] == ["https://storage.azure.com/"]
            return self._send(200, json.dumps({"access_token": "eyJ.azure"}).encode())
        if FakeCloud.refusals:
            FakeCloud.refusals -= 1
            return self._send(403, b"role not yet propagated")
        return self._send(200, FakeCloud.payload)


@pytest.fixture
def cloud() -> Iterator[str]:
    FakeCloud.seen = []
    FakeCloud.refusals = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeCloud)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_aws_identity_uses_an_imdsv2_session(cloud: str, tmp_path: Path) -> None:
    credentials, region = agent_fetch.aws_identity(imds=cloud)
    assert credentials["AccessKeyId"] == CREDENTIALS["AccessKeyId"] and region == "us-east-1"
    request = agent_fetch.aws_request("b", "agent/x.tar", region, credentials, NOW, endpoint=cloud)
    dest = tmp_path / "bundle.tar"
    assert agent_fetch.download(request, str(dest)) == len(FakeCloud.payload)
    assert dest.read_bytes() == FakeCloud.payload and not Path(f"{dest}.part").exists()
    assert FakeCloud.seen[0][:2] == ("PUT", "/latest/api/token")


def test_gcp_and_azure_tokens_come_from_their_metadata_servers(cloud: str) -> None:
    assert agent_fetch.gcp_token(metadata=cloud) == "ya29.gcp"
    assert agent_fetch.azure_token("cid-1", imds=cloud) == "eyJ.azure"


def test_refusals_are_retried_until_the_role_reaches_storage(cloud: str, tmp_path: Path) -> None:
    FakeCloud.refusals = 2
    naps: list[float] = []
    request = agent_fetch.gcp_request("b", "agent/x.tar", "t", endpoint=cloud)
    size = agent_fetch.with_retries(
        lambda: agent_fetch.download(request, str(tmp_path / "b.tar")), sleep=naps.append
    )
    assert size == len(FakeCloud.payload) and naps == [5.0, 10.0]


def test_retries_stop_at_the_deadline(cloud: str, tmp_path: Path) -> None:
    FakeCloud.refusals = 1000
    clock = iter(range(0, 10_000, 50))
    request = agent_fetch.gcp_request("b", "agent/x.tar", "t", endpoint=cloud)
    with pytest.raises(urllib.error.HTTPError, match="403"):
        agent_fetch.with_retries(
            lambda: agent_fetch.download(request, str(tmp_path / "b.tar")),
            retry_seconds=200,
            sleep=lambda seconds: None,
            clock=lambda: float(next(clock)),
        )
    assert not (tmp_path / "b.tar").exists()


def test_wrong_arguments_are_a_usage_error() -> None:
    with pytest.raises(SystemExit, match=r"usage: agent_fetch\.py"):
        agent_fetch.fetch("aws", ["bucket-only"])
