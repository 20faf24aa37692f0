"""The refresh overlay: fresher prices written by `finops catalog refresh`, merged over the data.

Where it lives:
  - `FINOPS_CATALOG_OVERLAY=/path/file.json` names it;
  - unset, the default is `$XDG_CACHE_HOME/finops/catalog-overlay.json`
    (`~/.cache/finops/catalog-overlay.json` without XDG_CACHE_HOME);
  - `FINOPS_CATALOG_OVERLAY=` (empty) or `none` turns overlays off: only the shipped data is used.
A missing file means no overlay. A file that cannot be read is an error naming the file.

Format (`OVERLAY_FORMAT`)::

    {"format": "finops-catalog-overlay/1", "generated_at": "2026-...Z", "source": "...",
     "prices": [{"cloud": "aws", "service": "ec2", "instance_type": "g5.xlarge",
                 "region": "us-east-1", "on_demand_usd_per_hour": 1.006,
                 "spot_usd_per_hour": 0.41}]}

An entry replaces the prices of the same type and region (a null keeps the shipped figure);
an entry for a known type in a region the data lacks adds that region, with the type's specs;
entries for types the catalog does not know are ignored (their specs are unknown).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from aifinops.catalog.models import InstanceInfo
from aifinops.errors import CatalogError

OVERLAY_ENV = "FINOPS_CATALOG_OVERLAY"
OVERLAY_FORMAT = "finops-catalog-overlay/1"
_OFF = {"", "none", "off"}


def default_overlay_path() -> Path:
    """Where `refresh` writes and the loader looks when FINOPS_CATALOG_OVERLAY is unset."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "finops" / "catalog-overlay.json"


def overlay_path() -> Path | None:
    """The overlay file in force, or None when overlays are turned off."""
    named = os.environ.get(OVERLAY_ENV)
    if named is None:
        return default_overlay_path()
    if named.strip().lower() in _OFF:
        return None
    return Path(named).expanduser()


def read_overlay(path: Path) -> list[dict[str, Any]]:
    """The price entries of the overlay at `path`; `CatalogError` naming the file if malformed."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogError(
            f"cannot read catalog overlay {path}: {exc}; fix or delete it, or set "
            f"{OVERLAY_ENV}= to ignore overlays"
        ) from exc
    if not isinstance(document, dict) or document.get("format") != OVERLAY_FORMAT:
        raise CatalogError(
            f"catalog overlay {path} is not a {OVERLAY_FORMAT!r} file; re-run "
            f"`finops catalog refresh` or set {OVERLAY_ENV}= to ignore it"
        )
    prices = document.get("prices", [])
    if not isinstance(prices, list):
        raise CatalogError(f"catalog overlay {path}: 'prices' must be a list")
    return [entry for entry in prices if isinstance(entry, dict)]


def _merged(base: InstanceInfo, entry: dict[str, Any]) -> InstanceInfo:
    """`base` moved to the entry's region with the entry's prices; a spot price derived from
    a savings percentage (Spot Advisor) follows a new on-demand price."""
    on_demand = entry.get("on_demand_usd_per_hour")
    spot = entry.get("spot_usd_per_hour")
    new_on_demand = float(on_demand) if on_demand else base.on_demand_usd_per_hour
    new_spot = base.spot_usd_per_hour
    savings = base.spot_savings_percent
    if spot:
        new_spot = float(spot)
        savings = round(100 * (1 - new_spot / new_on_demand), 1)
    elif new_spot is not None and savings is not None:
        new_spot = round(new_on_demand * (1 - savings / 100), 4)
    return dataclasses.replace(
        base,
        region=str(entry["region"]),
        on_demand_usd_per_hour=new_on_demand,
        spot_usd_per_hour=new_spot,
        spot_savings_percent=savings,
    )


def merge_overlay(rows: list[InstanceInfo], entries: list[dict[str, Any]]) -> list[InstanceInfo]:
    """`rows` with the overlay `entries` applied (see the module docstring for the rules)."""
    by_key = {(row.instance_type, row.region): i for i, row in enumerate(rows)}
    any_region = {row.instance_type: row for row in rows}
    merged = list(rows)
    for entry in entries:
        key = (str(entry.get("instance_type")), str(entry.get("region")))
        if key in by_key:
            merged[by_key[key]] = _merged(merged[by_key[key]], entry)
        elif key[0] in any_region and entry.get("on_demand_usd_per_hour"):
            template = dataclasses.replace(
                any_region[key[0]],
                spot_usd_per_hour=None,
                spot_savings_percent=None,
                interruption_index=None,
                interruption_range=None,
            )
            by_key[key] = len(merged)
            merged.append(_merged(template, entry))
    return merged


def apply_overlay(rows: list[InstanceInfo]) -> list[InstanceInfo]:
    """`rows` merged with the overlay in force, if any (see `overlay_path`)."""
    path = overlay_path()
    if path is None or not path.is_file():
        return rows
    return merge_overlay(rows, read_overlay(path))
