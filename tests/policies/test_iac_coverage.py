"""Every common way to buy accelerators, in Terraform and CloudFormation, reaches the rules:
the normalised facts each resource yields, then the verdicts the issue's semantics ask for."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifinops.policies import iac
from aifinops.policies.context import Context
from aifinops.policies.model import BUDGET, Resource
from aifinops.policies.normalize.terraform import COMPUTE_TERRAFORM, terraform_pulumi_type
from aifinops.policies.normalize.wire import KINDS
from aifinops.policies.verdicts import Violation, evaluate


def scan(folder: Path, files: dict[str, str]) -> iac.Scan:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return iac.scan([str(folder)])


def one(folder: Path, text: str, name: str = "main.tf") -> Resource:
    found = [r for r in scan(folder, {name: text}).resources if r.instance_types or r.unknown]
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def verdicts(resources: list[Resource], policy: str) -> list[tuple[str, bool, str]]:
    found: list[Violation] = evaluate(resources, Context(environment="dev"), None)
    return [(v.resource, v.unknown, v.message) for v in found if v.policy == policy]


FACTS = [
    (
        'resource "aws_instance" "a" { instance_type = "g5.xlarge" }',
        ("instance", ("g5.xlarge",), None, None),
    ),
    (
        """resource "aws_eks_node_group" "gpu" {
  instance_types = ["g6e.12xlarge"]
  capacity_type  = "SPOT"
  scaling_config {
    max_size     = 3
    min_size     = 0
    desired_size = 1
  }
}""",
        ("fleet", ("g6e.12xlarge",), 3, 0.0),
    ),
    (
        """resource "aws_autoscaling_group" "train" {
  max_size = 2
  min_size = 0
  mixed_instances_policy {
    instances_distribution {
      on_demand_percentage_above_base_capacity = 100
    }
    launch_template {
      launch_template_specification { launch_template_id = "lt-1" }
      override { instance_type = "p4d.24xlarge" }
      override { instance_type = "p4de.24xlarge" }
    }
  }
}""",
        ("fleet", ("p4d.24xlarge", "p4de.24xlarge"), 2, 100.0),
    ),
    (
        """resource "aws_batch_compute_environment" "ce" {
  type = "MANAGED"
  compute_resources {
    type          = "SPOT"
    instance_type = ["p3"]
    max_vcpus     = 256
  }
}""",
        ("fleet", ("p3.16xlarge",), None, 0.0),
    ),
    (
        """resource "aws_sagemaker_endpoint_configuration" "ep" {
  production_variants {
    variant_name           = "main"
    model_name             = aws_sagemaker_model.m.name
    instance_type          = "ml.g5.2xlarge"
    initial_instance_count = 2
  }
}""",
        ("endpoint", ("ml.g5.2xlarge",), 2, None),
    ),
    (
        'resource "aws_sagemaker_notebook_instance" "nb" { instance_type = "ml.p3.2xlarge" }',
        ("instance", ("ml.p3.2xlarge",), None, None),
    ),
    (
        """resource "awscc_sagemaker_cluster" "hp" {
  instance_groups = [
    { instance_group_name = "workers", instance_type = "ml.p5.48xlarge", instance_count = 4,
      execution_role = aws_iam_role.r.arn },
    { instance_group_name = "head", instance_type = "ml.m5.xlarge", instance_count = 1 },
  ]
}""",
        ("fleet", ("ml.p5.48xlarge", "ml.m5.xlarge"), 5, None),
    ),
    (
        """resource "google_compute_instance" "vm" {
  machine_type = "n1-standard-8"
  zone         = "us-central1-a"
  guest_accelerator {
    type  = "nvidia-tesla-t4"
    count = 1
  }
}""",
        ("instance", ("n1-standard-8+nvidia-tesla-t4:1",), None, None),
    ),
    (
        """resource "google_container_node_pool" "gpu" {
  location = "us-central1"
  autoscaling {
    max_node_count = 2
  }
  node_config {
    machine_type = "a2-highgpu-1g"
    spot         = true
  }
}""",
        ("fleet", ("a2-highgpu-1g",), 6, 0.0),  # regional: 2 per zone x GKE's 3 zones
    ),
    (
        """resource "google_container_node_pool" "tpu" {
  node_locations     = ["us-east5-b"]
  initial_node_count = 16
  node_config { machine_type = "ct5lp-hightpu-4t" }
}""",
        ("fleet", ("v5litepod-4",), 16, 100.0),
    ),
    (
        """resource "google_container_cluster" "c" {
  location           = "us-central1-a"
  initial_node_count = 1
  node_config {
    machine_type = "g2-standard-8"
  }
}""",
        ("fleet", ("g2-standard-8",), 1, 100.0),
    ),
    (
        """resource "google_tpu_v2_vm" "tpu" {
  zone = "us-central1-c"
  accelerator_config {
    type     = "V5P"
    topology = "2x2x1"
  }
}""",
        ("tpu", ("v5p-8",), None, None),
    ),
    (  # the Vertex AI TPU endpoint finops:gcp:TpuInferenceEndpoint deploys
        """resource "google_vertex_ai_endpoint_with_model_garden_deployment" "serve" {
  location              = "us-central1"
  hugging_face_model_id = "Qwen/Qwen2.5-7B-Instruct"
  deploy_config {
    dedicated_resources {
      machine_spec {
        machine_type = "ct5lp-hightpu-4t"
        tpu_topology = "2x2"
      }
      min_replica_count = 1
      max_replica_count = 3
      spot              = true
    }
  }
}""",
        ("endpoint", ("v5litepod-4",), 3, 0.0),
    ),
    (  # retired in terraform-provider-google 7, still in configurations pinned below it
        'resource "google_tpu_node" "n" {\n  accelerator_type = "v5p-8"\n  labels = { a = "b" }\n}',
        ("tpu", ("v5p-8",), None, None),
    ),
    (
        'resource "azurerm_linux_virtual_machine" "vm" { size = "Standard_NC24ads_A100_v4" }',
        ("instance", ("Standard_NC24ads_A100_v4",), None, None),
    ),
    (
        'resource "azurerm_windows_virtual_machine" "vm" { size = "Standard_NC4as_T4_v3" }',
        ("instance", ("Standard_NC4as_T4_v3",), None, None),
    ),
    (
        """resource "azurerm_orchestrated_virtual_machine_scale_set" "s" {
  sku_name  = "Standard_NC4as_T4_v3"
  instances = 3
  priority  = "Spot"
}""",
        ("fleet", ("Standard_NC4as_T4_v3",), 3, 0.0),
    ),
    (
        """resource "azurerm_kubernetes_cluster_node_pool" "gpu" {
  vm_size             = "Standard_NC24ads_A100_v4"
  auto_scaling_enabled = true
  max_count           = 4
}""",
        ("fleet", ("Standard_NC24ads_A100_v4",), 4, 100.0),
    ),
    (
        """resource "azurerm_machine_learning_compute_cluster" "aml" {
  vm_size     = "Standard_NC4as_T4_v3"
  vm_priority = "LowPriority"
  scale_settings { max_node_count = 2 }
}""",
        ("fleet", ("Standard_NC4as_T4_v3",), 2, 0.0),
    ),
]


@pytest.mark.parametrize(("text", "expected"), FACTS, ids=[f[0].split('"')[1] for f in FACTS])
def test_terraform_resources_yield_their_facts(tmp_path: Path, text: str, expected: tuple) -> None:
    resource = one(tmp_path, text)
    assert "instance_types" not in resource.unknown, resource.unknown_reasons
    if 'labels = { a = "b" }' in text:
        assert resource.tags == {"a": "b"}
    assert (
        resource.kind,
        resource.instance_types,
        resource.nodes_max,
        resource.on_demand_percent_above_base,
    ) == expected


def test_batch_compute_environments_are_sized_in_vcpus(tmp_path: Path) -> None:
    resource = one(tmp_path, FACTS[3][0])
    assert resource.max_vcpus == 256
    assert verdicts([resource], "gpu-instance-oversized")[0][2].endswith(
        "fleet can scale to 256 vCPUs = 4 x p3.16xlarge = 32 accelerators > 4 allowed in dev"
    )


CFN = """AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  GpuType:
    Type: String
    Default: p4d.24xlarge
  Unset:
    Type: String
  Enable:
    Type: String
    Default: 'false'
