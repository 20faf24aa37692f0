"""A parser for HCL 2 (the Terraform language): bodies, blocks, attributes and expressions.

Standard library only, so the same reader runs in the project's virtualenv and in checkov's.
It keeps what an evaluator needs: expressions as small trees (`Expr` subclasses), each with
its source text and line, so a value that cannot be read is reported as the code says it
(`instance_type = var.instance_type`). The grammar is HashiCorp's HCL native syntax
(hashicorp/hcl `hclsyntax/spec.md`): template strings with `${...}` and `%{...}`, heredocs,
`for` expressions, splats, and the operator precedence of the spec.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any


class HclError(ValueError):
    """A syntax error: `path:line: message`."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


# --- the tree -----------------------------------------------------------------------------


@dataclass
class Expr:
    text: str = field(default="", repr=False, compare=False)
    line: int = field(default=0, repr=False, compare=False)


@dataclass
class Literal(Expr):
    value: Any = None


@dataclass
class Template(Expr):
    parts: list[Any] = field(default_factory=list)
    """Strings and `Expr`s; a `Directive` for `%{...}` (evaluated as unknown)."""


@dataclass
class Directive(Expr):
    pass


@dataclass
class TupleExpr(Expr):
    items: list[Expr] = field(default_factory=list)


@dataclass
class ObjectExpr(Expr):
    items: list[tuple[Expr, Expr]] = field(default_factory=list)


@dataclass
class Traversal(Expr):
    """`root.step.step`: steps are ("attr", name), ("index", Expr), ("splat", None)."""

    root: str = ""
    steps: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class Postfix(Expr):
    """Attribute, index or splat steps applied to a non-variable expression."""

    base: Expr = field(default_factory=Expr)
    steps: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class Call(Expr):
    name: str = ""
    args: list[Expr] = field(default_factory=list)
    expand: bool = False
    """The last argument is a list to spread (`f(xs...)`)."""


@dataclass
class Unary(Expr):
    op: str = ""
    operand: Expr = field(default_factory=Expr)


@dataclass
class Binary(Expr):
    op: str = ""
    left: Expr = field(default_factory=Expr)
    right: Expr = field(default_factory=Expr)


@dataclass
class Conditional(Expr):
    condition: Expr = field(default_factory=Expr)
    then: Expr = field(default_factory=Expr)
    otherwise: Expr = field(default_factory=Expr)


@dataclass
class ForExpr(Expr):
    key_var: str | None = None
    value_var: str = ""
    collection: Expr = field(default_factory=Expr)
    key: Expr | None = None
    """Object `for` only: the key expression (`k => v`)."""
    value: Expr = field(default_factory=Expr)
    condition: Expr | None = None
    grouping: bool = False


@dataclass
class Attribute:
    name: str
    expr: Expr
    line: int


@dataclass
class Block:
    type: str
    labels: list[str]
    body: Body
    line: int
    end_line: int


@dataclass
class Body:
    attributes: dict[str, Attribute] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def blocks_of(self, block_type: str) -> list[Block]:
        return [b for b in self.blocks if b.type == block_type]


# --- the parser ---------------------------------------------------------------------------

