"""Host the finops components for other Pulumi languages (TypeScript, Go, YAML...).

`pulumi package add ./components` (or a `packages:` entry in Pulumi.yaml) runs this file; the
schema is inferred from each component's typed args and output annotations. Every cloud
package lists its components in `COMPONENTS`, or they are found among its public
`ComponentResource` classes (aliases counted once). Add a cloud by adding its module below.
"""

from __future__ import annotations

import importlib
import inspect
import sys

import pulumi
from pulumi.provider.experimental import component_provider_host

from aifinops.components._hosting import PROVIDER_NAME

CLOUD_MODULES = ("aifinops.components.aws", "aifinops.components.gcp", "aifinops.components.azure")


def _components_of(module: object) -> list[type[pulumi.ComponentResource]]:
    listed = getattr(module, "COMPONENTS", None)
    if listed is not None:
        return list(listed)
    found: list[type[pulumi.ComponentResource]] = []
    for name in getattr(module, "__all__", dir(module)):
        value = getattr(module, name, None)
        if (
            inspect.isclass(value)
            and issubclass(value, pulumi.ComponentResource)
            and value not in found
        ):
            found.append(value)
    return found


def hosted_components() -> list[type[pulumi.ComponentResource]]:
    """Every component of every cloud package that imports; a broken one is reported."""
    hosted: list[type[pulumi.ComponentResource]] = []
    for module_name in CLOUD_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            print(f"finops components: {module_name} not hosted: {exc}", file=sys.stderr)
            continue
        hosted.extend(c for c in _components_of(module) if c not in hosted)
    return hosted


if __name__ == "__main__":
    component_provider_host(name=PROVIDER_NAME, components=hosted_components())
