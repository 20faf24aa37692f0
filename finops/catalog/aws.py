"""AWS rows: EC2 GPU/ML instances (vantage-derived snapshot + Spot Advisor) and SageMaker hosting.

The EC2 source lists GPU memory sometimes per GPU ("24 GB GDDR6" on g5.12xlarge, 4 GPUs) and
sometimes per node ("320 GB HBM2" on p4d.24xlarge, 8 GPUs), sometimes "Unknown"; a few rows
name the wrong chip. `_per_accelerator_memory_gib` and `FAMILY_ACCELERATOR` normalise that.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from aifinops.catalog._data import data_json, data_rows
from aifinops.catalog.models import AcceleratorInfo, InstanceInfo

EC2_FILE = "aws_ec2_gpu_instances.csv"
SPOT_ADVISOR_FILE = "aws_spot_advisor_gpu.json"
SAGEMAKER_FILE = "aws_sagemaker_hosting.csv"

# Chip names as the EC2 source spells them -> canonical accelerator keys.
SOURCE_ACCELERATOR = {
    "NVIDIA T4": "T4",
    "NVIDIA L4": "L4",
    "NVIDIA A10G": "A10G",
    "NVIDIA L40": "L40",
    "NVIDIA L40S": "L40S",
    "NVIDIA M60": "M60",
    "NVIDIA V100": "V100",
    "NVIDIA K80": "K80",
    "NVIDIA H100": "H100",
    "NVIDIA A100": "A100",
    "NVIDIA GRID K520": "K520",
    "NVIDIA H200": "H200",
    "NVIDIA RTX PRO 6000 Blackwell": "RTX-PRO-6000",
    "NVIDIA B200 Blackwell": "B200",
    "NVIDIA B300 Blackwell": "B300",
    "NVIDIA GB200 Grace Blackwell": "GB200",
    "AMD Radeon Pro V520": "Radeon-Pro-V520",
    "AWS Inferentia": "Inferentia1",
    "AWS Inferentia2": "Inferentia2",
    "AWS Trainium": "Trainium1",
    "AWS Trainium2": "Trainium2",
    "Qualcomm AI 100": "Qualcomm-AI100",
}

# Families whose chip the source names wrongly or too coarsely. For these the source's GPU
# memory is ignored and the accelerator table's figure (x the fraction) is used.
FAMILY_ACCELERATOR = {
    "g5g": "T4G",  # source says "ARM Mali-G78MP12, 4 GB"; AWS: NVIDIA T4G, 16 GB
    "g6f": "L4",  # source says L40 48 GB; AWS: fractional NVIDIA L4 (1/8 = 3 GB)
    "gr6f": "L4",
}
# Families whose chip variant differs from the source's generic name (memory from the source).
FAMILY_VARIANT = {
    "p3dn": "V100-32GB",
    "p4de": "A100-80GB",
}

_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)")


def family_of(instance_type: str) -> str:
    """'g5.xlarge' -> 'g5'; 'ml.g5.xlarge' -> 'ml.g5'; 'u-p6e-gb200x72' -> 'u-p6e-gb200'."""
    if "." in instance_type:
        return instance_type.rsplit(".", 1)[0]
    return instance_type.rsplit("x", 1)[0]


def _leading_number(text: str) -> float | None:
    match = _NUMBER.match(text)
    return float(match.group(1)) if match else None


def _per_accelerator_memory_gib(
    listed: str, count: float, chip: AcceleratorInfo, trust_listed: bool
) -> float:
    """Per-accelerator memory, GiB, from the source's per-GPU or per-node figure."""
    if count < 1:
        return round(chip.memory_gib * count, 3)
    value = _leading_number(listed) if trust_listed else None
    if value is None:
        return chip.memory_gib
    # A figure well above one chip's memory is the node total.
    if value > chip.memory_gib * 1.25:
        return round(value / count, 3)
    return value


