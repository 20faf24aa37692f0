"""Resource names carry the owning team's prefix, so the console lists a team's resources
together."""

from __future__ import annotations


def name_problems(team: str, names: list[str]) -> list[str]:
    """One line per name that does not start with `<team>-`."""
    return [
        f"{name!r} must start with {team + '-'!r}"
        for name in names
        if not name.startswith(f"{team}-")
    ]
