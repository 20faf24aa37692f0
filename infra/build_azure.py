"""Compose the Azure components a stack's config asks for.

Every training fleet with `cloud: azure` -> `aifinops.components.azure.GpuTrainingFleet`, named as the
fleet; every budget with `cloud: azure` -> `aifinops.components.azure.ProjectBudget`, named
`<project>-budget` (a consumption budget on the subscription, filtered on the Project tag), or
`azure-account-budget` without `project` (the whole subscription, no filter).
(Inference endpoints support aws and gcp only; the stack-config schema rejects `cloud: azure`
endpoints.)

The admin SSH public key of the fleets comes from the stack config key
`finops:azureSshPublicKey`. When it is absent during a preview (the offline engine,
`pulumi preview`) a placeholder key is used and a warning says so; an update without it stops
with an error.
"""

from __future__ import annotations

from typing import Any

import pulumi

from aifinops.components.agent_artifact import agent_args
from aifinops.components.azure import (
    AzureGpuTrainingFleetArgs,
    AzureProjectBudgetArgs,
    GpuTrainingFleet,
    ProjectBudget,
)
from aifinops.components.azure.training_fleet import AzureEgress
from aifinops.config import Cloud, StackConfig

SSH_KEY_KEY = "azureSshPublicKey"
PLACEHOLDER_SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFinopsPreviewPlaceholderKeyNotForUse preview"
)


def admin_ssh_public_key() -> str:
    """`finops:azureSshPublicKey`, or a placeholder during a preview (with a warning)."""
    configured = pulumi.Config("finops").get(SSH_KEY_KEY)
    if configured:
        return configured
    if pulumi.runtime.is_dry_run():
        pulumi.log.warn(
            f"finops:{SSH_KEY_KEY} is not set: Azure fleets use a placeholder admin SSH key in "
            "this preview; set it before `pulumi up`"
        )
        return PLACEHOLDER_SSH_KEY
    raise ValueError(
        f"finops:{SSH_KEY_KEY} is required for Azure fleets: "
        f'pulumi config set finops:{SSH_KEY_KEY} "$(cat ~/.ssh/id_ed25519.pub)"'
    )


def build(config: StackConfig) -> dict[str, Any]:
    """Create the Azure resources of `config`; returns the stack exports."""
    exports: dict[str, Any] = {}
    for budget in (b for b in config.budgets if b.cloud == Cloud.AZURE):
        if budget.enforce:
            pulumi.log.warn(
                f"finops:budgets {budget.project!r}: enforce is not built on Azure; "
                "the budget notifies but scales nothing down"
            )
        budget_args: AzureProjectBudgetArgs = {
            "project": budget.project,
            "monthly_limit_usd": budget.monthly_limit_usd,
            "notify_emails": list(budget.notify),
            "thresholds_percent": list(budget.thresholds_percent),
        }
        component_budget = ProjectBudget(budget.component_name, budget_args)
        exports[f"{budget.export_prefix}-azure-budget"] = component_budget.budget_name
    fleets = [f for f in config.training_fleets if f.cloud == Cloud.AZURE]
    if not fleets:
        return exports
    ssh_key = admin_ssh_public_key()
    tags = config.tags.as_dict()
    for fleet in fleets:
        if fleet.instance_types and len(fleet.instance_types) > 1:
            raise ValueError(
                f"finops:trainingFleets {fleet.name!r}: an Azure fleet takes one VM size "
                f"(a scale set's sku has one); got {fleet.instance_types}"
            )
        fleet_args: AzureGpuTrainingFleetArgs = {
            "model_version": fleet.model_version,
            "node_count": fleet.nodes.desired,
            "admin_ssh_public_key": ssh_key,
            "capacity": fleet.capacity,
            "on_demand_base": fleet.on_demand_base,
            "checkpoint_grace_seconds": min(max(fleet.checkpoint_grace_seconds, 300), 900),
            "location": config.region(Cloud.AZURE, fleet.region),
            "tags": tags,
            **agent_args(config.agent),  # type: ignore[typeddict-item]
        }
        if fleet.subnet_ids:
            fleet_args["subnet_id"] = fleet.subnet_ids[0]
        if fleet.egress:
            fleet_args["egress"] = AzureEgress(fleet.egress.value)
        if fleet.instance_types:
            fleet_args["vm_size"] = fleet.instance_types[0]
        else:
            assert fleet.accelerator is not None
            fleet_args["accelerator"] = fleet.accelerator
            fleet_args["accelerators_per_node"] = fleet.accelerators_per_node or 1
        component = GpuTrainingFleet(fleet.name, fleet_args)
        exports[f"{fleet.name}-vm-size"] = component.vm_size
        exports[f"{fleet.name}-scale-set"] = component.scale_set_id
    return exports
