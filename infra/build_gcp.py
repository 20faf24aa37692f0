"""Compose the GCP components a stack's config asks for.

- every training fleet with `cloud: gcp` -> `aifinops.components.gcp.GpuTrainingFleet`, named as the fleet;
  fleets without `subnetIds` share one `aifinops.components.gcp.FleetNetwork` per region
  (`network-<region>`: Cloud NAT, Private Google Access);
- every inference endpoint with `cloud: gcp` and `hosting: gke` ->
  `aifinops.components.gcp.GkeTpuInferenceEndpoint` (vLLM on a GKE cluster's TPU node pools,
  `replicas.min` on demand and Spot above it; its nodes on the region's shared `FleetNetwork`);
  with `hosting: provisioned` -> `aifinops.components.gcp.TpuInferenceEndpoint` (a
  Vertex AI endpoint on TPUs: `instanceType` is a TPU slice such as `v5litepod-4` or its
  Vertex machine type `ct5lp-hightpu-4t`, or `accelerator` a TPU generation such as
  `TPU-v5e`; `serving: llm` and `modelId` name the Hugging Face model), or with
  `hosting: serverless` -> `aifinops.components.gcp.ServerlessInferenceEndpoint` (Cloud Run, scale to
  zero, optional L4);
- every budget with `cloud: gcp` -> `aifinops.components.gcp.ProjectBudget`, named `<project>-budget`
  (`gcp-account-budget` without `project`: all spend of the stack's GCP project).

The billing account of the budgets comes from the stack config key `finops:gcpBillingAccount`.
When it is absent during a preview (the offline engine, `pulumi preview`) a placeholder id is
used and a warning says so; an update without it stops with an error.
"""

from __future__ import annotations

from typing import Any

import pulumi

from aifinops.components.agent_artifact import agent_args
from aifinops.components.gcp import (
    GcpGpuTrainingFleetArgs,
    GcpProjectBudgetArgs,
    GkeTpuInferenceEndpoint,
    GkeTpuInferenceEndpointArgs,
    GpuTrainingFleet,
    ProjectBudget,
    ServerlessInferenceEndpoint,
    ServerlessInferenceEndpointArgs,
    TpuInferenceEndpoint,
    TpuInferenceEndpointArgs,
)
from aifinops.components.gcp.network import GcpFleetNetwork
from aifinops.config import Cloud, Hosting, InferenceEndpoint, ServingKind, StackConfig

BILLING_ACCOUNT_KEY = "gcpBillingAccount"
PLACEHOLDER_BILLING_ACCOUNT = "000000-000000-000000"


def billing_account() -> str:
    """`finops:gcpBillingAccount`, or a placeholder during a preview (with a warning)."""
    configured = pulumi.Config("finops").get(BILLING_ACCOUNT_KEY)
    if configured:
        return configured
    if pulumi.runtime.is_dry_run():
        pulumi.log.warn(
            f"finops:{BILLING_ACCOUNT_KEY} is not set: GCP budgets use the placeholder billing "
            f"account {PLACEHOLDER_BILLING_ACCOUNT} in this preview; set it before `pulumi up`"
        )
        return PLACEHOLDER_BILLING_ACCOUNT
    raise ValueError(
        f"finops:{BILLING_ACCOUNT_KEY} is required for GCP budgets: "
        f"pulumi config set finops:{BILLING_ACCOUNT_KEY} XXXXXX-XXXXXX-XXXXXX"
    )


def _serverless_args(
    endpoint: InferenceEndpoint, config: StackConfig
) -> ServerlessInferenceEndpointArgs:
    """A `hosting: serverless` endpoint as a Cloud Run service."""
    if not endpoint.image:
        raise ValueError(
            f"finops:inferenceEndpoints {endpoint.name!r}: image is required for a Cloud Run "
            "endpoint (the serving container, REGION-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG)"
        )
    args: ServerlessInferenceEndpointArgs = {
        "model_version": endpoint.model_version,
        "image": endpoint.image,
        "region": config.region(Cloud.GCP, endpoint.region),
        "tags": config.tags.as_dict(),
        "requests_per_month": endpoint.requests_per_month,
        "mean_duration_ms": endpoint.mean_duration_ms,
        "accelerator": endpoint.accelerator,
        "model_data_url": endpoint.model_data_url,
        "model_memory_gib": endpoint.model_memory_gib,
    }
    if endpoint.replicas is not None:
        args["replicas_min"] = endpoint.replicas.min
        args["replicas_max"] = endpoint.replicas.max
    if endpoint.cpu is not None:
        args["cpu"] = endpoint.cpu
    if endpoint.memory_mb is not None:
        args["memory_mb"] = endpoint.memory_mb
    if endpoint.max_concurrency is not None:
        args["max_concurrency"] = endpoint.max_concurrency
    return args


