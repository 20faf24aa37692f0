"""Each rule: the happy path passes, then one changed field per case, exact policy and message."""

from __future__ import annotations

from typing import Any

import pytest
from builders import (
    ASG,
    BUDGET,
    ENDPOINT_CONFIG,
    GCP_MIG,
    GCP_TEMPLATE,
    INSTANCE,
    LT,
    TPU_VM,
    VMSS,
    budget,
    endpoint_config,
    fleet,
    gcp_template,
    launch_template,
    resource,
    tags,
    verdicts,
)

from aifinops.policies.model import Resource
from aifinops.policies.normalize import UNKNOWN
from aifinops.policies.pricing import priced

MANDATORY, ADVISORY = "mandatory", "advisory"


def test_happy_path_resources_pass_every_resource_rule() -> None:
    assert (
        verdicts(
            resource(LT, launch_template()),
            resource(ASG, fleet(), related=[(LT, launch_template())]),
            resource(ENDPOINT_CONFIG, endpoint_config()),
            resource(GCP_TEMPLATE, gcp_template()),
            resource(BUDGET, budget()),
        )
        == []
    )


# --- required-tags -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (launch_template(tags=tags(Team=None)), "tags: missing Team"),
        (
            launch_template(tags=tags(Environment="qa")),
            "tags: Environment='qa' is not one of dev, staging, prod",
        ),
        (
            launch_template(tagSpecifications=[{"resourceType": "instance", "tags": tags()}]),
            "tags do not reach launched volumes (no tag specification)",
        ),
        (
            launch_template(
                tagSpecifications=[
                    {"resourceType": "instance", "tags": tags()},
                    {"resourceType": "volume", "tags": tags(Project=None)},
                ]
            ),
            "launched volumes: missing Project",
        ),
        (
            launch_template(tags=tags(ModelVersion=None)),
            "tags: missing ModelVersion",  # a GPU template runs a workload: ModelVersion too
        ),
    ],
    ids=["missing-key", "bad-environment", "no-volume-spec", "volume-spec-missing", "workload"],
)
def test_required_tags_on_launch_templates(props: dict, message: str) -> None:
    assert verdicts(resource(LT, props)) == [("required-tags", MANDATORY, message)]


def test_required_tags_wants_gcp_labels_in_lower_case() -> None:
    spelled_canonically = gcp_template(labels=tags())
    assert verdicts(resource(GCP_TEMPLATE, spelled_canonically)) == [
        (
            "required-tags",
            MANDATORY,
            "labels: missing project, team, environment, model-version; "
            + "; ".join(
                f"label {key}='{value}' is not a valid GCP label (lower case [a-z0-9_-], at most "
                "63 characters)"
                for key, value in tags().items()
            ),
        )
    ]


def test_required_tags_skips_resources_that_cannot_carry_tags() -> None:
    # checkov#6924: a managed instance group has no labels argument; nothing to flag.
    assert verdicts(resource(GCP_MIG, {"targetSize": 2})) == []
    assert verdicts(resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", {})) == []


def test_required_tags_unknown_during_preview_is_advisory() -> None:
    assert verdicts(resource(LT, launch_template(tags=UNKNOWN))) == [
        ("required-tags", ADVISORY, "tags are unknown until apply")
    ]


def test_required_tags_extra_keys_and_allowed_values_from_config() -> None:
    settings = {
        "required-tags": {"extraRequiredKeys": ["CostCenter"], "allowedValues": {"Team": ["ml"]}}
    }
    assert verdicts(resource(INSTANCE, {"tags": tags()}), settings=settings) == [
        (
            "required-tags",
            MANDATORY,
            "tags: missing CostCenter; Team='ml-platform' is not one of ml",
        )
    ]


# --- gpu-instance-oversized ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            launch_template(instanceType="g5.12xlarge"),
            "g5.12xlarge (4 x A10G, $5.67/h) in dev: 4 accelerators > 1 allowed, $5.67/h > $5.00/h",
        ),
        (
            launch_template(instanceType="p4d.24xlarge", tags=tags(Environment="staging")),
            "p4d.24xlarge (8 x A100, $21.96/h) in staging: 8 accelerators > 4 allowed",
        ),
        (
            launch_template(instanceType="p3.2xlarge", tags=tags(Environment="prod")),
            "p3.2xlarge (1 x V100, $3.06/h) in prod: not in the allow-list",
        ),
    ],
    ids=["dev-count-and-price", "staging-count", "prod-allow-list"],
)
def test_gpu_instance_oversized_per_instance(props: dict, message: str) -> None:
    found = [v for v in verdicts(resource(LT, props)) if v[0] == "gpu-instance-oversized"]
    assert found == [("gpu-instance-oversized", MANDATORY, message)]


