"""Read Terraform configurations as `terraform plan` would see them: root modules, their
variables and `.tfvars`, locals, child modules, `count` and `for_each`, dynamic blocks and
provider `default_tags`, into one `TerraformResource` per resource instance.

- A path is a folder tree: every folder with `.tf` files that no other folder in the tree
  calls as a local module is a root module (as `terraform -chdir=<folder> plan` would run it).
- Child modules load from local paths (`./x`, `../x`), or, for registry and git sources,
  from where `terraform init` put them (`.terraform/modules/modules.json`). A module that is
  not on disk is a `Notice`: its resources were not checked, and the report says so.
- An instance that `count = 0`, an empty `for_each` or a module's `create = false` removes is
  not a resource: it is listed in `skipped` with the reason, never judged.
- A `count`/`for_each` that cannot be evaluated leaves one instance with `created=None`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aifinops.policies.terraform import hcl
from aifinops.policies.terraform.evaluate import Scope, apply_steps, convert, evaluate
from aifinops.policies.values import UNKNOWN, OpenMap, contains_unknown

META_ARGUMENTS = frozenset({"count", "for_each", "provider", "depends_on", "lifecycle"})
SKIPPED_BLOCKS = frozenset({"lifecycle", "provisioner", "connection", "precondition",
                            "postcondition"})  # fmt: skip
SKIPPED_DIRECTORIES = frozenset({".terraform", ".git", "node_modules", ".external_modules"})


@dataclass(frozen=True)
class ProviderConfig:
    """What a provider configuration adds to its resources."""

    name: str
    alias: str | None = None
    region: Any = None
    default_tags: Any = None
    """AWS `default_tags.tags` / Google `default_labels`: a map, an `OpenMap`, UNKNOWN or None."""
    source: str = ""
    """Where `default_tags` was set (file:line), for messages."""


@dataclass
class TerraformResource:
    type: str
    name: str
    address: str
    file: str
    line: int
    end_line: int
    module: str
    attributes: dict[str, Any]
    unknown_sources: dict[str, str] = field(default_factory=dict)
    """Dotted attribute path -> `name = expression` for every value that could not be read."""
    created: bool | None = True
    """None when `count`/`for_each` could not be evaluated (it may not exist)."""
    created_source: str = ""
    provider: ProviderConfig | None = None
    references: list[str] = field(default_factory=list)
    """Addresses (`type.name`, in the same module instance) of resources it refers to."""


@dataclass(frozen=True)
class Skipped:
    address: str
    file: str
    line: int
    reason: str


@dataclass(frozen=True)
class Notice:
    """Something that was not read: a parse error, a module not on disk, a JSON file."""

    file: str
    line: int
    message: str
    kind: str = "not-loaded"
    """"parse-error" or "not-loaded"."""


@dataclass
class LoadResult:
    resources: list[TerraformResource] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)


class _Files:
    """Parsed `.tf` files per folder (each file parsed once per load)."""

    def __init__(self, result: LoadResult) -> None:
        self.result = result
        self.cache: dict[str, list[tuple[str, hcl.Body]]] = {}

    def folder(self, directory: str) -> list[tuple[str, hcl.Body]]:
        if directory in self.cache:
            return self.cache[directory]
        bodies = []
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            self.result.notices.append(Notice(directory, 0, f"cannot read the folder: {exc}"))
            names = []
        for name in names:
            path = os.path.join(directory, name)
            if name.endswith(".tf.json"):
                self.result.notices.append(
                    Notice(path, 0, "JSON-syntax Terraform (.tf.json) is not read")
                )
                continue
            if not name.endswith(".tf") or not os.path.isfile(path):
                continue
            try:
                text = Path(path).read_text(encoding="utf-8")
                bodies.append((path, hcl.parse(text, path)))
            except hcl.HclError as exc:
                self.result.notices.append(Notice(path, exc.line, exc.message, "parse-error"))
            except (OSError, UnicodeDecodeError) as exc:
                self.result.notices.append(Notice(path, 0, str(exc), "parse-error"))
        self.cache[directory] = bodies
        return bodies


def _tfvars(directory: str, result: LoadResult) -> dict[str, Any]:
    """`terraform.tfvars`, `terraform.tfvars.json`, then `*.auto.tfvars(.json)`, in
    Terraform's order (later files win)."""
    values: dict[str, Any] = {}
    names = sorted(os.listdir(directory))
    ordered: list[str] = [n for n in ("terraform.tfvars", "terraform.tfvars.json") if n in names]
    ordered += [n for n in names if n.endswith((".auto.tfvars", ".auto.tfvars.json"))]
    empty = Scope(lambda root, steps, scope: UNKNOWN)
    for name in ordered:
        path = os.path.join(directory, name)
        try:
            text = Path(path).read_text(encoding="utf-8")
            if name.endswith(".json"):
                values.update(json.loads(text))
                continue
            body = hcl.parse(text, path)
        except hcl.HclError as exc:
            result.notices.append(Notice(path, exc.line, exc.message, "parse-error"))
            continue
        except (OSError, ValueError) as exc:
            result.notices.append(Notice(path, 0, str(exc), "parse-error"))
            continue
        for attribute in body.attributes.values():
            values[attribute.name] = evaluate(attribute.expr, empty)
    return values


