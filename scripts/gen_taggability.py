"""Regenerate the taggability registries in finops/data/ from their sources.

1. `taggable_types.json` (Pulumi type tokens): the installed Pulumi provider SDKs. A resource
   type is taggable when its constructor accepts the provider's tag argument: `tags` (AWS,
   Azure native) or `labels` (GCP). Each package's own resource-module index (the JSON passed
   to `_utilities.register`) lists every class; each `_internal_init` signature is inspected.
2. `taggable_terraform.json` (Terraform types) and `taggable_cloudformation.json`, with
   `--sources DIR`, a folder holding these public checkouts (licences in finops/data/SOURCES.md):

       git clone https://github.com/terraform-linters/tflint-ruleset-aws   # rules/tags/resources.go
       git clone https://github.com/pulumi/pulumi-gcp        # provider/cmd/pulumi-resource-gcp/bridge-metadata.json
       git clone https://github.com/pulumi/pulumi-azure      # bridge-metadata.json + sdk/python/pulumi_azure
       git clone https://github.com/aws-cloudformation/cfn-lint
       git -C cfn-lint checkout e9ed14267   # the last commit shipping the schemas as plain files

   - AWS (`aws_*`): taggable = the types whose provider schema has a `tags` attribute, as
     tflint-ruleset-aws generates them from `terraform providers schema -json`; every other
     type checkov knows (its `resources_types`, in `.venv-checkov`) is not taggable.
     `aws_autoscaling_group` carries tags as `tag` blocks (no `tags` attribute).
   - GCP (`google_*`): the bridged provider's Terraform-name -> Pulumi-token table
     (`bridge-metadata.json`), taggability from the Pulumi token (the registry above);
     `google_container_cluster` labels are `resource_labels`, a node pool's are
     `node_config.resource_labels`.
   - Azure (`azurerm_*`): pulumi-azure's table, taggability from the `tags` argument of its
     Python SDK classes (read as text, not imported).
   - CloudFormation (`AWS::*`) and the AWS Cloud Control provider (`awscc_*`, one type per
     CloudFormation type): the resource schemas' `tagging.taggable` and `tagProperty`; a
     schema without `tagging` metadata that has a `Tags` property is taggable.

    .venv/bin/python scripts/gen_taggability.py [--sources DIR] [--skip-sdk]   # SDK part ~70 s

Run it after bumping a provider SDK in requirements.lock; tests/test_taggability.py fails
when the committed registry and the installed SDKs disagree.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aifinops.taggability import (  # noqa: E402
    CLOUDFORMATION_PATH,
    PROVIDER_PACKAGES,
    REGISTRY_PATH,
    TERRAFORM_PATH,
    introspect_package,
    tag_property,
)

CHECKOV_PYTHON = ROOT / ".venv-checkov" / "bin" / "python"
# Terraform types whose tags are not a top-level `tags`/`labels` map.
TERRAFORM_SPECIAL = {
    "aws_autoscaling_group": {"property": "tag", "shape": "list"},
    "google_container_cluster": {"property": "resource_labels", "shape": "map"},
    "google_container_node_pool": {"property": "node_config.resource_labels", "shape": "map"},
}
# Types the current bridged providers no longer list, still in configurations pinned to an
# older provider: pulumi-gcp v8.41.1 (089e7423ca^, the last v8 commit) maps google_tpu_node to
# gcp:tpu/node:Node, whose SDK class takes `labels`; v9 (terraform-provider-google 7) dropped it.
TERRAFORM_RETIRED = {
    "google_tpu_node": {"token": "gcp:tpu/node:Node", "property": "labels", "shape": "map"},
}
RETIRED_ORIGIN = "google_tpu_node: pulumi-gcp 089e7423ca^ (v8.41.1), removed in v9"


def _commit(checkout: Path) -> str:
    done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    return done.stdout.strip() or "unknown (not a git checkout)"


def _checkov_version() -> str:
    done = subprocess.run([str(CHECKOV_PYTHON), "-c", "import checkov.version as v; "
                           "print(v.version)"], capture_output=True, text=True, check=False)  # fmt: skip
    return done.stdout.strip() or "?"


def aws_terraform(sources: Path) -> tuple[dict[str, Any], dict[str, str]]:
    tflint = sources / "tflint-ruleset-aws"
    taggable = set(
        re.findall(r'"(aws_[a-z0-9_]+)"', (tflint / "rules/tags/resources.go").read_text())
    )
    lock = (tflint / "tools/provider-schema/.terraform.lock.hcl").read_text()
    version = re.search(r'hashicorp/aws"\s*{\s*version\s*=\s*"([^"]+)"', lock)
    checkov = subprocess.run(
        [str(CHECKOV_PYTHON), "-c", "import json; from checkov.common.checks_infra.resources_types "
         "import resources_types as r; print(json.dumps(r['aws']))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    known = set(json.loads(checkov.stdout)) | taggable
    types: dict[str, Any] = {}
    for name in sorted(known):
        entry: dict[str, Any] = {}
        if name in taggable:
            entry = {"property": "tags", "shape": "map"}
        types[name] = TERRAFORM_SPECIAL.get(name, entry)
    origin = {
        "tflint-ruleset-aws": f"{_commit(tflint)} (rules/tags/resources.go, MPL-2.0; "
        f"hashicorp/aws provider {version.group(1) if version else '?'})",
        "checkov": f"{_checkov_version()} resources_types['aws'] (all AWS types; Apache-2.0)",
    }
    return types, origin


def _bridge(path: Path) -> dict[str, str]:
    resources = json.loads(path.read_text())["auto-aliasing"]["resources"]
    return {name: entry["current"] for name, entry in resources.items() if entry.get("current")}


def gcp_terraform(sources: Path) -> tuple[dict[str, Any], dict[str, str]]:
    checkout = sources / "pulumi-gcp"
    table = _bridge(checkout / "provider/cmd/pulumi-resource-gcp/bridge-metadata.json")
    types: dict[str, Any] = {}
    for name, token in sorted(table.items()):
        where = tag_property(token)
        entry: dict[str, Any] = {"token": token}
        if where is not None:
            entry.update(property=where.property, shape=where.shape)
        entry.update(TERRAFORM_SPECIAL.get(name, {}))
        types[name] = entry
    for name, entry in TERRAFORM_RETIRED.items():
        types.setdefault(name, entry)
    return types, {
        "pulumi-gcp": f"{_commit(checkout)} (bridge-metadata.json, Apache-2.0)",
        "retired": RETIRED_ORIGIN,
    }


def _azure_taggable_classes(sdk: Path) -> dict[str, bool]:
    """Pulumi token -> whether its class's `_internal_init` takes `tags` (read as text)."""
    init = (sdk / "__init__.py").read_text()
    start = init.index('resource_modules="""') + len('resource_modules="""')
    index = json.loads(init[start : init.index('"""', start)])
    found: dict[str, bool] = {}
    for entry in index:
        module_path = sdk / Path(*entry["fqn"].split(".")[1:])
        for token, class_name in entry["classes"].items():
            file_name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", class_name).lower() + ".py"
            source = module_path / file_name
            if not source.exists():
                continue
            tree = ast.parse(source.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name == class_name:
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef) and item.name == "_internal_init":
                            found[token] = any(a.arg == "tags" for a in item.args.args)
    return found


