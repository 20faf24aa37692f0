"""AWS storage list prices (EBS volumes and snapshots, S3 Standard), USD per unit-month.

Data: `data/aws_storage.csv`, with its snapshot date and basis in `data/SOURCES.md`. A region
or item that is not in the table has no price (None), never a guessed one: the audit then
says the finding is unpriced instead of inventing a saving.
"""

from __future__ import annotations

from functools import cache

from aifinops.catalog._data import data_rows

STORAGE_FILE = "aws_storage.csv"
STORAGE_SNAPSHOT_DATE = "2026-01"
GP3_FREE_IOPS = 3000
GP3_FREE_THROUGHPUT_MBPS = 125
GIB_PER_GB = 1.0
"""AWS bills EBS per "GB" of provisioned size and reports sizes in GiB; the pricing page's GB
is the GiB the API reports (a 100 GiB volume bills 100 GB-months)."""


@cache
def _prices() -> dict[tuple[str, str], float]:
    return {
        (r["region"], r["item"]): float(r["usd_per_unit_month"]) for r in data_rows(STORAGE_FILE)
    }


def regions() -> list[str]:
    """Regions with storage prices."""
    return sorted({region for region, _ in _prices()})


def usd_per_month(region: str, item: str) -> float | None:
    """USD per unit-month of `item` (e.g. 'ebs-gp3-gb', 's3-standard-gb') in `region`, or
    None when the table has no price for it."""
    return _prices().get((region, item))


def ebs_volume_usd_per_month(
    region: str,
    volume_type: str,
    size_gib: float,
    iops: float | None = None,
    throughput_mbps: float | None = None,
) -> float | None:
    """Monthly list price of one EBS volume: size, plus provisioned IOPS (io1/io2, gp3 above
    3,000) and throughput (gp3 above 125 MB/s). None when a needed price is missing."""
    size_price = usd_per_month(region, f"ebs-{volume_type}-gb")
    if size_price is None:
        return None
    total = size_gib * GIB_PER_GB * size_price
    if volume_type in ("io1", "io2") and iops:
        iops_price = usd_per_month(region, f"ebs-{volume_type}-iops")
        if iops_price is None:
            return None
        total += iops * iops_price
    if volume_type == "gp3":
        extra_iops = max(0.0, (iops or GP3_FREE_IOPS) - GP3_FREE_IOPS)
        extra_mbps = max(
            0.0, (throughput_mbps or GP3_FREE_THROUGHPUT_MBPS) - GP3_FREE_THROUGHPUT_MBPS
        )
        iops_price = usd_per_month(region, "ebs-gp3-iops")
        mbps_price = usd_per_month(region, "ebs-gp3-throughput")
        if (extra_iops and iops_price is None) or (extra_mbps and mbps_price is None):
            return None
        total += extra_iops * (iops_price or 0.0) + extra_mbps * (mbps_price or 0.0)
    return total
