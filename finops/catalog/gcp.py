"""GCP rows: accelerator-optimized machines (A2, A3, G2), N1 + attached GPUs, and TPU VMs.

N1 machines take GPUs as attachments, so an N1 GPU node has a composite name,
`gcp_attached_type("n1-standard-8", "nvidia-tesla-t4", 1) == "n1-standard-8+nvidia-tesla-t4:1"`,
priced as the machine plus the GPUs. A TPU VM's instance type is its accelerator type
(`v5litepod-4`, `v5p-8`, `v6e-8`), priced per chip-hour x chips.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from aifinops.catalog._data import data_rows
from aifinops.catalog.models import AcceleratorInfo, InstanceInfo
from aifinops.errors import CatalogError, did_you_mean

MACHINES_FILE = "gcp_machines.csv"
N1_FILE = "gcp_n1_machines.csv"
ATTACHED_FILE = "gcp_attached_gpus.csv"
TPU_FILE = "gcp_tpu.csv"

# N1 shapes listed up front (so `cheapest` and `instance_types` see them); any other N1
# machine with a valid GPU count is built on demand by `lookup`.
LISTED_N1_HOSTS = ("n1-standard-4", "n1-standard-8", "n1-standard-16", "n1-standard-32")

_ATTACHED = re.compile(r"^(?P<machine>n1-[a-z]+-\d+)\+(?P<gpu>[a-z0-9-]+):(?P<count>\d+)$")


@dataclass(frozen=True)
class _Machine:
    vcpus: int
    memory_gib: float
    on_demand: float
    spot: float


@dataclass(frozen=True)
class _AttachableGpu:
    accelerator: str
    on_demand: float
    spot: float
    max_vcpus_by_count: dict[int, int]


# GKE and Vertex AI name a TPU host by machine type; the catalog by Cloud TPU accelerator
# type, one host each (cloud.google.com/kubernetes-engine/docs/concepts/tpus and
# cloud.google.com/vertex-ai/docs/predictions/use-tpu): machine type -> (type, topology).
TPU_MACHINE_TYPES = {
    "ct5lp-hightpu-1t": ("v5litepod-1", "1x1"),
    "ct5lp-hightpu-4t": ("v5litepod-4", "2x2"),
    "ct5lp-hightpu-8t": ("v5litepod-8", "2x4"),
    "ct5l-hightpu-1t": ("v5litepod-1", "1x1"),
    "ct5l-hightpu-4t": ("v5litepod-4", "2x2"),
    "ct5l-hightpu-8t": ("v5litepod-8", "2x4"),
    "ct5p-hightpu-4t": ("v5p-8", "2x2x1"),
    "ct6e-standard-1t": ("v6e-1", "1x1"),
    "ct6e-standard-4t": ("v6e-4", "2x2"),
    "ct6e-standard-8t": ("v6e-8", "2x4"),
}
# The machine types Vertex AI online prediction serves on (v5e `ct5lp`, v6e `ct6e`).
VERTEX_TPU_MACHINES = (
    "ct5lp-hightpu-1t",
    "ct5lp-hightpu-4t",
    "ct5lp-hightpu-8t",
    "ct6e-standard-1t",
    "ct6e-standard-4t",
    "ct6e-standard-8t",
)


def tpu_type_of_machine(machine_type: str) -> str | None:
    """The catalog's TPU accelerator type of a GKE/Vertex TPU machine type
    (`ct5lp-hightpu-4t` -> `v5litepod-4`), or None for any other machine."""
    found = TPU_MACHINE_TYPES.get(machine_type)
    return found[0] if found else None


def vertex_tpu_machine(accelerator_type: str) -> tuple[str, str] | None:
    """(Vertex AI machine type, TPU topology) serving TPU slice `accelerator_type`, or None."""
    for machine in VERTEX_TPU_MACHINES:
        tpu, topology = TPU_MACHINE_TYPES[machine]
        if tpu == accelerator_type:
            return machine, topology
    return None


# GKE's TPU node label `cloud.google.com/gke-tpu-accelerator` per catalog generation
# (cloud.google.com/kubernetes-engine/docs/concepts/plan-tpus#availability).
GKE_TPU_ACCELERATOR_LABELS = {"TPU-v5e": "tpu-v5-lite-podslice", "TPU-v6e": "tpu-v6e-slice"}


def gke_tpu_accelerator_label(accelerator: str) -> str | None:
    """The value of `cloud.google.com/gke-tpu-accelerator` on GKE nodes of TPU generation
    `accelerator` (`TPU-v5e` -> `tpu-v5-lite-podslice`), None for one GKE serving lacks here."""
    return GKE_TPU_ACCELERATOR_LABELS.get(accelerator)


def cpu_machine_types() -> list[str]:
    """The N1 machine types the catalog prices in some region (GKE system nodes)."""
    return sorted({machine for machine, _ in _n1_machines()})


def cpu_machine_usd_per_hour(machine_type: str, region: str) -> tuple[float, float]:
    """(on-demand, spot) USD per hour of an N1 machine without GPUs (a GKE system node),
    from gcp_n1_machines.csv; CatalogError with a did-you-mean when it has no row."""
    machines = _n1_machines()
    found = machines.get((machine_type, region))
    if found is None:
        known = sorted({m for m, r in machines if r == region})
        raise CatalogError(
            f"no price for machine type {machine_type!r} in {region}"
            f"{did_you_mean(machine_type, known)} (N1 machines: {', '.join(known)})"
        )
    return found.on_demand, found.spot


def gcp_attached_type(machine_type: str, accelerator_type: str, count: int) -> str:
    """Catalog name of an N1 machine with `count` attached GPUs of `accelerator_type`.

    >>> gcp_attached_type("n1-standard-8", "nvidia-tesla-t4", 1)
    'n1-standard-8+nvidia-tesla-t4:1'
    """
    return f"{machine_type}+{accelerator_type}:{count}"


def is_attached_type(name: str) -> bool:
    """True for names shaped like `gcp_attached_type()`'s."""
    return _ATTACHED.match(name) is not None


