"""Regenerate finops/data/taggable_types.json from the installed Pulumi provider SDKs.

A resource type is taggable when its constructor accepts the provider's tag argument:
`tags` (AWS, Azure native) or `labels` (GCP). We read each provider package's own
resource-module index (the JSON passed to `_utilities.register`) so no type is missed,
import every module and inspect each resource class's `_internal_init` signature.

    .venv/bin/python scripts/gen_taggability.py        # ~70 s, ~700 MB peak

Run it after bumping a provider SDK in requirements.lock; tests/test_taggability.py fails
when the committed registry and the installed SDKs disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from finops.taggability import PROVIDER_PACKAGES, REGISTRY_PATH, introspect_package


def main() -> int:
    registry: dict[str, object] = {"generatedFrom": {}, "types": {}}
    for package in PROVIDER_PACKAGES:
        version, types = introspect_package(package)
        registry["generatedFrom"][package] = version  # type: ignore[index]
        registry["types"].update(types)  # type: ignore[attr-defined]
        print(
            f"{package} {version}: {sum(1 for t in types.values() if t)} taggable "
            f"of {len(types)} resource types",
            file=sys.stderr,
        )
    REGISTRY_PATH.write_text(json.dumps(registry, indent=0, sort_keys=True) + "\n")
    print(f"wrote {REGISTRY_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
