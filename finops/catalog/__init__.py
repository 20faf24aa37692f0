"""Instance catalog: instance facts and prices for AWS, GCP and Azure accelerator types.

One place owns these facts; everyone else asks it::

    from aifinops import catalog
    info = catalog.lookup("g5.xlarge")              # us-east-1 by default
    info.usd_per_hour(spot=True)
    catalog.cheapest("A100", 8, spot=True, cloud="aws")

Data ships in `finops/catalog/data/` with its source and snapshot date in `SOURCES.md`.
"""

from __future__ import annotations

from aifinops.catalog.gcp import (
    cpu_machine_types,
    cpu_machine_usd_per_hour,
    gcp_attached_type,
    gke_tpu_accelerator_label,
    tpu_type_of_machine,
    vertex_tpu_machine,
)
from aifinops.catalog.models import AcceleratorInfo, InstanceInfo
from aifinops.catalog.network import NetworkPrice, network_price
from aifinops.catalog.sources import SNAPSHOT_DATE, SOURCES
from aifinops.catalog.store import (
    accelerator,
    accelerator_family,
    accelerators,
    cheapest,
    check_region,
    cloud_regions,
    default_region,
    equivalents,
    instance_types,
    lookup,
    offered,
    regions,
    reload,
    unpriced,
)

__all__ = [
    "SNAPSHOT_DATE",
    "SOURCES",
    "AcceleratorInfo",
    "InstanceInfo",
    "NetworkPrice",
    "accelerator",
    "accelerator_family",
    "accelerators",
    "cheapest",
    "check_region",
    "cloud_regions",
    "cpu_machine_types",
    "cpu_machine_usd_per_hour",
    "default_region",
    "equivalents",
    "gcp_attached_type",
    "gke_tpu_accelerator_label",
    "instance_types",
    "lookup",
    "network_price",
    "offered",
    "regions",
    "reload",
    "tpu_type_of_machine",
    "unpriced",
    "vertex_tpu_machine",
]