def _n1_machines() -> dict[tuple[str, str], _Machine]:
    return {
        (row["machine_type"], row["region"]): _Machine(
            vcpus=int(row["vcpus"]),
            memory_gib=float(row["memory_gib"]),
            on_demand=float(row["on_demand_usd_per_hour"]),
            spot=float(row["spot_usd_per_hour"]),
        )
        for row in data_rows(N1_FILE)
    }


def _attachable_gpus() -> dict[tuple[str, str], _AttachableGpu]:
    found = {}
    for row in data_rows(ATTACHED_FILE):
        limits = {}
        for pair in row["limits"].split(";"):
            count, max_vcpus = pair.split(":")
            limits[int(count)] = int(max_vcpus)
        found[(row["accelerator_type"], row["region"])] = _AttachableGpu(
            accelerator=row["accelerator"],
            on_demand=float(row["on_demand_usd_per_gpu_hour"]),
            spot=float(row["spot_usd_per_gpu_hour"]),
            max_vcpus_by_count=limits,
        )
    return found


def _row(
    *,
    service: str,
    instance_type: str,
    region: str,
    chip: AcceleratorInfo,
    count: float,
    vcpus: int,
    memory_gib: float,
    on_demand: float,
    spot: float,
    family: str,
) -> InstanceInfo:
    return InstanceInfo(
        cloud="gcp",
        service=service,
        instance_type=instance_type,
        region=region,
        accelerator=chip.model,
        accelerator_count=float(count),
        accelerator_memory_gib=chip.memory_gib,
        vcpus=vcpus,
        memory_gib=memory_gib,
        on_demand_usd_per_hour=round(on_demand, 6),
        spot_usd_per_hour=round(spot, 6),
        spot_savings_percent=round(100 * (1 - spot / on_demand), 1),
        interruption_index=None,
        interruption_range=None,
        family=family,
        generation=chip.generation,
    )


