"""The accelerator table (`data/accelerators.csv`): one row per accelerator model."""

from __future__ import annotations

from finops.catalog._data import data_rows
from finops.catalog.models import AcceleratorInfo

ACCELERATORS_FILE = "accelerators.csv"


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
