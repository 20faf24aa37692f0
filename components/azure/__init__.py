"""Azure components: GPU training fleets on a Flexible scale set with Spot Priority Mix.

The class carries the cloud in its name (`AzureGpuTrainingFleet`) because a component provider
host names every hosted component by its class name in one `index` module, where the AWS and
GCP fleets also live; `components.azure.GpuTrainingFleet` is an alias of the same class. The
Pulumi type token is `finops:azure:GpuTrainingFleet`.
"""

from components.azure.training_fleet import (
    AzureEvictionPolicy,
    AzureGpuTrainingFleet,
    AzureGpuTrainingFleetArgs,
)

GpuTrainingFleet = AzureGpuTrainingFleet
GpuTrainingFleetArgs = AzureGpuTrainingFleetArgs

# What components/__main__.py hosts for other languages (tokens finops:index:<class name>).
COMPONENTS = [AzureGpuTrainingFleet]

__all__ = [
    "COMPONENTS",
    "AzureEvictionPolicy",
    "AzureGpuTrainingFleet",
    "AzureGpuTrainingFleetArgs",
    "GpuTrainingFleet",
    "GpuTrainingFleetArgs",
]