def _modules_json(root: str) -> dict[str, str]:
    """`terraform init`'s record of downloaded modules: module key path -> folder."""
    path = os.path.join(root, ".terraform", "modules", "modules.json")
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8")).get("Modules") or []
    except (OSError, ValueError):
        return {}
    return {
        str(e.get("Key")): os.path.normpath(os.path.join(root, str(e.get("Dir"))))
        for e in entries
        if e.get("Key")
    }


def _instance_keys(expr_count: hcl.Attribute | None, expr_each: hcl.Attribute | None,
                   scope: Scope) -> tuple[list[tuple[Any, dict[str, Any]]], str, str]:  # fmt: skip
    """[(address suffix, names for the instance)], reason when none, source when unknown."""
    if expr_each is not None:
        value = evaluate(expr_each.expr, scope)
        source = f"for_each = {expr_each.expr.text}"
        if value is UNKNOWN:
            return [(None, {"each": {"key": UNKNOWN, "value": UNKNOWN}})], "", source
        if isinstance(value, dict):
            pairs = list(value.items())
        elif isinstance(value, list):
            pairs = [(v, v) for v in value]
        else:
            return [(None, {"each": {"key": UNKNOWN, "value": UNKNOWN}})], "", source
        if not pairs and not isinstance(value, OpenMap):
            return [], f"for_each is empty ({source})", ""
        keyed = []
        for key, item in pairs:
            if key is UNKNOWN:
                return [(None, {"each": {"key": UNKNOWN, "value": UNKNOWN}})], "", source
            keyed.append((f'["{key}"]', {"each": {"key": key, "value": item}}))
        return keyed, "", ""
    if expr_count is not None:
        value = evaluate(expr_count.expr, scope)
        source = f"count = {expr_count.expr.text}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [(None, {"count": {"index": UNKNOWN}})], "", source
        count = int(value)
        if count <= 0:
            literal = isinstance(expr_count.expr, hcl.Literal)
            return [], source if literal else f"{source} evaluates to 0", ""
        return [(f"[{i}]", {"count": {"index": i}}) for i in range(count)], "", ""
    return [("", {})], "", ""


