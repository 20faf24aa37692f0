"""Commitment prices: AWS Reserved Instances and Savings Plans, GCP committed use discounts,
Azure reservations, as an effective USD per hour for one instance of a type in a region.

- AWS Standard RI, 1 year, no upfront: the `reserved_usd_hr` column of the EC2 snapshot
  (transcribed, per type and region).
- AWS EC2 Instance Savings Plan, 1 year, no upfront: the same rate (estimated).
- GCP resource-based CUDs and Azure reservations, 1 and 3 years: the catalog's on-demand
  price less a per-family discount from `data/commitment_discounts.csv` (estimated).

What is not there has no offer (an empty list), never a guessed one: no AWS 3-year rates, no
Compute Savings Plans, no SageMaker Savings Plans, no TPU CUDs (data/SOURCES.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from aifinops.catalog._data import data_rows, optional_float
from aifinops.catalog.aws import EC2_FILE
from aifinops.catalog.models import InstanceInfo
from aifinops.catalog.store import lookup

DISCOUNTS_FILE = "commitment_discounts.csv"
COMMITMENT_SNAPSHOT_DATE = "2026-01"


@dataclass(frozen=True)
class CommitmentOffer:
    """One way to commit to one instance of a type in a region."""

    cloud: str
    offering: str
    """"aws-standard-ri", "aws-ec2-instance-savings-plan", "gcp-resource-cud", "azure-reservation"."""
    term_years: int
    payment: str
    """"no-upfront" (AWS) or "monthly" (GCP CUDs, Azure monthly-billed reservations)."""
    instance_type: str
    region: str
    usd_per_hour: float
    """Effective hourly rate of one committed instance, paid whether it runs or not."""
    on_demand_usd_per_hour: float
    basis: str
    """"transcribed" or "estimated" (how, in `note`)."""
    note: str

    @property
    def discount(self) -> float:
        """Saving against on-demand while fully used, ratio 0-1."""
        return 1.0 - self.usd_per_hour / self.on_demand_usd_per_hour

    @property
    def break_even_utilisation(self) -> float:
        """Share of the term's hours an instance must run for the commitment to cost no more
        than on-demand: commitment rate / on-demand rate."""
        return self.usd_per_hour / self.on_demand_usd_per_hour

    @property
    def label(self) -> str:
        return f"{self.offering} {self.term_years}y {self.payment}"


@cache
def _aws_reserved() -> dict[tuple[str, str], float]:
    rates = {}
    for row in data_rows(EC2_FILE):
        rate = optional_float(row.get("reserved_usd_hr") or "")
        if rate and row["region"].strip():
            rates[(row["instance_type"], row["region"].strip())] = rate
    return rates


@cache
def _discounts() -> list[dict[str, str]]:
    return data_rows(DISCOUNTS_FILE)


def _aws_offers(info: InstanceInfo) -> list[CommitmentOffer]:
    rate = _aws_reserved().get((info.instance_type, info.region))
    if rate is None or info.service != "ec2":
        return []
    common = {
        "cloud": "aws",
        "term_years": 1,
        "payment": "no-upfront",
        "instance_type": info.instance_type,
        "region": info.region,
        "usd_per_hour": rate,
        "on_demand_usd_per_hour": info.on_demand_usd_per_hour,
    }
    offers = [
        CommitmentOffer(
            offering="aws-standard-ri",
            basis="transcribed",
            note="1-year Standard RI, no upfront (instances.vantage.sh yrTerm1Standard.noUpfront)",
            **common,  # type: ignore[arg-type]
        )
    ]
    for row in _discounts():
        if row["cloud"] == "aws" and row["offering"] == "ec2-instance-savings-plan":
            offers.append(
                CommitmentOffer(
                    offering="aws-ec2-instance-savings-plan",
                    basis=row["basis"],
                    note=row["note"],
                    **common,  # type: ignore[arg-type]
                )
            )
    return offers


def _discount_offers(info: InstanceInfo) -> list[CommitmentOffer]:
    offering = {"gcp": "gcp-resource-cud", "azure": "azure-reservation"}[info.cloud]
    offers = []
    for row in _discounts():
        if row["cloud"] != info.cloud or row["family"] not in ("*", info.family):
            continue
        discount = optional_float(row["discount_percent"])
        if discount is None:
            continue
        offers.append(
            CommitmentOffer(
                cloud=info.cloud,
                offering=offering,
                term_years=int(row["term_years"]),
                payment=row["payment"],
                instance_type=info.instance_type,
                region=info.region,
                usd_per_hour=round(info.on_demand_usd_per_hour * (1 - discount / 100), 6),
                on_demand_usd_per_hour=info.on_demand_usd_per_hour,
                basis=row["basis"],
                note=row["note"],
            )
        )
    return offers


def offers(
    instance_type: str, region: str | None = None, *, cloud: str | None = None
) -> list[CommitmentOffer]:
    """Every commitment offer for one instance of `instance_type` in `region`, cheapest rate
    first; [] when the catalog has no public commitment price for it. Raises `CatalogError`
    when the type or region is not in the catalog at all."""
    info = lookup(instance_type, region, cloud=cloud)
    found = _aws_offers(info) if info.cloud == "aws" else _discount_offers(info)
    return sorted(
        found, key=lambda o: (o.usd_per_hour, o.basis != "transcribed", o.term_years, o.offering)
    )
