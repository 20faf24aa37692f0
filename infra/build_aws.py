"""Compose the AWS components a stack's config asks for.

- every training fleet with `cloud: aws` -> `aifinops.components.aws.GpuTrainingFleet`, named as the fleet;
  fleets without `subnetIds` share one `aifinops.components.aws.FleetNetwork` per region and egress
  mode (`network-<region>[-nat]`: a VPC per fleet would run into the five-VPC default quota);
- every inference endpoint with `cloud: aws` -> `aifinops.components.aws.InferenceEndpoint`, or with
  `hosting: serverless` -> `aifinops.components.aws.ServerlessInferenceEndpoint`;
- every budget with `cloud: aws` -> `aifinops.components.aws.ProjectBudget`, named `<project>-budget`
  (`aws-account-budget` for an account budget, one without `project`); the first one
  activates the finops tag keys as cost-allocation tags (once per account).

All of them use one explicit AWS provider (and, for scale-to-zero endpoints, one aws-native
provider) whose `default_tags` carry the stack's tags, so that
resources created outside these components (and anything a component forgets) are tagged too;
the stack transform in `__main__.py` writes the same tags into every resource's inputs, where
the policy pack and checkov look.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from aifinops.components.aws import budget as aws_budget
from aifinops.components.aws import fleet as aws_fleet
from aifinops.components.aws import inference as aws_inference
from aifinops.components.aws import network as aws_network
from aifinops.components.aws import serverless_endpoint as aws_serverless
from aifinops.config import Cloud, Hosting, StackConfig


def provider(config: StackConfig) -> aws.Provider:
    """The stack's AWS provider: its region and its tags as `default_tags`."""
    return aws.Provider(
        "aws-finops",
        aws.ProviderArgs(
            region=config.region(Cloud.AWS),
            default_tags=aws.ProviderDefaultTagsArgs(tags=config.tags.as_dict()),
        ),
    )


def native_provider(config: StackConfig) -> aws_native.Provider:
    """The aws-native provider (only scale-to-zero endpoints use it: their inference
    component), with the same region and tags."""
    return aws_native.Provider(
        "aws-native-finops",
        aws_native.ProviderArgs(
            region=config.region(Cloud.AWS),
            default_tags=aws_native.ProviderDefaultTagsArgs(tags=config.tags.as_dict()),
        ),
    )


def build(config: StackConfig) -> dict[str, Any]:
    """Create the AWS resources of `config`; returns the stack exports."""
    fleets = [f for f in config.training_fleets if f.cloud == Cloud.AWS]
    endpoints = [e for e in config.inference_endpoints if e.cloud == Cloud.AWS]
    budgets = [b for b in config.budgets if b.cloud == Cloud.AWS]
    if not (fleets or endpoints or budgets):
        return {}
    providers: dict[str, pulumi.ProviderResource] = {"aws": provider(config)}
    if any(e.replicas is not None and e.replicas.min == 0 for e in endpoints):
        providers["aws-native"] = native_provider(config)
    opts = pulumi.ResourceOptions(providers=providers)
    exports: dict[str, Any] = {}

    networks: dict[tuple[str, str], aws_network.AwsFleetNetwork] = {}
    for fleet in fleets:
        fleet_args = aws_fleet.from_config(fleet, config)
        if not fleet.subnet_ids:
            region = config.region(Cloud.AWS, fleet.region)
            egress = aws_network.FleetEgress(fleet_args.pop("egress", "public-ip"))
            key = (region, egress.value)
            if key not in networks:
                suffix = "" if egress == aws_network.FleetEgress.PUBLIC_IP else "-nat"
                networks[key] = aws_network.AwsFleetNetwork(
                    f"network-{region}{suffix}",
                    {"tags": config.tags.as_dict(), "egress": egress, "region": region},
                    opts,
                )
                exports[f"network-{region}{suffix}-vpc"] = networks[key].vpc_id
            network = networks[key]
            fleet_args["vpc_id"] = network.vpc_id  # type: ignore[typeddict-item]
            fleet_args["subnet_ids"] = network.subnet_ids  # type: ignore[typeddict-item]
            fleet_args["associate_public_ip"] = network.associate_public_ip
        component = aws_fleet.AwsGpuTrainingFleet(fleet.name, fleet_args, opts)
        exports[f"{fleet.name}-instance-types"] = component.instance_types
        exports[f"{fleet.name}-group"] = component.group_name
        exports[f"{fleet.name}-on-demand-group"] = component.on_demand_group_name
        exports[f"{fleet.name}-checkpoint-bucket"] = component.checkpoint_bucket

    for endpoint in endpoints:
        if endpoint.hosting == Hosting.SERVERLESS:
            serverless = aws_serverless.AwsServerlessInferenceEndpoint(
                endpoint.name, aws_serverless.from_config(endpoint, config), opts
            )
            exports[f"{endpoint.name}-endpoint"] = serverless.endpoint_name
            exports[f"{endpoint.name}-memory-mb"] = serverless.memory_size_mb
            continue
        endpoint_component = aws_inference.AwsInferenceEndpoint(
            endpoint.name, aws_inference.from_config(endpoint, config), opts
        )
        exports[f"{endpoint.name}-endpoint"] = endpoint_component.endpoint_name
        exports[f"{endpoint.name}-instance-type"] = endpoint_component.instance_type
        if endpoint_component.cheaper_option:
            exports[f"{endpoint.name}-cheaper-option"] = endpoint_component.cheaper_option

    for i, budget in enumerate(budgets):
        budget_component = aws_budget.AwsProjectBudget(
            budget.component_name,
            aws_budget.from_config(budget, config, activate_cost_allocation_tags=i == 0),
            opts,
        )
        prefix = budget.export_prefix
        exports[f"{prefix}-aws-budget"] = budget_component.budget_name
        exports[f"{prefix}-alerts-topic"] = budget_component.alerts_topic_arn
        exports[f"{prefix}-cost-allocation"] = budget_component.cost_allocation_note
    return exports
