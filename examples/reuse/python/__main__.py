"""The research team's GPU platform: a training fleet, an inference endpoint and a budget from
aifinops, a dataset bucket of the team's own, every resource tagged with the team's tags."""

import pulumi
from components.storage import DatasetBucket
from policies.naming import name_problems

from aifinops.components.aws import GpuTrainingFleet, InferenceEndpoint, ProjectBudget
from aifinops.tagging import tagging_transform

config = pulumi.Config("gpu-platform")
team = config.require("team")
tags = {
    "Project": f"{team}-llm",
    "Team": team,
    "Environment": pulumi.get_stack(),
    "CostCenter": config.require("costCenter"),
}
names = {"fleet": f"{team}-train", "endpoint": f"{team}-serve", "data": f"{team}-datasets"}
problems = name_problems(team, list(names.values()))
if problems:
    raise ValueError("; ".join(problems))

# The tags on every taggable resource's inputs, the team's own bucket included: registered
# before any resource, as the aifinops program does.
pulumi.runtime.register_resource_transform(tagging_transform(tags))

data = DatasetBucket(names["data"])
fleet = GpuTrainingFleet(
    names["fleet"],
    {
        "nodes_max": 4,
        "nodes_desired": 1,
        "model_version": "llm-7b-v3",
        "tags": tags,
        "instance_types": ["g5.12xlarge", "g6.12xlarge"],
        # the agent the nodes install: the same aifinops wheel, bundled with its pinned
        # dependencies and uploaded to the fleet's bucket (nodes use no public index)
        "agent_wheel": config.require("agentWheel"),
    },
)
endpoint = InferenceEndpoint(
    names["endpoint"],
    {
        "model_version": "llm-7b-v3",
        "tags": tags,
        "serving": "model-archive",
        "model_data_url": "s3://research-models/llm-7b-v3/model.tar.gz",
        "instance_type": "ml.g5.xlarge",
        "replicas_min": 1,
        "replicas_max": 2,
    },
)
budget = ProjectBudget(
    f"{team}-budget",
    {
        "project": tags["Project"],
        "monthly_limit_usd": float(config.get_int("monthlyBudgetUsd") or 6000),
        "notify_emails": [f"{team}-leads@example.com"],
        "tags": tags,
    },
)

pulumi.export("dataset_bucket", data.bucket_name)
pulumi.export("training_group", fleet.group_name)
pulumi.export("endpoint", endpoint.endpoint_name)