class _Module:
    """One instance of a module (the root, or a child at one `count`/`for_each` key)."""

    def __init__(
        self,
        loader: _Loader,
        directory: str,
        address: str,
        key_path: str,
        variables: dict[str, Any],
        providers: dict[tuple[str, str | None], ProviderConfig],
        created: bool | None,
        created_source: str,
    ) -> None:
        self.loader = loader
        self.directory = directory
        self.address = address
        self.key_path = key_path
        self.created = created
        self.created_source = created_source
        self.files = loader.files.folder(directory)
        self.locals: dict[str, hcl.Expr] = {}
        self.local_values: dict[str, Any] = {}
        self.local_references: dict[str, set[str]] = {}
        self.evaluating: set[str] = set()
        self.variables: dict[str, Any] = {}
        self.outputs: dict[str, hcl.Expr] = {}
        self.module_calls: dict[str, tuple[str, hcl.Block]] = {}
        self.children: dict[str, Any] = {}
        self.resource_blocks: list[tuple[str, hcl.Block]] = []
        declared: dict[str, hcl.Block] = {}
        own_providers: list[tuple[str, hcl.Block]] = []
        for path, body in self.files:
            for block in body.blocks:
                if block.type == "variable" and block.labels:
                    declared[block.labels[0]] = block
                elif block.type == "locals":
                    self.locals.update({a.name: a.expr for a in block.body.attributes.values()})
                elif block.type == "output" and block.labels and "value" in block.body.attributes:
                    self.outputs[block.labels[0]] = block.body.attributes["value"].expr
                elif block.type == "module" and block.labels:
                    self.module_calls[block.labels[0]] = (path, block)
                elif block.type == "resource" and len(block.labels) == 2:
                    self.resource_blocks.append((path, block))
                elif block.type == "provider" and block.labels:
                    own_providers.append((path, block))
        empty = Scope(lambda root, steps, scope: UNKNOWN)
        for name, block in declared.items():
            attrs = block.body.attributes
            default = evaluate(attrs["default"].expr, empty) if "default" in attrs else UNKNOWN
            nullable = evaluate(attrs["nullable"].expr, empty) if "nullable" in attrs else True
            value = variables.get(name, default)
            if value is None and nullable is False:
                value = default
            type_expr = attrs["type"].expr if "type" in attrs else None
            self.variables[name] = convert(value, type_expr)
        self.scope = Scope(self.lookup)
        self.providers = dict(providers)
        for path, block in own_providers:
            config = self.provider_config(path, block)
            self.providers[(config.name, config.alias)] = config

    # -- names --

    def lookup(self, root: str, steps: list[tuple[str, Any]], scope: Scope) -> Any:
        if root == "var":
            return self.attribute_root(self.variables, steps, scope)
        if root == "local":
            if not steps or steps[0][0] != "attr":
                return UNKNOWN
            return apply_steps(self.local(steps[0][1], scope), steps[1:], scope)
        if root == "module":
            return self.module_value(steps, scope)
        if root == "path":
            name = steps[0][1] if steps else ""
            where = {"module": self.directory, "root": self.loader.root, "cwd": os.getcwd()}
            return where.get(name, UNKNOWN)
        if root == "terraform":
            return "default" if steps and steps[0][1] == "workspace" else UNKNOWN
        if scope.references is not None and steps and steps[0][0] == "attr" and "_" in root:
            scope.references.add(f"{root}.{steps[0][1]}")
        return UNKNOWN  # data sources, resource attributes, self: known after apply

    @staticmethod
    def attribute_root(values: dict[str, Any], steps: list[tuple[str, Any]], scope: Scope) -> Any:
        if not steps or steps[0][0] != "attr":
            return UNKNOWN
        name = steps[0][1]
        if name not in values:
            return UNKNOWN
        return apply_steps(values[name], steps[1:], scope)

    def local(self, name: str, scope: Scope | None = None) -> Any:
        """A local's value (evaluated once); the resources it refers to are added to `scope`'s
        references, so `local.template_id` relates a group to its launch template."""
        if name not in self.local_values:
            if name not in self.locals or name in self.evaluating:
                return UNKNOWN
            self.evaluating.add(name)
            local_scope = Scope(self.lookup, references=set())
            self.local_values[name] = evaluate(self.locals[name], local_scope)
            self.local_references[name] = local_scope.references or set()
            self.evaluating.discard(name)
        if scope is not None and scope.references is not None:
            scope.references |= self.local_references.get(name, set())
        return self.local_values[name]

    def module_value(self, steps: list[tuple[str, Any]], scope: Scope) -> Any:
        if not steps or steps[0][0] != "attr":
            return UNKNOWN
        name = steps[0][1]
        if name not in self.children:
            return UNKNOWN
        instances = self.children[name]
        return apply_steps(instances, steps[1:], scope)

    # -- providers --

    def provider_config(self, path: str, block: hcl.Block) -> ProviderConfig:
        attrs = block.body.attributes
        alias = evaluate(attrs["alias"].expr, self.scope) if "alias" in attrs else None
        region = evaluate(attrs["region"].expr, self.scope) if "region" in attrs else None
        default_tags: Any = None
        source = ""
        for inner in block.body.blocks_of("default_tags"):
            if "tags" in inner.body.attributes:
                default_tags = evaluate(inner.body.attributes["tags"].expr, self.scope)
                source = f"{path}:{inner.line}"
        if "default_labels" in attrs:  # the google provider (5.0 and later)
            default_tags = evaluate(attrs["default_labels"].expr, self.scope)
            source = f"{path}:{attrs['default_labels'].line}"
        if block.body.blocks_of("dynamic"):
            default_tags, source = UNKNOWN, f"{path}:{block.line}"
        return ProviderConfig(
            name=block.labels[0],
            alias=alias if isinstance(alias, str) else None,
            region=region,
            default_tags=default_tags,
            source=source,
        )

    def provider_for(self, resource_type: str, body: hcl.Body) -> ProviderConfig | None:
        local_name = resource_type.split("_", 1)[0]
        key: tuple[str, str | None] = (local_name, None)
        if "provider" in body.attributes:
            expr = body.attributes["provider"].expr
            if isinstance(expr, hcl.Traversal):
                alias = expr.steps[0][1] if expr.steps and expr.steps[0][0] == "attr" else None
                key = (expr.root, alias)
        if key[0] == "google-beta" and key not in self.providers:
            key = ("google", key[1])
        return self.providers.get(key) or ProviderConfig(name=key[0], alias=key[1])

    # -- loading --

    def load(self) -> None:
        self.load_children()
        for path, block in self.resource_blocks:
            self.load_resource(path, block)

    def load_children(self) -> None:
        for name, (path, block) in self.module_calls.items():
            attrs = block.body.attributes
            source_expr = attrs.get("source")
            source = evaluate(source_expr.expr, self.scope) if source_expr else UNKNOWN
            call_address = f"{self.address}module.{name}"
            directory = self.loader.module_directory(
                self.directory, source, f"{self.key_path}.{name}".lstrip(".")
            )
            if directory is None:
                self.loader.result.notices.append(
                    Notice(
                        path,
                        block.line,
                        f"{call_address}: module source {source!r} is not on disk (run "
                        "`terraform init` first, or vendor the module); its resources were "
                        "not checked",
                    )
                )
                self.children[name] = UNKNOWN
                continue
            keys, none_reason, unknown_source = _instance_keys(
                attrs.get("count"), attrs.get("for_each"), self.scope
            )
            if not keys:
                self.loader.result.skipped.append(
                    Skipped(call_address, path, block.line, none_reason)
                )
                self.children[name] = [] if "count" in attrs else {}
                continue
            instances: dict[Any, Any] = {}
            for suffix, names in keys:
                scope = self.scope.child(**names)
                arguments = {
                    a.name: evaluate(a.expr, scope)
                    for a in attrs.values()
                    if a.name
                    not in (
                        "source",
                        "version",
                        "providers",
                        "count",
                        "for_each",
                        "depends_on",
                    )
                }
                created = self.created if suffix is not None else None
                child = _Module(
                    self.loader,
                    directory,
                    f"{call_address}{suffix or ''}.",
                    f"{self.key_path}.{name}".lstrip("."),
                    arguments,
                    self.child_providers(attrs.get("providers")),
                    created,
                    self.created_source or ("" if suffix is not None else unknown_source),
                )
                child.load()
                key = names.get("each", {}).get("key") if "each" in names else None
                index = names.get("count", {}).get("index") if "count" in names else None
                instances[key if key is not None else index] = child.output_values()
            if "for_each" in attrs:
                self.children[name] = instances if None not in instances else UNKNOWN
            elif "count" in attrs:
                self.children[name] = (
                    [instances[i] for i in sorted(instances)] if None not in instances else UNKNOWN
                )
            else:
                self.children[name] = next(iter(instances.values()))

    def child_providers(
        self, mapping: hcl.Attribute | None
    ) -> dict[tuple[str, str | None], ProviderConfig]:
        inherited = {k: v for k, v in self.providers.items() if k[1] is None}
        if mapping is None or not isinstance(mapping.expr, hcl.ObjectExpr):
            return inherited
        for key_expr, value_expr in mapping.expr.items:
            key_text = key_expr.value if isinstance(key_expr, hcl.Literal) else key_expr.text
            child_name, _, child_alias = str(key_text).partition(".")
            if isinstance(value_expr, hcl.Traversal):
                alias = value_expr.steps[0][1] if value_expr.steps else None
                parent = self.providers.get((value_expr.root, alias))
                if parent is not None:
                    inherited[(child_name, child_alias or None)] = parent
        return inherited

    def output_values(self) -> dict[str, Any]:
        return _Outputs(self)

    def load_resource(self, path: str, block: hcl.Block) -> None:
        resource_type, name = block.labels
        attrs = block.body.attributes
        base = f"{self.address}{resource_type}.{name}"
        keys, none_reason, unknown_source = _instance_keys(
            attrs.get("count"), attrs.get("for_each"), self.scope
        )
        if not keys:
            self.loader.result.skipped.append(Skipped(base, path, block.line, none_reason))
            return
        provider = self.provider_for(resource_type, block.body)
        for suffix, names in keys:
            scope = self.scope.child(**names)
            scope.references = set()
            sources: dict[str, str] = {}
            attributes = self.evaluate_body(block.body, scope, sources, "")
            created: bool | None = self.created if suffix is not None else None
            created_source = self.created_source or (unknown_source if suffix is None else "")
            address = base + (suffix if suffix else "")
            self.loader.result.resources.append(
                TerraformResource(
                    type=resource_type,
                    name=name,
                    address=address,
                    file=path,
                    line=block.line,
                    end_line=block.end_line,
                    module=self.address.rstrip("."),
                    attributes=attributes,
                    unknown_sources=sources,
                    created=created,
                    created_source=created_source,
                    provider=provider,
                    references=sorted(self.address + r for r in scope.references),
                )
            )

    def evaluate_body(
        self, body: hcl.Body, scope: Scope, sources: dict[str, str], prefix: str
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for attribute in body.attributes.values():
            if attribute.name in META_ARGUMENTS:
                continue
            value = evaluate(attribute.expr, scope)
            values[attribute.name] = value
            if contains_unknown(value):
                sources[prefix + attribute.name] = f"{attribute.name} = {attribute.expr.text}"
        for inner in body.blocks:
            if inner.type in SKIPPED_BLOCKS:
                continue
            if inner.type == "dynamic" and inner.labels:
                self.expand_dynamic(inner, scope, sources, prefix, values)
                continue
            nested = self.evaluate_body(inner.body, scope, sources, f"{prefix}{inner.type}.")
            values.setdefault(inner.type, []).append(nested)
        return values

    def expand_dynamic(
        self,
        block: hcl.Block,
        scope: Scope,
        sources: dict[str, str],
        prefix: str,
        values: dict[str, Any],
    ) -> None:
        name = block.labels[0]
        attrs = block.body.attributes
        iterator_expr = attrs.get("iterator")
        iterator = iterator_expr.expr.text if iterator_expr is not None else name
        each = evaluate(attrs["for_each"].expr, scope) if "for_each" in attrs else UNKNOWN
        contents = block.body.blocks_of("content")
        existing = values.setdefault(name, [])
        text = attrs["for_each"].expr.text if "for_each" in attrs else "?"
        if each is UNKNOWN or not contents or (isinstance(each, OpenMap) and each.prefixes is None):
            existing.append(UNKNOWN)
            sources[prefix + name] = f'dynamic "{name}" (for_each = {text})'
            return
        if isinstance(each, OpenMap):  # blocks for the keys read, and some whose keys start so
            existing.append(OpenMap(prefixes=each.prefixes))
            sources[prefix + name] = f'dynamic "{name}" (for_each = {text})'
        pairs = list(each.items()) if isinstance(each, dict) else list(enumerate(each))
        for key, item in pairs:
            inner_scope = scope.child(**{iterator: {"key": key, "value": item}})
            existing.append(
                self.evaluate_body(contents[0].body, inner_scope, sources, f"{prefix}{name}.")
            )


class _Outputs(dict[str, Any]):
    """A module instance's outputs, evaluated when first read (`module.x.name`)."""

    def __init__(self, module: _Module) -> None:
        super().__init__()
        self.module = module
        self.evaluating: set[str] = set()

    def __contains__(self, key: object) -> bool:
        return key in self.module.outputs

    def __getitem__(self, key: str) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if key not in self.module.outputs or key in self.evaluating:
            return UNKNOWN
        self.evaluating.add(key)
        value = evaluate(self.module.outputs[key], self.module.scope)
        self.evaluating.discard(key)
        dict.__setitem__(self, key, value)
        return value


class _Loader:
    def __init__(self, root: str, result: LoadResult, files: _Files) -> None:
        self.root = root
        self.result = result
        self.files = files
        self.installed = _modules_json(root)

    def module_directory(self, current: str, source: Any, key_path: str) -> str | None:
        if isinstance(source, str) and source.startswith(("./", "../")):
            directory = os.path.normpath(os.path.join(current, source))
            return directory if os.path.isdir(directory) else None
        installed = self.installed.get(key_path)
        return installed if installed and os.path.isdir(installed) else None


def _tree_folders(path: str) -> Iterator[str]:
    for directory, subdirectories, names in os.walk(path):
        subdirectories[:] = sorted(
            d for d in subdirectories if d not in SKIPPED_DIRECTORIES and not d.startswith(".")
        )
        if any(n.endswith((".tf", ".tf.json")) for n in names):
            yield os.path.normpath(directory)


def root_modules(path: str, files: _Files) -> list[str]:
    """The folders under `path` that no other folder there calls as a local module."""
    folders = list(_tree_folders(path))
    called: set[str] = set()
    for folder in folders:
        for _, body in files.folder(folder):
            for block in body.blocks_of("module"):
                source = block.body.attributes.get("source")
                if source is not None and isinstance(source.expr, hcl.Literal):
                    text = str(source.expr.value)
                    if text.startswith(("./", "../")):
                        called.add(os.path.normpath(os.path.join(folder, text)))
    return [f for f in folders if f not in called]


def load(paths: list[str]) -> LoadResult:
    """Every resource instance of the root modules under `paths` (folders or `.tf` files)."""
    result = LoadResult()
    files = _Files(result)
    roots: list[str] = []
    for path in paths:
        if os.path.isfile(path):
            folder = os.path.dirname(os.path.abspath(path)) or "."
            roots.append(os.path.normpath(os.path.relpath(folder)))
        else:
            roots += root_modules(path, files)
    for root in dict.fromkeys(roots):
        loader = _Loader(root, result, files)
        module = _Module(loader, root, "", "", _tfvars(root, result), {}, True, "")
        module.load()
        result.roots.append(root)
    return result
