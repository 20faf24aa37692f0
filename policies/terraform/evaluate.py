"""Evaluate HCL expressions the way `terraform plan` would, as far as the code alone allows.

A value is known only when it comes from literals in the configuration: written in place, a
variable's default or `.tfvars` value, a module argument, a local, or a function of those.
Everything else is `UNKNOWN`: a variable without a value, a data source, another resource's
attribute (known after apply), `file()` and friends, and any function not implemented here.
`merge()` with an unknown argument gives an `OpenMap` (its known keys, and maybe more).
Nothing here guesses: an unknown in, an unknown out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aifinops.policies.terraform import hcl
from aifinops.policies.values import UNKNOWN, OpenMap, open_prefixes


class EvalError(Exception):
    """The expression is wrong for its known inputs (Terraform would fail too); `try()` and
    `can()` catch it, elsewhere it reads as UNKNOWN."""


@dataclass
class Scope:
    """What names mean while evaluating one expression.

    lookup: resolves `var`, `local`, `module`, `data`, `path`, resource references (a callable
    so locals and module outputs are evaluated lazily). names: for-expression variables,
    `each`, `count`, dynamic-block iterators.
    """

    lookup: Callable[[str, list[tuple[str, Any]], Scope], Any]
    names: dict[str, Any] = field(default_factory=dict)
    references: set[str] | None = None
    """When set, collects `type.name` of every resource the expression refers to."""

    def child(self, **names: Any) -> Scope:
        return Scope(self.lookup, {**self.names, **names}, self.references)


def evaluate(expr: hcl.Expr, scope: Scope) -> Any:
    """The value of `expr` in `scope`; UNKNOWN where it cannot be known (never raises)."""
    try:
        return _eval(expr, scope)
    except EvalError:
        return UNKNOWN
    except RecursionError:
        return UNKNOWN


def _eval(expr: hcl.Expr, scope: Scope) -> Any:
    kind = type(expr)
    if kind is hcl.Literal:
        return expr.value  # type: ignore[attr-defined]
    handler = _HANDLERS.get(kind)
    if handler is None:
        return UNKNOWN
    return handler(expr, scope)


def _template(expr: hcl.Template, scope: Scope) -> Any:
    if len(expr.parts) == 1 and isinstance(expr.parts[0], hcl.Expr):
        return _eval(expr.parts[0], scope)
    pieces = []
    for part in expr.parts:
        if isinstance(part, str):
            pieces.append(part)
            continue
        if isinstance(part, hcl.Directive):
            return UNKNOWN
        value = _eval(part, scope)
        if value is UNKNOWN or isinstance(value, OpenMap):
            return UNKNOWN
        pieces.append(_to_string(value))
    return "".join(pieces)


def _item(expr: hcl.Expr, scope: Scope) -> Any:
    """One element of a tuple or object: an error in it leaves that element unknown, not the
    whole collection (one bad attribute must not hide a node group's instance types)."""
    try:
        return _eval(expr, scope)
    except EvalError:
        return UNKNOWN


def _tuple(expr: hcl.TupleExpr, scope: Scope) -> Any:
    return [_item(item, scope) for item in expr.items]


def _object(expr: hcl.ObjectExpr, scope: Scope) -> Any:
    result: dict[str, Any] = {}
    open_keys = False
    prefixes: list[str] | None = []
    for key_expr, value_expr in expr.items:
        key = _eval(key_expr, scope)
        if key is UNKNOWN:
            open_keys = True
            prefix = _literal_prefix(key_expr)
            if prefix and prefixes is not None:
                prefixes.append(prefix)
            else:
                prefixes = None
            continue
        result[_to_string(key)] = _item(value_expr, scope)
    if not open_keys:
        return result
    return OpenMap(result, prefixes=tuple(prefixes) if prefixes is not None else None)


def _literal_prefix(expr: hcl.Expr) -> str:
    """The literal text an interpolated key starts with (`"kubernetes.io/cluster/${x}"`)."""
    if isinstance(expr, hcl.Template) and expr.parts and isinstance(expr.parts[0], str):
        return expr.parts[0]
    return ""


def _traversal(expr: hcl.Traversal, scope: Scope) -> Any:
    if expr.root in scope.names:
        return _steps(scope.names[expr.root], expr.steps, scope)
    return scope.lookup(expr.root, expr.steps, scope)


def _postfix(expr: hcl.Postfix, scope: Scope) -> Any:
    return _steps(_eval(expr.base, scope), expr.steps, scope)


def apply_steps(value: Any, steps: list[tuple[str, Any]], scope: Scope) -> Any:
    """`value.attr[index]...` (used by the loader for resolved roots)."""
    return _steps(value, steps, scope)


def _steps(value: Any, steps: list[tuple[str, Any]], scope: Scope) -> Any:
    for position, (kind, arg) in enumerate(steps):
        if value is UNKNOWN:
            return UNKNOWN
        if kind == "splat":
            rest = steps[position + 1 :]
            if value is None:
                return []
            items = value if isinstance(value, list) else [value]
            return [_steps(item, rest, scope) for item in items]
        key = arg if kind == "attr" else _eval(arg, scope) if isinstance(arg, hcl.Expr) else arg
        if key is UNKNOWN:
            return UNKNOWN
        value = _index(value, key)
    return value


def _index(value: Any, key: Any) -> Any:
    if isinstance(value, Mapping):
        name = _to_string(key)
        if name in value:
            return value[name]
        if isinstance(value, OpenMap):
            return UNKNOWN
        raise EvalError(f"no key {name!r}")
    if isinstance(value, list):
        if not isinstance(key, int | float) or isinstance(key, bool):
            raise EvalError("a list index must be a number")
        index = int(key)
        if 0 <= index < len(value):
            return value[index]
        raise EvalError(f"index {index} out of range")
    if value is None:
        raise EvalError("attribute of null")
    raise EvalError(f"cannot index a {type(value).__name__}")


def _unary(expr: hcl.Unary, scope: Scope) -> Any:
    value = _eval(expr.operand, scope)
    if value is UNKNOWN:
        return UNKNOWN
    if expr.op == "!":
        return not _to_bool(value)
    return -_to_number(value)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else math.inf,
    "%": lambda a, b: a % b if b else math.nan,
}


