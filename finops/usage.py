"""The usage file: what a stack's usage-based charges depend on, as Infracost users know it.

`finops usage init --stack dev` writes `finops-usage.yml` beside the stack file with every
usage key the stack's resources have, each commented with what it means and set to 0; the
preview reads it (`--usage-file`, default: `finops-usage.yml` beside the stack file when it
exists) and prices those lines, and says which keys are still 0::

    version: 1
    resource_usage:
      vision-train-checkpoints:   # aws:s3/bucket:Bucket (GpuTrainingFleet vision-train)
        storage_gb: 0             # GB kept in the bucket on average over the month ...

Keys are per resource (its logical name, as the preview lists it) and per resource type
(`USAGE_KEYS`). An unknown resource or key is an error naming the file and key path, with
the closest names; a value must be a number >= 0. Writing again keeps what was edited,
comments included (ruamel.yaml round trip), and adds the keys of new resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aifinops.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from aifinops.engine import StackRun

USAGE_FILE_NAME = "finops-usage.yml"
USAGE_FILE_VERSION = 1
_COMMENT_COLUMN = 36


@dataclass(frozen=True)
class UsageKey:
    name: str
    meaning: str
    """What the number is, with its unit (written as the key's comment)."""


_STORAGE_GB = UsageKey(
    "storage_gb",
    "GB kept in the bucket on average over the month (checkpoints, models), standard tier",
)
_NAT_GB = UsageKey("data_processed_gb", "GB a month through the gateway, both directions")
_DURATION = UsageKey("mean_duration_ms", "mean run time of one invocation, milliseconds")
_EXTRA_CALLS = UsageKey(
    "invocations_per_month",
    "invocations a month besides the ones its schedules make (events, alerts)",
)
USAGE_KEYS: dict[str, tuple[UsageKey, ...]] = {
    "aws:s3/bucket:Bucket": (_STORAGE_GB,),
    "aws:s3/bucketV2:BucketV2": (_STORAGE_GB,),
    "gcp:storage/bucket:Bucket": (_STORAGE_GB,),
    "aws:cloudwatch/logGroup:LogGroup": (
        UsageKey(
            "ingested_gb",
            "GB of log events written a month (stored for the group's retention)",
        ),
    ),
    "aws:lambda/function:Function": (_DURATION, _EXTRA_CALLS),
    "gcp:cloudfunctionsv2/function:Function": (_DURATION, _EXTRA_CALLS),
    "aws:sagemaker/endpoint:Endpoint": (
        UsageKey(
            "data_processed_gb",
            "GB a month of requests in and responses out (SageMaker bills data processed, "
            "not requests, on real-time endpoints)",
        ),
    ),
    "aws:ec2/natGateway:NatGateway": (_NAT_GB,),
    "aws:ec2/vpcEndpoint:VpcEndpoint": (
        UsageKey("data_processed_gb", "GB a month through the endpoint"),
    ),
    "gcp:compute/routerNat:RouterNat": (_NAT_GB,),
    "azure-native:network:NatGateway": (_NAT_GB,),
}
"""Resource type -> the usage keys its usage-based charges read."""


@dataclass
class Usage:
    """Usage figures per resource name and key; what the file did not set reads as 0."""

    values: dict[str, dict[str, float]] = field(default_factory=dict)
    source: str = ""
    """The file read ("" when there is none)."""
    read: set[tuple[str, str]] = field(default_factory=set)
    """(resource, key) pairs the cost model asked for: those at 0 are listed as still 0."""

    def get(self, resource: str, key: str) -> float:
        """The figure for `key` of `resource` (0 when unset), noted as asked for."""
        self.read.add((resource, key))
        return self.values.get(resource, {}).get(key, 0.0)

    def zero_keys(self) -> list[str]:
        """`resource.key` of every figure the model asked for that is still 0, sorted."""
        return sorted(
            f"{resource}.{key}" for resource, key in self.read if not self.get_quiet(resource, key)
        )

    def get_quiet(self, resource: str, key: str) -> float:
        return self.values.get(resource, {}).get(key, 0.0)


def usage_resources(run: StackRun) -> list[tuple[str, str, str, tuple[UsageKey, ...]]]:
    """(resource name, type, what adds it, usage keys) for every resource that has keys."""
    found: list[tuple[str, str, str, tuple[UsageKey, ...]]] = []
    for resource in run.custom_resources():
        keys = USAGE_KEYS.get(resource.type)
        if not keys:
            continue
        if _free_endpoint(resource.type, resource.inputs):
            continue
        component = run.component_of(resource)
        owner = (
            f"{component.type.rsplit(':', 1)[-1]} {component.name}" if component else "the stack"
        )
        found.append((resource.name, resource.type, owner, keys))
    # by component, then name: the file reads the same every time (registration order is not)
    return sorted(found, key=lambda entry: (entry[2], entry[0]))


def _free_endpoint(type_token: str, inputs: Mapping[str, Any]) -> bool:
    """A gateway VPC endpoint (S3, DynamoDB): free, nothing to ask about."""
    return (
        type_token == "aws:ec2/vpcEndpoint:VpcEndpoint"
        and inputs.get("vpcEndpointType") != "Interface"
    )


def default_usage_path(stack_file: Path) -> Path:
    """Where the usage file of a stack lives by default: beside its stack file."""
    return stack_file.parent / USAGE_FILE_NAME


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()  # round trip: comments and key order kept
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def write_usage_file(run: StackRun, path: Path, stack_file: Path | None = None) -> list[str]:
    """Write (or complete) the usage file at `path` with every usage key of `run`'s resources.

    An existing file keeps its values and comments; keys of new resources are added at 0.
    Returns the `resource.key` paths added."""
    from ruamel.yaml.comments import CommentedMap

    yaml = _yaml()
    if path.exists():
        document = _load_document(path)
    else:
        document = CommentedMap()
        document["version"] = USAGE_FILE_VERSION
        about = f" of stack file {stack_file.name}" if stack_file else ""
        document.yaml_set_start_comment(
            f"finops usage file{about}: usage-based charges, per resource and key.\n"
            "Set each figure to what you expect a month; 0 leaves the line at $0 and the\n"
            "preview lists it as still 0. `finops usage init` adds keys of new resources\n"
            "and keeps what you edited. Keys: docs/cost.md."
        )
    usage = document.get("resource_usage")
    if usage is None:
        usage = CommentedMap()
        document["resource_usage"] = usage
    added = []
    for name, type_token, owner, keys in usage_resources(run):
        entry = usage.get(name)
        if entry is None:
            entry = CommentedMap()
            usage[name] = entry
            usage.yaml_add_eol_comment(f"{type_token} ({owner})", name, column=_COMMENT_COLUMN)
        for key in keys:
            if key.name in entry:
                continue
            entry[key.name] = 0
            entry.yaml_add_eol_comment(key.meaning, key.name, column=_COMMENT_COLUMN)
            added.append(f"{name}.{key.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        yaml.dump(document, out)
    tmp.replace(path)  # nothing half-written if the dump fails
    return added


def _load_document(path: Path) -> Any:
    from ruamel.yaml.error import YAMLError

    try:
        document = _yaml().load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the usage file: {exc.strerror}") from exc
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{path}{where}: {problem}") from exc
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ConfigError(f"{path}: a usage file is a mapping with version and resource_usage")
    return document


def read_usage_file(path: Path, run: StackRun) -> Usage:
    """Read and check `path` against `run`'s resources; every mistake is one line in a
    `ConfigError` naming the file and key path (with the closest names)."""
    document = _load_document(path)
    problems = []
    for key in document:
        if key not in ("version", "resource_usage"):
            problems.append(
                f"{path}: {key}: unknown key{did_you_mean(str(key), ['version', 'resource_usage'])}"
            )
    version = document.get("version", USAGE_FILE_VERSION)
    if version != USAGE_FILE_VERSION:
        problems.append(f"{path}: version: {version!r} is not supported (1)")
    known = {name: keys for name, _, _, keys in usage_resources(run)}
    values: dict[str, dict[str, float]] = {}
    section = document.get("resource_usage") or {}
    if not isinstance(section, Mapping):
        problems.append(f"{path}: resource_usage: a mapping of resource name -> keys")
        section = {}
    for name, entry in section.items():
        where = f"{path}: resource_usage.{name}"
        if name not in known:
            problems.append(
                f"{where}: no resource of this stack has usage keys by this name"
                f"{did_you_mean(str(name), known)}"
            )
            continue
        if entry is None:
            continue
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: a mapping of usage key -> number")
            continue
        allowed = [k.name for k in known[name]]
        for key, value in entry.items():
            if key not in allowed:
                hint = did_you_mean(str(key), allowed) or f" (keys: {', '.join(allowed)})"
                problems.append(f"{where}.{key}: unknown key{hint}")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                problems.append(f"{where}.{key}: {value!r} is not a number >= 0")
                continue
            values.setdefault(str(name), {})[str(key)] = float(value)
    if problems:
        raise ConfigError("\n".join(problems))
    return Usage(values=values, source=str(path))


def load_usage(stack_file: Path, run: StackRun, usage_file: Path | None = None) -> Usage:
    """The usage a preview prices: `usage_file` when given (it must exist), else
    `finops-usage.yml` beside the stack file when there is one, else none (every usage-based
    line at 0, listed as still 0)."""
    if usage_file is not None:
        if not usage_file.is_file():
            raise ConfigError(
                f"{usage_file}: no such usage file (`finops usage init --stack ... "
                f"--output {usage_file}` writes one)"
            )
        return read_usage_file(usage_file, run)
    default = default_usage_path(stack_file)
    return read_usage_file(default, run) if default.is_file() else Usage()
