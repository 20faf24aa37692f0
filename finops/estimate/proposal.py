"""The proposal file `finops estimate` reads: what a project will train, serve and store.

Keys are documented in docs/estimate.md. Every error names the file, the key path, the bad
value and what is allowed, one line per problem, as the stack file's errors do (exit 2).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from aifinops.errors import CatalogError, ConfigError, did_you_mean

DEFAULT_MFU = 0.40
"""Model FLOPs utilisation of large-model training: the share of the accelerators' dense
BF16 peak that 6 x N x tokens achieves (PaLM reports 46 %, Megatron-LM 30-50 % on A100/H100)."""
DEFAULT_SERVING_UTILISATION = 0.20
"""Share of peak FLOPs an inference server sustains for 2 x N FLOPs per token (batching,
decode bound by memory bandwidth); a planning figure, set it from a benchmark when there is one."""
TRAINING_BYTES_PER_PARAM = 16.0
"""Mixed-precision Adam: bf16 weights and gradients (2 + 2), fp32 master weights (4) and two
moments (4 + 4), the model states of the ZeRO paper; sharded over every accelerator (FSDP)."""


class Cloud(StrEnum):
    AWS = "aws"
    GCP = "gcp"
    AZURE = "azure"


class CapacityType(StrEnum):
    ON_DEMAND = "on-demand"
    SPOT = "spot"


class EnvironmentName(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _known_accelerators(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    from aifinops import catalog

    canonical = []
    for value in values:
        try:
            canonical.append(catalog.accelerator(value).model)
        except CatalogError as exc:
            raise ValueError(str(exc)) from None
    return canonical


class Training(_Model):
    """`training:` the model to train, by GPU-hours measured on one accelerator or by tokens."""

    gpu_hours: float | None = Field(default=None, alias="gpuHours", gt=0)
    gpu_hours_on: str | None = Field(default=None, alias="gpuHoursOn")
    tokens: float | None = Field(default=None, gt=0)
    model_params: float | None = Field(default=None, alias="modelParams", gt=0)
    mfu: float = Field(default=DEFAULT_MFU, gt=0, le=1)
    accelerators: list[str] | None = Field(default=None, min_length=1)
    accelerators_per_node: int | None = Field(
        default=None, alias="acceleratorsPerNode", ge=1, le=64
    )
    nodes: int = Field(default=1, ge=1, le=1000)
    runs: float = Field(default=1.0, gt=0)
    checkpoint_minutes: float = Field(default=30.0, alias="checkpointMinutes", gt=0)
    spot_instance_life_hours: float = Field(
        default=24.0, alias="spotInstanceLifeHours", gt=0, le=730
    )

    _accelerators = field_validator("accelerators")(_known_accelerators)

    @field_validator("gpu_hours_on")
    @classmethod
    def _known_reference(cls, value: str | None) -> str | None:
        found = _known_accelerators(None if value is None else [value])
        return found[0] if found else None

    @model_validator(mode="after")
    def _one_measure_of_work(self) -> Training:
        by_hours = self.gpu_hours is not None
        by_tokens = self.tokens is not None
        if by_hours == by_tokens:
            raise ValueError("give either gpuHours (+ gpuHoursOn) or tokens (+ modelParams)")
        if by_hours and self.gpu_hours_on is None:
            raise ValueError("gpuHours needs gpuHoursOn: the accelerator they were counted on")
        if by_tokens and self.model_params is None:
            raise ValueError("tokens needs modelParams (6 x modelParams x tokens FLOPs)")
        return self


class Inference(_Model):
    """`inference:` a model served at a steady request rate."""

    requests_per_second: float = Field(alias="requestsPerSecond", gt=0)
    model_params: float = Field(alias="modelParams", gt=0)
    tokens_per_request: float = Field(default=1000.0, alias="tokensPerRequest", gt=0)
    bytes_per_param: float = Field(default=2.0, alias="bytesPerParam", gt=0, le=4)
    utilisation: float = Field(default=DEFAULT_SERVING_UTILISATION, gt=0, le=1)
    accelerators: list[str] | None = Field(default=None, min_length=1)
    hours_per_month: float = Field(default=730.0, alias="hoursPerMonth", gt=0, le=744)
    min_replicas: int = Field(default=1, alias="minReplicas", ge=1)

    _accelerators = field_validator("accelerators")(_known_accelerators)


class Storage(_Model):
    """`storage:` data kept in object storage for the whole proposal."""

    dataset_gib: float = Field(default=0.0, alias="datasetGib", ge=0)
    checkpoint_gib: float = Field(default=0.0, alias="checkpointGib", ge=0)


class Tags(_Model):
    """`tags:` the tags every resource of the plan would carry (the stack's finops:tags)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    Project: str = Field(min_length=1, max_length=63)
    Team: str = Field(min_length=1, max_length=63)


class Proposal(_Model):
    """A project proposal: what it trains, serves and stores, for how many months, where."""

    name: str = Field(min_length=1, max_length=63)
    months: float = Field(gt=0, le=120)
    environment: EnvironmentName = EnvironmentName.DEV
    tags: Tags
    clouds: list[Cloud] = Field(default_factory=lambda: list(Cloud), min_length=1)
    regions: dict[Cloud, str] = Field(default_factory=dict)
    capacity: list[CapacityType] = Field(default_factory=lambda: list(CapacityType), min_length=1)
    budget_monthly_usd: float | None = Field(default=None, alias="budgetMonthlyUsd", gt=0)
    training: Training | None = None
    inference: Inference | None = None
    storage: Storage = Field(default_factory=Storage)

    @model_validator(mode="after")
    def _something_to_price(self) -> Proposal:
        if self.training is None and self.inference is None:
            raise ValueError("give training, inference or both")
        return self

    def region(self, cloud: str) -> str:
        from aifinops import catalog

        return self.regions.get(Cloud(cloud)) or catalog.default_region(cloud)


_MODEL_AT: dict[str, type[BaseModel]] = {
    "training": Training,
    "inference": Inference,
    "storage": Storage,
    "tags": Tags,
}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "(top level)"


def _allowed(loc: tuple[Any, ...]) -> list[str]:
    names = [p for p in loc if isinstance(p, str)]
    model: type[BaseModel] = _MODEL_AT.get(names[-1], Proposal) if names else Proposal
    if names and names[-1] not in _MODEL_AT:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def error_lines(source: str, exc: ValidationError) -> list[str]:
    """One `source: key.path: message` line per problem, with allowed keys and values."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _allowed(loc[:-1])
            message = (
                f"unknown key{did_you_mean(str(loc[-1]), allowed)}; allowed: {', '.join(allowed)}"
            )
        elif err["type"] == "missing":
            message = "required key is missing"
        elif err["type"] == "enum":
            given = err.get("input")
            expected = (err.get("ctx") or {}).get("expected", "")
            choices = [c.strip(" '") for c in str(expected).replace(" or ", ",").split(",")]
            message = f"{given!r} is not one of {expected}{did_you_mean(str(given), choices)}"
        elif (
            "input" in err
            and err["type"] != "value_error"
            and not isinstance(err["input"], dict | list)
        ):
            message = f"{message} (got {err['input']!r})"
        lines.append(f"{source}: {_path(loc)}: {message}")
    return lines


def parse(raw: Any, source: str = "<proposal>") -> Proposal:
    """Validate an already-read proposal; ConfigError with one line per problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of proposal keys (name, months, ...)")
    try:
        return Proposal.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(error_lines(source, exc))) from None


def load(path: Path) -> Proposal:
    """Read and validate a proposal file (YAML or JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: proposal file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        raw = YAML(typ="safe").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    return parse(raw, str(path))
