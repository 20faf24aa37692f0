"""Errors a user can meet. Each says what was wrong, where, and what to do.

The CLI prints `FinopsError` as one line (no traceback) and exits with `exit_code`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FinopsError(Exception):
    """Base class of every error meant for a user rather than a developer."""

    exit_code = 2


class ConfigError(FinopsError):
    """A stack file or config file is wrong: names the file, the key path and the bad value."""


class CatalogError(FinopsError, LookupError):
    """An instance type, region or accelerator is not in the catalog."""


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ' (did you mean X, Y?)' for close matches of `word`, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""
