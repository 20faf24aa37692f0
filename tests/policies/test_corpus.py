"""The policies on real public GPU/ML infrastructure code (tests/fixtures/corpus), scored
against hand labels as `finops check PATH` reports them. bench/policies_bench.py prints the
same scores for the checkov path."""

from __future__ import annotations

import pytest
from corpus import CORPUS, POLICIES, labels, manifest, outcome, rules_outcomes, score, units


@pytest.fixture(scope="module")
def scores():
    environment, found = labels()
    said = {unit: rules_outcomes(unit, environment) for unit in units()}
    return score((label, outcome(said[label.unit], label)) for label in found)


def test_manifest_files_licences_and_labels_agree() -> None:
    _, found = labels()
    entries = manifest()
    licences = {p.name for p in (CORPUS / "LICENSES").iterdir()}
    for entry in entries:
        folder = CORPUS / entry["unit"]
        on_disk = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        vendored = [f for v in entry["vendored"] for f in v["files"]]
        assert on_disk == sorted(entry["files"] + vendored + entry["written"]), entry["unit"]
        for source in [entry, *entry["vendored"]]:
            owner_name = source["repo"].replace("/", "-")
            licence = source["licence"].split(" ")[0]  # "MIT (LICENSE-CODE)": the file it is in
            assert f"{owner_name}.{licence}.txt" in licences, source["repo"]
    assert {label.unit for label in found} == set(units())  # every configuration is labelled
    assert {label.policy for label in found} == set(POLICIES)
    keys = [(label.unit, label.resource, label.policy) for label in found]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("policy", POLICIES)
def test_corpus_precision_and_recall(scores, policy: str) -> None:
    found = scores[policy]
    assert found.tp + found.fn >= 30  # enough failures labelled to mean something
    assert found.precision >= 0.95, found.misses
    assert found.recall >= 0.9, found.misses


def test_corpus_known_shortfalls_are_the_documented_ones(scores) -> None:
    """Not in the catalog (docs/policies.md, "What the checks cannot see"): TPU v2 and v4,
    Azure NV-series v1. A new miss, or one of these fixed, changes this list."""
    misses = {(unit, resource) for p in POLICIES for unit, resource, _, _ in scores[p].misses}
    assert misses == {
        ("gcp-tf-tpu-v2-vm-full", "google_tpu_v2_vm.tpu"),
        (
            "gcp-tf-gke-tpu-v4/examples/v4",
            "module.tpu-gke.google_container_node_pool.multihost_tpu[0]",
        ),
        ("azure-tf-avere-centos-grid-gpu", "module.centosgridgpu.azurerm_linux_virtual_machine.vm"),
        (
            "azure-tf-avere-windows-grid-gpu",
            "module.windowsgridgpu.azurerm_windows_virtual_machine.vm",
        ),
    }
