"""Price a change to one fleet or endpoint with the preview's own code: one cost model.

A candidate change is made to the target's entry of the stack config, the project's Pulumi
program runs offline for a stack holding only that entry (`aifinops.engine`), and the run is
priced by `aifinops.cost.estimate`, exactly as `finops preview` prices a stack. A resource's
cost depends only on its own inputs, so the difference between two such runs is the
difference `finops preview` shows for the whole stack (`--apply` checks that it is).

The price comes with every instance type the run may launch for the target (the fleet
component adds interchangeable types to an Auto Scaling group; the fallback group has its
own), so that rules check the demand against each of them, not only the one named.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aifinops.config import NAMESPACE
from aifinops.errors import FinopsError

LIST_KEYS = ("trainingFleets", "inferenceEndpoints")
"""Stack-config lists whose entries are rightsizing targets."""
DROPPED_KEYS = ("budgets", "costCeilingUsd")
FREE_BASIS = "not priced: free or usage-based"
"""`aifinops.cost`'s basis for a resource that costs nothing at rest (not an unknown price)."""
"""Keys that price nothing of a target and would only slow a run."""


@dataclass(frozen=True)
class PricedTarget:
    """What the preview says one target costs with a change made."""

    monthly_usd: float
    instance_types: tuple[str, ...]
    """Every instance type the preview priced for the target, in override order."""
    unpriced: tuple[str, ...] = ()
    """Why resources of the target could not be priced (then the figure is a floor)."""


Pricer = Callable[[str, int, Mapping[str, Any]], PricedTarget]
"""(stack-config list key, index in the list, changes) -> the target's previewed cost."""


def set_keys(entry: MutableMapping[str, Any], changes: Mapping[str, Any]) -> None:
    """Make `changes` (camelCase keys under one entry) in place: None removes a key, a
    mapping merges into a mapping, anything else replaces."""
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(entry.get(key), MutableMapping):
            set_keys(entry[key], value)
        else:
            entry[key] = copy.deepcopy(value)


def _as_object(value: Any) -> Any:
    """A config value as an object (the Pulumi CLI may hand lists as JSON strings)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def single_target_config(
    raw_config: Mapping[str, Any], key: str, index: int, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """The stack's `config:` with only entry `index` of `finops:<key>`, `changes` made."""
    if key not in LIST_KEYS:
        raise ValueError(f"{key!r}: expected one of {', '.join(LIST_KEYS)}")
    out: dict[str, Any] = {}
    for name, value in raw_config.items():
        namespace, _, short = str(name).partition(":")
        if namespace == NAMESPACE and (short in LIST_KEYS or short in DROPPED_KEYS):
            continue
        out[name] = copy.deepcopy(value)
    entries = _as_object(raw_config.get(f"{NAMESPACE}:{key}"))
    if not isinstance(entries, list) or index >= len(entries):
        raise FinopsError(f"{NAMESPACE}:{key}[{index}]: no such entry in the stack config")
    entry = copy.deepcopy(dict(entries[index]))
    set_keys(entry, changes)
    out[f"{NAMESPACE}:{key}"] = [entry]
    return out


class PreviewPricer:
    """A `Pricer` over a stack's `config:` mapping: each price is one offline program run
    (cached on the edited config), priced by `aifinops.cost.estimate`."""

    def __init__(
        self,
        raw_config: Mapping[str, Any],
        project_dir: Path,
        cache: dict[str, PricedTarget] | None = None,
    ) -> None:
        self.raw_config = dict(raw_config)
        self.project_dir = project_dir
        self.runs = 0
        self._cache: dict[str, PricedTarget] = {} if cache is None else cache
        """Edited config (JSON) -> price; pricers over the same project may share one."""

    def __call__(self, key: str, index: int, changes: Mapping[str, Any]) -> PricedTarget:
        raw = single_target_config(self.raw_config, key, index, changes)
        cache_key = json.dumps(raw, sort_keys=True, default=str)
        if cache_key not in self._cache:
            self._cache[cache_key] = self._price(raw)
        return self._cache[cache_key]

    def _price(self, raw: dict[str, Any]) -> PricedTarget:
        from aifinops import config as stack_config
        from aifinops import cost
        from aifinops.engine import run_program
        from aifinops.engine.stack import program_dir

        config = stack_config.parse(raw, source="<rightsizing candidate>")
        run = run_program(
            program_dir(self.project_dir), stack="rightsize", raw_config=raw, regions=config.regions
        )
        self.runs += 1
        report = cost.estimate(run, config)
        types: list[str] = []
        for resource in report.resources:
            for name in resource.instance_types:
                if name not in types:
                    types.append(name)
        unpriced = tuple(
            f"{r.name}: {r.basis}"
            for r in report.resources
            if not r.priced and r.basis != FREE_BASIS and r.charge is None
        )
        return PricedTarget(report.total_monthly_usd, tuple(types), unpriced)


def stack_pricer(stack_file: Path, project_dir: Path) -> PreviewPricer:
    """The pricer for a stack file."""
    from aifinops import config as stack_config

    return PreviewPricer(stack_config.read_stack_file(stack_file), project_dir)