def azure_terraform(sources: Path) -> tuple[dict[str, Any], dict[str, str]]:
    checkout = sources / "pulumi-azure"
    table = _bridge(checkout / "provider/cmd/pulumi-resource-azure/bridge-metadata.json")
    taggable = _azure_taggable_classes(checkout / "sdk/python/pulumi_azure")
    types: dict[str, Any] = {}
    for name, token in sorted(table.items()):
        entry: dict[str, Any] = {"token": token}
        if taggable.get(token):
            entry.update(property="tags", shape="map")
        types[name] = entry
    return types, {"pulumi-azure": f"{_commit(checkout)} (bridge-metadata.json, sdk/python; "
                   "Apache-2.0)"}  # fmt: skip


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def cloudformation(sources: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(CloudFormation types, awscc Terraform types, origin)."""
    checkout = sources / "cfn-lint"
    folder = checkout / "src/cfnlint/data/schemas/providers/us_east_1"
    cfn: dict[str, Any] = {}
    awscc: dict[str, Any] = {}
    for path in sorted(folder.glob("*.json")):
        schema = json.loads(path.read_text())
        type_name = schema.get("typeName", "")
        if not type_name.startswith("AWS::"):
            continue
        tagging = schema.get("tagging") or {}
        entry: dict[str, Any] = {}
        prop = str(tagging.get("tagProperty") or "").removeprefix("/properties/")
        if not tagging and "Tags" in schema.get("properties", {}):
            prop = "Tags"  # older schemas (SageMaker EndpointConfig) lack `tagging` metadata
        if (tagging.get("taggable") or not tagging) and prop and "/" not in prop:
            kind = (schema.get("properties", {}).get(prop) or {}).get("type")
            entry = {"property": prop, "shape": "list" if kind == "array" else "map"}
        cfn[type_name] = entry
        _, service, resource = type_name.split("::")
        tf_name = f"awscc_{service.lower()}_{_snake(resource)}"
        tf_entry: dict[str, Any] = {"token": f"aws-native:{service.lower()}:{resource}"}
        if entry:
            tf_entry.update(property=_snake(prop), shape=entry["shape"])
        awscc[tf_name] = tf_entry
    origin = {"cfn-lint": f"{_commit(checkout)} (CloudFormation resource schemas, us-east-1; "
              "MIT-0)"}  # fmt: skip
    return cfn, awscc, origin


def _write(path: Path, origin: dict[str, Any], types: dict[str, Any]) -> None:
    payload = {"generatedFrom": origin, "types": dict(sorted(types.items()))}
    path.write_text(json.dumps(payload, indent=0, sort_keys=True) + "\n")
    taggable = sum(1 for t in types.values() if t and "property" in t)
    print(f"wrote {path.relative_to(ROOT)}: {taggable} taggable of {len(types)}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=Path, help="folder with the public checkouts")
    parser.add_argument("--skip-sdk", action="store_true", help="keep taggable_types.json")
    args = parser.parse_args()
    if not args.skip_sdk:
        registry: dict[str, Any] = {"generatedFrom": {}, "types": {}}
        for package in PROVIDER_PACKAGES:
            version, found = introspect_package(package)
            registry["generatedFrom"][package] = version
            registry["types"].update(found)
        REGISTRY_PATH.write_text(json.dumps(registry, indent=0, sort_keys=True) + "\n")
        print(f"wrote {REGISTRY_PATH.relative_to(ROOT)}", file=sys.stderr)
    if args.sources is None:
        return 0
    origin: dict[str, Any] = {}
    terraform: dict[str, Any] = {}
    for reader in (aws_terraform, gcp_terraform, azure_terraform):
        types, where = reader(args.sources)
        terraform.update(types)
        origin.update(where)
    cfn, awscc, where = cloudformation(args.sources)
    terraform.update(awscc)
    _write(TERRAFORM_PATH, {**origin, **where}, terraform)
    _write(CLOUDFORMATION_PATH, where, cfn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
