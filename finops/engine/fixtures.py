"""Offline answers to the data-source calls (invokes) programs make, kept in one place.

Values are plausible and deterministic: the same stack always previews the same. An invoke
with no answer here is an error that names the token, so a component that starts calling a new
data source fails loudly in tests instead of receiving an empty result.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any

ACCOUNT_ID = "123456789012"
GCP_PROJECT = "finops-offline"
AZURE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
AZURE_TENANT = "11111111-1111-1111-1111-111111111111"

Invoke = Callable[[Mapping[str, Any], Mapping[str, str]], dict[str, Any]]
# azure-native resources whose `name` output is an input the program sets (not auto-named)
AZURE_NAME_INPUT = {
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:storage:Blob": "blobName",
}


def _region(args: Mapping[str, Any], regions: Mapping[str, str]) -> str:
    return str(args.get("region") or regions.get("aws") or "us-east-1")


def _ami(args: Mapping[str, Any], regions: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": "ami-0f1e2d3c4b5a69780",
        "imageId": "ami-0f1e2d3c4b5a69780",
        "architecture": "x86_64",
        "name": "Deep Learning Base OSS Nvidia Driver GPU AMI (Amazon Linux 2023) 20261101",
        "ownerId": "898082745236",
        "rootDeviceName": "/dev/xvda",
    }


def _azs(args: Mapping[str, Any], regions: Mapping[str, str]) -> dict[str, Any]:
    region = _region(args, regions)
    short = "".join(part[0] for part in region.split("-")[:-1]) + region.split("-")[-1]
    return {
        "id": region,
        "names": [f"{region}{zone}" for zone in "abc"],
        "zoneIds": [f"{short}-az{i}" for i in (1, 2, 3)],
        "groupNames": [region],
    }


def _caller(args: Mapping[str, Any], regions: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": ACCOUNT_ID,
        "accountId": ACCOUNT_ID,
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/finops-offline",
        "userId": "AIDAFINOPSOFFLINE0001",
    }


def _partition(args: Mapping[str, Any], regions: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": "aws",
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
        "reverseDnsPrefix": "com.amazonaws",
    }


def _aws_region(args: Mapping[str, Any], regions: Mapping[str, str]) -> dict[str, Any]:
    region = _region(args, regions)
    return {
        "id": region,
        "name": region,
        "region": region,
        "endpoint": f"ec2.{region}.amazonaws.com",
        "description": region,
    }


def _default_vpc(args: Mapping[str, Any], regions: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": "vpc-0a1b2c3d4e5f60718",
        "arn": f"arn:aws:ec2:{_region(args, regions)}:{ACCOUNT_ID}:vpc/vpc-0a1b2c3d4e5f60718",
        "cidrBlock": "172.31.0.0/16",
        "default": True,
    }


def _subnets(args: Mapping[str, Any], regions: Mapping[str, str]) -> dict[str, Any]:
    return {"id": _region(args, regions), "ids": [f"subnet-0a1b2c3d4e5f6071{i}" for i in range(3)]}


def _sagemaker_image(args: Mapping[str, Any], regions: Mapping[str, str]) -> dict[str, Any]:
    region = _region(args, regions)
    repo = args.get("repositoryName", "huggingface-pytorch-tgi-inference")
    tag = args.get("imageTag", "latest")
    registry = f"763104351884.dkr.ecr.{region}.amazonaws.com"
    return {
        "id": registry,
        "registryId": "763104351884",
        "registryPath": f"{registry}/{repo}:{tag}",
    }


def _gcp_project(args: Mapping[str, Any], regions: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": f"projects/{GCP_PROJECT}",
        "projectId": GCP_PROJECT,
        "number": "123456789012",
        "name": GCP_PROJECT,
    }


def _gcp_image(args: Mapping[str, Any], regions: Mapping[str, str]) -> dict[str, Any]:
    family = args.get("family", "common-cu124-debian-11")
    project = args.get("project", "deeplearning-platform-release")
    link = (
        f"https://www.googleapis.com/compute/v1/projects/{project}/global/images/{family}-v20261101"
    )
    return {
        "id": link,
        "selfLink": link,
        "name": f"{family}-v20261101",
        "family": family,
        "project": project,
    }


def _gcp_zones(args: Mapping[str, Any], regions: Mapping[str, str]) -> dict[str, Any]:
    region = str(args.get("region") or regions.get("gcp") or "us-central1")
    return {"id": region, "names": [f"{region}-{zone}" for zone in "abc"], "region": region}


def _azure_client(args: Mapping[str, Any], regions: Mapping[str, str]) -> dict[str, Any]:
    return {
        "clientId": "22222222-2222-2222-2222-222222222222",
        "objectId": "33333333-3333-3333-3333-333333333333",
        "subscriptionId": AZURE_SUBSCRIPTION,
        "tenantId": AZURE_TENANT,
    }


INVOKES: dict[str, Invoke] = {
    "aws:ec2/getAmi:getAmi": _ami,
    "aws:index/getAvailabilityZones:getAvailabilityZones": _azs,
    "aws:index/getCallerIdentity:getCallerIdentity": _caller,
    "aws:index/getPartition:getPartition": _partition,
    "aws:index/getRegion:getRegion": _aws_region,
    "aws:ec2/getVpc:getVpc": _default_vpc,
    "aws:ec2/getSubnets:getSubnets": _subnets,
    "aws:sagemaker/getPrebuiltEcrImage:getPrebuiltEcrImage": _sagemaker_image,
    "gcp:organizations/getProject:getProject": _gcp_project,
    "gcp:compute/getImage:getImage": _gcp_image,
    "gcp:compute/getZones:getZones": _gcp_zones,
    "azure-native:authorization:getClientConfig": _azure_client,
}


def synthetic_outputs(
    type_token: str,
    name: str,
    resource_id: str,
    regions: Mapping[str, str],
    inputs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Outputs the provider would compute (ARNs, self links, ARM ids), derived from the name."""
    package, _, rest = type_token.partition(":")
    module = rest.split("/")[0].split(":")[0]
    kind = type_token.rsplit(":", 1)[-1]
    if type_token == "aws:s3/bucket:Bucket":
        # S3 names a bucket from its prefix and a suffix; its ARN has no region or account.
        given = dict(inputs or {})
        bucket = (
            given.get("bucket") or f"{given.get('bucketPrefix') or 'bucket-'}{resource_id[-7:]}"
        )
        return {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
    if package in ("aws", "aws-native"):
        region = regions.get("aws", "us-east-1")
        return {"arn": f"arn:aws:{module}:{region}:{ACCOUNT_ID}:{kind.lower()}/{name}"}
    if package == "gcp":
        region = regions.get("gcp", "us-central1")
        link = f"https://www.googleapis.com/compute/v1/projects/{GCP_PROJECT}/regions/{region}/{kind[0].lower() + kind[1:]}s/{name}"
        return {
            "selfLink": link,
            "selfLinkUnique": f"{link}?uniqueId={zlib.crc32(name.encode())}",
            "project": GCP_PROJECT,
        }
    if package == "azure-native":
        given = dict(inputs or {})
        named = given.get(AZURE_NAME_INPUT.get(type_token, ""))
        extra: dict[str, Any] = {"name": named} if named else {}
        if type_token == "azure-native:managedidentity:UserAssignedIdentity":
            digest = f"{zlib.crc32(name.encode()):08x}"
            extra |= {
                "clientId": f"{digest}-c1e1-4000-8000-000000000001",
                "principalId": f"{digest}-9e1a-4000-8000-000000000002",
                "tenantId": AZURE_TENANT,
            }
        return extra | {
            "id": f"/subscriptions/{AZURE_SUBSCRIPTION}/resourceGroups/finops/providers/"
            f"Microsoft.{module.capitalize()}/{kind}/{name}"
        }
    return {}


def provider_shaped(type_token: str, state: dict[str, Any]) -> dict[str, Any]:
    """Outputs whose shape the provider changes from the input's: azure-native takes a
    resource's user-assigned identities as a list of ids and returns a map keyed by id."""
    identity = state.get("identity")
    if type_token.startswith("azure-native:") and isinstance(identity, dict):
        assigned = identity.get("userAssignedIdentities")
        if isinstance(assigned, list):
            state["identity"] = {
                **identity,
                "userAssignedIdentities": {str(i): {} for i in assigned},
            }
    return state
