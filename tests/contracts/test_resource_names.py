"""Every resource name finops sends fits its cloud's rules, for the longest fleet, endpoint and
project names the stack config allows and a long stack name: a name the cloud refuses fails
`pulumi up` halfway, after the resources before it were created.

Names are what the providers will send (`naming_rules.RULES`): the input that holds the name,
or the provider's auto-name from the logical name. A resource type with no rule fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from naming_rules import NESTED, RULES

from aifinops import config as stack_config
from aifinops.engine import StackRun, run_program
from aifinops.engine.stack import program_dir

ROOT = Path(__file__).resolve().parents[2]
LONG_STACK = "production-eu_west.1-computer-vision-platform"  # a-zA-Z0-9-_. as the CLI allows
FLEET_40 = "computer-vision-pretraining-eu-west-1-aa"  # finops:trainingFleets name: 2-40
ENDPOINT_40 = "computer-vision-realtime-serving-eu-wst1"
PROJECT_63 = "Computer Vision Research_Platform 2026 (EU west) - team-alpha-x"  # any 1-63
TAGS = {"Project": PROJECT_63, "Team": "ml-platform", "Environment": "prod"}
assert len(FLEET_40) == 40 and len(ENDPOINT_40) == 40 and len(PROJECT_63) == 63


def long_stack(cloud: str) -> dict[str, Any]:
    """A stack file's config with the longest names the schema accepts, for one cloud."""
    fleet = {
        "name": FLEET_40,
        "cloud": cloud,
        "nodes": {"min": 0, "desired": 2, "max": 4},
        "capacity": "spot-with-fallback",
        "onDemandBase": 1 if cloud == "azure" else 0,
        "modelVersion": "vit-huge-14-pretrain-2026-03-v12",
    }
    fleet |= {
        "aws": {"accelerator": "A10G", "acceleratorsPerNode": 1},
        "gcp": {"instanceTypes": ["g2-standard-8"]},
        "azure": {"instanceTypes": ["Standard_NC4as_T4_v3"]},
    }[cloud]
    config: dict[str, Any] = {"finops:tags": TAGS, "finops:trainingFleets": [fleet]}
    if cloud == "aws":
        config["aws:region"] = "us-east-1"
        config["finops:inferenceEndpoints"] = [
            {
                "name": ENDPOINT_40[: 40 - len(suffix)] + suffix,
                "cloud": "aws",
                "instanceType": "ml.inf2.xlarge",
                "replicas": {"min": replicas_min, "max": 2},
                "serving": "model-archive",
                "modelDataUrl": "s3://models/vit/model.tar.gz",
                "modelVersion": "vit-huge-14",
            }
            for replicas_min, suffix in ((1, ""), (0, "-z"))
        ]
    if cloud == "gcp":
        config |= {"gcp:project": "finops-demo-project", "gcp:region": "us-central1"}
        config["finops:inferenceEndpoints"] = [
            {
                "name": ENDPOINT_40,
                "cloud": "gcp",
                "instanceType": "v5litepod-4",
                "replicas": {"min": 1, "max": 2},
                "modelVersion": "vit-huge-14",
                "serving": "llm",
                "modelId": "Qwen/Qwen2.5-7B-Instruct",
            },
            {  # GKE: cluster and node pool names stop at 40, Kubernetes names at 63
                "name": ENDPOINT_40[:-2] + "-k",
                "cloud": "gcp",
                "hosting": "gke",
                "zone": "us-central1-a",
                "image": "us-docker.pkg.dev/p/r/vllm-tpu@sha256:" + "0" * 64,
                "instanceType": "v5litepod-4",
                "replicas": {"min": 1, "max": 2},
                "modelVersion": "vit-huge-14",
                "serving": "llm",
                "modelId": "Qwen/Qwen2.5-7B-Instruct",
            },
        ]
    if cloud == "azure":
        config["azure-native:location"] = "eastus"
    if cloud in ("aws", "gcp", "azure"):  # Azure budgets are built too (issue 9)
        config["finops:budgets"] = [
            {
                "project": PROJECT_63,
                "cloud": cloud,
                "monthlyLimitUsd": 1000,
                "notify": ["ml@example.com"],
                "enforce": cloud == "aws",
            }
        ]
    return config


