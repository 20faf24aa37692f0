"""AWS components: `finops:aws:GpuTrainingFleet`, `finops:aws:InferenceEndpoint`,
`finops:aws:ServerlessInferenceEndpoint`, `finops:aws:ProjectBudget` (docs/components-aws.md).

Classes carry the cloud in their name (`AwsGpuTrainingFleet`) because a component provider
host names every hosted component by its class name in one `index` module, where the GCP and
Azure fleets also live; the short names (`aifinops.components.aws.GpuTrainingFleet`) are aliases of the
same classes.
"""

from aifinops.components.aws.budget import AwsProjectBudget, AwsProjectBudgetArgs
from aifinops.components.aws.fleet import AwsGpuTrainingFleet, AwsGpuTrainingFleetArgs
from aifinops.components.aws.inference import (
    AwsInferenceEndpoint,
    AwsInferenceEndpointArgs,
    cheaper_inferentia_option,
)
from aifinops.components.aws.serverless_endpoint import (
    AwsServerlessInferenceEndpoint,
    AwsServerlessInferenceEndpointArgs,
)

GpuTrainingFleet = AwsGpuTrainingFleet
GpuTrainingFleetArgs = AwsGpuTrainingFleetArgs
InferenceEndpoint = AwsInferenceEndpoint
InferenceEndpointArgs = AwsInferenceEndpointArgs
ServerlessInferenceEndpoint = AwsServerlessInferenceEndpoint
ServerlessInferenceEndpointArgs = AwsServerlessInferenceEndpointArgs
ProjectBudget = AwsProjectBudget
ProjectBudgetArgs = AwsProjectBudgetArgs

COMPONENTS = [
    AwsGpuTrainingFleet,
    AwsInferenceEndpoint,
    AwsServerlessInferenceEndpoint,
    AwsProjectBudget,
]
"""What `components/__main__.py` hosts for other languages."""

__all__ = [
    "COMPONENTS",
    "AwsGpuTrainingFleet",
    "AwsGpuTrainingFleetArgs",
    "AwsInferenceEndpoint",
    "AwsInferenceEndpointArgs",
    "AwsProjectBudget",
    "AwsProjectBudgetArgs",
    "AwsServerlessInferenceEndpoint",
    "AwsServerlessInferenceEndpointArgs",
    "GpuTrainingFleet",
    "GpuTrainingFleetArgs",
    "InferenceEndpoint",
    "InferenceEndpointArgs",
    "ProjectBudget",
    "ProjectBudgetArgs",
    "ServerlessInferenceEndpoint",
    "ServerlessInferenceEndpointArgs",
    "cheaper_inferentia_option",
]
