"""The raw public data of tests/fixtures/catalog, parsed here independently of the loader."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "catalog"


def raw_ec2_rows() -> list[dict[str, str]]:
    """The AWS GPU instance CSV exactly as published (tests/fixtures copy)."""
    with (FIXTURES / "aws_gpu_instances_raw.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def raw_spot_advisor() -> dict[str, Any]:
    """The AWS Spot Advisor feed as published, us-east-1 / us-west-2 / eu-central-1 only."""
    document: dict[str, Any] = json.loads(
        (FIXTURES / "aws_spot_advisor_raw_subset.json").read_text(encoding="utf-8")
    )
    return document
