"""A stack with queue-scaled fleets (`scaleOn`) on AWS and GCP, run through infra/ as `pulumi
preview` would (offline): the keys reach the components, and the cost report says the fleets'
size follows their queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifinops import cost
from aifinops.config import StackConfig
from aifinops.engine import StackRun
from aifinops.engine.stack import run_stack

STACK = """\
config:
  aws:region: us-east-1
  gcp:project: ml-proj-1
  gcp:region: us-central1
  finops:tags: {Project: vision, Team: ml-platform, Environment: dev}
  finops:trainingFleets:
    - name: batch-train
      cloud: aws
      accelerator: A10G
      nodes: {min: 0, desired: 0, max: 4}
      scaleOn: {queue: "arn:aws:sqs:us-east-1:123456789012:train-jobs", jobsPerNode: 1}
      modelVersion: resnet50-v3
    - name: gcp-batch
      cloud: gcp
      accelerator: L4
      capacity: spot-only
      nodes: {min: 1, desired: 1, max: 4}
      scaleOn: {queue: train-jobs, jobsPerNode: 2}
      modelVersion: resnet50-v3
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[StackConfig, StackRun]:
    path = tmp_path_factory.mktemp("queue") / "Pulumi.queue.yaml"
    path.write_text(STACK)
    _path, config, run = run_stack(str(path), Path(__file__).resolve().parents[2])
    return config, run


def test_the_keys_reach_both_clouds_components(stack: tuple[StackConfig, StackRun]) -> None:
    _config, run = stack
    (function,) = run.of_type("aws:lambda/function:Function")
    variables = function.inputs["environment"]["variables"]
    assert variables["QUEUE_URL"] == "https://sqs.us-east-1.amazonaws.com/123456789012/train-jobs"
    assert variables["JOBS_PER_NODE"] == "1"
    (autoscaler,) = run.of_type("gcp:compute/regionAutoscaler:RegionAutoscaler")
    policy = autoscaler.inputs["autoscalingPolicy"]
    assert (policy["minReplicas"], policy["maxReplicas"]) == (1, 4)
    assert policy["metrics"][0]["singleInstanceAssignment"] == 2.0


def test_the_cost_report_says_the_size_follows_the_queue(
    stack: tuple[StackConfig, StackRun],
) -> None:
    config, run = stack
    report = cost.estimate(run, config)
    assert (
        "queue-scaled fleets (batch-train, gcp-batch) at nodes.desired; they run what their "
        "queue asks for, up to nodes.max"
    ) in report.assumptions
