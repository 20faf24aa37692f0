"""`finops audit` as a program against the `moto_server` program on 127.0.0.1: scan (JSON),
`--apply --yes`, then `--undo`, each a separate process, checked through boto3."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import audit_scenario
import pytest
from audit_scenario import session, state

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def moto_server(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("moto_server", path=str(BIN)) or shutil.which("moto_server")
    if binary is None:
        pytest.skip("moto_server not installed (pip install 'moto[server]')")
    port = _free_port()
    env = {**os.environ, "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}
    log = (tmp_path / "moto.log").open("w")
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log, env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("moto_server did not start: " + (tmp_path / "moto.log").read_text()[-2000:])
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def finops(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FINOPS_CATALOG_OVERLAY": "",
    }
    return subprocess.run(
        [str(BIN / "finops"), "audit", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_scan_apply_undo_against_moto_server(moto_server: str, tmp_path: Path) -> None:
    scenario = audit_scenario.build(endpoint_url=moto_server, checkpoint_size=1024)
    before = state(session(), moto_server)
    common = [
        "--endpoint-url",
        moto_server,
        "--now",
        str(scenario.now),
        "--checkpoint-bucket",
        "legacy-ckpt",
    ]

    scan = finops(*common, "--format", "json")
    assert scan.returncode == 0, scan.stderr
    report = json.loads(scan.stdout)
    waste = {(f["kind"], f["resource_id"]) for f in report["findings"] if f["status"] == "waste"}
    assert ("idle-gpu-instance", scenario.ids["idle"]) in waste
    assert ("unattached-volume", scenario.ids["gp3_volume"]) in waste
    assert ("idle-endpoint", "idle-ep") in waste
    assert ("expired-checkpoints", "s3://train-ckpt-abc/checkpoints/") in waste
    assert "audit: us-east-1: idle-gpu" in scan.stderr  # progress on stderr, report on stdout

    record = tmp_path / "record.json"
    applied = finops(*common, "--format", "markdown", "--apply", "--yes", "--record", str(record))
    assert applied.returncode == 0, applied.stderr
    assert "apply: 10 done, 0 failed, 0 declined" in applied.stderr
    middle = state(session(), moto_server)
    assert middle["instances"][scenario.ids["idle"]] == "stopped"
    assert middle["endpoints"]["idle-ep"] == {"main": 1}
    assert scenario.ids["gp3_volume"] not in middle["volumes"]

    undone = finops("--endpoint-url", moto_server, "--undo", str(record), "--yes")
    assert undone.returncode == 0, undone.stderr
    assert "undo: 8 reversed, 0 failed" in undone.stdout
    after = state(session(), moto_server)
    assert after["instances"] == before["instances"]
    assert after["endpoints"] == before["endpoints"]
    assert after["checkpoints"]["train-ckpt-abc"] == before["checkpoints"]["train-ckpt-abc"]
    assert len(after["volumes"]) == len(before["volumes"])
