"""`series_layout` (what the cost model prices) against what `datums_for` really sends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aifinops.agents.cloudwatch import datums_for, series_layout
from aifinops.agents.config import CloudWatchSection

RECORD = json.loads(
    (Path(__file__).resolve().parents[2] / "agents" / "SPOOL_FORMAT.md")
    .read_text()
    .split("```json\n")[1]
    .split("```")[0]
    .replace("\n", "")
)


def _series(section: CloudWatchSection, record: dict) -> tuple[set, set]:
    """(metrics keyed by instance and GPU, metrics keyed by neither) one record sends."""
    per_gpu: set[tuple[str, tuple[str, ...]]] = set()
    shared: set[tuple[str, tuple[str, ...]]] = set()
    for datum in datums_for(record, section):
        names = tuple(d["Name"] for d in datum["Dimensions"])
        key = (datum["MetricName"], names)
        (per_gpu if "InstanceId" in names and "index" in names else shared).add(key)
    return per_gpu, shared


@pytest.mark.parametrize(
    "section",
    [
        CloudWatchSection(),
        CloudWatchSection(cwagent_dimensions=False),
        CloudWatchSection(tag_dimensions=("finops:fleet",)),
        CloudWatchSection(tag_dimensions=("finops:fleet",), extra_dimensions=("name",)),
        CloudWatchSection(tag_dimensions=("finops:fleet",), cwagent_dimensions=False),
    ],
)
def test_layout_counts_the_metrics_the_agent_sends(section: CloudWatchSection) -> None:
    per_gpu, shared = _series(section, RECORD)
    layout = series_layout(section)
    assert layout.per_gpu == len(per_gpu)
    assert layout.per_tag_set == len(shared)
    assert layout.datums_per_record == len(datums_for(RECORD, section))


def test_the_fleets_config_is_20_per_gpu_and_12_per_fleet_copy() -> None:
    # what the AWS fleet component writes: tag_dimensions = ["finops:fleet"], CW agent set on
    layout = series_layout(CloudWatchSection(tag_dimensions=("finops:fleet",)))
    assert (layout.per_gpu, layout.per_tag_set) == (20, 12)
