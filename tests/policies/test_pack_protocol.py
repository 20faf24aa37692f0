"""The CrossGuard pack through the engine's Analyzer protocol (subprocess + gRPC)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from builders import ASG, BUDGET, LT, budget, fleet, launch_template, tags
from google.protobuf import empty_pb2, json_format
from pack_harness import LEVEL_NAMES, analyze, analyze_stack, configure, running_pack, struct, urn
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import proxy

from aifinops.policies.registry import POLICIES

STACK_CONFIG = {
    "aws:region": "us-east-1",
    "finops:tags": {"Project": "vision", "Team": "ml-platform", "Environment": "dev"},
    "finops:costCeilingUsd": 5000,
}
DESCRIPTION = {policy.name: policy.description for policy in POLICIES}


@pytest.fixture(scope="module")
def pack() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    with running_pack(STACK_CONFIG) as stub:
        yield stub


def diagnostic(policy: str, level: str, message: str) -> tuple[str, str, str]:
    return (policy, level, f"{DESCRIPTION[policy]}\n{message}")


def test_get_analyzer_info_lists_every_policy_with_level_severity_and_schema(pack) -> None:
    info = pack.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "finops"
    assert info.supportsConfig
    listed = {
        p.name: (
            LEVEL_NAMES[p.enforcementLevel],
            analyzer_pb2.PolicySeverity.Name(p.severity),
            analyzer_pb2.PolicyType.Name(p.policy_type),
        )
        for p in info.policies
    }
    assert listed == {
        "required-tags": ("mandatory", "POLICY_SEVERITY_HIGH", "POLICY_TYPE_RESOURCE"),
        "gpu-instance-oversized": ("mandatory", "POLICY_SEVERITY_HIGH", "POLICY_TYPE_RESOURCE"),
        "training-on-spot": ("mandatory", "POLICY_SEVERITY_MEDIUM", "POLICY_TYPE_RESOURCE"),
        "previous-generation-accelerator": (
            "advisory",
            "POLICY_SEVERITY_LOW",
            "POLICY_TYPE_RESOURCE",
        ),
        "inference-on-cheaper-chip": ("advisory", "POLICY_SEVERITY_LOW", "POLICY_TYPE_RESOURCE"),
        "budget-required": ("mandatory", "POLICY_SEVERITY_MEDIUM", "POLICY_TYPE_STACK"),
        "stack-cost-ceiling": ("mandatory", "POLICY_SEVERITY_HIGH", "POLICY_TYPE_STACK"),
        "imdsv2-required": ("mandatory", "POLICY_SEVERITY_HIGH", "POLICY_TYPE_RESOURCE"),
    }
    oversized = next(p for p in info.policies if p.name == "gpu-instance-oversized")
    schema = json_format.MessageToDict(oversized.configSchema.properties)
    assert schema["limits"]["type"] == "object"
    assert schema["limits"]["default"]["dev"]["maxAcceleratorsPerInstance"] == 1
    spot = next(p for p in info.policies if p.name == "training-on-spot")
    assert json_format.MessageToDict(spot.configSchema.properties)[
        "maxOnDemandPercentAboveBase"
    ] == {"default": 20.0, "type": "number"}
    assert all(p.remediation_steps for p in info.policies)


def test_analyze_untagged_p5_template_in_dev(pack) -> None:
    configure(pack, {})
    found = analyze(pack, LT, "train-lt", {"instanceType": "p5.48xlarge"})
    assert found == [
        diagnostic(
            "required-tags",
            "mandatory",
            "tags: missing Project, Team, Environment, ModelVersion; tags do not reach launched "
            "instances (no tag specification); tags do not reach launched volumes (no tag "
            "specification)",
        ),
        diagnostic(
            "gpu-instance-oversized",
            "mandatory",
            "p5.48xlarge (8 x H100, $55.04/h) in dev: 8 accelerators > 1 allowed, H100 is not "
            "allowed, $55.04/h > $5.00/h",
        ),
        diagnostic(
            "imdsv2-required",
            "mandatory",
            'metadata httpTokens is not set, so IMDSv1 is allowed; set it to "required"',
        ),
    ]


def test_analyze_happy_template_has_no_diagnostics(pack) -> None:
    configure(pack, {})
    assert analyze(pack, LT, "train-lt", launch_template()) == []


def test_configure_sets_levels_and_thresholds(pack) -> None:
    configure(
        pack,
        {
            "gpu-instance-oversized": (
                "advisory",
                {"limits": {"dev": {"maxAcceleratorsPerInstance": 4, "maxUsdPerHour": 6}}},
            ),
            "required-tags": "disabled",
        },
    )
    assert analyze(pack, LT, "lt", launch_template(instanceType="g5.12xlarge")) == []
    assert analyze(pack, LT, "lt", launch_template(instanceType="g5.48xlarge")) == [
        diagnostic(
            "gpu-instance-oversized",
            "advisory",
            "g5.48xlarge (8 x A10G, $16.29/h) in dev: 8 accelerators > 4 allowed, "
            "$16.29/h > $6.00/h",
        )
    ]


def test_values_unknown_during_preview_are_advisories_not_crashes(pack) -> None:
    configure(pack, {})
    props = launch_template(instanceType=proxy.UNKNOWN_STRING_VALUE)
    assert analyze(pack, LT, "lt", props) == [
        (
            "gpu-instance-oversized",
            "advisory",
            "can't run policy 'gpu-instance-oversized' from policy pack 'finops@v0.0.1' during "
            "preview: lt: instance type is unknown until apply",
        ),
        (
            "imdsv2-required",
            "advisory",
            "can't run policy 'imdsv2-required' from policy pack 'finops@v0.0.1' during "
            "preview: lt: instance type or metadata options unknown until apply",
        ),
    ]


def test_analyze_reads_the_component_from_the_urn(pack) -> None:
    configure(pack, {})
    # an ASG inside an inference component is not a training fleet
    on_demand = fleet()
    on_demand["mixedInstancesPolicy"]["instancesDistribution"][
        "onDemandPercentageAboveBaseCapacity"
    ] = 100
    serving = analyze(pack, ASG, "serve-asg", on_demand, ("finops:aws:InferenceEndpoint",))
    assert [d[0] for d in serving] == ["inference-on-cheaper-chip"]
    assert analyze(pack, ASG, "train-asg", on_demand, ("finops:aws:GpuTrainingFleet",)) == [
        diagnostic(
            "training-on-spot",
            "mandatory",
            "100% of capacity above an on-demand base of 0 nodes is on demand; at most 20% "
            "allowed in dev",
        )
    ]


def test_analyze_stack_budget_and_ceiling(pack) -> None:
    configure(pack, {})
    # 4 x g5.12xlarge on demand ($5.672/h) x 730 h; the group gets its type from the template
    group = fleet(desiredCapacity=4, maxSize=4, mixedInstancesPolicy=None)
    template = launch_template(instanceType="g5.12xlarge")
    found = analyze_stack(
        pack,
        [
            (LT, "train-lt", template, []),
            (ASG, "train-asg", group, ["train-lt"]),
            (BUDGET, "other-budget", budget(project="speech"), []),
        ],
    )
    assert found == [
        diagnostic(
            "budget-required",
            "mandatory",
            "project 'vision' owns 2 resources and no budget covers it; add a finops:budgets "
            "entry with project: vision",
        ),
        diagnostic(
            "stack-cost-ceiling",
            "mandatory",
            "estimated $16,562.24/month exceeds the stack ceiling (finops:costCeilingUsd) of "
            "$5,000.00/month by $11,562.24; by resource: train-asg $16,562.24",
        ),
    ]


def test_remediate_adds_the_stack_tags(pack) -> None:
    configure(pack, {"required-tags": "remediate"})
    response = pack.Remediate(
        analyzer_pb2.AnalyzeRequest(
            type=LT,
            name="lt",
            urn=urn(LT, "lt"),
            properties=struct({"instanceType": "g5.xlarge", "tags": {"ModelVersion": "v7"}}),
        )
    )
    assert [r.policyName for r in response.remediations] == ["required-tags"]
    props = json_format.MessageToDict(response.remediations[0].properties)
    stack = {k: v for k, v in tags(ModelVersion=None).items()}
    assert props["tags"] == {**stack, "ModelVersion": "v7"}
    assert props["tagSpecifications"] == [
        {"resourceType": kind, "tags": stack}
        for kind in ("instance", "volume", "network-interface")
    ]
