"""Serverless inference list prices: SageMaker Serverless Inference and Cloud Run.

Per-unit rates (USD per GB-second, vCPU-second, GiB-second, GPU-second, million requests)
from `data/serverless.csv`, region-specific, with the snapshot date and source in
`data/SOURCES.md`. A region or unit without a row has no price: `rate` raises CatalogError
naming what is missing and where it is priced, never a guessed figure.
"""

from __future__ import annotations

from functools import cache

from aifinops.catalog._data import data_rows
from aifinops.errors import CatalogError

SERVERLESS_FILE = "serverless.csv"
SAGEMAKER_SERVERLESS = "sagemaker-serverless"
CLOUD_RUN = "cloud-run"
REQUEST_BILLING = "request"
INSTANCE_BILLING = "instance"


@cache
def _rates() -> dict[tuple[str, str, str, str], float]:
    return {
        (r["service"], r["region"], r["billing"], r["unit"]): float(r["usd"])
        for r in data_rows(SERVERLESS_FILE)
    }


def regions(service: str) -> list[str]:
    """Regions where `service` has prices in the snapshot."""
    return sorted({region for svc, region, _, _ in _rates() if svc == service})


def rate(service: str, region: str, unit: str, billing: str = REQUEST_BILLING) -> float:
    """USD per `unit` of `service` in `region` under `billing` (CatalogError when unpriced)."""
    found = _rates().get((service, region, billing, unit))
    if found is None:
        priced = sorted(
            {r for s, r, b, u in _rates() if s == service and b == billing and u == unit}
        )
        raise CatalogError(
            f"no {service} price for {unit} ({billing}-based billing) in {region} in the "
            f"catalog snapshot; priced in: {', '.join(priced) or 'no region'}"
        )
    return found
