"""The two records the catalog hands out: one accelerator model, one instance type in one region.

Prices are USD per hour for the whole node; memory is GiB; throughput is relative to one
V100 (see `data/SOURCES.md` for how each accelerator's figure was derived).
"""

from __future__ import annotations

from dataclasses import dataclass

from aifinops.errors import CatalogError


@dataclass(frozen=True)
class AcceleratorInfo:
    """One accelerator model (a GPU, an AWS Neuron chip, a TPU chip...)."""

    model: str
    """Canonical key used everywhere in the catalog: "A10G", "A100-80GB", "TPU-v5e"..."""
    vendor: str
    """"nvidia", "amd", "aws", "google", "qualcomm"."""
    kind: str
    """"gpu", "inferentia", "trainium", "tpu" or "other"."""
    memory_gib: float
    """Memory of one whole accelerator, GiB (vendor figure, GB taken as GiB)."""
    dense_bf16_tflops: float
    """Dense BF16 (FP16 where BF16 is absent, FP32 for pre-tensor-core GPUs) TFLOPS per
    accelerator, from the vendor datasheet; no structured sparsity."""
    relative_training_throughput: float
    """Training throughput of one accelerator relative to one V100 SXM2 (= 1.0).

    Basis: sqrt(dense tensor TFLOPS ratio x memory bandwidth ratio), a roofline proxy that
    sits between compute-bound and bandwidth-bound work; see `basis` for the figures."""
    generation: str
    """"current" or "previous"."""
    basis: str
    """One line: where the TFLOPS figure and the throughput estimate come from."""


MONTHLY_INTERRUPTION_SHARE = {0: 0.05, 1: 0.10, 2: 0.15, 3: 0.20, 4: 0.30}
"""Spot Advisor range index -> share of spot instances interrupted per month taken: each
range's upper bound (<5% -> 5%, ..., 15-20% -> 20%); the open range >20% is taken as 30%."""
UNKNOWN_RANGE_INDEX = 4
"""Where no range is published (GCP, Azure, types missing from the feed): the worst range."""


@dataclass(frozen=True)
class InstanceInfo:
    """One instance type as sold in one region, with its accelerators and prices."""

    cloud: str
    """"aws", "gcp" or "azure"."""
    service: str
    """"ec2", "sagemaker", "gce", "tpu" or "azure-vm"."""
    instance_type: str
    """The name the cloud uses; GCP N1 + attached GPUs use `gcp_attached_type()` names."""
    region: str
    accelerator: str
    """`AcceleratorInfo.model` key."""
    accelerator_count: float
    """Accelerators on the node; fractional for partitioned GPUs (Azure NVadsA10 v5, AWS g6f)."""
    accelerator_memory_gib: float
    """Accelerator memory per accelerator as the VM sees it (the partition for fractional
    GPUs), GiB."""
    vcpus: int
    memory_gib: float
    """Host memory, GiB."""
    on_demand_usd_per_hour: float
    spot_usd_per_hour: float | None
    """None where the service sells no spot capacity or no price is known."""
    spot_savings_percent: float | None
    """Saving of spot against on-demand, percent (AWS Spot Advisor `s`, or derived)."""
    interruption_index: int | None
    """AWS Spot Advisor range index r (0..4); None elsewhere or unknown."""
    interruption_range: str | None
    """"<5%", "5-10%", "10-15%", "15-20%", ">20%": share of spot instances interrupted per
    month (AWS Spot Advisor); None elsewhere or unknown."""
    family: str
    """"g5", "p4d", "a2", "NCasT4_v3"..."""
    generation: str
    """"current" or "previous"."""

    @property
    def monthly_interruption_share(self) -> float:
        """Share of this type's spot instances interrupted in a month (the Spot Advisor
        range's upper bound; the worst range where none is published)."""
        index = self.interruption_index
        return MONTHLY_INTERRUPTION_SHARE[UNKNOWN_RANGE_INDEX if index is None else index]

    @property
    def node_accelerator_memory_gib(self) -> float:
        """Accelerator memory of the whole node, GiB (per-accelerator memory x count, where a
        fractional count's memory is already the partition's)."""
        if self.accelerator_count < 1:
            return self.accelerator_memory_gib
        return self.accelerator_memory_gib * self.accelerator_count

    @property
    def accelerator_info(self) -> AcceleratorInfo:
        """The `AcceleratorInfo` of this node's accelerator model."""
        from aifinops.catalog.store import accelerator

        return accelerator(self.accelerator)

    @property
    def throughput_per_node(self) -> float:
        """Relative training throughput of the node (V100 = 1.0 per accelerator)."""
        return self.accelerator_info.relative_training_throughput * self.accelerator_count

    def usd_per_hour(self, spot: bool = False) -> float:
        """Hourly price of the node, USD; raises `CatalogError` when spot is asked and unknown."""
        if not spot:
            return self.on_demand_usd_per_hour
        if self.spot_usd_per_hour is None:
            raise CatalogError(
                f"no spot price for {self.instance_type} in {self.region} "
                f"({self.cloud} {self.service}); use on-demand or another type"
            )
        return self.spot_usd_per_hour

    def usd_per_throughput_hour(self, spot: bool = False) -> float:
        """USD per hour per unit of V100-relative training throughput (lower is better)."""
        throughput = self.throughput_per_node
        if throughput <= 0:
            raise CatalogError(f"{self.instance_type} has no accelerator throughput figure")
        return self.usd_per_hour(spot) / throughput
