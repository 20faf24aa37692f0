"""Make `from aifinops import policies` mean the repository's package under a bare `pytest` too.

pytest puts `tests/` on sys.path (for tests/conftest.py), where `tests/policies/` looks like a
namespace package named `policies` that the path finder prefers to the editable install's
finder. `python -m pytest` (./dev test) has the repository root on sys.path first; this does
the same for `.venv/bin/pytest`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
