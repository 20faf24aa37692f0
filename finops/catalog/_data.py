"""Reading the data files shipped in `finops/catalog/data/` (package data, no network)."""

from __future__ import annotations

import csv
import json
from importlib import resources
from typing import Any


def data_text(name: str) -> str:
    """Text of one file under `finops/catalog/data/`."""
    return (resources.files("aifinops.catalog") / "data" / name).read_text(encoding="utf-8")


def data_rows(name: str) -> list[dict[str, str]]:
    """Rows of one CSV file under `finops/catalog/data/`, lines starting with '#' skipped."""
    lines = [line for line in data_text(name).splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


def data_json(name: str) -> Any:
    """Parsed JSON of one file under `finops/catalog/data/`."""
    return json.loads(data_text(name))


def optional_float(text: str) -> float | None:
    """A CSV cell as a float, or None for an empty cell."""
    text = text.strip()
    return float(text) if text else None
