"""AWS components: `finops:aws:GpuTrainingFleet`, `finops:aws:InferenceEndpoint`,
`finops:aws:ProjectBudget` (docs/components-aws.md)."""

from components.aws.fleet import GpuTrainingFleet, GpuTrainingFleetArgs

__all__ = ["GpuTrainingFleet", "GpuTrainingFleetArgs"]
