"""AWS components: `finops:aws:GpuTrainingFleet`, `finops:aws:InferenceEndpoint`,
`finops:aws:ProjectBudget` (docs/components-aws.md)."""

from components.aws.budget import ProjectBudget, ProjectBudgetArgs
from components.aws.fleet import GpuTrainingFleet, GpuTrainingFleetArgs
from components.aws.inference import (
    InferenceEndpoint,
    InferenceEndpointArgs,
    cheaper_inferentia_option,
)

COMPONENTS = [GpuTrainingFleet, InferenceEndpoint, ProjectBudget]

__all__ = [
    "COMPONENTS",
    "GpuTrainingFleet",
    "GpuTrainingFleetArgs",
    "InferenceEndpoint",
    "InferenceEndpointArgs",
    "ProjectBudget",
    "ProjectBudgetArgs",
    "cheaper_inferentia_option",
]