def _attached_rows(
    machine_type: str,
    accelerator_type: str,
    count: int,
    accelerators: Mapping[str, AcceleratorInfo],
    machines: Mapping[tuple[str, str], _Machine],
    gpus: Mapping[tuple[str, str], _AttachableGpu],
) -> list[InstanceInfo]:
    """One row per region where both the N1 machine and the GPU are priced."""
    name = gcp_attached_type(machine_type, accelerator_type, count)
    rows = []
    for (gpu_type, region), gpu in gpus.items():
        machine = machines.get((machine_type, region))
        if gpu_type != accelerator_type or machine is None:
            continue
        if machine.vcpus > gpu.max_vcpus_by_count.get(count, -1):
            continue
        rows.append(
            _row(
                service="gce",
                instance_type=name,
                region=region,
                chip=accelerators[gpu.accelerator],
                count=count,
                vcpus=machine.vcpus,
                memory_gib=machine.memory_gib,
                on_demand=machine.on_demand + count * gpu.on_demand,
                spot=machine.spot + count * gpu.spot,
                family="n1",
            )
        )
    return rows


def build_attached(name: str, accelerators: Mapping[str, AcceleratorInfo]) -> list[InstanceInfo]:
    """Rows (one per region) for an N1 + GPU composite name; `CatalogError` if not allowed."""
    match = _ATTACHED.match(name)
    if match is None:
        raise CatalogError(
            f"{name!r} is not an N1 + GPU name such as 'n1-standard-8+nvidia-tesla-t4:1'"
        )
    machine_type, gpu_type, count = match["machine"], match["gpu"], int(match["count"])
    machines = _n1_machines()
    gpus = _attachable_gpus()
    known_machines = {m for m, _ in machines}
    known_gpus = {g for g, _ in gpus}
    if machine_type not in known_machines:
        raise CatalogError(
            f"unknown N1 machine type {machine_type!r} in {name!r}"
            f"{did_you_mean(machine_type, known_machines)}"
        )
    if gpu_type not in known_gpus:
        raise CatalogError(
            f"unknown GPU type {gpu_type!r} in {name!r}{did_you_mean(gpu_type, known_gpus)}; "
            f"attachable to N1: {', '.join(sorted(known_gpus))}"
        )
    rows = _attached_rows(machine_type, gpu_type, count, accelerators, machines, gpus)
    if not rows:
        limits = next(g.max_vcpus_by_count for (t, _), g in gpus.items() if t == gpu_type)
        allowed = ", ".join(f"{n} GPU(s) with up to {v} vCPUs" for n, v in sorted(limits.items()))
        raise CatalogError(f"{name!r} is not a valid combination: {gpu_type} allows {allowed}")
    return rows


def load_gcp(accelerators: Mapping[str, AcceleratorInfo]) -> Iterator[InstanceInfo]:
    """Every GCP row: A2/A3/G2 machines, listed N1 + GPU shapes, and TPU VMs."""
    for row in data_rows(MACHINES_FILE):
        yield _row(
            service="gce",
            instance_type=row["machine_type"],
            region=row["region"],
            chip=accelerators[row["accelerator"]],
            count=float(row["accelerator_count"]),
            vcpus=int(row["vcpus"]),
            memory_gib=float(row["memory_gib"]),
            on_demand=float(row["on_demand_usd_per_hour"]),
            spot=float(row["spot_usd_per_hour"]),
            family=row["family"],
        )
    machines = _n1_machines()
    gpus = _attachable_gpus()
    for gpu_type, gpu in sorted({t: g for (t, _), g in gpus.items()}.items()):
        for count in sorted(gpu.max_vcpus_by_count):
            for host in LISTED_N1_HOSTS:
                yield from _attached_rows(host, gpu_type, count, accelerators, machines, gpus)
    for row in data_rows(TPU_FILE):
        chips = int(row["chips"])
        yield _row(
            service="tpu",
            instance_type=row["accelerator_type"],
            region=row["region"],
            chip=accelerators[row["accelerator"]],
            count=float(chips),
            vcpus=int(row["vcpus"]),
            memory_gib=float(row["memory_gib"]),
            on_demand=chips * float(row["on_demand_usd_per_chip_hour"]),
            spot=chips * float(row["spot_usd_per_chip_hour"]),
            family=row["accelerator_type"].split("-")[0],
        )