Conditions:
  Enabled: !Equals [!Ref Enable, 'true']
Resources:
  Template:
    Type: AWS::EC2::LaunchTemplate
    Properties:
      LaunchTemplateData:
        InstanceType: !Ref GpuType
  CE:
    Type: AWS::Batch::ComputeEnvironment
    Properties:
      Type: MANAGED
      ComputeResources:
        Type: EC2
        MaxvCpus: 96
        InstanceTypes: [p4d.24xlarge]
        LaunchTemplate:
          LaunchTemplateId: !Ref Template
      Tags:
        Project: vision
  Nodes:
    Type: AWS::EKS::Nodegroup
    Properties:
      InstanceTypes: [!Ref Unset]
      ScalingConfig: {MaxSize: 2, DesiredSize: 1}
  HyperPod:
    Type: AWS::SageMaker::Cluster
    Properties:
      InstanceGroups:
        - InstanceGroupName: workers
          InstanceType: ml.trn1.32xlarge
          InstanceCount: 2
          ExecutionRole: !GetAtt Role.Arn
  Disabled:
    Type: AWS::EC2::Instance
    Condition: Enabled
    Properties:
      InstanceType: p5.48xlarge
"""


def test_cloudformation_resources_yield_their_facts(tmp_path: Path) -> None:
    found = scan(tmp_path, {"template.yaml": CFN})
    by_name = {r.name.split(".")[-1]: r for r in found.resources}
    assert by_name["Template"].instance_types == ("p4d.24xlarge",)  # the parameter's default
    ce = by_name["CE"]
    assert (ce.kind, ce.instance_types, ce.max_vcpus, dict(ce.tags)) == (
        "fleet", ("p4d.24xlarge",), 96, {"Project": "vision"},
    )  # fmt: skip
    nodes = by_name["Nodes"]
    assert nodes.unknown == frozenset({"instance_types"})
    assert nodes.unknown_reasons["instance_types"] == 'InstanceTypes: {"Ref": "Unset"}'
    assert by_name["HyperPod"].node_counts == (("ml.trn1.32xlarge", 2),)
    assert "Disabled" not in by_name
    assert [(n.address, n.reason) for n in found.not_created] == [
        ("Disabled", "Condition Enabled is false")
    ]
    line = CFN.splitlines().index("  CE:") + 1
    assert by_name["CE"].location.endswith(f"template.yaml:{line}")


# --- the semantics ----------------------------------------------------------------------------


def test_only_literal_values_count_and_absent_keys_are_still_findings(tmp_path: Path) -> None:
    found = scan(tmp_path, {"main.tf": '''
variable "tags" { type = map(string) }
variable "itype" {}
resource "aws_instance" "from_var" {
  instance_type = var.itype
  tags          = var.tags
}
resource "aws_instance" "merged" {
  instance_type = "g5.xlarge"
  tags          = merge(var.tags, { Name = "x" })
}
resource "aws_instance" "k8s_keys_only" {
  instance_type = "g5.xlarge"
  tags          = { "kubernetes.io/cluster/${var.itype}" = "owned", Project = "vision" }
}
resource "aws_instance" "untagged" {
  instance_type = "g5.xlarge"
}
'''})  # fmt: skip
    assert verdicts(found.resources, "required-tags") == [
        ("aws_instance.from_var", True, "tags cannot be read: tags = var.tags"),
        ("aws_instance.merged", True, "tags: Project, Team, Environment, ModelVersion not found; "
         "they may come from tags = merge(var.tags, { Name = \"x\" }), which cannot be read"),
        ("aws_instance.k8s_keys_only", False, "tags: missing Team, Environment, ModelVersion"),
        ("aws_instance.untagged", False, "tags: missing Project, Team, Environment, ModelVersion"),
    ]  # fmt: skip
    assert verdicts(found.resources, "gpu-instance-oversized") == [
        ("aws_instance.from_var", True, "instance type cannot be read: instance_type = var.itype")
    ]


def test_provider_default_tags_count_as_tags(tmp_path: Path) -> None:
    found = scan(tmp_path, {"main.tf": '''
provider "aws" {
  default_tags {
    tags = { Project = "vision", Team = "ml", Environment = "dev" }
  }
}
resource "aws_instance" "a" {
  instance_type = "g5.xlarge"
  tags          = { ModelVersion = "v1" }
}
resource "aws_s3_bucket" "b" {}
'''})  # fmt: skip
    assert verdicts(found.resources, "required-tags") == []


def test_what_may_not_exist_is_unknown_and_what_does_not_is_not_judged(tmp_path: Path) -> None:
    found = scan(tmp_path, {"main.tf": '''
variable "enabled" { type = bool }
resource "aws_instance" "maybe" {
  count         = var.enabled ? 1 : 0
  instance_type = "p5.48xlarge"
}
resource "aws_instance" "never" {
  count         = 0
  instance_type = "p5.48xlarge"
}
'''})  # fmt: skip
    assert [r.name for r in found.resources] == ["aws_instance.maybe"]
    (size,) = verdicts(found.resources, "gpu-instance-oversized")
    assert size[1] is True and size[2].endswith(
        "(if created: count = var.enabled ? 1 : 0 cannot be read)"
    )
    assert [(n.address, n.reason) for n in found.not_created] == [
        ("aws_instance.never", "count = 0")
    ]


def test_findings_name_the_module_address_and_the_file_line(tmp_path: Path) -> None:
    found = scan(tmp_path, {
        "main.tf": 'module "gpu" {\n  source = "./gpu"\n  for_each = toset(["a"])\n}\n',
        "gpu/main.tf": '\n\nresource "aws_instance" "x" {\n  instance_type = "p5.48xlarge"\n}\n',
    })  # fmt: skip
    (resource,) = found.resources
    assert resource.name == 'module.gpu["a"].aws_instance.x'
    assert resource.location.endswith("gpu/main.tf:3")


def test_advice_speaks_the_language_of_the_input(tmp_path: Path) -> None:
    terraform = scan(tmp_path / "tf", {"main.tf": 'resource "aws_instance" "a" {\n'
                                                  '  instance_type = "g5.xlarge"\n}\n'})  # fmt: skip
    cfn = scan(tmp_path / "cfn", {"t.yaml": "Resources:\n  A:\n    Type: AWS::EC2::Instance\n"
                                             "    Properties:\n      InstanceType: g5.xlarge\n"})  # fmt: skip
    context = Context(environment="dev")
    tf_advice = {v.policy: v.advice for v in evaluate(terraform.resources, context)}
    cfn_advice = {v.policy: v.advice for v in evaluate(cfn.resources, context)}
    assert "default_tags" in tf_advice["required-tags"]
    assert "finops:tags" not in tf_advice["required-tags"]
    assert tf_advice["imdsv2-required"] == 'set `metadata_options { http_tokens = "required" }`'
    assert "Tags" in cfn_advice["required-tags"] and "finops:" not in cfn_advice["required-tags"]
    assert cfn_advice["imdsv2-required"] == "set MetadataOptions.HttpTokens: required"


def test_a_gpu_type_the_catalog_does_not_know_is_unknown_with_its_name(tmp_path: Path) -> None:
    found = scan(tmp_path, {"main.tf": '''
resource "aws_instance" "future" { instance_type = "p9.48xlarge" }
resource "aws_instance" "capacity_block" { instance_type = "trn2.48xlarge" }
resource "aws_instance" "cpu" { instance_type = "m7i.large" }
'''})  # fmt: skip
    assert verdicts(found.resources, "gpu-instance-oversized") == [
        ("aws_instance.future", True,
         "p9.48xlarge is not in the finops catalog: its accelerators and price are unknown"),
        ("aws_instance.capacity_block", False,
         "trn2.48xlarge (16 x Trainium2, no list price) in dev: 16 accelerators > 1 allowed"),
    ]  # fmt: skip


def test_every_compute_kind_has_its_terraform_types_in_the_checkov_checks() -> None:
    """The checkov checks declare Terraform types; each compute token the normaliser reads is
    reached by one of them (else checkov never hands those resources to the checks)."""
    reached = {terraform_pulumi_type(t) for t in COMPUTE_TERRAFORM}
    assert None not in reached
    no_terraform_type = {
        "azure-native:compute:VirtualMachine",  # Pulumi azure-native only
        "azure:compute/linuxVirtualMachineScaleSet:LinuxVirtualMachineScaleSet",  # read reshaped
    }
    compute = {token for token, kind in KINDS.items() if kind != BUDGET}
    assert compute - reached == no_terraform_type


def test_unknown_instance_types_name_their_own_cause(tmp_path: Path) -> None:
    """A launch template choosing by attributes says so; what the resources it references
    (an instance profile's role) leave unknown is not the reason."""
    found = scan(tmp_path, {"main.tf": '''
resource "aws_iam_role" "r" { name_prefix = "x" }
resource "aws_iam_instance_profile" "p" { role = aws_iam_role.r.name }
resource "aws_launch_template" "lt" {
  iam_instance_profile { arn = aws_iam_instance_profile.p.arn }
  instance_requirements {
    allowed_instance_types = ["g*"]
    memory_mib { min = 8192 }
    vcpu_count { min = 4 }
  }
}
'''})  # fmt: skip
    (template,) = [r for r in found.resources if r.name == "aws_launch_template.lt"]
    assert template.unknown_reasons["instance_types"] == (
        "chosen at launch by instance_requirements (attributes)"
    )
