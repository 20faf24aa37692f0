"""The accelerator table (`data/accelerators.csv`): one row per accelerator model."""

from __future__ import annotations

from aifinops.catalog._data import data_rows
from aifinops.catalog.models import AcceleratorInfo

ACCELERATORS_FILE = "accelerators.csv"

# Other spellings people and cloud APIs use -> canonical model (compared case-insensitively).
ALIASES = {
    "a100-40gb": "A100",
    "h100-80gb": "H100",
    "v100-16gb": "V100",
    "inferentia": "Inferentia1",
    "trainium": "Trainium1",
    # GCP accelerator type names
    "nvidia-tesla-t4": "T4",
    "nvidia-l4": "L4",
    "nvidia-tesla-v100": "V100",
    "nvidia-tesla-a100": "A100",
    "nvidia-a100-80gb": "A100-80GB",
    "nvidia-h100-80gb": "H100",
    "nvidia-h200-141gb": "H200",
}


def load_accelerators() -> dict[str, AcceleratorInfo]:
    """Every accelerator model in the table, keyed by its canonical `model` name."""
    table: dict[str, AcceleratorInfo] = {}
    for row in data_rows(ACCELERATORS_FILE):
        info = AcceleratorInfo(
            model=row["model"],
            vendor=row["vendor"],
            kind=row["kind"],
            memory_gib=float(row["memory_gib"]),
            dense_bf16_tflops=float(row["dense_bf16_tflops"]),
            relative_training_throughput=float(row["relative_training_throughput"]),
            generation=row["generation"],
            basis=row["basis"],
        )
        table[info.model] = info
    return table
