"""Score the policies against the hand-labelled corpus (tests/fixtures/corpus).

labels.json holds one expected outcome per (configuration, resource, policy): `fail`, `pass`,
`unknown` (a value the configuration does not give) or `not-created` (`count = 0`...). A
configuration ("unit") is a folder under the corpus, scanned on its own as `finops check
PATH` scans it. Used by tests/policies/test_corpus.py and bench/policies_bench.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
POLICIES = ("required-tags", "gpu-instance-oversized")
_KEY = re.compile(r'\[(?:"(?:[^"\\]|\\.)*"|[^\]"]*)\]')


@dataclass(frozen=True)
class Label:
    unit: str
    resource: str
    policy: str
    expected: str


def labels() -> tuple[str, list[Label]]:
    """(the environment the labels assume, the labels)."""
    data = json.loads((CORPUS / "labels.json").read_text())
    found = [Label(x["unit"], x["resource"], x["policy"], x["expected"]) for x in data["labels"]]
    return data["environment"], found


def manifest() -> list[dict[str, Any]]:
    return json.loads((CORPUS / "manifest.json").read_text())


def units() -> list[str]:
    """Every configuration of the corpus: a manifest entry's folder, or each of its roots."""
    found = []
    for entry in manifest():
        roots = entry.get("roots") or [""]
        found += [f"{entry['unit']}/{root}".rstrip("/") for root in roots]
    return found


def rules_outcomes(unit: str, environment: str) -> dict[tuple[str, str], str]:
    """(resource, policy) -> fail | unknown | pass | not-created for one configuration, as
    `finops check` reports it; a resource with no verdict for a policy passed it."""
    from aifinops.cli.check import path_report
    from aifinops.policies.settings import resolve

    report = path_report([str(CORPUS / unit)], resolve(None), environment)
    found: dict[tuple[str, str], str] = {}
    for name, _, _ in report.not_created:
        for policy in POLICIES:
            found[(name, policy)] = "not-created"
    for unknown in report.unknowns:
        found.setdefault((unknown.resource, unknown.policy), "unknown")
    for row in report.rows:
        found[(row.resource, row.policy)] = "fail"
    return found


def bare(address: str) -> str:
    """An address without instance keys: checkov names one block of a module called with
    `for_each` once (`module.a["x"].b.c[0]` -> `module.a.b.c`)."""
    return _KEY.sub("", address)


def outcome(found: Mapping[tuple[str, str], str], label: Label, per_block: bool = False) -> str:
    """What a path said of a labelled resource; with `per_block`, resources are matched
    without their instance keys (checkov's granularity)."""
    if per_block:
        said = {
            v
            for (r, p), v in found.items()
            if p == label.policy and bare(r) == bare(label.resource)
        }
        for verdict in ("fail", "unknown", "pass", "not-created"):
            if verdict in said:
                return verdict
        return "absent"
    if (label.resource, label.policy) in found:
        return found[(label.resource, label.policy)]
    base = label.resource.rsplit("[", 1)[0]
    if (base, label.policy) in found and found[(base, label.policy)] == "not-created":
        return "not-created"
    return "pass"


@dataclass(frozen=True)
class Score:
    policy: str
    tp: int
    fp: int
    fn: int
    tn: int
    unknown: int
    """labelled resources the path left undecided (UNKNOWN, or absent from checkov's report)"""
    misses: tuple[tuple[str, str, str, str], ...]
    """(unit, resource, expected, said) where the verdict differs from the label"""

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def score(pairs: Iterable[tuple[Label, str]]) -> dict[str, Score]:
    """Per policy: a `fail` label found failing is a true positive; any other label found
    failing a false positive; a `fail` label not found failing a false negative."""
    counts: dict[str, dict[str, Any]] = {
        p: {"tp": 0, "fp": 0, "fn": 0, "tn": 0, "unknown": 0, "misses": []} for p in POLICIES
    }
    for label, said in pairs:
        c = counts[label.policy]
        failed = said == "fail"
        if label.expected == "fail":
            c["tp" if failed else "fn"] += 1
        else:
            c["fp" if failed else "tn"] += 1
        if said in ("unknown", "absent"):
            c["unknown"] += 1
        agrees = said == label.expected or (
            said == "absent" and label.expected in ("unknown", "not-created")
        )
        if not agrees:
            c["misses"].append((label.unit, label.resource, label.expected, said))
    return {
        p: Score(p, c["tp"], c["fp"], c["fn"], c["tn"], c["unknown"], tuple(c["misses"]))
        for p, c in counts.items()
    }
