"""The Terraform language (HCL native syntax) as the evaluator reads it: bodies, blocks,
attributes, and expressions as small trees (`Expr` subclasses).

python-hcl2 (Amplify Education) parses: its Lark grammar, lexer and LALR parser give a parse
tree with the position of every node (`hcl2.parses_to_tree`). This module turns that tree
into `Expr` trees, each with its source text and line, so a value that cannot be read is
reported as the code says it (`instance_type = var.instance_type`). It reads itself what
python-hcl2 leaves as text:

- a heredoc is one token there: its template (`${...}` interpolations, `%{...}` directives,
  `$${` escapes) is split here, each interpolation parsed by python-hcl2 as an expression;
- escape sequences of quoted strings, with python-hcl2's own `process_escape_sequences`;
- strip markers in interpolations (`"${~ x ~}"`) are not in python-hcl2's grammar: a file
  that fails to parse and has them is parsed again with the markers blanked (same length,
  so lines and columns hold). Their whitespace stripping is not applied (it changes no
  value the rules read).

It rejects what Terraform rejects and python-hcl2 lets through: an attribute set twice in a
body, an interpolation in a block label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import hcl2
from hcl2.utils import process_escape_sequences
from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken


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
    source: str = field(default="", repr=False, compare=False)
    """The text of the file (or expression) it was read from; `text` is its slice."""
    start: int = field(default=0, repr=False, compare=False)
    end: int = field(default=0, repr=False, compare=False)
    line: int = field(default=0, repr=False, compare=False)

    @property
    def text(self) -> str:
        """The expression as written."""
        return self.source[self.start : self.end]


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


# --- python-hcl2's parse tree -> Expr -----------------------------------------------------

_NEWLINE = "new_line_or_comment"
_NAME_TREES = frozenset({"identifier", "keyword", "literal_value"})
_LITERAL_VALUES = {"true": True, "false": False, "null": None}
_TEMPLATE_MARK = re.compile(r"\$\$\{|%%\{|\$\{|%\{")
_STRIP_MARKERS = re.compile(r"(?<=\$\{)~|~(?=\})")


def _subtrees(tree: Tree) -> list[Tree]:
    """The children that are rules, without new lines and comments."""
    return [c for c in tree.children if isinstance(c, Tree) and c.data != _NEWLINE]


def _name(tree: Tree) -> str:
    """An identifier, keyword (`in`, `for`...) or `true`/`false`/`null` used as a name."""
    return str(tree.children[0])


class _Reader:
    """Builds `Body`/`Expr` trees from the parse tree of `source`."""

    def __init__(self, source: str, path: str) -> None:
        self.source = source
        self.path = path
        self.handlers = {
            "expr_term": self.expr_term,
            "conditional": self.conditional,
            "binary_op": self.binary,
            "unary_op": self.unary,
            "int_lit": self.number,
            "float_lit": self.number,
            "string": self.string,
            "template_string": self.template_string,
            "heredoc_template": self.heredoc,
            "heredoc_template_trim": self.heredoc,
            "tuple": self.tuple_expr,
            "object": self.object_expr,
            "identifier": self.identifier,
            "literal_value": self.literal_value,
            "function_call": self.call,
            "index_expr_term": self.postfix,
            "get_attr_expr_term": self.postfix,
            "attr_splat_expr_term": self.postfix,
            "full_splat_expr_term": self.postfix,
            "for_tuple_expr": self.for_expression,
            "for_object_expr": self.for_expression,
        }

    def error(self, line: int, message: str) -> HclError:
        return HclError(self.path, line, message)

    def at(self, expr: Expr, tree: Tree, end: int | None = None) -> Expr:
        """`expr` with the source span and line of `tree`."""
        meta = tree.meta
        expr.source = self.source
        expr.start = meta.start_pos
        expr.end = meta.end_pos if end is None else end
        expr.line = meta.line
        return expr

    # -- bodies --

    def body(self, tree: Tree) -> Body:
        result = Body()
        for child in _subtrees(tree):
            if child.data == "attribute":
                name_tree, value_tree = _subtrees(child)
                name = _name(name_tree)
                if name in result.attributes:
                    raise self.error(child.meta.line, f"attribute {name!r} set twice")
                result.attributes[name] = Attribute(name, self.expr(value_tree), child.meta.line)
            elif child.data == "block":
                result.blocks.append(self.block(child))
        return result

    def block(self, tree: Tree) -> Block:
        *head, body = _subtrees(tree)
        labels = []
        for label in head[1:]:
            if label.data == "string":
                value = self.string(label)
                if not isinstance(value, Literal):
                    raise self.error(label.meta.line, "block labels cannot contain interpolations")
                labels.append(str(value.value))
            else:
                labels.append(_name(label))
        closing = tree.children[-1]
        end_line = (
            closing.line if isinstance(closing, Token) and closing.line else tree.meta.end_line
        )
        return Block(_name(head[0]), labels, self.body(body), tree.meta.line, end_line)

    # -- expressions --

    def expr(self, tree: Tree) -> Expr:
        handler = self.handlers.get(tree.data)
        if handler is None:  # a rule of a later python-hcl2 grammar
            raise self.error(
                tree.meta.line,
                f"python-hcl2 {hcl2.__version__} gave {tree.data!r}, which this reader does not read",
            )
        return handler(tree)

    def expr_term(self, tree: Tree) -> Expr:
        """A term, or an expression in parentheses (its text is the inner expression's)."""
        (inner,) = _subtrees(tree)
        return self.expr(inner)

    def conditional(self, tree: Tree) -> Expr:
        condition, then, otherwise = (self.expr(t) for t in _subtrees(tree))
        return self.at(Conditional(condition=condition, then=then, otherwise=otherwise), tree)

    def binary(self, tree: Tree) -> Expr:
        left_tree, term = _subtrees(tree)[:2]
        operator, right_tree = _subtrees(term)
        # the postlexer may have merged a line break (and comments) before the operator into it
        op = str(operator.children[0]).split()[-1]
        binary = Binary(op=op, left=self.expr(left_tree), right=self.expr(right_tree))
        return self.at(binary, tree, end=term.meta.end_pos)  # not the new line after it

    def unary(self, tree: Tree) -> Expr:
        op = str(tree.children[0]).strip()
        (operand_tree,) = _subtrees(tree)
        operand = self.expr(operand_tree)
        if op == "-" and isinstance(operand, Literal) and isinstance(operand.value, int | float):
            return self.at(Literal(value=-operand.value), tree)
        return self.at(Unary(op=op, operand=operand), tree)

    def number(self, tree: Tree) -> Expr:
        raw = str(tree.children[0])
        value = int(raw) if tree.data == "int_lit" else float(raw)
        return self.at(Literal(value=value), tree)

    def identifier(self, tree: Tree) -> Expr:
        return self.at(Traversal(root=_name(tree)), tree)

    def literal_value(self, tree: Tree) -> Expr:
        return self.at(Literal(value=_LITERAL_VALUES[_name(tree)]), tree)

    def tuple_expr(self, tree: Tree) -> Expr:
        return self.at(TupleExpr(items=[self.expr(t) for t in _subtrees(tree)]), tree)

    def object_expr(self, tree: Tree) -> Expr:
        items = []
        for element in _subtrees(tree):
            key_tree, value_tree = _subtrees(element)
            items.append((self.object_key(key_tree), self.expr(value_tree)))
        return self.at(ObjectExpr(items=items), tree)

    def object_key(self, tree: Tree) -> Expr:
        """A bare name is the key itself (`Name = "x"`); anything else is an expression."""
        (key,) = _subtrees(tree)
        if key.data == "keyword":
            return self.at(Literal(value=_name(key)), key)
        if key.data == "expr_term" and isinstance(key.children[0], Tree):
            (inner,) = _subtrees(key)
            if inner.data in _NAME_TREES:
                return self.at(Literal(value=_name(inner)), inner)
        return self.expr(key)

    def call(self, tree: Tree) -> Expr:
        names = [t for t in tree.children if isinstance(t, Tree) and t.data == "identifier"]
        args: list[Expr] = []
        expand = False
        for child in tree.children:
            if isinstance(child, Tree) and child.data == "arguments":
                args = [self.expr(t) for t in _subtrees(child)]
                expand = any(isinstance(t, Token) and t.type == "ELLIPSIS" for t in child.children)
        name = "::".join(_name(n) for n in names)  # provider::aws::arn_parse(...)
        return self.at(Call(name=name, args=args, expand=expand), tree)

    def postfix(self, tree: Tree) -> Expr:
        base_tree, step_tree = _subtrees(tree)
        base = self.expr(base_tree)
        steps = self.steps(step_tree)
        if isinstance(base, Traversal | Postfix):
            base.steps.extend(steps)
            return self.at(base, tree)
        return self.at(Postfix(base=base, steps=steps), tree)

    def steps(self, tree: Tree) -> list[tuple[str, Any]]:
        kind = tree.data
        if kind == "get_attr":
            (name,) = _subtrees(tree)
            return [("attr", _name(name))]
        if kind == "braces_index":
            (index,) = _subtrees(tree)
            return [("index", self.expr(index))]
        if kind == "short_index":  # `list.0`, the legacy index
            number = tree.children[-1]
            literal = Literal(value=int(str(number)), source=self.source, line=tree.meta.line)
            return [("index", literal)]
        # attr_splat `.*` or full_splat `[*]`, then the steps applied to each element
        steps: list[tuple[str, Any]] = [("splat", None)]
        for step in _subtrees(tree):
            steps.extend(self.steps(step))
        return steps

    def for_expression(self, tree: Tree) -> Expr:
        intro, *rest = _subtrees(tree)
        *names, collection = _subtrees(intro)
        key_var = _name(names[0]) if len(names) == 2 else None
        value_var = _name(names[-1])
        condition = None
        if rest and rest[-1].data == "for_cond":
            (condition_tree,) = _subtrees(rest.pop())
            condition = self.expr(condition_tree)
        key = None
        if tree.data == "for_object_expr":
            key_tree, value_tree = rest
            key = self.expr(key_tree)
        else:
            (value_tree,) = rest
        grouping = any(isinstance(t, Token) and t.type == "ELLIPSIS" for t in tree.children)
        loop = ForExpr(
            key_var=key_var,
            value_var=value_var,
            collection=self.expr(collection),
            key=key,
            value=self.expr(value_tree),
            condition=condition,
            grouping=grouping,
        )
        return self.at(loop, tree)

    # -- strings --

    def string(self, tree: Tree) -> Expr:
        parts: list[Any] = []
        for part in _subtrees(tree):
            (content,) = part.children
            if isinstance(content, Token):
                text = str(content)
                if content.type != "STRING_CHARS":  # `$${...}` / `%%{...}`: literal `${...}`
                    text = text[1:]
                _append_text(parts, process_escape_sequences(text))
            elif content.data == "interpolation":
                (inner,) = _subtrees(content)
                parts.append(self.expr(inner))
            else:  # template_if_start, template_else, template_for_start ...
                parts.append(self.at(Directive(), content))
        return self.at(_template(parts), tree)

    def template_string(self, tree: Tree) -> Expr:
        """`\\"...\\"`, a string inside a template directive."""
        raw = str(tree.children[0])
        return self.at(Literal(value=process_escape_sequences(raw[2:-2])), tree)

    def heredoc(self, tree: Tree) -> Expr:
        token = str(tree.children[0])
        lines = token[token.index("\n") + 1 :].split("\n")[:-2]  # without the closing marker
        if tree.data == "heredoc_template_trim":
            indents = [len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()]
            cut = min(indents) if indents else 0
            lines = [ln[cut:] for ln in lines]
        body = "\n".join(lines) + ("\n" if lines else "")
        return self.at(self.template_text(body, tree.meta.line + 1), tree)

    def template_text(self, text: str, line: int) -> Expr:
        """A template's text (a heredoc body): literal text, `${...}` and `%{...}`."""
        parts: list[Any] = []
        position = 0
        while (mark := _TEMPLATE_MARK.search(text, position)) is not None:
            _append_text(parts, text[position : mark.start()])
            opener = mark.group()
            if len(opener) == 3:  # `$${` or `%%{`: the characters themselves
                _append_text(parts, opener[1:])
                position = mark.end()
                continue
            here = line + text.count("\n", 0, mark.start())
            end = _closing_brace(text, mark.end())
            if end < 0:
                raise self.error(here, f"unclosed {opener} in a heredoc template")
            inner = text[mark.end() : end].strip().removeprefix("~").removesuffix("~")
            if opener == "${":
                parts.append(parse_expression(inner, self.path, here))
            else:
                parts.append(Directive(source=text, start=mark.start(), end=end + 1, line=here))
            position = end + 1
        _append_text(parts, text[position:])
        return _template(parts)


def _append_text(parts: list[Any], text: str) -> None:
    if not text:
        return
    if parts and isinstance(parts[-1], str):
        parts[-1] += text
    else:
        parts.append(text)


def _template(parts: list[Any]) -> Expr:
    if not parts:
        return Literal(value="")
    if len(parts) == 1 and isinstance(parts[0], str):
        return Literal(value=parts[0])
    return Template(parts=parts)  # "${x}" alone keeps x's type (see the evaluator)


def _closing_brace(text: str, position: int) -> int:
    """The index of the `}` that closes the `${`/`%{` opened just before `position`, skipping
    nested braces and quoted strings (with their own interpolations); -1 if none."""
    depth = 0
    while position < len(text):
        char = text[position]
        if char == '"':
            position = _closing_quote(text, position + 1)
            if position < 0:
                return -1
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return position
            depth -= 1
        position += 1
    return -1


def _closing_quote(text: str, position: int) -> int:
    while position < len(text):
        char = text[position]
        if char == "\\":
            position += 2
            continue
        if char == '"':
            return position
        if text.startswith("${", position) or text.startswith("%{", position):
            position = _closing_brace(text, position + 2)
            if position < 0:
                return -1
        position += 1
    return -1


# --- parsing ------------------------------------------------------------------------------

_READABLE = {
    "NAME": "a name",
    "INT_LITERAL": "a number",
    "FLOAT_LITERAL": "a number",
    "DBLQUOTE": "'\"'",
    "NL_OR_COMMENT": "a new line",
    "EQ": "'='",
    "COLON": "':'",
    "COMMA": "','",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LPAR": "'('",
    "RPAR": "')'",
    "QMARK": "'?'",
    "FOR_OBJECT_ARROW": "'=>'",
    "IN": "'in'",
}


def _describe(exc: UnexpectedInput) -> str:
    """One line for a syntax error: what could come there, and what was found."""
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        value = str(token).strip(" \t\r")
        if token.type == "$END":
            found = "the end of the file"
        elif not value or value.startswith(("\n", "#", "//", "/*")):
            found = "the end of the line"
        else:
            found = repr(value.split("\n")[0])
    elif isinstance(exc, UnexpectedCharacters):
        found = repr(exc.char)
    else:
        found = "the end of the file"
    expected = set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    if "STRING_CHARS" in expected:
        return f"unterminated string: expected '\"', found {found}"
    if {"NAME", "INT_LITERAL", "LSQB"} <= expected:
        return f"expected an expression, found {found}"
    readable = sorted({_READABLE.get(name, name.lower()) for name in expected})
    if not readable:
        return f"unexpected {found}"
    return f"expected {' or '.join(readable[:6])}, found {found}"


def _parse_tree(text: str, path: str, line_offset: int = 0) -> Tree:
    try:
        return hcl2.parses_to_tree(text)
    except UnexpectedInput as exc:
        error = exc
    if _STRIP_MARKERS.search(text):  # `${~ x ~}`: not in python-hcl2's grammar
        try:
            return hcl2.parses_to_tree(_STRIP_MARKERS.sub(" ", text))
        except UnexpectedInput:
            pass
    line = error.line if error.line > 0 else text.count("\n") + 1
    raise HclError(path, line + line_offset, _describe(error)) from None


def parse(text: str, path: str = "<string>") -> Body:
    """The body of one `.tf` file. Raises `HclError` with the file and line."""
    return _Reader(text, path).body(_parse_tree(text, path).children[0])


def parse_expression(text: str, path: str = "<expression>", line: int = 1) -> Expr:
    """One expression (tests, template interpolations); `line`: where `text` starts, for
    errors."""
    source = f"x = ({text}\n)"  # in parentheses, an expression may span lines
    start = _parse_tree(source, path, line - 1)
    attributes = _subtrees(start.children[0])
    if len(attributes) != 1 or attributes[0].data != "attribute":
        raise HclError(path, line, "expected one expression")
    _, value = _subtrees(attributes[0])
    (inner,) = _subtrees(value)  # inside the parentheses
    return _Reader(source, path).expr(inner)
