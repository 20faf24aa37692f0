"""inference-on-cheaper-chip with the stated traffic of a Pulumi stack: provisioned,
scale-to-zero and serverless compared, the cheapest that fits the model named with the
break-even traffic; nothing said where the stack states no traffic or already serves cheapest."""

from __future__ import annotations

from typing import Any

from builders import ENDPOINT_CONFIG, STACK_RULES_OFF, endpoint_config, resource

from aifinops.policies.context import Context, endpoint_traffic
from aifinops.policies.verdicts import evaluate

FAQ = {
    "name": "faq",
    "cloud": "aws",
    "instanceType": "ml.inf2.xlarge",
    "replicas": {"min": 1, "max": 2},
    "modelVersion": "v1",
    "modelMemoryGib": 3,
    "requestsPerMonth": 100_000,
    "meanDurationMs": 800,
}


def advice(entry: dict[str, Any], name: str = "faq-config") -> list[str]:
    variant = {"variantName": "primary", "modelName": "m", "instanceType": "ml.inf2.xlarge",
               "initialInstanceCount": 1}  # fmt: skip
    config = resource(ENDPOINT_CONFIG, endpoint_config(productionVariants=[variant]), name=name)
    context = Context(endpoint_traffic=endpoint_traffic([entry], {"aws": "us-east-1"}))
    return [
        v.message
        for v in evaluate([config], context, STACK_RULES_OFF)
        if v.policy == "inference-on-cheaper-chip"
    ]


def test_low_traffic_on_a_provisioned_endpoint_is_told_serverless_with_the_break_even() -> None:
    (message,) = advice(FAQ)
    assert message.startswith(
        "for 100,000 requests/month of 800 ms, serverless (SageMaker serverless 3072 MB) is the "
        "cheapest that fits 3 GiB: $4.80/month against $722.70 for provisioned now"
    )
    assert "it stays cheapest below 15,056,251 requests/month (break-even with provisioned)" in (
        message
    )
    assert "cold start" in message


def test_no_traffic_stated_or_other_resources_no_serving_advice() -> None:
    quiet = {k: v for k, v in FAQ.items() if k not in ("requestsPerMonth", "meanDurationMs")}
    assert advice(quiet) == []
    assert advice(FAQ, name="other-config") == []


def test_busy_endpoint_stays_provisioned() -> None:
    assert advice({**FAQ, "requestsPerMonth": 50_000_000}) == []