def test_gpu_instance_oversized_fleet_maximum() -> None:
    assert verdicts(resource(ASG, fleet(maxSize=8))) == [
        (
            "gpu-instance-oversized",
            MANDATORY,
            "fleet can scale to 8 x g5.xlarge = 8 accelerators > 4 allowed in dev",
        )
    ]


def test_gpu_instance_oversized_denies_flagship_accelerators_in_dev_on_every_cloud() -> None:
    tpu = {"acceleratorType": "v5p-8", "labels": gcp_template()["labels"]}
    assert verdicts(resource(TPU_VM, tpu)) == [
        (
            "gpu-instance-oversized",
            MANDATORY,
            "v5p-8 (4 x TPU-v5p, $18.48/h) in dev: 4 accelerators > 1 allowed, TPU-v5p is not "
            "allowed, $18.48/h > $5.00/h",
        )
    ]
    vmss = {
        "sku": {"name": "Standard_ND96isr_H100_v5", "capacity": 1},
        "virtualMachineProfile": {"priority": "Spot"},
        "tags": tags(),
    }
    assert verdicts(resource(VMSS, vmss)) == [
        (
            "gpu-instance-oversized",
            MANDATORY,
            "Standard_ND96isr_H100_v5 (8 x H100, $98.32/h) in dev: 8 accelerators > 1 allowed, "
            "H100 is not allowed, $98.32/h > $5.00/h; fleet can scale to 1 x "
            "Standard_ND96isr_H100_v5 = 8 accelerators > 4 allowed in dev",
        )
    ]


def test_gpu_instance_oversized_limits_from_config() -> None:
    settings = {"gpu-instance-oversized": {"limits": {"dev": {"maxAcceleratorsPerInstance": 4,
                                                               "maxUsdPerHour": 10}}}}  # fmt: skip
    assert (
        verdicts(resource(LT, launch_template(instanceType="g5.12xlarge")), settings=settings) == []
    )


def test_gpu_instance_oversized_unknown_type_is_advisory() -> None:
    assert [
        v
        for v in verdicts(resource(LT, launch_template(instanceType=UNKNOWN)))
        if v[0] == "gpu-instance-oversized"
    ] == [("gpu-instance-oversized", ADVISORY, "instance type is unknown until apply")]


# --- training-on-spot ----------------------------------------------------------------------


def _on_demand(percent: int) -> dict:
    policy = fleet()["mixedInstancesPolicy"]
    policy["instancesDistribution"]["onDemandPercentageAboveBaseCapacity"] = percent
    return policy


def test_training_on_spot_flags_on_demand_above_base() -> None:
    assert verdicts(resource(ASG, fleet(mixedInstancesPolicy=_on_demand(100)))) == [
        (
            "training-on-spot",
            MANDATORY,
            "100% of capacity above an on-demand base of 0 nodes is on demand; at most 20% "
            "allowed in dev",
        )
    ]


def test_training_on_spot_plain_group_of_an_on_demand_template() -> None:
    props = fleet(mixedInstancesPolicy=None, launchTemplate={"id": "lt-1"})
    found = verdicts(resource(ASG, props, related=[(LT, launch_template())]))
    assert found == [
        (
            "training-on-spot",
            MANDATORY,
            "100% of capacity above an on-demand base of 0 nodes is on demand; at most 20% "
            "allowed in dev",
        )
    ]


@pytest.mark.parametrize(
    "props",
    [
        fleet(mixedInstancesPolicy=_on_demand(20)),
        fleet(mixedInstancesPolicy=_on_demand(100), tags=[
            {"key": k, "value": v, "propagateAtLaunch": True}
            for k, v in tags(Environment="prod").items()
        ]),
        fleet(mixedInstancesPolicy=_on_demand(100), desiredCapacity=0),
    ],
    ids=["at-limit", "prod-exempt", "fallback-at-zero"],
)  # fmt: skip
def test_training_on_spot_passes(props: dict) -> None:
    assert [v for v in verdicts(resource(ASG, props)) if v[0] == "training-on-spot"] == []


