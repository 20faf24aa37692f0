"""An independent computation of the report's figures: the csv module and Decimal, no DuckDB.

Tag resolution follows the documented rule (docs/reporting.md), written again here: a
canonical key matches export keys whose reduced form (blanks trimmed, AWS `user:` /
`resourceTags/` prefix removed, lower case) equals the key's own or its GCP label spelling,
then each alias; the first non-empty value in that order wins, export keys of one form in
sorted order.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "focus"
SAMPLE = FIXTURES / "focus_1.0_sample.csv"
UNTAGGED = "(untagged)"


def reduce_key(key: str) -> str:
    text = key.strip()
    for prefix in ("resourceTags/user:", "resourceTags/", "user:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return text.strip().lower()


def gcp_label(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", key).lower()


def rows(path: Path = SAMPLE) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def tags_of(row: dict[str, str]) -> dict[str, object]:
    raw = row.get("Tags", "")
    return json.loads(raw) if raw not in ("", "NULL") else {}


def value_of(tags: dict[str, object], key: str, aliases: Sequence[str] = ()) -> str | None:
    forms = list(dict.fromkeys([key.lower(), gcp_label(key), *(reduce_key(a) for a in aliases)]))
    for form in forms:
        for found in sorted(tags):
            if reduce_key(found) == form:
                value = str(tags[found]).strip()
                if value:
                    return value
    return None


def decimal(text: str) -> Decimal:
    return Decimal(text)


def costs_by(
    key: str,
    aliases: Sequence[str] = (),
    column: str = "EffectiveCost",
    path: Path = SAMPLE,
    positive_only: bool = False,
) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows(path):
        cost = decimal(row[column])
        if positive_only and cost <= 0:
            continue
        totals[value_of(tags_of(row), key, aliases) or UNTAGGED] += cost
    return dict(totals)


def costs_by_column(
    name: str, column: str = "EffectiveCost", path: Path = SAMPLE
) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows(path):
        totals[row[name]] += decimal(row[column])
    return dict(totals)


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"))
