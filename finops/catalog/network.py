"""Network prices a fleet's egress costs: NAT gateways, public IPv4 addresses, Cloud NAT.

Data: `data/network_prices.csv` (sources and dates in data/SOURCES.md). A price is per hour
or per GB, USD, for one region or for every region of a cloud (`*`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from aifinops.catalog._data import data_rows
from aifinops.errors import CatalogError

FILE = "network_prices.csv"


@dataclass(frozen=True)
class NetworkPrice:
    """One list price: `usd` per `unit` (hour or gb), with its basis and snapshot month."""

    cloud: str
    region: str
    item: str
    unit: str
    usd: float
    basis: str
    snapshot: str


@cache
def _prices() -> dict[tuple[str, str, str], NetworkPrice]:
    rows = {}
    for row in data_rows(FILE):
        price = NetworkPrice(
            row["cloud"],
            row["region"],
            row["item"],
            row["unit"],
            float(row["usd"]),
            row["basis"],
            row["snapshot"],
        )
        rows[(price.cloud, price.region, price.item)] = price
    return rows


def network_price(cloud: str, item: str, region: str) -> NetworkPrice:
    """The price of `item` (nat-gateway, public-ipv4, cloud-nat-per-vm...) in `region`;
    CatalogError naming the region and the regions that have one when it is missing."""
    prices = _prices()
    found = prices.get((cloud, region, item)) or prices.get((cloud, "*", item))
    if found is None:
        known = sorted(r for c, r, i in prices if c == cloud and i == item)
        if not known:
            raise CatalogError(f"no {cloud} network price named {item!r} in the catalog")
        raise CatalogError(
            f"no {cloud} {item} price for region {region!r} in the catalog ({FILE}); "
            f"priced regions: {', '.join(known)}"
        )
    return found
