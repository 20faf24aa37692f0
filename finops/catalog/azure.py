"""Azure rows: NCasT4_v3, NVadsA10_v5 (partial A10s), NC A100 v4 and ND H100 v5 VM sizes.

An NVadsA10 v5 size below NV36 gets a slice of one A10: `accelerator_count` is that fraction
(1/6, 1/3, 1/2) and `accelerator_memory_gib` the slice's memory (4, 8, 12 GiB).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from fractions import Fraction

from aifinops.catalog._data import data_rows
from aifinops.catalog.models import AcceleratorInfo, InstanceInfo

VMS_FILE = "azure_vms.csv"


def load_azure(accelerators: Mapping[str, AcceleratorInfo]) -> Iterator[InstanceInfo]:
    """Every Azure VM size x region row; spot = pay-as-you-go x (1 - published discount)."""
    for row in data_rows(VMS_FILE):
        chip = accelerators[row["accelerator"]]
        on_demand = float(row["on_demand_usd_per_hour"])
        discount = float(row["spot_discount_percent"])
        yield InstanceInfo(
            cloud="azure",
            service="azure-vm",
            instance_type=row["vm_size"],
            region=row["region"],
            accelerator=chip.model,
            accelerator_count=round(float(Fraction(row["accelerator_count"])), 4),
            accelerator_memory_gib=float(row["accelerator_memory_gib"]),
            vcpus=int(row["vcpus"]),
            memory_gib=float(row["memory_gib"]),
            on_demand_usd_per_hour=on_demand,
            spot_usd_per_hour=round(on_demand * (1 - discount / 100), 4),
            spot_savings_percent=discount,
            interruption_index=None,
            interruption_range=None,
            family=row["family"],
            generation=chip.generation,
        )