def _gke_args(
    endpoint: InferenceEndpoint, config: StackConfig, network: GcpFleetNetwork
) -> GkeTpuInferenceEndpointArgs:
    """A `hosting: gke` endpoint: vLLM on TPU node pools of a GKE cluster."""
    assert endpoint.replicas is not None and endpoint.image and endpoint.zone  # the schema's
    args: GkeTpuInferenceEndpointArgs = {
        "model_version": endpoint.model_version,
        "serving": endpoint.serving or ServingKind.LLM,
        "model_id": endpoint.model_id or "",
        "image": endpoint.image,
        "zone": endpoint.zone,
        "replicas_min": endpoint.replicas.min,
        "replicas_max": endpoint.replicas.max,
        "region": config.region(Cloud.GCP, endpoint.region),
        "network": network.network,  # type: ignore[typeddict-item]
        "subnetwork": network.subnetwork,  # type: ignore[typeddict-item]
        "tags": config.tags.as_dict(),
    }
    if endpoint.instance_type:
        args["accelerator_type"] = endpoint.instance_type
    else:
        assert endpoint.accelerator is not None
        args["accelerator"] = endpoint.accelerator
    if endpoint.model_memory_gib:
        args["model_memory_gib"] = endpoint.model_memory_gib
    if endpoint.env:
        args["environment"] = {k: str(v) for k, v in endpoint.env.items()}
    if endpoint.target_queue_length is not None:
        args["target_queue_length"] = endpoint.target_queue_length
    if endpoint.max_model_len is not None:
        args["max_model_len"] = endpoint.max_model_len
    if endpoint.hugging_face_token_secret:
        args["hugging_face_token_secret"] = endpoint.hugging_face_token_secret
    return args


def _network(networks: dict[str, GcpFleetNetwork], region: str) -> GcpFleetNetwork:
    """The region's shared network (Cloud NAT, Private Google Access), made once."""
    if region not in networks:
        networks[region] = GcpFleetNetwork(f"network-{region}", {"region": region})
    return networks[region]


