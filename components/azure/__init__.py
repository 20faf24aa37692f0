"""Azure components: GPU training fleets on a Flexible scale set with Spot Priority Mix, and
monthly consumption budgets on a project's tagged spend or a whole subscription.

The class carries the cloud in its name (`AzureGpuTrainingFleet`) because a component provider
host names every hosted component by its class name in one `index` module, where the AWS and
GCP fleets also live; `aifinops.components.azure.GpuTrainingFleet` is an alias of the same class. The
Pulumi type token is `finops:azure:GpuTrainingFleet`.
"""

from aifinops.components.azure.budget import AzureProjectBudget, AzureProjectBudgetArgs
from aifinops.components.azure.training_fleet import (
    AzureEvictionPolicy,
    AzureGpuTrainingFleet,
    AzureGpuTrainingFleetArgs,
)

GpuTrainingFleet = AzureGpuTrainingFleet
GpuTrainingFleetArgs = AzureGpuTrainingFleetArgs
ProjectBudget = AzureProjectBudget
ProjectBudgetArgs = AzureProjectBudgetArgs

# What components/__main__.py hosts for other languages (tokens finops:index:<class name>).
COMPONENTS = [AzureGpuTrainingFleet, AzureProjectBudget]

__all__ = [
    "COMPONENTS",
    "AzureEvictionPolicy",
    "AzureGpuTrainingFleet",
    "AzureGpuTrainingFleetArgs",
    "AzureProjectBudget",
    "AzureProjectBudgetArgs",
    "GpuTrainingFleet",
    "GpuTrainingFleetArgs",
    "ProjectBudget",
    "ProjectBudgetArgs",
]
