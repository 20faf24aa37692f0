"""`str(output)` in a program: the real engine lets it through (the SDK logs a warning and the
resource gets the warning's text as its input), the offline engine refuses it at the line.

A GCP fleet given the stack's shared network (an Output) put "Calling __str__ on an Output[T]
is not supported..." in its instance templates' `network`; Azure and AWS fleets did the same
with a resource group, subnet or AMI id passed as an Output, as a user's own stack would."""

from __future__ import annotations

import os
from pathlib import Path

import pulumi_aws as aws
import pulumi_azure_native as azure_native
import pulumi_gcp as gcp
import pytest

from aifinops.components.aws import GpuTrainingFleet as AwsFleet
from aifinops.components.azure import GpuTrainingFleet as AzureFleet
from aifinops.components.gcp import GpuTrainingFleet as GcpFleet
from aifinops.engine import STRICT_OUTPUT_STRING, EngineError, run_program

REGIONS = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}
CONFIG = {"gcp:project": "finops-test", "gcp:region": "us-central1", "aws:region": "us-east-1"}


def test_str_of_an_output_fails_the_run_at_the_programs_line():
    def program() -> None:
        bucket = aws.s3.Bucket("data")
        aws.s3.BucketObject("marker", bucket=str(bucket.bucket), content="x")

    with pytest.raises(EngineError) as raised:
        run_program(program, "test", {}, REGIONS)
    message = str(raised.value)
    assert "calls str() on an Output" in message
    assert f"{Path(__file__)}:" in message  # the line of the program that did it


def test_the_strict_setting_is_the_runs_only(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(STRICT_OUTPUT_STRING, raising=False)
    run_program(lambda: aws.s3.Bucket("data"), "test", {}, REGIONS)
    assert STRICT_OUTPUT_STRING not in os.environ


def _inputs_text(run) -> str:
    return repr([r.inputs for r in run.resources])


def test_a_gcp_fleet_takes_its_network_as_an_output():
    def program() -> None:
        network = gcp.compute.Network("shared", auto_create_subnetworks=False)
        subnet = gcp.compute.Subnetwork(
            "shared", network=network.id, ip_cidr_range="10.8.0.0/20", region="us-central1"
        )
        GcpFleet(
            "train",
            {
                "model_version": "v1",
                "node_count": 1,
                "instance_type": "g2-standard-8",
                "region": "us-central1",
                "network": network.name,  # type: ignore[typeddict-item]
                "subnetwork": subnet.name,  # type: ignore[typeddict-item]
            },
        )

    run = run_program(program, "test", CONFIG, REGIONS)
    assert "Calling __str__" not in _inputs_text(run)


def test_an_azure_fleet_takes_its_group_and_subnet_as_outputs():
    def program() -> None:
        group = azure_native.resources.ResourceGroup("shared", location="eastus")
        AzureFleet(
            "train",
            {
                "model_version": "v1",
                "node_count": 1,
                "vm_size": "Standard_NC4as_T4_v3",
                "location": "eastus",
                "admin_ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyOnly test",
                "resource_group_name": group.name,  # type: ignore[typeddict-item]
                "subnet_id": group.id.apply(lambda g: f"{g}/subnets/x"),  # type: ignore[typeddict-item]
            },
        )

    run = run_program(program, "test", {}, REGIONS)
    assert "Calling __str__" not in _inputs_text(run)


def test_an_aws_fleet_takes_its_ami_as_an_output():
    def program() -> None:
        image = aws.ec2.Ami("golden", name="golden", virtualization_type="hvm")
        AwsFleet(
            "train",
            {
                "model_version": "v1",
                "accelerator": "A10G",
                "nodes_min": 0,
                "nodes_desired": 1,
                "nodes_max": 2,
                "tags": {"Project": "vision", "Team": "ml-platform", "Environment": "dev"},
                "ami_id": image.id,  # type: ignore[typeddict-item]
            },
        )

    run = run_program(program, "test", CONFIG, REGIONS)
    assert "Calling __str__" not in _inputs_text(run)
