"""GCP components: GPU training fleets on Spot VMs, TPU inference endpoints (GKE with vLLM, or
Vertex AI), batch
inference on TPU VMs, serverless (Cloud Run) inference endpoints, project and billing-account
budgets.

Classes carry the cloud in their name (`GcpGpuTrainingFleet`) because a component provider
host names every hosted component by its class name in one `index` module, where the AWS and
Azure fleets also live; the short names (`aifinops.components.gcp.GpuTrainingFleet`) are aliases of
the same classes. The Pulumi type tokens are `finops:gcp:<Type>`.
"""

from aifinops.components.gcp.budget import GcpProjectBudget, GcpProjectBudgetArgs
from aifinops.components.gcp.gke_tpu_endpoint import (
    GcpGkeTpuInferenceEndpoint,
    GkeTpuInferenceEndpointArgs,
)
from aifinops.components.gcp.serverless_endpoint import (
    GcpServerlessInferenceEndpoint,
    ServerlessInferenceEndpointArgs,
)
from aifinops.components.gcp.tpu_batch import GcpTpuBatchInference, TpuBatchInferenceArgs
from aifinops.components.gcp.tpu_endpoint import GcpTpuInferenceEndpoint, TpuInferenceEndpointArgs
from aifinops.components.gcp.training_fleet import (
    GcpGpuTrainingFleet,
    GcpGpuTrainingFleetArgs,
    GcpTerminationAction,
)

GpuTrainingFleet = GcpGpuTrainingFleet
GpuTrainingFleetArgs = GcpGpuTrainingFleetArgs
TpuInferenceEndpoint = GcpTpuInferenceEndpoint
GkeTpuInferenceEndpoint = GcpGkeTpuInferenceEndpoint
TpuBatchInference = GcpTpuBatchInference
ServerlessInferenceEndpoint = GcpServerlessInferenceEndpoint
ProjectBudget = GcpProjectBudget
ProjectBudgetArgs = GcpProjectBudgetArgs

# What components/__main__.py hosts for other languages (tokens finops:index:<class name>).
COMPONENTS = [
    GcpGpuTrainingFleet,
    GcpGkeTpuInferenceEndpoint,
    GcpTpuInferenceEndpoint,
    GcpTpuBatchInference,
    GcpServerlessInferenceEndpoint,
    GcpProjectBudget,
]

__all__ = [
    "COMPONENTS",
    "GcpGkeTpuInferenceEndpoint",
    "GcpGpuTrainingFleet",
    "GcpGpuTrainingFleetArgs",
    "GcpProjectBudget",
    "GcpProjectBudgetArgs",
    "GcpServerlessInferenceEndpoint",
    "GcpTerminationAction",
    "GcpTpuBatchInference",
    "GcpTpuInferenceEndpoint",
    "GkeTpuInferenceEndpoint",
    "GkeTpuInferenceEndpointArgs",
    "GpuTrainingFleet",
    "GpuTrainingFleetArgs",
    "ProjectBudget",
    "ProjectBudgetArgs",
    "ServerlessInferenceEndpoint",
    "ServerlessInferenceEndpointArgs",
    "TpuBatchInference",
    "TpuBatchInferenceArgs",
    "TpuInferenceEndpoint",
    "TpuInferenceEndpointArgs",
]