def run(raw_config: dict[str, Any], stack: str = LONG_STACK) -> StackRun:
    config = stack_config.parse(raw_config, source=f"Pulumi.{stack}.yaml")
    raw = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in raw_config.items()}
    return run_program(program_dir(ROOT), stack, raw, config.regions)


def name_problems(result: StackRun) -> list[str]:
    problems = []
    for resource in result.custom_resources():
        rule = RULES.get(resource.type)
        if rule is None:
            problems.append(f"{resource.type}: no naming rule in tests/contracts/naming_rules.py")
            continue
        checks = [(rule.prop, rule, rule.physical(resource.type, resource.name, resource.inputs))]
        for type_token, path, nested in NESTED:
            if type_token != resource.type:
                continue
            value: Any = resource.inputs
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            checks.append((".".join(path), nested, value if isinstance(value, str) else None))
        for prop, checked, name in checks:
            if name is None:
                continue
            for problem in checked.problems(name):
                problems.append(
                    f"{resource.type} {resource.name!r}: {prop} {name!r}: {problem} "
                    f"({checked.source})"
                )
    return problems


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_the_longest_names_the_config_allows_fit_every_cloud(cloud: str) -> None:
    result = run(long_stack(cloud))
    assert len(result.custom_resources()) >= 5
    assert name_problems(result) == []


@pytest.mark.parametrize(
    "stack_file", [ROOT / "Pulumi.dev.yaml", *sorted((ROOT / "examples").glob("Pulumi.*.yaml"))]
)
def test_the_shipped_stacks_fit_under_a_long_stack_name(stack_file: Path) -> None:
    raw = stack_config.read_stack_file(stack_file)
    assert name_problems(run(raw)) == []


def test_the_rules_catch_what_the_clouds_refuse() -> None:
    role = RULES["aws:iam/role:Role"]
    assert role.physical("aws:iam/role:Role", "x" * 57, {}) == "x" * 57 + "-0000000"
    assert role.problems("x" * 65) == ["65 characters, more than 64"]
    bucket = RULES["aws:s3/bucket:Bucket"]
    name = bucket.physical("aws:s3/bucket:Bucket", "b", {"bucketPrefix": "Ckpt-"})
    assert name is not None and len(name) == 31
    assert bucket.problems(name) and not bucket.problems(name.lower())
    component = RULES["aws-native:sagemaker:InferenceComponent"]
    assert component.problems("serve-prod_eu.west")  # stack names may hold _ and .
    template = RULES["gcp:compute/instanceTemplate:InstanceTemplate"]
    assert template.problems(f"{FLEET_40}-on-demand-template-0000000")
    assert (
        RULES["azure-native:resources:ResourceGroup"].physical(
            "azure-native:resources:ResourceGroup", "rg", {}
        )
        == "rg00000000"
    )


def test_names_that_fit_are_kept_so_existing_stacks_are_not_replaced() -> None:
    multicloud = run(stack_config.read_stack_file(ROOT / "examples" / "Pulumi.multicloud.yaml"))
    names = {r.name for r in multicloud.resources}
    assert {
        "gcp-l4-train-on-demand-template",
        "gcp-l4-train-controller-code",
        "gcp-tpu-serve-cluster",
        "vision-budget",
    } <= names
    dev = run(stack_config.read_stack_file(ROOT / "Pulumi.dev.yaml"), stack="dev")
    assert "vision-budget" in {r.name for r in dev.resources}


def test_long_or_odd_names_are_cut_with_a_hash_of_the_whole() -> None:
    result = run(long_stack("gcp"))
    templates = [r.name for r in result.of_type("gcp:compute/instanceTemplate:InstanceTemplate")]
    assert len(templates) == 2 and all(len(n) <= 55 for n in templates)
    assert all(n.startswith("computer-vision-pretraining") for n in templates)
    budgets = stack_config.Budget.model_validate(
        {"project": PROJECT_63, "cloud": "gcp", "monthlyLimitUsd": 1, "notify": ["a@b.co"]}
    )
    other = budgets.model_copy(update={"project": PROJECT_63.replace("alpha", "alpha ")})
    assert budgets.component_name != other.component_name
    assert budgets.component_name.startswith("computer-vision-research")
    assert len(budgets.component_name) <= 40
