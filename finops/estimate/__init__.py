"""`finops estimate`: a project proposal becomes a priced plan across clouds and capacity types.

    from aifinops import estimate
    proposal = estimate.load(Path("proposal.yaml"))
    result = estimate.plan(proposal, check=None)   # the CLI passes the policies' checker
    result.best, result.options[:10], result.assumptions

Keys of the proposal file: docs/estimate.md. This package prices and ranks; it imports no
policy code (finops/cli/estimate.py turns each option into normalised resources for the rules).
"""

from __future__ import annotations

from aifinops.estimate.plan import (
    Check,
    InferenceChoice,
    Option,
    Plan,
    PolicyVerdict,
    StorageChoice,
    TrainingChoice,
    plan,
)
from aifinops.estimate.proposal import Proposal, load, parse

__all__ = [
    "Check",
    "InferenceChoice",
    "Option",
    "Plan",
    "PolicyVerdict",
    "Proposal",
    "StorageChoice",
    "TrainingChoice",
    "load",
    "parse",
    "plan",
]