_BINARY_LEVELS: tuple[tuple[str, ...], ...] = (
    ("||",),
    ("&&",),
    ("==", "!="),
    (">=", "<=", ">", "<"),
    ("+", "-"),
    ("*", "/", "%"),
)
_PRECEDENCE = {op: level for level, ops in enumerate(_BINARY_LEVELS) for op in ops}
_OPERATORS = sorted(_PRECEDENCE, key=len, reverse=True)  # `>=` before `>`
_OPERATOR_START = {op[0] for op in _PRECEDENCE}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_SKIPPABLE = set(" \t\r\n#/")
_NEWLINE = re.compile("\n")
_PLAIN_QUOTED = re.compile(r'[^"\\\n$%]*')  # no escape, interpolation or end in sight
_PLAIN_HEREDOC = re.compile(r"[^$%]*")
_SPACES = re.compile(r"[ \t\r]*")
_SPACES_AND_NEWLINES = re.compile(r"[ \t\r\n]*")
_IDENT_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0
        self.depth = 0  # inside (), [] or an expression's {}: newlines are plain space
        self._newlines: list[int] | None = None

    # -- low level --

    def error(self, message: str, pos: int | None = None) -> HclError:
        where = self.pos if pos is None else pos
        return HclError(self.path, self.line_at(where), message)

    def line_at(self, pos: int) -> int:
        if self._newlines is None:
            self._newlines = [match.start() for match in _NEWLINE.finditer(self.text)]
        return bisect.bisect_left(self._newlines, pos) + 1

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def startswith(self, literal: str) -> bool:
        return self.text.startswith(literal, self.pos)

    def skip(self, newlines: bool | None = None) -> None:
        """Skip spaces and comments; newlines too when inside brackets (or asked)."""
        if self.pos < len(self.text) and self.text[self.pos] not in _SKIPPABLE:
            return
        skip_newlines = self.depth > 0 if newlines is None else newlines
        spaces = _SPACES_AND_NEWLINES if skip_newlines else _SPACES
        text = self.text
        while True:
            self.pos = spaces.match(text, self.pos).end()  # type: ignore[union-attr]
            if self.pos >= len(text):
                return
            char = text[self.pos]
            if char == "#" or text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def expect(self, literal: str) -> None:
        self.skip()
        if not self.startswith(literal):
            found = self.peek() or "end of file"
            raise self.error(f"expected {literal!r}, found {found!r}")
        self.pos += len(literal)

    def accept(self, literal: str) -> bool:
        self.skip()
        if self.startswith(literal):
            self.pos += len(literal)
            return True
        return False

    def identifier(self) -> str:
        self.skip()
        start = self.pos
        if self.peek() not in _IDENT_START:
            raise self.error(f"expected a name, found {self.peek() or 'end of file'!r}")
        self.pos = _IDENTIFIER.match(self.text, start).end()  # type: ignore[union-attr]
        return self.text[start : self.pos]

    # -- bodies --

    def body(self, closing: str | None) -> Body:
        result = Body()
        while True:
            self.skip(newlines=True)
            if closing is None and self.pos >= len(self.text):
                return result
            if closing is not None and self.startswith(closing):
                self.pos += 1
                return result
            if self.pos >= len(self.text):
                raise self.error("unexpected end of file: missing '}'")
            start = self.pos
            name = self.identifier()
            self.skip(newlines=False)
            if self.peek() == "=" and self.peek(1) != "=":
                self.pos += 1
                expr = self.expression()
                self.end_of_item(closing)
                if name in result.attributes:
                    raise self.error(f"attribute {name!r} set twice", start)
                result.attributes[name] = Attribute(name, expr, self.line_at(start))
                continue
            labels = []
            while True:
                self.skip(newlines=False)
                if self.peek() == '"':
                    label = self.template_string()
                    if not isinstance(label, Literal):
                        raise self.error("block labels cannot contain interpolations")
                    labels.append(str(label.value))
                elif self.peek() in _IDENT_START:
                    labels.append(self.identifier())
                else:
                    break
            self.expect("{")
            block_body = self.body("}")
            result.blocks.append(
                Block(name, labels, block_body, self.line_at(start), self.line_at(self.pos - 1))
            )

    def end_of_item(self, closing: str | None) -> None:
        self.skip(newlines=False)
        char = self.peek()
        if char in ("\n", "") or (closing is not None and char == closing):
            return
        raise self.error(f"expected a new line after the attribute, found {char!r}")

    # -- expressions --

    def expression(self) -> Expr:
        self.skip()
        start = self.pos
        expr = self.binary(0)
        self.skip()
        if self.peek() == "?":
            self.pos += 1
            then = self.expression()
            self.expect(":")
            otherwise = self.expression()
            expr = Conditional(condition=expr, then=then, otherwise=otherwise)
        return self.spanned(expr, start)

    def spanned(self, expr: Expr, start: int) -> Expr:
        if not expr.text:
            expr.text = self.text[start : self.pos].strip()
            expr.line = self.line_at(start)
        return expr

    def binary(self, level: int) -> Expr:
        """Binary operators by precedence climbing: operators of `level` and tighter."""
        self.skip()
        start = self.pos
        return self.climb(self.unary(), level, start)

    def climb(self, left: Expr, level: int, start: int) -> Expr:
        while True:
            op = self.operator()
            if op is None or _PRECEDENCE[op] < level:
                return left
            self.pos += len(op)
            self.skip()
            right_start = self.pos
            right = self.unary()
            while (tighter := self.operator()) is not None and (
                _PRECEDENCE[tighter] > _PRECEDENCE[op]
            ):
                right = self.climb(right, _PRECEDENCE[op] + 1, right_start)
            left = self.spanned(Binary(op=op, left=left, right=right), start)

    def operator(self) -> str | None:
        """The binary operator at the next token, if any (not consumed)."""
        self.skip()
        if self.peek() not in _OPERATOR_START:
            return None
        return next((o for o in _OPERATORS if self.startswith(o)), None)

    def unary(self) -> Expr:
        self.skip()
        start = self.pos
        if self.peek() in ("!", "-") and not self.startswith("!="):
            op = self.peek()
            self.pos += 1
            operand = self.unary()
            if (
                op == "-"
                and isinstance(operand, Literal)
                and isinstance(operand.value, int | float)
            ):
                return self.spanned(Literal(value=-operand.value), start)
            return self.spanned(Unary(op=op, operand=operand), start)
        return self.postfix()

    def postfix(self) -> Expr:
        self.skip()
        start = self.pos
        expr = self.primary()
        steps: list[tuple[str, Any]] = []
        while True:
            save = self.pos
            self.skip()
            if self.startswith(".*"):
                self.pos += 2
                steps.append(("splat", None))
            elif self.peek() == "." and not self.startswith(".."):
                self.pos += 1
                self.skip()
                if self.peek().isdigit():
                    number = self.number()
                    steps.append(("index", number))
                else:
                    steps.append(("attr", self.identifier()))
            elif self.peek() == "[":
                self.pos += 1
                self.depth += 1
                self.skip()
                if self.peek() == "*":
                    self.pos += 1
                    self.depth -= 1
                    self.expect("]")
                    steps.append(("splat", None))
                else:
                    index = self.expression()
                    self.depth -= 1
                    self.expect("]")
                    steps.append(("index", index))
            else:
                self.pos = save
                break
        if not steps:
            return expr
        if isinstance(expr, Traversal):
            expr.steps.extend(steps)
            expr.text = ""
            return self.spanned(expr, start)
        return self.spanned(Postfix(base=expr, steps=steps), start)

    def primary(self) -> Expr:
        self.skip()
        start = self.pos
        char = self.peek()
        if char == "":
            raise self.error("expected an expression, found the end of the file")
        if char == "\n":
            raise self.error("expected an expression, found the end of the line")
        if char == '"':
            return self.spanned(self.template_string(), start)
        if self.startswith("<<"):
            return self.spanned(self.heredoc(), start)
        if char.isdigit():
            return self.spanned(self.number(), start)
        if char == "(":
            self.pos += 1
            self.depth += 1
            inner = self.expression()
            self.depth -= 1
            self.expect(")")
            return self.spanned(inner, start) if inner.text else inner
        if char == "[":
            return self.spanned(self.tuple_or_for(), start)
        if char == "{":
            return self.spanned(self.object_or_for(), start)
        if char in _IDENT_START:
            name = self.identifier()
            if name in ("true", "false"):
                return self.spanned(Literal(value=name == "true"), start)
            if name == "null":
                return self.spanned(Literal(value=None), start)
            self.skip(newlines=False)
            if self.peek() == "(":
                return self.spanned(self.call(name), start)
            if self.startswith("::"):  # provider-defined function: provider::name::fn(...)
                while self.accept("::"):
                    name += "::" + self.identifier()
                return self.spanned(self.call(name), start)
            return self.spanned(Traversal(root=name), start)
        raise self.error(f"unexpected {char!r}")

    def call(self, name: str) -> Call:
        self.expect("(")
        self.depth += 1
        args: list[Expr] = []
        expand = False
        while True:
            self.skip()
            if self.peek() == ")":
                break
            args.append(self.expression())
            self.skip()
            if self.startswith("..."):
                self.pos += 3
                expand = True
                self.skip()
            if not self.accept(","):
                break
        self.depth -= 1
        self.expect(")")
        return Call(name=name, args=args, expand=expand)

    def number(self) -> Literal:
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos].isdigit():
            self.pos += 1
        is_float = False
        if self.peek() == "." and self.peek(1).isdigit():
            is_float = True
            self.pos += 1
            while self.pos < len(text) and text[self.pos].isdigit():
                self.pos += 1
        if self.peek() in ("e", "E"):
            is_float = True
            self.pos += 1
            if self.peek() in ("+", "-"):
                self.pos += 1
            while self.pos < len(text) and text[self.pos].isdigit():
                self.pos += 1
        raw = text[start : self.pos]
        return Literal(value=float(raw) if is_float else int(raw))

    def tuple_or_for(self) -> Expr:
        self.expect("[")
        self.depth += 1
        self.skip()
        if self.startswith("for") and not self.peek(3).isalnum() and self.peek(3) != "_":
            expr = self.for_expression("]")
            self.depth -= 1
            return expr
        items: list[Expr] = []
        while True:
            self.skip()
            if self.peek() == "]":
                break
            items.append(self.expression())
            if not self.accept(","):
                break
        self.depth -= 1
        self.expect("]")
        return TupleExpr(items=items)

    def object_or_for(self) -> Expr:
        self.expect("{")
        self.depth += 1
        self.skip()
        if self.startswith("for") and not self.peek(3).isalnum() and self.peek(3) != "_":
            expr = self.for_expression("}")
            self.depth -= 1
            return expr
        items: list[tuple[Expr, Expr]] = []
        while True:
            self.skip()
            if self.peek() == "}":
                break
            start = self.pos
            key: Expr
            if self.peek() in _IDENT_START:
                name = self.identifier()
                self.skip()
                if self.peek() in ("=", ":") and not self.startswith("=="):
                    key = self.spanned(Literal(value=name), start)
                else:  # an expression key beginning with a name (rare: `local.k = v`)
                    self.pos = start
                    key = self.binary(0)
            else:
                key = self.binary(0)
            self.skip()
            if self.peek() not in ("=", ":"):
                raise self.error(f"expected '=' or ':' after an object key, found {self.peek()!r}")
            self.pos += 1
            value = self.expression()
            items.append((key, value))
            self.skip()
            self.accept(",")
        self.depth -= 1
        self.expect("}")
        return ObjectExpr(items=items)

    def for_expression(self, closing: str) -> ForExpr:
        self.identifier()  # "for"
        first = self.identifier()
        key_var, value_var = None, first
        if self.accept(","):
            key_var, value_var = first, self.identifier()
        self.skip()
        if self.identifier() != "in":
            raise self.error("expected 'in' in a for expression")
        collection = self.expression()
        self.expect(":")
        key_expr = None
        value_expr = self.expression()
        grouping = False
        if closing == "}":
            self.expect("=>")
            key_expr, value_expr = value_expr, self.expression()
            if self.accept("..."):
                grouping = True
        condition = None
        self.skip()
        if self.startswith("if") and not self.peek(2).isalnum():
            self.pos += 2
            condition = self.expression()
        self.expect(closing)
        return ForExpr(
            key_var=key_var,
            value_var=value_var,
            collection=collection,
            key=key_expr,
            value=value_expr,
            condition=condition,
            grouping=grouping,
        )

    # -- strings --

    def template_string(self) -> Expr:
        self.expect('"')
        parts = self.template_parts('"')
        return _template(parts)

    def template_parts(self, terminator: str | None) -> list[Any]:
        """Literal text and interpolations up to `terminator` (None: to the end of the text)."""
        parts: list[Any] = []
        buffer: list[str] = []
        text = self.text
        plain = (
            _PLAIN_QUOTED if terminator == '"' else _PLAIN_HEREDOC if terminator is None else None
        )
        while True:
            if plain is not None:
                end = plain.match(text, self.pos).end()  # type: ignore[union-attr]
                if end > self.pos:
                    buffer.append(text[self.pos : end])
                    self.pos = end
            if self.pos >= len(text):
                if terminator is None:
                    break
                raise self.error("unterminated string")
            char = text[self.pos]
            if terminator is not None and char == terminator:
                self.pos += 1
                break
            if terminator == '"' and char == "\n":
                raise self.error("a quoted string cannot span lines (use a heredoc)")
            if char == "\\" and terminator == '"':
                escape = self.peek(1)
                if escape in _ESCAPES:
                    buffer.append(_ESCAPES[escape])
                    self.pos += 2
                elif escape in ("u", "U"):
                    width = 4 if escape == "u" else 8
                    digits = text[self.pos + 2 : self.pos + 2 + width]
                    buffer.append(chr(int(digits, 16)))
                    self.pos += 2 + width
                else:
                    raise self.error(f"invalid escape \\{escape}")
                continue
            if text.startswith("$${", self.pos) or text.startswith("%%{", self.pos):
                buffer.append(char + "{")
                self.pos += 3
                continue
            if text.startswith("${", self.pos) or text.startswith("%{", self.pos):
                if buffer:
                    parts.append("".join(buffer))
                    buffer = []
                directive = char == "%"
                self.pos += 2
                saved_depth, self.depth = self.depth, 1
                self.skip()
                self.accept("~")
                if directive:
                    start = self.pos
                    end = self._directive_end()
                    parts.append(Directive(text=text[start:end], line=self.line_at(start)))
                    self.pos = end
                else:
                    parts.append(self.expression())
                self.skip()
                self.accept("~")
                self.depth = saved_depth
                self.expect("}")
                continue
            buffer.append(char)
            self.pos += 1
        if buffer:
            parts.append("".join(buffer))
        return parts

    def _directive_end(self) -> int:
        """The position of the `}` closing a `%{ ... }` directive."""
        depth = 0
        index = self.pos
        while index < len(self.text):
            char = self.text[index]
            if char == "{":
                depth += 1
            elif char == "}":
                if depth == 0:
                    return index
                depth -= 1
            index += 1
        raise self.error("unterminated template directive")

    def heredoc(self) -> Expr:
        self.pos += 2
        strip = self.accept("-")
        marker = self.identifier()
        newline = self.text.find("\n", self.pos)
        if newline < 0:
            raise self.error("heredoc without a body")
        start = newline + 1
        lines = self.text[start:].split("\n")
        body_lines = []
        consumed = start
        for line in lines:
            consumed += len(line) + 1
            if line.strip() == marker:
                break
            body_lines.append(line)
        else:
            raise self.error(f"heredoc {marker} is not closed")
        if strip:
            indents = [len(ln) - len(ln.lstrip()) for ln in body_lines if ln.strip()]
            cut = min(indents) if indents else 0
            body_lines = [ln[cut:] for ln in body_lines]
        body = "\n".join(body_lines) + ("\n" if body_lines else "")
        end_of_body = consumed - 1
        inner = _Parser(body, self.path)
        parts = inner.template_parts(None)
        self.pos = min(end_of_body, len(self.text))
        return _template(parts)


def _template(parts: list[Any]) -> Expr:
    if not parts:
        return Literal(value="")
    if len(parts) == 1 and isinstance(parts[0], str):
        return Literal(value=parts[0])
    if len(parts) == 1 and isinstance(parts[0], Expr) and not isinstance(parts[0], Directive):
        return Template(parts=parts)  # "${x}" keeps x's type
    return Template(parts=parts)


def parse(text: str, path: str = "<string>") -> Body:
    """The body of one `.tf` file. Raises `HclError` with the file and line."""
    parser = _Parser(text, path)
    return parser.body(None)


def parse_expression(text: str, path: str = "<expression>") -> Expr:
    """One expression (tests, `.tfvars` values)."""
    parser = _Parser(text, path)
    parser.depth = 1
    expr = parser.expression()
    parser.skip(newlines=True)
    if parser.pos != len(text):
        raise parser.error(f"unexpected {parser.peek()!r} after the expression")
    return expr