def test_training_on_spot_gcp_group_follows_its_template() -> None:
    on_demand = gcp_template(scheduling={"provisioningModel": "STANDARD"})
    assert verdicts(resource(GCP_MIG, {"targetSize": 2}, related=[(GCP_TEMPLATE, on_demand)])) == [
        (
            "training-on-spot",
            MANDATORY,
            "100% of capacity above an on-demand base of 0 nodes is on demand; at most 20% "
            "allowed in dev",
        )
    ]


# --- previous-generation-accelerator ------------------------------------------------------


def test_previous_generation_names_the_current_type_and_monthly_difference() -> None:
    props = launch_template(instanceType="p3.2xlarge", tags=tags(Environment="staging"))
    assert verdicts(resource(LT, props)) == [
        (
            "previous-generation-accelerator",
            ADVISORY,
            "p3.2xlarge (1 x V100, $3.06/h) is a previous generation at $3.06/h per "
            "V100-equivalent; g6e.xlarge (1 x L40S, $1.86/h) does the same work at $1.11/h: "
            "$1,420/month less per V100-equivalent of throughput",
        )
    ]


def test_previous_generation_on_gcp_attached_gpus() -> None:
    props = gcp_template(
        machineType="n1-standard-8",
        guestAccelerators=[{"type": "nvidia-tesla-v100", "count": 1}],
    )
    assert verdicts(resource(GCP_TEMPLATE, props)) == [
        (
            "previous-generation-accelerator",
            ADVISORY,
            "n1-standard-8+nvidia-tesla-v100:1 (1 x V100, $2.86/h) is a previous generation at "
            "$2.86/h per V100-equivalent; g2-standard-4 (1 x L4, $0.71/h) does the same work at "
            "$1.24/h: $1,183/month less per V100-equivalent of throughput",
        )
    ]


# --- inference-on-cheaper-chip ---------------------------------------------------------------


def test_inference_on_cheaper_chip_offers_inferentia_with_the_saving() -> None:
    variants = [{"variantName": "main", "instanceType": "ml.g5.xlarge", "initialInstanceCount": 2}]
    assert verdicts(resource(ENDPOINT_CONFIG, endpoint_config(productionVariants=variants))) == [
        (
            "inference-on-cheaper-chip",
            ADVISORY,
            "ml.g5.xlarge (1 x A10G, $1.41/h) with 24 GiB could be ml.inf2.xlarge "
            "(1 x Inferentia2, $0.99/h) with 32 GiB: $610/month less for 2 instances (needs the "
            "model compiled for inferentia)",
        )
    ]


# --- imdsv2-required -----------------------------------------------------------------------


def test_imdsv2_required_on_gpu_launch_templates() -> None:
    optional = launch_template(metadataOptions={"httpTokens": "optional"})
    assert verdicts(resource(LT, optional)) == [
        (
            "imdsv2-required",
            MANDATORY,
            "metadata httpTokens is 'optional', so IMDSv1 is allowed; set it to \"required\"",
        )
    ]
    unset = launch_template(metadataOptions=None)
    assert verdicts(resource(LT, unset)) == [
        (
            "imdsv2-required",
            MANDATORY,
            'metadata httpTokens is not set, so IMDSv1 is allowed; set it to "required"',
        )
    ]


def test_imdsv2_not_required_of_cpu_templates() -> None:
    cpu = launch_template(
        instanceType="t3.large", metadataOptions=None, tags=tags(ModelVersion=None)
    )
    assert verdicts(resource(LT, cpu)) == []


# --- stack rules ---------------------------------------------------------------------------

STACK_ON = {"budget-required": "mandatory", "stack-cost-ceiling": "mandatory"}


def test_budget_required_for_every_project_that_owns_resources() -> None:
    template = resource(LT, launch_template())
    other = resource(LT, launch_template(tags=tags(Project="speech")), name="speech-lt")
    assert verdicts(template, other, resource(BUDGET, budget()), settings=STACK_ON) == [
        (
            "budget-required",
            MANDATORY,
            "project 'speech' owns 1 resource and no budget covers it; add a finops:budgets "
            "entry with project: speech",
        )
    ]
    account_wide = resource(BUDGET, budget(project=None), name="account")
    assert verdicts(template, other, account_wide, settings=STACK_ON) == []


