"""Provider SDK sub-packages that load only the modules a program uses, for offline runs.

A Pulumi provider SDK (`pulumi_gcp`, `pulumi_aws`, `pulumi_azure_native`...) makes each
sub-package lazy (`gcp.compute` is loaded on first use), but a sub-package's `__init__` then
star-imports every module it holds: `gcp.compute.InstanceTemplate` loads 290 modules of
`pulumi_gcp.compute`, `azure_native.network.Subnet` 290 of `pulumi_azure_native.network`.
A stack on all three clouds spent about 1.5 s of a preview there and 70 MiB on classes it
never used (`python -X importtime`; bench/preview_bench.py).

`install()` replaces the SDKs' lazy sub-package for the rest of the process: attribute access
on `gcp.compute` imports only the module that defines the name (`InstanceTemplate` and
`InstanceTemplateArgs` -> `instance_template`, other `...Args` -> `_inputs`, `CachingTypes` ->
`_enums`, `get_x_output` -> `get_x`). A name found nowhere that way loads the whole sub-package as the SDK would, so every
attribute resolves to the very object the SDK defines, only sooner. Only the offline engine
installs it; `pulumi up` runs the SDK as shipped.

The hook is the SDKs' own: each provider's `_utilities.lazy_import` calls
`pulumi._utils.lazy_import` when it exists. Should a Pulumi release drop that function, the
providers fall back to their built-in copy and everything works as before, only slower
(tests/engine/test_lean_imports.py notices).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import re
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SHARED_MODULES = ("_enums", "_inputs")  # star-imported by every sub-package
_installed: list[Callable[[str], Any]] = []


def _snake(name: str) -> str:
    """`VirtualMachineScaleSet` -> `virtual_machine_scale_set`, `V2Vm` -> `v2_vm`."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def _candidate_modules(name: str) -> Iterator[str]:
    yield name  # a sub-module (`from . import outputs`)
    if name.endswith("_output"):
        yield name.removesuffix("_output")  # get_project_output lives in get_project
    yield _snake(name)
    for suffix in ("ArgsDict", "Args"):  # a resource's own args: EventRuleArgs in event_rule
        if name.endswith(suffix):
            yield _snake(name.removesuffix(suffix))
            break
    yield from _SHARED_MODULES


class LeanPackage(types.ModuleType):
    """A provider sub-package whose `__init__` has not run; names are imported one by one."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name != "__all__":
            raise AttributeError(name)
        if name != "__all__":
            for module_name in _candidate_modules(name):
                full_name = f"{self.__name__}.{module_name}"
                if full_name not in sys.modules and not _exists(full_name, self.__path__):
                    continue
                module = importlib.import_module(full_name)
                if type(self) is not LeanPackage:  # that import needed the whole sub-package
                    return getattr(self, name)
                # `__init__` binds the names of every module but `outputs` (bound as a
                # module); a module still being imported (`outputs` importing itself) has
                # not defined them yet.
                initializing = getattr(module.__spec__, "_initializing", False)
                if module_name != "outputs" and not initializing:
                    self._bind_public_names(module)
                if name in vars(self):
                    return vars(self)[name]
                if module_name == name:
                    return module
        self._load_everything()
        return getattr(self, name)

    def _bind_public_names(self, module: types.ModuleType) -> None:
        """What `__init__`'s `from .<module> import *` binds (a function `get_x` replaces the
        module `get_x` of the same name)."""
        names = getattr(module, "__all__", None)
        if names is None:
            names = [n for n in vars(module) if not n.startswith("_")]
        for public in names:
            setattr(self, public, getattr(module, public))

    def __dir__(self) -> list[str]:
        self._load_everything()
        return list(vars(self))

    def _load_everything(self) -> None:
        """Run the sub-package's `__init__`, as the SDK itself would have."""
        self.__class__ = types.ModuleType  # type: ignore[assignment]
        spec = self.__spec__
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(self)


def _exists(full_name: str, path: Any) -> bool:
    return importlib.machinery.PathFinder.find_spec(full_name, list(path)) is not None


def _lean_lazy_import(fullname: str) -> Any:
    """`pulumi._utils.lazy_import` for packages: a `LeanPackage`; anything else as before."""
    existing = sys.modules.get(fullname)
    if existing is not None:
        return existing
    spec = importlib.util.find_spec(fullname)
    if spec is None or spec.submodule_search_locations is None or spec.loader is None:
        return _installed[0](fullname)
    module = importlib.util.module_from_spec(spec)
    module.__class__ = LeanPackage
    sys.modules[fullname] = module
    return module


def install() -> bool:
    """Make provider sub-packages imported from now on lean; True when the hook exists.

    Sub-packages an SDK already created stay as they are (correct, only not lean).
    """
    import pulumi._utils

    if _installed:
        return True
    original = getattr(pulumi._utils, "lazy_import", None)
    if original is None:
        return False
    _installed.append(original)
    pulumi._utils.lazy_import = _lean_lazy_import
    return True
