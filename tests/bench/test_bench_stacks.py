"""The benchmarks' generated stacks are stacks the project accepts: a contract change that the
generators miss turns a benchmark into an error (bench/preview_bench.py's GCP endpoints did
when the TPU endpoint started requiring `serving: llm` and `modelId`), and no other test runs
them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aifinops import config

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import preview_bench


@pytest.mark.parametrize("kind", preview_bench.KINDS)
def test_preview_bench_stacks_pass_the_config_contract(kind: str, tmp_path: Path):
    stack = tmp_path / f"Pulumi.bench-{kind}.yaml"
    stack.write_text(preview_bench.stack_text(fleets=3, endpoints=4, kind=kind))
    loaded = config.load(stack)
    assert len(loaded.training_fleets) == 3
    assert len(loaded.inference_endpoints) == (4 if preview_bench.ENDPOINTS[kind] else 0)


def test_the_fleet_scale_stack_passes_the_config_contract(tmp_path: Path):
    import fleet_data

    stack = tmp_path / "Pulumi.fleet.yaml"
    stack.write_text(fleet_data.stack_text())
    assert len(config.load(stack).training_fleets) == 4