def test_an_account_budget_covers_the_resources_of_its_cloud_only() -> None:
    """An AWS account budget (no cost filter, as aifinops.components.aws.ProjectBudget writes it
    without a project) covers AWS resources; a GCP resource needs a GCP budget."""
    aws_speech = resource(LT, launch_template(tags=tags(Project="speech")), name="speech-lt")
    gcp_speech = resource(
        GCP_TEMPLATE,
        gcp_template(labels={"project": "speech", "team": "ml", "environment": "dev",
                             "model-version": "v1"}),
        name="speech-template",
    )  # fmt: skip
    account = budget(project=None)
    del account["costFilters"]
    aws_account = resource(BUDGET, account, name="aws-account")
    assert verdicts(aws_speech, aws_account, settings=STACK_ON) == []
    (only,) = verdicts(aws_speech, gcp_speech, aws_account, settings=STACK_ON)
    assert only[0] == "budget-required" and only[2].startswith("project 'speech' owns 1 resource")
    gcp_project = resource(
        "gcp:billing/budget:Budget",
        {"billingAccount": "000000-000000-000000", "displayName": "finops GCP project monthly",
         "amount": {"specifiedAmount": {"currencyCode": "USD", "units": "900"}},
         "budgetFilter": {"projects": ["projects/123456789012"]}},
        name="gcp-account",
    )  # fmt: skip
    assert verdicts(aws_speech, gcp_speech, aws_account, gcp_project, settings=STACK_ON) == []


def test_stack_cost_ceiling_shows_cost_by_resource() -> None:
    # 4 x g5.xlarge on spot ($0.4125/h) and 2 x ml.inf2.xlarge ($0.99/h), 730 h
    group = priced(resource(ASG, fleet(desiredCapacity=4, maxSize=4), name="train"))
    endpoint = priced(resource(ENDPOINT_CONFIG, endpoint_config(), name="serve"))
    assert verdicts(
        group, endpoint, resource(BUDGET, budget()), settings=STACK_ON, ceiling=1500
    ) == [
        (
            "stack-cost-ceiling",
            MANDATORY,
            "estimated $2,649.90/month exceeds the stack ceiling (finops:costCeilingUsd) of "
            "$1,500.00/month by $1,149.90; by resource: serve $1,445.40, train $1,204.50",
        )
    ]
    # no finops:costCeilingUsd: the budgets' limits are the ceiling ($1,000)
    assert verdicts(group, endpoint, resource(BUDGET, budget()), settings=STACK_ON)[0][
        2
    ].startswith("estimated $2,649.90/month exceeds the budget of $1,000.00/month by $1,649.90")


VERTEX = "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment"


def vertex_deployment(machine: str, **resources: Any) -> dict[str, Any]:
    dedicated = {"machineSpec": {"machineType": machine}, "minReplicaCount": 1, **resources}
    return {
        "location": "us-central1",
        "labels": None,
        "deployConfig": {"dedicatedResources": dedicated},
    }


def test_tpu_inference_is_compared_with_gpu_and_inferentia_for_memory_and_throughput() -> None:
    """A TPU slice serving a model against the cheapest GCP GPU machine in its region and the
    cheapest Inferentia type (AWS) with as much accelerator memory and throughput: v5e and
    v6e are the cheapest of the three at every size; v5p-8 is not (ml.inf2.48xlarge, 7 %
    less: below the default 10 % threshold, above 5 %)."""

    def advice(resource: Resource, percent: float = 10.0) -> list[str]:
        settings = {CHEAPER: {"minSavingPercent": percent}}
        return [v[2] for v in verdicts(resource, settings=settings) if v[0] == CHEAPER]

    endpoint = resource(VERTEX, vertex_deployment("ct5lp-hightpu-4t", maxReplicaCount=2), "s")
    assert (endpoint.kind, endpoint.instance_types, endpoint.nodes_max) == (
        "endpoint",
        ("v5litepod-4",),
        2,
    )
    # compared with ml.inf2.24xlarge ($7.79/h) and a2-highgpu-4g ($14.69/h): the TPU wins
    assert advice(endpoint) == []
    batch = resource(
        "gcp:tpu/v2Vm:V2Vm",
        {"acceleratorType": "v5p-8", "zone": "us-east5-a", "labels": None},
        "batch-0",
        component="finops:gcp:TpuBatchInference",
    )
    assert advice(batch) == []
    assert advice(batch, 5.0) == [
        "v5p-8 (4 x TPU-v5p, $16.80/h) with 380 GiB could be ml.inf2.48xlarge "
        "(12 x Inferentia2, $15.58/h) on aws us-east-1 with 384 GiB: $891/month less for 1 "
        "instance (needs the model compiled for inferentia)"
    ]


CHEAPER = "inference-on-cheaper-chip"
