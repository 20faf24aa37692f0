"""List prices of the charges besides instances: volumes, metrics, logs, NAT, functions...

Data: `data/fixed_charges.csv` (cloud, region, item, USD per unit, tier), with its snapshot
date and the public page of each row in `data/SOURCES.md`. A region or item without a row
has no price (None), never a guessed one: the cost model then says UNKNOWN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from aifinops.catalog._data import data_rows

CHARGES_FILE = "fixed_charges.csv"
CHARGES_SNAPSHOT_DATE = "2026-01"


@dataclass(frozen=True)
class UnitPrice:
    """One price row: `usd` per `unit`, up to `tier_upto` units a month (None: no bound)."""

    cloud: str
    region: str
    item: str
    usd: float
    unit: str
    tier_upto: float | None
    source: str


@cache
def _rows() -> dict[tuple[str, str, str], tuple[UnitPrice, ...]]:
    found: dict[tuple[str, str, str], list[UnitPrice]] = {}
    for r in data_rows(CHARGES_FILE):
        tier = r["tier_upto"].strip()
        price = UnitPrice(
            cloud=r["cloud"],
            region=r["region"],
            item=r["item"],
            usd=float(r["usd"]),
            unit=r["unit"],
            tier_upto=float(tier) if tier else None,
            source=r["source"],
        )
        found.setdefault((price.cloud, price.region, price.item), []).append(price)
    return {key: tuple(rows) for key, rows in found.items()}


def unit_price(cloud: str, region: str, item: str) -> UnitPrice | None:
    """The (first tier's) price of `item` in `region` of `cloud`, or None when not shipped."""
    rows = _rows().get((cloud, region, item))
    return rows[0] if rows else None


def tiers(cloud: str, region: str, item: str) -> tuple[UnitPrice, ...]:
    """Every tier of `item`, in order (one row for an untiered item; () when not shipped)."""
    return _rows().get((cloud, region, item), ())


def tiered_usd(cloud: str, region: str, item: str, quantity: float) -> float | None:
    """USD for `quantity` units in a month through the item's tiers (CloudWatch metrics:
    the first 10,000 at $0.30, the next 240,000 at $0.10...), or None when not shipped."""
    rows = tiers(cloud, region, item)
    if not rows:
        return None
    total, below = 0.0, 0.0
    for row in rows:
        upto = math.inf if row.tier_upto is None else row.tier_upto
        in_tier = max(0.0, min(quantity, upto) - below)
        total += in_tier * row.usd
        below = upto
        if quantity <= upto:
            break
    return total


def size_tier(cloud: str, region: str, item: str, size: float) -> UnitPrice | None:
    """The smallest size tier of `item` that holds `size` (Azure managed disks are billed
    by the tier a disk's size rounds up to: a 100 GiB Standard SSD is an E10, 128 GiB), or
    None when the item is not shipped or `size` is above its largest tier."""
    for row in tiers(cloud, region, item):
        if row.tier_upto is not None and size <= row.tier_upto:
            return row
    return None