def load_spot_advisor() -> tuple[dict[str, dict[str, dict[str, int]]], dict[int, str]]:
    """(advice[region][instance_type] = {"s": savings %, "r": range index}, labels[r])."""
    raw = data_json(SPOT_ADVISOR_FILE)
    labels = {int(item["index"]): str(item["label"]) for item in raw["ranges"]}
    advice = {region: oses.get("Linux", {}) for region, oses in raw["spot_advisor"].items()}
    return advice, labels


def load_unpriced_ec2(
    accelerators: Mapping[str, AcceleratorInfo],
) -> Iterator[tuple[str, AcceleratorInfo, float]]:
    """(instance type, accelerator, count) of the types the source lists without a region or
    price: sold through EC2 Capacity Blocks or UltraServers only (p5e, trn2, p6e-gb200...)."""
    for row in data_rows(EC2_FILE):
        if row["on_demand_usd_hr"].strip() and row["region"].strip():
            continue
        family = family_of(row["instance_type"])
        model = (FAMILY_ACCELERATOR.get(family) or FAMILY_VARIANT.get(family)
                 or SOURCE_ACCELERATOR.get(row["gpu"]))  # fmt: skip
        if model is not None and model in accelerators:
            yield row["instance_type"], accelerators[model], float(row["gpu_count"])


def load_ec2(accelerators: Mapping[str, AcceleratorInfo]) -> Iterator[InstanceInfo]:
    """EC2 rows with a price; rows without a region/price (preview types) are skipped."""
    advice, labels = load_spot_advisor()
    for row in data_rows(EC2_FILE):
        price = row["on_demand_usd_hr"].strip()
        region = row["region"].strip()
        if not price or not region:
            continue
        instance_type = row["instance_type"]
        family = family_of(instance_type)
        corrected = FAMILY_ACCELERATOR.get(family)
        model = corrected or FAMILY_VARIANT.get(family) or SOURCE_ACCELERATOR.get(row["gpu"])
        if model is None or model not in accelerators:
            continue
        chip = accelerators[model]
        count = float(row["gpu_count"])
        on_demand = float(price)
        spot_price = savings = index = label = None
        tip = advice.get(region, {}).get(instance_type)
        if tip is not None:
            savings = float(tip["s"])
            spot_price = round(on_demand * (1 - savings / 100), 4)
            index = int(tip["r"])
            label = labels.get(index)
        previous = row["generation"] == "previous" or chip.generation == "previous"
        yield InstanceInfo(
            cloud="aws",
            service="ec2",
            instance_type=instance_type,
            region=region,
            accelerator=model,
            accelerator_count=count,
            accelerator_memory_gib=_per_accelerator_memory_gib(
                row["gpu_memory"], count, chip, trust_listed=corrected is None
            ),
            vcpus=int(float(row["vcpu"])),
            memory_gib=_leading_number(row["memory"]) or 0.0,
            on_demand_usd_per_hour=on_demand,
            spot_usd_per_hour=spot_price,
            spot_savings_percent=savings,
            interruption_index=index,
            interruption_range=label,
            family=family,
            generation="previous" if previous else "current",
        )


def load_sagemaker(ec2: list[InstanceInfo]) -> Iterator[InstanceInfo]:
    """SageMaker real-time hosting `ml.*` rows; specs and family ("g5" for "ml.g5.xlarge")
    come from the EC2 type of the same name."""
    specs = {info.instance_type: info for info in ec2}
    for row in data_rows(SAGEMAKER_FILE):
        instance_type = row["instance_type"]
        base = specs.get(instance_type.removeprefix("ml."))
        if base is None:
            continue
        yield InstanceInfo(
            cloud="aws",
            service="sagemaker",
            instance_type=instance_type,
            region=row["region"],
            accelerator=base.accelerator,
            accelerator_count=base.accelerator_count,
            accelerator_memory_gib=base.accelerator_memory_gib,
            vcpus=base.vcpus,
            memory_gib=base.memory_gib,
            on_demand_usd_per_hour=float(row["on_demand_usd_per_hour"]),
            spot_usd_per_hour=None,
            spot_savings_percent=None,
            interruption_index=None,
            interruption_range=None,
            family=base.family,
            generation=base.generation,
        )