def build(config: StackConfig) -> dict[str, Any]:
    """Create the GCP resources of `config`; returns the stack exports."""
    exports: dict[str, Any] = {}
    tags = config.tags.as_dict()
    networks: dict[str, GcpFleetNetwork] = {}
    for fleet in config.training_fleets:
        if fleet.cloud != Cloud.GCP:
            continue
        if fleet.instance_types and len(fleet.instance_types) > 1:
            raise ValueError(
                f"finops:trainingFleets {fleet.name!r}: a GCP fleet takes one instance type "
                f"(a managed instance group's template has one machine type); "
                f"got {fleet.instance_types}"
            )
        region = config.region(Cloud.GCP, fleet.region)
        fleet_args: GcpGpuTrainingFleetArgs = {
            "model_version": fleet.model_version,
            "node_count": fleet.nodes.desired,
            "node_count_max": fleet.nodes.max,
            "capacity": fleet.capacity,
            "fallback_after_minutes": fleet.fallback_after_minutes,
            "spot_stable_minutes": fleet.spot_stable_minutes,
            "checkpoint_grace_seconds": min(fleet.checkpoint_grace_seconds, 3600),
            "on_demand_base": fleet.on_demand_base,
            "region": region,
            "checkpoint_retention_days": fleet.checkpoint_retention_days,
            "tags": tags,
            **agent_args(config.agent),  # type: ignore[typeddict-item]
        }
        if fleet.subnet_ids:
            fleet_args["subnetwork"] = fleet.subnet_ids[0]
            fleet_args["network"] = fleet.subnet_ids[0].split("/subnetworks/")[0]
        else:
            network = _network(networks, region)
            fleet_args["network"] = network.network  # type: ignore[typeddict-item]
            fleet_args["subnetwork"] = network.subnetwork  # type: ignore[typeddict-item]
        if fleet.scale_on is not None:
            fleet_args["scale_on_subscription"] = fleet.scale_on.queue
            fleet_args["jobs_per_node"] = fleet.scale_on.jobs_per_node
            fleet_args["node_count_min"] = fleet.nodes.min
        if fleet.instance_types:
            fleet_args["instance_type"] = fleet.instance_types[0]
        else:
            assert fleet.accelerator is not None
            fleet_args["accelerator"] = fleet.accelerator
            fleet_args["accelerators_per_node"] = fleet.accelerators_per_node or 1
        component = GpuTrainingFleet(fleet.name, fleet_args)
        exports[f"{fleet.name}-machine-type"] = component.machine_type
        exports[f"{fleet.name}-checkpoint-bucket"] = component.checkpoint_bucket
        if component.spot_group is not None:
            exports[f"{fleet.name}-spot-group"] = component.spot_group
        if component.on_demand_group is not None:
            exports[f"{fleet.name}-on-demand-group"] = component.on_demand_group

    for endpoint in config.inference_endpoints:
        if endpoint.cloud != Cloud.GCP:
            continue
        if endpoint.hosting == Hosting.SERVERLESS:
            run = ServerlessInferenceEndpoint(endpoint.name, _serverless_args(endpoint, config))
            exports[f"{endpoint.name}-service"] = run.service_name
            exports[f"{endpoint.name}-uri"] = run.uri
            continue
        if endpoint.hosting == Hosting.GKE:
            region = config.region(Cloud.GCP, endpoint.region)
            gke = GkeTpuInferenceEndpoint(
                endpoint.name, _gke_args(endpoint, config, _network(networks, region))
            )
            exports[f"{endpoint.name}-url"] = gke.request_url
            exports[f"{endpoint.name}-cluster"] = gke.cluster_name
            exports[f"{endpoint.name}-machine-type"] = gke.machine_type
            continue
        assert endpoint.replicas is not None  # the schema requires it when provisioned
        endpoint_args: TpuInferenceEndpointArgs = {
            "model_version": endpoint.model_version,
            "serving": endpoint.serving or ServingKind.LLM,  # the schema requires llm on GCP
            "model_id": endpoint.model_id or "",
            "replicas_min": endpoint.replicas.min,
            "replicas_max": endpoint.replicas.max,
            "spot": endpoint.spot,
            "target_duty_cycle_percent": endpoint.target_duty_cycle_percent,
            "region": config.region(Cloud.GCP, endpoint.region),
            "tags": tags,
        }
        if endpoint.instance_type:
            endpoint_args["accelerator_type"] = endpoint.instance_type
        else:
            assert endpoint.accelerator is not None
            endpoint_args["accelerator"] = endpoint.accelerator
        if endpoint.model_memory_gib:
            endpoint_args["model_memory_gib"] = endpoint.model_memory_gib
        if endpoint.image:
            endpoint_args["image"] = endpoint.image
        if endpoint.env:
            endpoint_args["environment"] = {k: str(v) for k, v in endpoint.env.items()}
        tpu = TpuInferenceEndpoint(endpoint.name, endpoint_args)
        exports[f"{endpoint.name}-url"] = tpu.predict_url
        exports[f"{endpoint.name}-machine-type"] = tpu.machine_type
        exports[f"{endpoint.name}-invoker"] = tpu.invoker_email

    gcp_budgets = [b for b in config.budgets if b.cloud == Cloud.GCP]
    account = billing_account() if gcp_budgets else ""
    for budget in gcp_budgets:
        if budget.enforce:
            pulumi.log.warn(
                f"finops:budgets {budget.scope!r}: enforce is not built on GCP; "
                "the budget alerts (e-mail, Pub/Sub) but scales nothing down"
            )
        budget_args: GcpProjectBudgetArgs = {
            "project": budget.project,
            "monthly_limit_usd": budget.monthly_limit_usd,
            "billing_account": account,
            "notify_emails": list(budget.notify),
            "thresholds_percent": list(budget.thresholds_percent),
            "tags": tags,
        }
        component_budget = ProjectBudget(budget.component_name, budget_args)
        exports[f"{budget.export_prefix}-gcp-budget"] = component_budget.budget_name
    return exports
