"""Charges besides instances: every one that follows from a stack's configuration, and the
usage-based ones priced from the usage file (`aifinops.usage`).

Each charge is a line of its own under the component that adds it, with its basis:

- a fleet's volumes (AWS launch template block devices, GCP instance template disks, Azure
  scale set OS and data disks) x its nodes, and its telemetry: the agent's config is read
  from the fleet's boot script (what `pulumi up` will install), and the number of metrics
  comes from the agent's own layout (`aifinops.agents.cloudwatch.series_layout`) x GPUs x nodes, plus
  the per-fleet copies per instance type, plus the new series of spot replacements at the
  catalog's interruption rate; PutMetricData requests from its window and batch size;
- an endpoint's ML storage volumes; functions' invocations (their schedules' calls, plus
  the usage file's) and run time; Cloud Scheduler jobs; NAT gateways and interface
  endpoints by the hour; log groups' ingestion and storage for their retention; buckets'
  storage.

Prices come from `aifinops.catalog.charges` and `aifinops.catalog.storage` (list prices, no free
tier subtracted). A price or an input the model cannot read makes the line UNKNOWN with the
reason, never a silent $0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from aifinops.charges import functions, network, volumes
from aifinops.charges.base import Charge, ChargeContext, NodeGroup
from aifinops.charges.functions import calls_per_month
from aifinops.charges.telemetry import agent_config_of, telemetry_charge

if TYPE_CHECKING:
    from aifinops.engine import EngineResource

__all__ = [
    "CHARGERS",
    "Charge",
    "ChargeContext",
    "NodeGroup",
    "agent_config_of",
    "calls_per_month",
    "charges",
    "telemetry_charge",
]

CHARGERS: dict[str, Callable[[EngineResource, ChargeContext], Iterator[Charge]]] = {
    "aws:autoscaling/group:Group": volumes.aws_group,
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": volumes.gcp_group,
    "gcp:compute/instanceGroupManager:InstanceGroupManager": volumes.gcp_group,
    "azure-native:compute:VirtualMachineScaleSet": volumes.azure_vmss,
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": volumes.sagemaker_storage,
    "aws:sagemaker/endpoint:Endpoint": network.sagemaker_endpoint,
    "aws:lambda/function:Function": functions.function_charge,
    "gcp:cloudfunctionsv2/function:Function": functions.function_charge,
    "gcp:cloudscheduler/job:Job": functions.scheduler_job,
    "aws:ec2/natGateway:NatGateway": network.nat_gateway,
    "azure-native:network:NatGateway": network.nat_gateway,
    "aws:ec2/vpcEndpoint:VpcEndpoint": network.vpc_endpoint,
    "gcp:compute/routerNat:RouterNat": network.cloud_nat,
    "aws:cloudwatch/logGroup:LogGroup": network.log_group,
    "aws:s3/bucket:Bucket": network.bucket,
    "aws:s3/bucketV2:BucketV2": network.bucket,
    "gcp:storage/bucket:Bucket": network.bucket,
}
"""Resource type -> the charges it adds besides its own price."""


def charges(ctx: ChargeContext) -> list[Charge]:
    """Every charge of the run's resources, in the run's order."""
    found: list[Charge] = []
    for resource in ctx.run.custom_resources():
        charger = CHARGERS.get(resource.type)
        if charger is not None:
            found.extend(charger(resource, ctx))
    return found
