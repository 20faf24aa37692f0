"""Values a reader could not fully read, shared by every adapter (standard library only).

- `UNKNOWN`: a value that is not known (unknown during a Pulumi preview, a Terraform
  expression whose inputs have no value, a CloudFormation intrinsic function).
- `OpenMap`: a map whose listed keys are known but which may hold more, such as Terraform's
  `merge(var.tags, {Name = "x"})` when `var.tags` has no value: `Name` is there, and a key
  that is not listed may still come from `var.tags`.
"""

from __future__ import annotations

from typing import Any


class _Unknown:
    """A value that cannot be known yet (preview) or read (an unresolved reference)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


class OpenMap(dict[str, Any]):
    """A map that may hold keys beyond those listed (part of it could not be read).

    prefixes: when every key that could not be read is known to start with one of these
    (`"kubernetes.io/cluster/${var.name}"`), a key starting with none of them is truly absent;
    None: any key may be there."""

    def __init__(self, *args: Any, prefixes: tuple[str, ...] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefixes = prefixes

    def __repr__(self) -> str:
        return f"OpenMap({dict.__repr__(self)}, prefixes={self.prefixes!r})"

    def may_hold(self, key: str) -> bool:
        """True when `key` (not listed) may still be one of the keys that could not be read."""
        return self.prefixes is None or any(key.startswith(p) for p in self.prefixes)


def open_prefixes(*parts: Any) -> tuple[str, ...] | None:
    """The prefixes of a map made of `parts` (maps, OpenMaps, UNKNOWN): None if any part may
    hold any key."""
    found: list[str] = []
    for part in parts:
        if part is UNKNOWN:
            return None
        if isinstance(part, OpenMap):
            if part.prefixes is None:
                return None
            found += part.prefixes
    return tuple(dict.fromkeys(found))


def contains_unknown(value: Any) -> bool:
    """True when `value` is UNKNOWN, an `OpenMap`, or holds one anywhere inside."""
    if value is UNKNOWN or isinstance(value, OpenMap):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False