def _binary(expr: hcl.Binary, scope: Scope) -> Any:
    op = expr.op
    left = _eval(expr.left, scope)
    if op in ("&&", "||"):
        if left is not UNKNOWN:
            truth = _to_bool(left)
            if op == "&&" and not truth:
                return False
            if op == "||" and truth:
                return True
        right = _eval(expr.right, scope)
        if right is not UNKNOWN:
            truth = _to_bool(right)
            if op == "&&" and not truth:
                return False
            if op == "||" and truth:
                return True
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        return _to_bool(right)
    right = _eval(expr.right, scope)
    if left is UNKNOWN or right is UNKNOWN:
        return UNKNOWN
    if op in ("==", "!="):
        if isinstance(left, OpenMap) or isinstance(right, OpenMap):
            return UNKNOWN
        equal = _normal(left) == _normal(right)
        return equal if op == "==" else not equal
    if op in _COMPARE:
        return _COMPARE[op](_to_number(left), _to_number(right))
    result = _ARITHMETIC[op](_to_number(left), _to_number(right))
    return _int_if_whole(result)


def _conditional(expr: hcl.Conditional, scope: Scope) -> Any:
    condition = _eval(expr.condition, scope)
    if condition is UNKNOWN:
        then, otherwise = _eval(expr.then, scope), _eval(expr.otherwise, scope)
        return then if then is not UNKNOWN and _normal(then) == _normal(otherwise) else UNKNOWN
    return _eval(expr.then if _to_bool(condition) else expr.otherwise, scope)


def _for(expr: hcl.ForExpr, scope: Scope) -> Any:
    collection = _eval(expr.collection, scope)
    if collection is UNKNOWN or isinstance(collection, OpenMap):
        return UNKNOWN
    if isinstance(collection, Mapping):
        pairs = list(collection.items())
    elif isinstance(collection, list):
        pairs = list(enumerate(collection))
    else:
        raise EvalError("a for expression needs a list, set or map")
    items: list[Any] = []
    keyed: dict[str, Any] = {}
    for key, value in pairs:
        names = {expr.value_var: value}
        if expr.key_var:
            names[expr.key_var] = key
        inner = scope.child(**names)
        if expr.condition is not None:
            keep = _eval(expr.condition, inner)
            if keep is UNKNOWN:
                return UNKNOWN
            if not _to_bool(keep):
                continue
        if expr.key is None:
            items.append(_eval(expr.value, inner))
            continue
        out_key = _eval(expr.key, inner)
        if out_key is UNKNOWN:
            return UNKNOWN
        out_value = _eval(expr.value, inner)
        name = _to_string(out_key)
        if expr.grouping:
            keyed.setdefault(name, []).append(out_value)
        else:
            keyed[name] = out_value
    return items if expr.key is None else keyed


