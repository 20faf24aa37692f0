"""The agent reaches every cloud's fleet as the stack's own, hash-verified artefact.

For the AWS, GCP and Azure fleets under the offline engine: the bundle the program built is
uploaded to the fleet's own bucket (S3 object, GCS object, Blob), the boot script names that
object and the sha256 of that very file, installs nothing but the bundle's wheels
(`--no-index --require-hashes`), and the nodes' identity may read exactly that object.

Then the install step of the generated AWS boot script really runs: in a temporary directory,
with a fetch that copies the uploaded file, it installs the agent into a venv from the bundle
(built offline from this checkout and the cached, lock-verified dependency wheels), and the
installed `finops-agent` validates the config the script writes; a bundle whose bytes differ
from the stack's sha256 is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest

from aifinops.components.agent_bootstrap import INSTALL_BEGIN, INSTALL_END
from aifinops.components.aws import GpuTrainingFleet as AwsFleet
from aifinops.components.azure import GpuTrainingFleet as AzureFleet
from aifinops.components.azure.training_fleet import BLOB_READ_ACTION, BLOB_READER_ROLE
from aifinops.components.gcp import GpuTrainingFleet as GcpFleet
from aifinops.engine import EngineResource, StackRun, run_program

TAGS = {"Project": "vision", "Team": "ml-platform", "Environment": "dev"}
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyForTheOfflineEngine test"


def run(body: Any, config: dict[str, str], regions: dict[str, str]) -> StackRun:
    def program() -> None:
        body()

    return run_program(program, "test", config, regions)


def one(run: StackRun, type_token: str, name: str | None = None) -> EngineResource:
    found = [r for r in run.of_type(type_token) if name is None or r.name == name]
    assert len(found) == 1, [r.name for r in found]
    return found[0]


@pytest.fixture(scope="module")
def aws() -> StackRun:
    return run(
        lambda: AwsFleet(
            "train",
            {"accelerator": "A10G", "nodes_max": 2, "model_version": "v1", "tags": TAGS},
        ),
        {"aws:region": "us-east-1"},
        {"aws": "us-east-1"},
    )


@pytest.fixture(scope="module")
def gcp() -> StackRun:
    return run(
        lambda: GcpFleet(
            "train",
            {"accelerator": "L4", "node_count": 1, "model_version": "v1", "tags": TAGS},
        ),
        {"gcp:project": "finops-test", "gcp:region": "us-central1"},
        {"gcp": "us-central1"},
    )


@pytest.fixture(scope="module")
def azure() -> StackRun:
    return run(
        lambda: AzureFleet(
            "train",
            {
                "accelerator": "T4",
                "node_count": 1,
                "model_version": "v1",
                "admin_ssh_public_key": SSH_KEY,
                "tags": TAGS,
            },
        ),
        {"azure-native:location": "eastus"},
        {"azure": "eastus"},
    )


def aws_script(run: StackRun) -> str:
    template = one(run, "aws:ec2/launchTemplate:LaunchTemplate")
    return base64.b64decode(template.inputs["userData"]).decode()


def gcp_script(run: StackRun) -> str:
    scripts = {
        t.inputs["metadataStartupScript"]
        for t in run.of_type("gcp:compute/instanceTemplate:InstanceTemplate")
    }
    assert len(scripts) == 1
    return scripts.pop()


def azure_script(run: StackRun) -> str:
    scale_set = one(run, "azure-native:compute:VirtualMachineScaleSet")
    return base64.b64decode(
        scale_set.inputs["virtualMachineProfile"]["osProfile"]["customData"]
    ).decode()


def sha256_of(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fetch_arguments(script: str) -> list[str]:
    match = re.search(r'finops_fetch\(\) \{ "\$PY" \S+agent_fetch\.py (.*) "\$1"; \}', script)
    assert match, script
    return match.group(1).split()


def assert_installs_only_the_verified_bundle(script: str, uploaded: str) -> None:
    installs = [line for line in script.splitlines() if re.search(r'pip"? install', line)]
    assert installs, script
    for line in installs:
        assert "--no-index" in line and "--require-hashes" in line, line
    assert f"local sha={sha256_of(uploaded)}" in script


def test_aws_boot_script_installs_the_bundle_in_the_fleets_bucket(aws: StackRun) -> None:
    obj = one(aws, "aws:s3/bucketObjectv2:BucketObjectv2")
    bucket = one(aws, "aws:s3/bucket:Bucket")
    script = aws_script(aws)
    assert_installs_only_the_verified_bundle(script, obj.inputs["source"]["path"])
    assert obj.inputs["bucket"] == bucket.id
    assert fetch_arguments(script) == ["aws", bucket.outputs["bucket"], obj.inputs["key"]]
    policy = json.loads(
        one(aws, "aws:iam/rolePolicy:RolePolicy", "train-instance-policy").inputs["policy"]
    )
    reads = [
        s
        for s in policy["Statement"]
        if "s3:GetObject" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    agent = [s for s in reads if "agent/" in s["Resource"]]
    assert agent == [
        {
            "Sid": "AgentBundle",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{bucket.outputs['arn']}/{obj.inputs['key']}",
        }
    ]
    # the checkpoint grant does not reach the bundle's prefix
    assert all(s["Resource"].endswith("/checkpoints/*") for s in reads if s not in agent)


def test_gcp_startup_script_installs_the_bundle_in_the_fleets_bucket(gcp: StackRun) -> None:
    obj = one(gcp, "gcp:storage/bucketObject:BucketObject", "train-agent-bundle")
    bucket = one(gcp, "gcp:storage/bucket:Bucket", "train-checkpoints")
    script = gcp_script(gcp)
    assert_installs_only_the_verified_bundle(script, obj.inputs["source"]["path"])
    assert fetch_arguments(script) == ["gcp", bucket.outputs["name"], obj.inputs["name"]]
    bindings = {
        r.name: r.inputs for r in gcp.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    }
    read = bindings["train-agent-read"]
    assert read["role"] == "roles/storage.objectViewer"
    assert read["condition"]["expression"] == (
        f'resource.name == "projects/_/buckets/{bucket.outputs["name"]}/objects/'
        f'{obj.inputs["name"]}"'
    )
    checkpoints = bindings["train-checkpoint-access"]["condition"]["expression"]
    assert "objects/checkpoints/" in checkpoints and "agent/" not in checkpoints


def test_azure_custom_data_installs_the_bundle_in_the_fleets_storage(azure: StackRun) -> None:
    blob = one(azure, "azure-native:storage:Blob")
    account = one(azure, "azure-native:storage:StorageAccount")
    container = one(azure, "azure-native:storage:BlobContainer")
    identity = one(azure, "azure-native:managedidentity:UserAssignedIdentity")
    script = azure_script(azure)
    assert_installs_only_the_verified_bundle(script, blob.inputs["source"]["path"])
    assert fetch_arguments(script) == [
        "azure",
        account.inputs["accountName"],
        container.inputs["containerName"],
        blob.inputs["blobName"],
        identity.outputs["clientId"],
    ]
    grant = one(azure, "azure-native:authorization:RoleAssignment").inputs
    assert grant["roleDefinitionId"].endswith(f"/roleDefinitions/{BLOB_READER_ROLE}")
    assert grant["scope"] == container.id
    assert grant["principalId"] == identity.outputs["principalId"]
    assert grant["conditionVersion"] == "2.0"
    assert f"ActionMatches{{'{BLOB_READ_ACTION}'}}" in grant["condition"]
    assert f"StringEquals '{blob.inputs['blobName']}'" in grant["condition"]
    scale_set = one(azure, "azure-native:compute:VirtualMachineScaleSet").inputs
    assert scale_set["identity"]["userAssignedIdentities"] == [identity.id]


def test_azure_storage_account_name_follows_azure_rules(azure: StackRun) -> None:
    name = one(azure, "azure-native:storage:StorageAccount").inputs["accountName"]
    assert re.fullmatch(r"[a-z0-9]{3,24}", name), name


# --- the install step, run ----------------------------------------------------------------
def install_step(script: str) -> str:
    step = script.split(INSTALL_BEGIN, 1)[1].split(INSTALL_END, 1)[0]
    return INSTALL_BEGIN + step + INSTALL_END + "\n"


def config_of(script: str) -> str:
    match = re.search(r"<<'FINOPS_AGENT_TOML'\n(.*?\n)FINOPS_AGENT_TOML\n", script, re.S)
    assert match
    return match.group(1)


def run_step(tmp: Path, script: str, fetched: Path, then: str = "") -> subprocess.CompletedProcess:
    """The script's install step with a fetch that copies `fetched`, in `tmp`."""
    harness = (
        "set -euo pipefail\n"
        f"FINOPS_VENV={tmp}/venv\n"
        f"FINOPS_DIST={tmp}/dist\n"
        f"PY={sys.executable}\n"
        'mkdir -p "$FINOPS_DIST"\n'
        f'finops_fetch() {{ cp {fetched} "$1"; }}\n'
        + install_step(script)
        + "finops_install_agent\n"
        + then
    )
    return subprocess.run(["bash", "-c", harness], capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_install_step_installs_the_agent_from_the_bundle_and_it_checks_its_config(
    aws: StackRun, tmp_path: Path
) -> None:
    script = aws_script(aws)
    uploaded = Path(one(aws, "aws:s3/bucketObjectv2:BucketObjectv2").inputs["source"]["path"])
    (tmp_path / "finops-agent.toml").write_text(config_of(script))
    done = run_step(
        tmp_path,
        script,
        uploaded,
        then=(
            f'"$FINOPS_VENV/bin/finops-agent" --help >/dev/null\n'
            f'"$FINOPS_VENV/bin/finops-agent" --config {tmp_path}/finops-agent.toml --check\n'
        ),
    )
    assert done.returncode == 0, done.stderr
    checked = json.loads(done.stdout)
    assert checked["metadata"]["provider"] == "aws"
    assert checked["tags"]["finops:fleet"] == "train"
    installed = subprocess.run(
        [str(tmp_path / "venv/bin/python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {p["name"].lower().replace("_", "-") for p in json.loads(installed.stdout)}
    assert {"aifinops", "botocore", "nvidia-ml-py", "prometheus-client"} <= names
    # a second boot finds the bundle installed and fetches nothing
    again = run_step(tmp_path, script, tmp_path / "does-not-exist.tar")
    assert again.returncode == 0, again.stderr


def test_install_step_refuses_a_bundle_that_is_not_the_stacks(
    aws: StackRun, tmp_path: Path
) -> None:
    script = aws_script(aws)
    uploaded = Path(one(aws, "aws:s3/bucketObjectv2:BucketObjectv2").inputs["source"]["path"])
    tampered = tmp_path / "tampered.tar"
    shutil.copy(uploaded, tampered)
    with tampered.open("ab") as handle:
        handle.write(b"\0")
    refused = run_step(tmp_path, script, tampered)
    assert refused.returncode == 1
    assert "does not have the sha256 the stack built" in refused.stderr
    assert "refusing to install it" in refused.stderr
    assert not (tmp_path / "venv").exists()
    assert not list((tmp_path / "dist").glob("*.tar"))


def test_preview_pulumi_assets_are_recorded_with_their_path(aws: StackRun) -> None:
    source = one(aws, "aws:s3/bucketObjectv2:BucketObjectv2").inputs["source"]
    assert source["asset"] == "FileAsset" and Path(source["path"]).is_file()
    assert pulumi.FileAsset  # the engine renders pulumi.FileAsset as {"asset", "path"}
