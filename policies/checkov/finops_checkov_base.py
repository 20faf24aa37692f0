"""The checkov adapter: one checkov check per policy and framework, calling the shared rules.

checkov runs these in its own virtualenv, where finops is not installed: the checkout's
`policies` and finops' standard-library core are mounted from its folders under the names the
wheel gives them (`_mount_checkout`). Verdicts: a finding -> FAILED (its message in the result's `details`); a rule that
cannot read a value -> UNKNOWN (checkov leaves it out of its report); else PASSED.
Thresholds come from the JSON file named by FINOPS_POLICY_CONFIG; the stack environment for
resources without an Environment tag from FINOPS_ENVIRONMENT (default: dev, the strictest).

Terraform: checkov's own evaluation of expressions is not a value (it reads
`false && true ? 1 : 0` as 1, fills a variable without a default with an empty map, drops
the arguments of `merge()` it cannot read). So a Terraform check places checkov's resource
(its file and line) in the configuration as `aifinops.policies.terraform` reads it, the same reader
`finops check` uses, and judges those instances: `count = 0` is not judged, a value that
cannot be read is UNKNOWN. The configuration roots are the `-d`/`-f` paths checkov was given
(or FINOPS_CHECKOV_ROOTS, separated by the OS path separator); a resource outside them falls
back to checkov's conf, where expression text is UNKNOWN.

The reader parses with python-hcl2, whose import name `hcl2` checkov's own fork
(bc-python-hcl2, an older API) already holds in checkov's virtualenv: python-hcl2 lives in a
folder of its own (FINOPS_PYTHON_HCL2, else `finops-python-hcl2` in checkov's virtualenv,
where `./dev setup` installs it) and is imported beside checkov's fork (`_python_hcl2`).
Without it, every Terraform resource is judged from checkov's conf, and stderr says so.

CloudFormation: the template checkov parsed (its conf names the file) is resolved as
`finops check` resolves it: parameter defaults, conditions, `Fn::Sub`, `Fn::If`...
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any


def _mount_checkout(checkout: Path) -> None:
    """The checkout's folders under the names the wheel installs them (`aifinops` is finops/,
    `aifinops.policies` is policies/): setuptools maps them at build time, and checkov's
    virtualenv has no install of ours to import them from."""
    for name, folder in (("aifinops", "finops"), ("aifinops.policies", "policies")):
        init = checkout / folder / "__init__.py"
        if name in sys.modules or not init.exists():
            continue
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(init.parent)]
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)


_mount_checkout(Path(__file__).resolve().parents[2])

from checkov.cloudformation.checks.resource.base_resource_check import (  # noqa: E402
    BaseResourceCheck as CloudFormationCheck,
)
from checkov.common.models.enums import CheckCategories, CheckResult  # noqa: E402
from checkov.terraform.checks.resource.base_resource_check import (  # noqa: E402
    BaseResourceCheck as TerraformCheck,
)

from aifinops.policies import cloudformation as cfn_reader  # noqa: E402
from aifinops.policies import settings as policy_settings  # noqa: E402
from aifinops.policies.context import Context  # noqa: E402
from aifinops.policies.model import Finding, Resource  # noqa: E402
from aifinops.policies.normalize.cloudformation import (  # noqa: E402
    CFN_TO_PULUMI,
    from_template,
    normalize_cloudformation,
)
from aifinops.policies.normalize.terraform import (  # noqa: E402
    BUDGET_TERRAFORM as BUDGET_TERRAFORM,  # the checks' resource types, re-exported
)
from aifinops.policies.normalize.terraform import (  # noqa: E402
    COMPUTE_TERRAFORM as COMPUTE_TERRAFORM,
)
from aifinops.policies.normalize.terraform import normalize_terraform  # noqa: E402
from aifinops.policies.registry import BY_NAME, Policy  # noqa: E402
from aifinops.policies.verdicts import if_created  # noqa: E402

HCL2_ENV = "FINOPS_PYTHON_HCL2"


def _hcl2_modules() -> dict[str, ModuleType]:
    return {n: m for n, m in sys.modules.items() if n == "hcl2" or n.startswith("hcl2.")}


@contextmanager
def _python_hcl2() -> Iterator[str]:
    """Imports in the block see python-hcl2 as `hcl2` (from its folder, which is yielded);
    checkov's fork is set aside meanwhile and put back after. A module keeps the objects it
    imported, so checkov goes on with its fork and the reader with python-hcl2."""
    folder = os.environ.get(HCL2_ENV) or os.path.join(sys.prefix, "finops-python-hcl2")
    checkovs = _hcl2_modules()
    for name in checkovs:
        del sys.modules[name]
    sys.path.insert(0, folder)
    try:
        yield folder
    finally:
        sys.path.remove(folder)
        for name in _hcl2_modules():
            del sys.modules[name]
        sys.modules.update(checkovs)


_HCL2_MISSING_SAID = "FINOPS_PYTHON_HCL2_MISSING_SAID"
_hcl2_missing = ""
scan_terraform: Callable[..., Any] | None
with _python_hcl2() as _folder:
    try:
        from aifinops.policies.iac import scan_terraform
    except ImportError as _missing:
        scan_terraform = None
        _hcl2_missing = (
            f"finops checks: the Terraform reader needs python-hcl2 in {_folder} ({_missing}); "
            "run `./dev setup`, or `pip install --no-deps --target DIR python-hcl2==8.*` and "
            f"set {HCL2_ENV}=DIR. Until then Terraform resources are judged from checkov's own "
            "reading, where every expression is UNKNOWN."
        )


def _say_hcl2_missing() -> None:
    """Once per process (checkov loads this file once per framework, in several processes)."""
    if not os.environ.get(_HCL2_MISSING_SAID):
        os.environ[_HCL2_MISSING_SAID] = "1"
        print(_hcl2_missing, file=sys.stderr)


GUIDELINE = "docs/policies.md in the finops repository"
ALL_TERRAFORM = ("aws_*", "google_*", "azurerm_*", "awscc_*")
COMPUTE_CLOUDFORMATION = tuple(t for t in CFN_TO_PULUMI if t not in ("AWS::Budgets::Budget",
                                                                     "AWS::S3::Bucket"))  # fmt: skip
ALL_CLOUDFORMATION = ("AWS::*",)
ROOTS_ENV = "FINOPS_CHECKOV_ROOTS"


def _context() -> Context:
    return Context(environment=os.environ.get("FINOPS_ENVIRONMENT", "dev"))


def _roots() -> list[str]:
    """The folders checkov was asked to scan (FINOPS_CHECKOV_ROOTS, else its `-d`/`-f`)."""
    configured = os.environ.get(ROOTS_ENV)
    if configured:
        return [os.path.abspath(p) for p in configured.split(os.pathsep) if p]
    roots, argv = [], sys.argv[1:]
    for index, arg in enumerate(argv):
        for flag in ("-d", "--directory", "-f", "--file"):
            value = None
            if arg == flag and index + 1 < len(argv):
                value = argv[index + 1]
            elif arg.startswith(flag + "="):
                value = arg.split("=", 1)[1]
            if value:
                path = os.path.abspath(value)
                roots.append(path if os.path.isdir(path) else os.path.dirname(path))
    return roots


_KEY = re.compile(r'\[(?:"(?:[^"\\]|\\.)*"|[^\]"]*)\]')


def _bare(address: str) -> str:
    """An address without its instance keys, as checkov names a block of a module called with
    `count`/`for_each` (`module.a["x"].aws_instance.b[0]` -> `module.a.aws_instance.b`)."""
    return _KEY.sub("", address)


@dataclass(frozen=True)
class _Configuration:
    """One root read as `finops check` reads it."""

    by_place: dict[tuple[str, int], list[Resource]]  # (file, line) -> instances of the block
    skipped_places: frozenset[tuple[str, int]]  # blocks (resources, module calls) creating nothing
    skipped: tuple[str, ...]  # their addresses, without instance keys


@cache
def _terraform(root: str) -> _Configuration:
    assert scan_terraform is not None  # `_placed` asks only when the reader imported
    found = scan_terraform([root])
    by_place: dict[tuple[str, int], list[Resource]] = {}
    for resource in found.resources:
        file, _, line = resource.location.rpartition(":")
        if line.isdigit():
            by_place.setdefault((os.path.abspath(file), int(line)), []).append(resource)
    places = set()
    for block in found.not_created:
        file, _, line = block.location.rpartition(":")
        if line.isdigit():
            places.add((os.path.abspath(file), int(line)))
    skipped = tuple(sorted({_bare(block.address) for block in found.not_created}))
    return _Configuration(by_place, frozenset(places), skipped)


def _placed(scanned_file: str, line: int, address: str) -> tuple[list[Resource], bool] | None:
    """(instances, not created) of the block at `scanned_file:line` that checkov names
    `address`, or None when the file is not under a configuration root. One block has the
    instances of every call of its module: those under checkov's address are judged; a block
    under a module call that creates nothing is not created."""
    if scan_terraform is None:
        _say_hcl2_missing()
        return None
    for root in _roots():
        path = os.path.normpath(os.path.join(root, scanned_file.lstrip("/\\")))
        if not os.path.isfile(path):
            continue
        configuration = _terraform(root)
        instances = configuration.by_place.get((path, line), [])
        if address:
            bare = _bare(address)
            mine = [r for r in instances if _bare(r.name) == bare]
            if mine:
                return mine, False
            if any(bare == s or bare.startswith(s + ".") for s in configuration.skipped):
                return [], True
        if instances:
            return instances, False
        if (path, line) in configuration.skipped_places:
            return [], True
    return None


def _scanned_path(scanned_file: str) -> str | None:
    """The file checkov names `scanned_file` (relative to the folder it scans, with a leading
    separator), found under the configuration roots."""
    if os.path.isfile(scanned_file):
        return scanned_file
    for root in _roots():
        path = os.path.normpath(os.path.join(root, scanned_file.lstrip("/\\")))
        if os.path.isfile(path):
            return path
    return None


def _findings(policy: Policy, resource: Resource) -> list[Finding]:
    config = policy_settings.from_env()[policy.name]
    if policy.resource_rule is not None:
        found = policy.resource_rule(resource, config, _context())
    else:
        found = _budget_findings(policy, resource)
    return [if_created(f, resource) for f in found]


def verdict(check: Any, policy: Policy, resources: list[Resource] | None) -> CheckResult:
    """Run the policy's rule on the resource (every instance of its block); put finding
    messages in `check.details`."""
    if not resources:
        return CheckResult.UNKNOWN
    findings: list[Finding] = []
    for resource in resources:
        for finding in _findings(policy, resource):
            prefix = f"{resource.name}: " if len(resources) > 1 else ""
            findings.append(Finding(finding.policy, finding.resource, prefix + finding.message,
                                    finding.urn, finding.unknown))  # fmt: skip
    definite = [f for f in findings if not f.unknown]
    check.details.extend(f.message for f in definite or findings)
    if definite:
        return CheckResult.FAILED
    return CheckResult.UNKNOWN if findings else CheckResult.PASSED


def _budget_findings(policy: Policy, resource: Resource) -> list[Finding]:
    """`budget-required` on one budget: it must cover a project (or the whole account); which
    projects lack a budget is a stack question `finops check` answers."""
    if "budget_projects" in resource.unknown:
        return [Finding(policy.name, resource.name, "budget filter unknown", resource.urn, True)]
    if resource.budget_projects is None:
        return [
            Finding(
                policy.name,
                resource.name,
                "budget filters on something other than the Project tag, so it covers no project",
                resource.urn,
            )
        ]
    return []


class _FinopsCheck:
    """What every finops check declares to checkov: one policy, its ID and its resource types."""

    def __init__(self, policy_name: str, check_id: str, resources: tuple[str, ...]) -> None:
        self.policy = BY_NAME[policy_name]
        super().__init__(  # type: ignore[call-arg]  # the checkov base class is next in the MRO
            name=f"finops {policy_name}: {self.policy.description}",
            id=check_id,
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=resources,
            guideline=GUIDELINE,
        )


class _PlacedTerraformCheck(TerraformCheck):
    """checkov hands a Terraform check no file name; `run` has it, so keep it."""

    scanned_file = ""

    def run(
        self,
        scanned_file: str,
        entity_configuration: dict[str, Any],
        entity_name: str,
        entity_type: str,
        skip_info: Any,
    ) -> Any:
        self.scanned_file = scanned_file
        return super().run(scanned_file, entity_configuration, entity_name, entity_type, skip_info)


class FinopsTerraformCheck(_FinopsCheck, _PlacedTerraformCheck):
    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.details: list[str] = []
        line = conf.get("__start_line__")
        address = str(conf.get("__address__") or "")
        placed = (
            _placed(self.scanned_file, int(line), address) if line and self.scanned_file else None
        )
        if placed is not None:
            instances, not_created = placed
            return CheckResult.UNKNOWN if not_created else verdict(self, self.policy, instances)
        resource = normalize_terraform(self.entity_type, conf)
        return verdict(self, self.policy, [resource] if resource else None)


class _NamedCloudFormationCheck(CloudFormationCheck):
    """checkov hands a CloudFormation check no logical ID (nor, always, its file); `run` has
    them, so keep them."""

    logical_name = ""
    scanned_file = ""

    def run(
        self,
        scanned_file: str,
        entity_configuration: dict[str, Any],
        entity_name: str,
        entity_type: str,
        skip_info: Any,
    ) -> Any:
        self.logical_name = f"{entity_type}.{entity_name}"
        self.scanned_file = scanned_file
        return super().run(scanned_file, entity_configuration, entity_name, entity_type, skip_info)


@cache
def _template(path: str) -> Any:
    """A template as `finops check` reads it, through checkov's parser (checkov's virtualenv
    has PyYAML, not ruamel)."""
    from checkov.cloudformation.parser import parse

    template, _ = parse(path)
    return _strip(template) if template else None


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _strip(v) for k, v in value.items()
                if not (str(k).startswith("__") and str(k).endswith("__"))}  # fmt: skip
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _cloudformation(check: _NamedCloudFormationCheck, conf: dict[str, Any]) -> Resource | None:
    logical_id = check.logical_name.split(".", 1)[-1]
    path = conf.get("__file__") or _scanned_path(check.scanned_file)
    template = _template(str(path)) if path else None
    if template and logical_id in (template.get("Resources") or {}):
        ctx = cfn_reader._Context(template)
        spec = template["Resources"][logical_id]
        created: Any = True
        if "Condition" in spec:
            created = ctx.condition(str(spec["Condition"]))
            if created is False:
                return None
        properties = cfn_reader.resolve(spec.get("Properties") or {}, ctx)
        loaded = cfn_reader.TemplateResource(
            logical_id, check.entity_type, properties, str(path), int(conf.get("__startline__", 0)),
            None if created is not True else True,
            f"Condition {spec.get('Condition')}" if created is not True else "",
        )  # fmt: skip
        return from_template(loaded)
    return normalize_cloudformation(
        check.entity_type, conf.get("Properties") or {}, check.logical_name or check.entity_type
    )


class FinopsCloudFormationCheck(_FinopsCheck, _NamedCloudFormationCheck):
    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.details: list[str] = []
        resource = _cloudformation(self, conf)
        return verdict(self, self.policy, [resource] if resource else None)