def _call(expr: hcl.Call, scope: Scope) -> Any:
    name = expr.name
    if name in ("try", "can"):
        for arg in expr.args:
            try:
                value = _eval(arg, scope)
            except EvalError:
                if name == "can":
                    return False
                continue
            if name == "can":
                return UNKNOWN if value is UNKNOWN else True
            return value
        raise EvalError("try(): no argument could be evaluated")
    function = FUNCTIONS.get(name)
    if function is None:
        return UNKNOWN
    args = [_eval(arg, scope) for arg in expr.args]
    if expr.expand and args:
        spread = args.pop()
        if spread is UNKNOWN:
            return UNKNOWN
        args.extend(spread if isinstance(spread, list) else [spread])
    if any(a is UNKNOWN for a in args) and name not in _TOP_LEVEL_UNKNOWN_OK:
        return UNKNOWN
    try:
        return function(*args)
    except EvalError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError) as exc:
        raise EvalError(f"{name}(): {exc}") from None


_HANDLERS: dict[type, Callable[[Any, Scope], Any]] = {
    hcl.Template: _template,
    hcl.TupleExpr: _tuple,
    hcl.ObjectExpr: _object,
    hcl.Traversal: _traversal,
    hcl.Postfix: _postfix,
    hcl.Unary: _unary,
    hcl.Binary: _binary,
    hcl.Conditional: _conditional,
    hcl.ForExpr: _for,
    hcl.Call: _call,
}


# --- conversions --------------------------------------------------------------------------


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    if value is None:
        raise EvalError("null where a string is needed")
    raise EvalError(f"a {type(value).__name__} where a string is needed")


def _to_number(value: Any) -> float | int:
    if isinstance(value, bool):
        raise EvalError("a bool where a number is needed")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return _int_if_whole(float(value))
        except ValueError:
            raise EvalError(f"{value!r} is not a number") from None
    raise EvalError("not a number")


def _int_if_whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    raise EvalError(f"{value!r} is not a bool")


