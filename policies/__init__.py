"""The cost policies: rules once, as plain functions over a normalised resource.

Adapters: the CrossGuard pack (`PulumiPolicy.yaml`, `__main__.py` in this folder), the checkov
external checks (`policies/checkov/`), and `evaluate_stack` for the offline engine
(`finops preview`, `finops check`). This module imports only the standard library and finops'
stdlib-only core at import time, because checkov's virtualenv imports it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aifinops.policies.registry import BY_NAME, POLICIES, Policy
from aifinops.policies.verdicts import Violation, evaluate

if TYPE_CHECKING:
    from aifinops.config import StackConfig
    from aifinops.engine import StackRun

__all__ = ["BY_NAME", "POLICIES", "Policy", "Violation", "evaluate", "evaluate_stack"]


def evaluate_stack(
    run: StackRun,
    config: StackConfig,
    costs: Any | None = None,
    settings: dict[str, Any] | None = None,
) -> list[Violation]:
    """Every policy over a stack run by the offline engine.

    costs: a `aifinops.cost.CostReport` for the run; None prices resources from the catalog.
    settings: policy-pack-shaped settings (see `aifinops.policies.settings`); None = the defaults.
    """
    from aifinops.policies.stack import evaluate_run

    return evaluate_run(run, config, costs, settings)
