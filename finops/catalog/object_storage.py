"""Object storage list prices per cloud and region (datasets, checkpoints), USD per GB-month.

AWS S3 Standard comes from `storage` (`data/aws_storage.csv`); GCS Standard and Azure Blob hot
LRS from `data/object_storage.csv`. A region without a row has no price (None), never a
guessed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from aifinops.catalog import storage
from aifinops.catalog._data import data_rows

OBJECT_STORAGE_FILE = "object_storage.csv"
SERVICE = {"aws": "S3 Standard", "gcp": "GCS Standard", "azure": "Blob Storage hot LRS"}


@dataclass(frozen=True)
class ObjectStoragePrice:
    cloud: str
    region: str
    service: str
    usd_per_gb_month: float


@cache
def _rows() -> dict[tuple[str, str], float]:
    return {
        (r["cloud"], r["region"]): float(r["usd_per_gb_month"])
        for r in data_rows(OBJECT_STORAGE_FILE)
    }


def object_storage_price(cloud: str, region: str) -> ObjectStoragePrice | None:
    """The standard object storage tier's price in `region` of `cloud`, or None."""
    if cloud == "aws":
        usd = storage.usd_per_month(region, "s3-standard-gb")
    else:
        usd = _rows().get((cloud, region))
    if usd is None:
        return None
    return ObjectStoragePrice(cloud, region, SERVICE[cloud], usd)