def _normal(value: Any) -> Any:
    """Terraform compares `"1" == 1` as false, but numbers by value (`1 == 1.0`)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- functions ----------------------------------------------------------------------------


def _merge(*maps: Any) -> Any:
    result: dict[str, Any] = {}
    open_result = False
    for item in maps:
        if item is None:
            continue
        if item is UNKNOWN:
            open_result = True
            continue
        if not isinstance(item, Mapping):
            raise EvalError("merge() takes maps")
        if isinstance(item, OpenMap):
            open_result = True
        result.update(item)
    if not open_result:
        return result
    return OpenMap(result, prefixes=open_prefixes(*maps))


def _lookup(mapping: Any, key: Any, *default: Any) -> Any:
    if mapping is UNKNOWN or key is UNKNOWN:
        return UNKNOWN
    name = _to_string(key)
    if isinstance(mapping, Mapping) and name in mapping:
        return mapping[name]
    if isinstance(mapping, OpenMap):
        return UNKNOWN
    if default:
        return default[0]
    raise EvalError(f"lookup(): no key {name!r}")


def _coalesce(*values: Any) -> Any:
    for value in values:
        if value is UNKNOWN:
            return UNKNOWN
        if value is not None and value != "":
            return value
    raise EvalError("coalesce(): no non-null argument")


def _coalescelist(*lists: Any) -> Any:
    for value in lists:
        if value is UNKNOWN:
            return UNKNOWN
        if value:
            return value
    return []


def _concat(*lists: Any) -> Any:
    result: list[Any] = []
    for item in lists:
        if item is UNKNOWN:
            return UNKNOWN
        if not isinstance(item, list):
            raise EvalError("concat() takes lists")
        result.extend(item)
    return result


def _flatten(value: Any) -> Any:
    result: list[Any] = []
    for item in value:
        if item is UNKNOWN:
            return UNKNOWN
        if isinstance(item, list):
            inner = _flatten(item)
            if inner is UNKNOWN:
                return UNKNOWN
            result.extend(inner)
        else:
            result.append(item)
    return result


def _length(value: Any) -> Any:
    if isinstance(value, OpenMap):
        return UNKNOWN
    if isinstance(value, str | list | Mapping):
        return len(value)
    raise EvalError("length() of a scalar")


def _tostring(value: Any) -> Any:
    return None if value is None else _to_string(value)


def _format(spec: str, *args: Any) -> str:
    out, index, position = [], 0, 0
    while position < len(spec):
        char = spec[position]
        if char == "%" and position + 1 < len(spec):
            verb = spec[position + 1]
            if verb == "%":
                out.append("%")
            elif verb in "sdvfq":
                value = args[index]
                index += 1
                if verb == "d":
                    out.append(str(int(_to_number(value))))
                elif verb == "f":
                    out.append(f"{_to_number(value):f}")
                elif verb == "q":
                    out.append(json.dumps(_to_string(value)))
                else:
                    out.append(_to_string(value))
            else:
                raise EvalError(f"format(): %{verb} is not supported here")
            position += 2
            continue
        out.append(char)
        position += 1
    return "".join(out)


def _replace(text: str, old: str, new: str) -> Any:
    if len(old) > 1 and old.startswith("/") and old.endswith("/"):
        return UNKNOWN  # a regular expression: RE2 syntax, not evaluated here
    return _to_string(text).replace(_to_string(old), _to_string(new))


def _toset(value: Any) -> Any:
    if not isinstance(value, list):
        raise EvalError("toset() takes a list")
    result: list[Any] = []
    for item in value:
        if item not in result:
            result.append(item)
    return result


def _tomap(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise EvalError("tomap() takes an object")
    return value


def _keys(value: Any) -> Any:
    if isinstance(value, OpenMap):
        return UNKNOWN
    return sorted(value)


def _values(value: Any) -> Any:
    if isinstance(value, OpenMap):
        return UNKNOWN
    return [value[k] for k in sorted(value)]


def _element(items: list[Any], index: Any) -> Any:
    if not items:
        raise EvalError("element() of an empty list")
    return items[int(_to_number(index)) % len(items)]


def _one(items: Any) -> Any:
    if isinstance(items, list):
        if not items:
            return None
        if len(items) == 1:
            return items[0]
    raise EvalError("one() needs at most one element")


def _contains(items: Any, value: Any) -> Any:
    if value is UNKNOWN or UNKNOWN in items:
        return UNKNOWN
    return value in items


def _zipmap(keys: list[Any], values: list[Any]) -> dict[str, Any]:
    return {_to_string(k): v for k, v in zip(keys, values, strict=True)}


def _range(*args: Any) -> list[Any]:
    numbers = [int(_to_number(a)) for a in args]
    return list(range(*numbers))


def _slice(items: list[Any], start: Any, end: Any) -> list[Any]:
    return items[int(_to_number(start)) : int(_to_number(end))]


def _split(separator: str, text: str) -> list[str]:
    return _to_string(text).split(_to_string(separator))


def _join(separator: str, *lists: Any) -> Any:
    parts: list[str] = []
    for items in lists:
        for item in items:
            if item is UNKNOWN:
                return UNKNOWN
            parts.append(_to_string(item))
    return _to_string(separator).join(parts)


def _jsonencode(value: Any) -> Any:
    if _has_unknown(value):
        return UNKNOWN
    return json.dumps(value, separators=(",", ":"))


def _has_unknown(value: Any) -> bool:
    if value is UNKNOWN or isinstance(value, OpenMap):
        return True
    if isinstance(value, Mapping):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


def _compact(items: list[Any]) -> Any:
    if UNKNOWN in items:
        return UNKNOWN
    return [i for i in items if i not in (None, "")]


def _distinct(items: list[Any]) -> list[Any]:
    return _toset(items)


def _min_max(pick: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *numbers: pick(_to_number(n) for n in numbers)


def _tonumber(value: Any) -> Any:
    return None if value is None else _to_number(value)


def _tobool(value: Any) -> Any:
    return None if value is None else _to_bool(value)


def _substr(text: str, offset: Any, length: Any) -> str:
    start, size = int(_to_number(offset)), int(_to_number(length))
    text = _to_string(text)
    if start < 0:
        start = len(text) + start
    return text[start:] if size < 0 else text[start : start + size]


def _alltrue(items: list[Any]) -> Any:
    if UNKNOWN in items:
        return False if any(i is not UNKNOWN and not _to_bool(i) for i in items) else UNKNOWN
    return all(_to_bool(i) for i in items)


def _anytrue(items: list[Any]) -> Any:
    if UNKNOWN in items:
        return True if any(i is not UNKNOWN and _to_bool(i) for i in items) else UNKNOWN
    return any(_to_bool(i) for i in items)


def _setunion(*sets: Any) -> Any:
    result: list[Any] = []
    for items in sets:
        for item in items:
            if item not in result:
                result.append(item)
    return result


def _index_of(items: list[Any], value: Any) -> int:
    return items.index(value)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": lambda n: abs(_to_number(n)),
    "alltrue": _alltrue,
    "anytrue": _anytrue,
    "ceil": lambda n: math.ceil(_to_number(n)),
    "chomp": lambda s: _to_string(s).rstrip("\r\n"),
    "coalesce": _coalesce,
    "coalescelist": _coalescelist,
    "compact": _compact,
    "concat": _concat,
    "contains": _contains,
    "distinct": _distinct,
    "element": _element,
    "endswith": lambda s, suffix: _to_string(s).endswith(_to_string(suffix)),
    "flatten": _flatten,
    "floor": lambda n: math.floor(_to_number(n)),
    "format": _format,
    "index": _index_of,
    "join": _join,
    "jsondecode": lambda s: json.loads(_to_string(s)),
    "jsonencode": _jsonencode,
    "keys": _keys,
    "length": _length,
    "lookup": _lookup,
    "lower": lambda s: _to_string(s).lower(),
    "max": _min_max(max),
    "merge": _merge,
    "min": _min_max(min),
    "one": _one,
    "range": _range,
    "replace": _replace,
    "reverse": lambda items: list(reversed(items)),
    "setunion": _setunion,
    "slice": _slice,
    "sort": lambda items: sorted(_to_string(i) for i in items),
    "split": _split,
    "startswith": lambda s, prefix: _to_string(s).startswith(_to_string(prefix)),
    "substr": _substr,
    "title": lambda s: _to_string(s).title(),
    "tobool": _tobool,
    "tolist": lambda items: list(items),
    "tomap": _tomap,
    "tonumber": _tonumber,
    "toset": _toset,
    "tostring": _tostring,
    "trimprefix": lambda s, p: _to_string(s).removeprefix(_to_string(p)),
    "trimspace": lambda s: _to_string(s).strip(),
    "trimsuffix": lambda s, p: _to_string(s).removesuffix(_to_string(p)),
    "upper": lambda s: _to_string(s).upper(),
    "values": _values,
    "zipmap": _zipmap,
}
# Functions that take an UNKNOWN argument themselves and may still answer (merge: an OpenMap;
# coalesce/lookup: when a known argument decides). The others give UNKNOWN for an UNKNOWN
# argument, and look for UNKNOWN inside their collections themselves.
_TOP_LEVEL_UNKNOWN_OK = frozenset({"merge", "lookup", "coalesce", "coalescelist"})


# --- type constraints ---------------------------------------------------------------------


def convert(value: Any, type_expr: hcl.Expr | None) -> Any:
    """`value` converted to a variable's type constraint as Terraform does: object attributes
    marked `optional(T, default)` that are missing take their default (or null), extra object
    attributes are dropped, numbers and bools become strings where a string is wanted."""
    if type_expr is None or value is UNKNOWN or value is None:
        return value
    try:
        return _convert(value, type_expr)
    except EvalError:
        return UNKNOWN


def _convert(value: Any, type_expr: hcl.Expr) -> Any:
    if value is UNKNOWN or value is None:
        return value
    if isinstance(type_expr, hcl.Traversal) and not type_expr.steps:
        kind = type_expr.root
        if kind == "string" and isinstance(value, int | float | bool):
            return _to_string(value)
        if kind == "number" and isinstance(value, str):
            return _to_number(value)
        if kind == "bool" and isinstance(value, str):
            return _to_bool(value)
        return value
    if not isinstance(type_expr, hcl.Call) or not type_expr.args:
        return value
    name, inner = type_expr.name, type_expr.args[0]
    if name == "optional":
        return _convert(value, inner)
    if name in ("list", "set") and isinstance(value, list):
        return [_convert(item, inner) for item in value]
    if name == "map" and isinstance(value, dict):
        converted = {k: _convert(v, inner) for k, v in value.items()}
        return OpenMap(converted) if isinstance(value, OpenMap) else converted
    if name == "tuple" and isinstance(value, list) and isinstance(inner, hcl.TupleExpr):
        return [_convert(v, t) for v, t in zip(value, inner.items, strict=False)]
    if name == "object" and isinstance(value, dict) and isinstance(inner, hcl.ObjectExpr):
        result: dict[str, Any] = {}
        for key_expr, attr_type in inner.items:
            key = key_expr.value if isinstance(key_expr, hcl.Literal) else key_expr.text
            if key in value:
                result[key] = _convert(value[key], attr_type)
            elif isinstance(value, OpenMap):
                result[key] = UNKNOWN
            elif isinstance(attr_type, hcl.Call) and attr_type.name == "optional":
                default = (
                    _eval(attr_type.args[1], Scope(lambda r, s, sc: UNKNOWN))
                    if len(attr_type.args) > 1
                    else None
                )
                result[key] = _convert(default, attr_type.args[0])
            else:
                result[key] = None
        return result
    return value
