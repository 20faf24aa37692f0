"""The stack-config schema: what `Pulumi.<stack>.yaml` may say under the `finops:` namespace.

These keys are a contract (other tools write stack files against them); each is documented in
docs/config.md. Every error names the stack file, the key path, the bad value and the allowed
values, one line per problem (exit code 2 from the CLI).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from aifinops.errors import CatalogError, ConfigError, did_you_mean

NAMESPACE = "finops"
HOURS_PER_MONTH = 730.0  # AWS/GCP/Azure price a month as 730 hours
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
# an e-mail address as budgets take them (the stack file and the budget components check it)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PLAIN_PROJECT = re.compile(r"[a-zA-Z](-*[a-zA-Z0-9])*")
_PLAIN_PROJECT_MAX = 33  # + "-budget": the 40 characters of an AWS component name
DEFAULT_REGION = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}
REGION_KEYS = {"aws": "aws:region", "gcp": "gcp:region", "azure": "azure-native:location"}
# `name==version --hash=sha256:<64 hex>` (more --hash options allowed): what pip's
# --require-hashes mode accepts, and nothing looser.
_PINNED = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9._,-]+\])?==(?P<version>[A-Za-z0-9.+!_-]+)"
    r"(?P<hashes>(\s+--hash=sha256:[0-9a-f]{64})+)\s*$"
)


def pinned_requirement_problem(line: str) -> str | None:
    """Why `line` is not a requirement pinned to one version with a sha256, or None."""
    if _PINNED.match(line.strip()):
        return None
    return (
        f"{line!r} is not pinned with a hash; write it as "
        "`name==version --hash=sha256:<64 hex digits>` (pip-compile --generate-hashes)"
    )


class Cloud(StrEnum):
    AWS = "aws"
    GCP = "gcp"
    AZURE = "azure"


def region_of(regions: Mapping[str, str], cloud: str | Cloud, override: str | None = None) -> str:
    """A resource's region: its own override, else the stack's provider region, else the
    cloud's default (aws us-east-1, gcp us-central1, azure eastus)."""
    cloud_name = cloud.value if isinstance(cloud, Cloud) else cloud
    return override or regions.get(cloud_name) or DEFAULT_REGION[cloud_name]


class Capacity(StrEnum):
    """How a training fleet buys capacity."""

    SPOT_WITH_FALLBACK = "spot-with-fallback"  # spot, and on-demand only while spot cannot fill
    SPOT_ONLY = "spot-only"
    ON_DEMAND = "on-demand"


class Egress(StrEnum):
    """How the nodes of a fleet's own network reach the internet (AWS and Azure; GCP fleets
    always use Cloud NAT). Object storage always goes a private, free way."""

    PUBLIC_IP = "public-ip"  # a public address per node, no inbound rule
    NAT_GATEWAY = "nat-gateway"  # private nodes behind one NAT gateway


class ServingKind(StrEnum):
    """What the serving container of an inference endpoint is, and so what it needs."""

    LLM = "llm"  # a text-generation server (HF TGI on AWS; vLLM on GKE or Vertex AI's on GCP)
    MODEL_ARCHIVE = "model-archive"  # AWS: a framework container loading model.tar.gz + code


class Hosting(StrEnum):
    """Where an inference endpoint runs (what its container is, is `serving`)."""

    PROVISIONED = "provisioned"  # instances (SageMaker, TPU VMs); replicas.min 0: scale to zero
    SERVERLESS = "serverless"  # SageMaker Serverless Inference / Cloud Run, per request
    GKE = "gke"  # GCP: vLLM on GKE TPU node pools, the minimum on demand and Spot above it


# SageMaker's container environment (botocore: EnvironmentMap max 100, keys
# [a-zA-Z_][a-zA-Z0-9_]* up to 1024 characters, values up to 1024); Vertex AI's env alike.
_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,1023}$")
MAX_ENV_ENTRIES = 100


class Environment(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Tags(BaseModel):
    """`finops:tags`: the stack's tags; extra keys (string values) are allowed and kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    Project: str = Field(min_length=1, max_length=63)
    Team: str = Field(min_length=1, max_length=63)
    Environment: Environment
    CostCenter: str | None = None

    def as_dict(self) -> dict[str, str]:
        data = self.model_dump(mode="json", exclude_none=True)
        return {str(k): str(v) for k, v in data.items()}

    @model_validator(mode="after")
    def _extra_values_are_strings(self) -> Tags:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ValueError(f"tag {key!r} must be a string (got {value!r})")
        return self


class NodeCount(_Model):
    """Nodes of a training fleet: min <= desired <= max."""

    min: int = Field(ge=0)
    max: int = Field(ge=1, le=1000)
    desired: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> NodeCount:
        if not self.min <= self.desired <= self.max:
            raise ValueError(
                f"must satisfy min <= desired <= max (got min={self.min}, "
                f"desired={self.desired}, max={self.max})"
            )
        return self


class ReplicaCount(_Model):
    """Replicas of an inference endpoint: 0 <= min <= max."""

    min: int = Field(ge=0)
    max: int = Field(ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> ReplicaCount:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


_SQS_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,80}(\.fifo)?)$")
_SQS_URL = re.compile(
    r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/(\d{12})/([A-Za-z0-9_-]{1,80}(\.fifo)?)$"
)
_PUBSUB_SUBSCRIPTION = re.compile(
    r"^(projects/([a-z][a-z0-9-]{4,28}[a-z0-9])/subscriptions/)?([A-Za-z][\w.~+%-]{2,254})$"
)


class QueueScaling(_Model):
    """`trainingFleets[].scaleOn`: size the fleet from the depth of a work queue."""

    queue: str = Field(min_length=1)
    """AWS: an SQS queue ARN or URL. GCP: a Pub/Sub subscription, `projects/<p>/subscriptions/<s>`
    or its bare id (in the fleet's project)."""
    jobs_per_node: int = Field(alias="jobsPerNode", ge=1, le=100_000)
    """Queued or running jobs one node works on at a time."""


def sqs_queue_arn(queue: str) -> str | None:
    """The ARN of an SQS queue given by ARN or URL; None when it is neither."""
    if _SQS_ARN.match(queue):
        return queue
    found = _SQS_URL.match(queue)
    if not found:
        return None
    region, china, account, name = found.group(1), found.group(2), found.group(3), found.group(4)
    partition = "aws-cn" if china else "aws"
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


def sqs_queue_url(queue: str) -> str | None:
    """The URL of an SQS queue given by ARN or URL; None when it is neither."""
    if _SQS_URL.match(queue):
        return queue
    found = _SQS_ARN.match(queue)
    if not found:
        return None
    region, account, name = found.group(1), found.group(2), found.group(3)
    suffix = ".cn" if queue.startswith("arn:aws-cn:") else ""
    return f"https://sqs.{region}.amazonaws.com{suffix}/{account}/{name}"


def pubsub_subscription(subscription: str, project: str | None) -> tuple[str | None, str] | None:
    """(project, subscription id) of a Pub/Sub subscription path or bare id; None when it is
    neither. The project is `project` for a bare id."""
    found = _PUBSUB_SUBSCRIPTION.match(subscription)
    if not found or subscription.lower().startswith("goog"):
        return None
    return (found.group(2) or project), found.group(3)


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: 2-40 characters of a-z, 0-9 and '-', "
            "starting with a letter"
        )
    return value


class TrainingFleet(_Model):
    """One entry of `finops:trainingFleets`."""

    name: str
    cloud: Cloud
    instance_types: list[str] | None = Field(default=None, alias="instanceTypes", min_length=1)
    accelerator: str | None = None
    accelerators_per_node: int | None = Field(
        default=None, alias="acceleratorsPerNode", ge=1, le=16
    )
    nodes: NodeCount
    capacity: Capacity = Capacity.SPOT_WITH_FALLBACK
    on_demand_base: int = Field(default=0, alias="onDemandBase", ge=0)
    model_version: str = Field(alias="modelVersion", min_length=1, max_length=63)
    hours_per_month: float = Field(default=HOURS_PER_MONTH, alias="hoursPerMonth", gt=0, le=744)
    region: str | None = None
    checkpoint_retention_days: int = Field(default=14, alias="checkpointRetentionDays", ge=1)
    fallback_after_minutes: int = Field(default=10, alias="fallbackAfterMinutes", ge=1, le=120)
    egress: Egress | None = None
    vpc_id: str | None = Field(default=None, alias="vpcId", pattern=r"^vpc-[0-9a-f]{8,17}$")
    subnet_ids: list[str] | None = Field(default=None, alias="subnetIds", min_length=1)
    scale_on: QueueScaling | None = Field(default=None, alias="scaleOn")
    spot_stable_minutes: int = Field(default=15, alias="spotStableMinutes", ge=1, le=240)
    checkpoint_grace_seconds: int = Field(
        default=900, alias="checkpointGraceSeconds", ge=60, le=7200
    )

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _network(self) -> TrainingFleet:
        if self.subnet_ids and self.egress:
            raise ValueError(
                "egress applies to the network a fleet creates; with subnetIds the network "
                "is yours (give it a NAT or an internet route, and an S3 endpoint)"
            )
        if self.cloud == Cloud.GCP and self.egress:
            raise ValueError("egress: GCP fleets always reach out through Cloud NAT")
        if self.cloud == Cloud.AWS and bool(self.subnet_ids) != bool(self.vpc_id):
            raise ValueError("subnetIds and vpcId go together on AWS")
        if self.cloud != Cloud.AWS and self.vpc_id:
            raise ValueError("vpcId is for AWS fleets")
        if self.cloud != Cloud.AWS and self.subnet_ids and len(self.subnet_ids) != 1:
            raise ValueError("a GCP or Azure fleet takes one subnet (subnetIds: [<id>])")
        return self

    @model_validator(mode="after")
    def _queue_of_the_fleets_cloud(self) -> TrainingFleet:
        if self.scale_on is None:
            return self
        queue = self.scale_on.queue
        if self.cloud == Cloud.AWS and sqs_queue_arn(queue) is None:
            raise ValueError(
                f"scaleOn.queue: {queue!r} is not an SQS queue: give its ARN "
                "(arn:aws:sqs:<region>:<account>:<name>) or URL "
                "(https://sqs.<region>.amazonaws.com/<account>/<name>)"
            )
        if self.cloud == Cloud.GCP and pubsub_subscription(queue, None) is None:
            raise ValueError(
                f"scaleOn.queue: {queue!r} is not a Pub/Sub subscription: give "
                "projects/<project>/subscriptions/<id> or the subscription id"
            )
        if self.cloud == Cloud.AZURE:
            raise ValueError("scaleOn is built for cloud aws (SQS) and gcp (Pub/Sub), not azure")
        return self

    @model_validator(mode="after")
    def _one_way_to_pick_hardware(self) -> TrainingFleet:
        if bool(self.instance_types) == bool(self.accelerator):
            raise ValueError(
                "give exactly one of instanceTypes or accelerator (+ acceleratorsPerNode)"
            )
        if self.accelerators_per_node is not None and not self.accelerator:
            raise ValueError("acceleratorsPerNode needs accelerator")
        if self.on_demand_base > self.nodes.max:
            raise ValueError(
                f"onDemandBase ({self.on_demand_base}) must be <= nodes.max ({self.nodes.max})"
            )
        return self


class InferenceEndpoint(_Model):
    """One entry of `finops:inferenceEndpoints`."""

    name: str
    cloud: Cloud
    instance_type: str | None = Field(default=None, alias="instanceType")
    accelerator: str | None = None
    replicas: ReplicaCount | None = None
    model_version: str = Field(alias="modelVersion", min_length=1, max_length=63)
    hours_per_month: float = Field(default=HOURS_PER_MONTH, alias="hoursPerMonth", gt=0, le=744)
    region: str | None = None
    image: str | None = None
    # before serving: its validator reads it (Cloud Run runs `image`, no serving kind)
    hosting: Hosting = Hosting.PROVISIONED
    serving: ServingKind | None = Field(default=None, validate_default=True)
    model_data_url: str | None = Field(default=None, alias="modelDataUrl", validate_default=True)
    model_id: str | None = Field(default=None, alias="modelId", validate_default=True)
    # numbers are written as YAML numbers (`SAGEMAKER_MODEL_SERVER_WORKERS: 2`); kept as text
    env: dict[str, str | int | float] = Field(default_factory=dict, max_length=MAX_ENV_ENTRIES)
    target_duty_cycle_percent: int = Field(default=60, alias="targetDutyCyclePercent", ge=1, le=100)
    # hosting: gke (finops:gcp:GkeTpuInferenceEndpoint)
    zone: str | None = None
    target_queue_length: int | None = Field(default=None, alias="targetQueueLength", ge=1)
    max_model_len: int | None = Field(default=None, alias="maxModelLen", ge=16)
    hugging_face_token_secret: str | None = Field(default=None, alias="huggingFaceTokenSecret")
    spot: bool = False
    model_memory_gib: float | None = Field(default=None, alias="modelMemoryGib", gt=0)
    target_invocations_per_instance: int = Field(
        default=100, alias="targetInvocationsPerInstance", ge=1
    )
    requests_per_month: float | None = Field(default=None, alias="requestsPerMonth", ge=0)
    mean_duration_ms: float | None = Field(default=None, alias="meanDurationMs", gt=0, le=3_600_000)
    memory_mb: int | None = Field(default=None, alias="memoryMb", gt=0)
    cpu: int | None = Field(default=None, gt=0)
    max_concurrency: int | None = Field(default=None, alias="maxConcurrency", ge=1)
    provisioned_concurrency: int | None = Field(default=None, alias="provisionedConcurrency", ge=1)

    _name = field_validator("name")(_check_name)

    @field_validator("serving")
    @classmethod
    def _serving(cls, value: ServingKind | None, info: ValidationInfo) -> ServingKind | None:
        cloud = info.data.get("cloud")
        if cloud == Cloud.AWS and value is None:
            raise ValueError(
                "required on AWS: llm (a Hugging Face TGI server; give modelId or "
                "modelDataUrl) or model-archive (a framework container that loads "
                "modelDataUrl, model.tar.gz with code/inference.py)"
            )
        if cloud == Cloud.GCP and info.data.get("hosting") == Hosting.SERVERLESS:
            if value is not None:
                raise ValueError("not with hosting: serverless on GCP (Cloud Run runs image)")
            return value
        if cloud == Cloud.GCP and value != ServingKind.LLM:
            raise ValueError(
                "llm is required on GCP (vLLM on GKE or Vertex AI serves the Hugging Face "
                f"model modelId on TPUs; got {value.value if value else None!r})"
            )
        if cloud == Cloud.AZURE and value is not None:
            raise ValueError("serving applies to AWS and GCP endpoints")
        return value

    @field_validator("model_data_url")
    @classmethod
    def _model_data(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("serving") == ServingKind.MODEL_ARCHIVE and not value:
            raise ValueError(
                "required with serving: model-archive (the s3:// URL of the model.tar.gz "
                "the container loads: weights and code/inference.py)"
            )
        if value and info.data.get("cloud") == Cloud.AWS and not value.startswith("s3://"):
            raise ValueError(f"{value!r}: an s3://<bucket>/<key> URL on AWS")
        if value and info.data.get("cloud") == Cloud.GCP:
            if info.data.get("hosting") == Hosting.SERVERLESS:
                if not value.startswith("gs://"):
                    raise ValueError(f"{value!r}: a gs://<bucket>/<path> URL on GCP")
                return value  # Cloud Run: MODEL_DATA_URL, readable by the service's identity
            raise ValueError(
                "not read on GCP: vLLM on GKE and Vertex AI fetch modelId from Hugging Face "
                "(weights in gs://: finops:gcp:TpuBatchInference, see "
                "docs/components-gcp-azure.md)"
            )
        return value

    @field_validator("model_id")
    @classmethod
    def _model_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        serving = info.data.get("serving")
        if info.data.get("cloud") == Cloud.GCP and serving == ServingKind.LLM and not value:
            raise ValueError(
                "required on GCP: the Hugging Face model id Vertex AI deploys "
                "(Qwen/Qwen2.5-7B-Instruct)"
            )
        if serving == ServingKind.LLM and not value and not info.data.get("model_data_url"):
            raise ValueError(
                "required with serving: llm unless modelDataUrl holds the weights (the "
                "Hugging Face model id the server loads, HF_MODEL_ID)"
            )
        if value and "serving" in info.data and serving != ServingKind.LLM:
            # (a serving value in error is reported on its own key, once)
            raise ValueError("modelId is for serving: llm")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, values: dict[str, str | int | float]) -> dict[str, str | int | float]:
        for key, value in values.items():
            if not _ENV_KEY.match(str(key)):
                raise ValueError(
                    f"{key!r} is not a container variable name ([a-zA-Z_][a-zA-Z0-9_]*)"
                )
            if len(str(value)) > 1024:
                raise ValueError(f"{key}: values stop at 1024 characters")
        return {str(k): str(v) for k, v in values.items()}

    @model_validator(mode="after")
    def _one_way_to_pick_hardware(self) -> InferenceEndpoint:
        if self.cloud == Cloud.AZURE:
            raise ValueError("inference endpoints support cloud aws or gcp")
        if (self.requests_per_month is None) != (self.mean_duration_ms is None):
            raise ValueError("give requestsPerMonth and meanDurationMs together (the traffic)")
        gke_only = [
            key
            for key, value in (
                ("zone", self.zone),
                ("targetQueueLength", self.target_queue_length),
                ("maxModelLen", self.max_model_len),
                ("huggingFaceTokenSecret", self.hugging_face_token_secret),
            )
            if value is not None
        ]
        if gke_only and self.hosting != Hosting.GKE:
            raise ValueError(f"{', '.join(gke_only)}: only with hosting: gke")
        if self.hosting == Hosting.GKE and self.cloud != Cloud.GCP:
            raise ValueError("hosting: gke is for cloud: gcp (TPU node pools on GKE)")
        if self.hosting == Hosting.SERVERLESS:
            _check_serverless(self)
            return self
        serverless_only = [
            key
            for key, value in (
                ("memoryMb", self.memory_mb),
                ("cpu", self.cpu),
                ("maxConcurrency", self.max_concurrency),
                ("provisionedConcurrency", self.provisioned_concurrency),
            )
            if value is not None
        ]
        if serverless_only:
            raise ValueError(f"{', '.join(serverless_only)}: only with hosting: serverless")
        if bool(self.instance_type) == bool(self.accelerator):
            raise ValueError("give exactly one of instanceType or accelerator")
        if self.replicas is None:
            raise ValueError("replicas (min, max) is required with hosting: provisioned")
        if self.cloud == Cloud.GCP:
            self._gcp_serving()
        elif self.spot:
            raise ValueError("spot applies to GCP endpoints (SageMaker real-time has no spot)")
        return self

    def _gcp_serving(self) -> None:
        """A GCP endpoint (vLLM on GKE or Vertex AI on TPU; serving and modelId are checked by
        their own validators): replicas.min at least 1; on GKE an image pinned by digest and
        a zone; on Vertex AI env only with an image and never AIP_*."""
        if self.replicas is not None and self.replicas.min < 1:
            raise ValueError(
                "replicas.min must be >= 1 on GCP (Vertex AI keeps one replica; on GKE the "
                "minimum is the on-demand TPU pool)"
            )
        if self.hosting == Hosting.GKE:
            if not self.image or "@sha256:" not in self.image:
                raise ValueError(
                    "image is required with hosting: gke: your mirror of vllm/vllm-tpu, "
                    "pinned by digest (REGION-docker.pkg.dev/PROJECT/REPO/vllm-tpu@sha256:...)"
                )
            if not self.zone:
                raise ValueError(
                    "zone is required with hosting: gke: the zone of the TPU nodes, one that "
                    "offers the machine type (us-central1-a for v5e)"
                )
            if self.spot:
                raise ValueError(
                    "spot: not with hosting: gke (replicas above replicas.min run on Spot "
                    "already; the minimum stays on demand)"
                )
            return
        for key in self.env:
            if key.startswith("AIP_"):
                raise ValueError(f"env.{key}: AIP_* variables are Vertex AI's own")
        if self.env and not self.image:
            raise ValueError("env needs image on GCP (Model Garden's container takes none)")

    @property
    def traffic(self) -> tuple[float, float] | None:
        """(requests a month, mean duration in ms) when the stack states the traffic."""
        if self.requests_per_month is None or self.mean_duration_ms is None:
            return None
        return self.requests_per_month, self.mean_duration_ms


def _check_serverless(endpoint: InferenceEndpoint) -> None:
    """The limits the serverless service allows (ValueError naming the key and the range)."""
    from aifinops import serving  # serving reads HOURS_PER_MONTH from here

    if endpoint.traffic is None:
        raise ValueError(
            "hosting: serverless needs requestsPerMonth and meanDurationMs (the preview prices "
            "it per request and duration)"
        )
    if endpoint.instance_type:
        raise ValueError("instanceType: not with hosting: serverless (give memoryMb)")
    if endpoint.cloud == Cloud.AWS:
        if endpoint.serving == ServingKind.LLM:
            raise ValueError(
                "serving: llm (a TGI server) needs a GPU or Inferentia, which SageMaker "
                "Serverless Inference has not: use serving: model-archive (a CPU container "
                "loading modelDataUrl) or hosting: provisioned"
            )
        if endpoint.accelerator:
            raise ValueError(
                "accelerator: SageMaker Serverless Inference has no GPU or Inferentia; use "
                "hosting: provisioned with replicas.min 0 to scale an accelerator to zero"
            )
        if endpoint.cpu is not None:
            raise ValueError("cpu: Cloud Run only (SageMaker serverless sizes by memoryMb)")
        if endpoint.mean_duration_ms is not None and endpoint.mean_duration_ms > 60_000:
            raise ValueError(
                f"meanDurationMs {endpoint.mean_duration_ms:g}: a SageMaker serverless "
                "invocation stops at 60000 ms"
            )
        sizes = serving.SAGEMAKER_MEMORY_SIZES_MB
        if endpoint.memory_mb is not None and endpoint.memory_mb not in sizes:
            raise ValueError(
                f"memoryMb {endpoint.memory_mb}: SageMaker serverless allows "
                f"{', '.join(map(str, sizes))} (1 GB steps)"
            )
        model_gib = endpoint.model_memory_gib
        if model_gib and serving.sagemaker_serverless_memory_mb(model_gib) is None:
            raise ValueError(
                f"modelMemoryGib {model_gib:g}: SageMaker serverless has at most "
                f"{sizes[-1]} MB; use hosting: provisioned"
            )
        if endpoint.memory_mb and model_gib and model_gib * 1024 > endpoint.memory_mb:
            raise ValueError(
                f"memoryMb {endpoint.memory_mb} is less than modelMemoryGib {model_gib:g} GiB"
            )
        most = serving.SAGEMAKER_MAX_CONCURRENCY
        if endpoint.max_concurrency is not None and endpoint.max_concurrency > most:
            raise ValueError(f"maxConcurrency {endpoint.max_concurrency}: allowed 1 to {most}")
        concurrency = endpoint.max_concurrency or 1
        provisioned = endpoint.provisioned_concurrency
        if provisioned is not None and provisioned > concurrency:
            raise ValueError(
                f"provisionedConcurrency {provisioned} must be <= maxConcurrency ({concurrency})"
            )
        if endpoint.replicas is not None:
            raise ValueError("replicas: not with hosting: serverless on aws (maxConcurrency)")
        return
    # gcp: Cloud Run
    if endpoint.provisioned_concurrency is not None:
        raise ValueError(
            "provisionedConcurrency: SageMaker only; on Cloud Run keep instances warm with "
            "replicas.min"
        )
    gpu = None
    if endpoint.accelerator:
        gpu = serving.CLOUD_RUN_GPUS.get(endpoint.accelerator)
        if gpu is None:
            raise ValueError(
                f"accelerator {endpoint.accelerator!r}: Cloud Run offers "
                f"{', '.join(serving.CLOUD_RUN_GPUS)}"
            )
    cpus = serving.CLOUD_RUN_CPUS
    if endpoint.cpu is not None and endpoint.cpu not in cpus:
        raise ValueError(f"cpu {endpoint.cpu}: Cloud Run allows {', '.join(map(str, cpus))}")
    if gpu is not None:
        if endpoint.cpu is not None and endpoint.cpu < gpu.min_cpu:
            raise ValueError(
                f"cpu {endpoint.cpu}: a Cloud Run {endpoint.accelerator} needs at least "
                f"{gpu.min_cpu} vCPU"
            )
        need_mb = gpu.min_memory_gib * 1024
        if endpoint.memory_mb is not None and endpoint.memory_mb < need_mb:
            raise ValueError(
                f"memoryMb {endpoint.memory_mb}: a Cloud Run {endpoint.accelerator} needs at "
                f"least {need_mb:.0f}"
            )
    top = serving.CLOUD_RUN_MAX_MEMORY_GIB * 1024
    if endpoint.memory_mb is not None and not 512 <= endpoint.memory_mb <= top:
        raise ValueError(f"memoryMb {endpoint.memory_mb}: Cloud Run allows 512 to {top:.0f}")
    most = serving.CLOUD_RUN_MAX_CONCURRENCY
    if endpoint.max_concurrency is not None and endpoint.max_concurrency > most:
        raise ValueError(f"maxConcurrency {endpoint.max_concurrency}: allowed 1 to {most}")


# Notifications one budget may have: AWS Budgets (botocore's budgets model,
# NotificationWithSubscribersList max 10) and Azure consumption budgets ("Budget can have up
# to five notifications", the azure-native SDK). GCP has no such small limit.
MAX_BUDGET_NOTIFICATIONS = {"aws": 10, "azure": 5}
_CLOUD_NAMES = {"aws": "AWS", "gcp": "GCP", "azure": "Azure"}
FORECAST_AT_PERCENT = 100.0
ENFORCE_AT_PERCENT = 100.0


def budget_notifications(thresholds: list[float], enforce: bool) -> list[tuple[str, float]]:
    """(type, percent) notifications of a budget: ACTUAL at every threshold, FORECASTED once
    (forecast to exceed the limit), and ACTUAL 100 for enforcement when it is missing."""
    unique = sorted(set(thresholds))
    pairs = [("ACTUAL", t) for t in unique] + [("FORECASTED", FORECAST_AT_PERCENT)]
    if enforce and ENFORCE_AT_PERCENT not in unique:
        pairs.append(("ACTUAL", ENFORCE_AT_PERCENT))
    return pairs


def notification_limit_problem(cloud: str, thresholds: list[float], enforce: bool) -> str | None:
    """Why `thresholds` make more notifications than `cloud` allows per budget, or None."""
    limit = MAX_BUDGET_NOTIFICATIONS.get(cloud)
    count = len(budget_notifications(thresholds, enforce))
    if limit is None or count <= limit:
        return None
    extra = 1 if enforce and ENFORCE_AT_PERCENT not in thresholds else 0
    return (
        f"{len(set(thresholds))} thresholds make {count} notifications (ACTUAL at each, "
        f"FORECASTED once{', ACTUAL 100 for enforce' if extra else ''}); an {_CLOUD_NAMES[cloud]} budget "
        f"allows {limit}: give at most {limit - 1 - extra} thresholds"
    )


class Budget(_Model):
    """One entry of `finops:budgets`: a project's spend (its `Project` tag), or without
    `project` the whole account (AWS), the stack's GCP project on the billing account, or the
    Azure subscription."""

    project: str | None = Field(default=None, min_length=1)
    cloud: Cloud
    monthly_limit_usd: float = Field(alias="monthlyLimitUsd", gt=0)
    enforce: bool = False  # at 100% actual, scale every fleet tagged with the project to zero
    thresholds_percent: list[float] = Field(
        default=[80.0, 100.0], alias="thresholdsPercent", min_length=1
    )
    notify: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _enforce_needs_project(self) -> Budget:
        if self.enforce and self.project is None:
            raise ValueError(
                "enforce needs project (it scales the fleets tagged with it to zero); an "
                "account budget alerts only"
            )
        return self

    @property
    def scope(self) -> str:
        """`project <name>`, or what an account budget covers on its cloud."""
        if self.project is not None:
            return f"project {self.project}"
        return {"aws": "account", "gcp": "GCP project", "azure": "subscription"}[self.cloud.value]

    @property
    def export_prefix(self) -> str:
        """Stack export names of this budget start with this."""
        return self.project if self.project is not None else f"{self.cloud.value}-account"

    @field_validator("thresholds_percent")
    @classmethod
    def _thresholds(cls, values: list[float], info: ValidationInfo) -> list[float]:
        for value in values:
            if not 0 < value <= 1000:
                raise ValueError(f"threshold {value} must be in (0, 1000] percent")
        cloud = info.data.get("cloud")
        if cloud is not None:
            problem = notification_limit_problem(
                str(cloud.value), values, bool(info.data.get("enforce"))
            )
            if problem:
                raise ValueError(problem)
        return sorted(values)

    @field_validator("notify")
    @classmethod
    def _emails(cls, values: list[str]) -> list[str]:
        for value in values:
            if not EMAIL.match(value):
                raise ValueError(f"{value!r} is not an e-mail address")
        return values

    @property
    def component_name(self) -> str:
        """The budget component's name, which its children's cloud names start with:
        `<project>-budget` when the project is a plain name (a letter, then letters, digits
        and inner hyphens, at most 33 characters); else a lower-case slug of it, cut, and six
        hex digits of the whole value, so that any `Project` tag makes a name every cloud
        accepts (40 characters at most). An account budget is `<cloud>-account-budget`."""
        if self.project is None:
            return f"{self.cloud.value}-account-budget"
        if _PLAIN_PROJECT.fullmatch(self.project) and len(self.project) <= _PLAIN_PROJECT_MAX:
            return f"{self.project}-budget"
        slug = re.sub(r"[^a-z0-9]+", "-", self.project.lower()).strip("-")
        if not slug[:1].isalpha():
            slug = f"p-{slug}".rstrip("-")
        digest = hashlib.sha256(self.project.encode()).hexdigest()[:6]
        return f"{slug[: _PLAIN_PROJECT_MAX - len(digest) - 1].rstrip('-')}-{digest}-budget"


def _check_pinned(line: str) -> str:
    problem = pinned_requirement_problem(line)
    if problem:
        raise ValueError(problem)
    return line.strip()


PinnedRequirement = Annotated[str, AfterValidator(_check_pinned)]


class AgentSettings(_Model):
    """`finops:agent`: where the fleets' hosts get the finops agent. Default (no key): a
    bundle built from this checkout at deploy time, uploaded to each fleet's bucket."""

    wheel: str | None = None
    """A built `aifinops` wheel (path on the deploying machine) to bundle instead of
    building one; its dependencies still come from the agent lock."""
    requirements: list[PinnedRequirement] | None = Field(default=None, min_length=1)
    """Instead of a bundle: requirements installed from `indexUrl`, each pinned with
    `--hash` (pip's --require-hashes mode; every dependency listed)."""
    index_url: str | None = Field(default=None, alias="indexUrl", pattern=r"^https://\S+$")
    """Your package index (https), the only one the hosts ask with `requirements`."""

    @model_validator(mode="after")
    def _one_source(self) -> AgentSettings:
        if self.wheel and self.requirements:
            raise ValueError("give wheel (bundled) or requirements (private index), not both")
        if bool(self.requirements) != bool(self.index_url):
            raise ValueError("requirements and indexUrl go together")
        return self


class StackConfig(_Model):
    """Everything under `finops:` plus the provider regions the stack uses."""

    tags: Tags
    training_fleets: list[TrainingFleet] = Field(default_factory=list, alias="trainingFleets")
    inference_endpoints: list[InferenceEndpoint] = Field(
        default_factory=list, alias="inferenceEndpoints"
    )
    budgets: list[Budget] = Field(default_factory=list)
    cost_ceiling_usd: float | None = Field(default=None, alias="costCeilingUsd", gt=0)
    gcp_billing_account: str | None = Field(
        default=None, alias="gcpBillingAccount", pattern=r"^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$"
    )
    azure_ssh_public_key: str | None = Field(default=None, alias="azureSshPublicKey", min_length=16)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    regions: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> StackConfig:
        for key, items in (
            ("trainingFleets", self.training_fleets),
            ("inferenceEndpoints", self.inference_endpoints),
        ):
            seen: set[str] = set()
            for item in items:
                if item.name in seen:
                    raise ValueError(f"{key}: duplicate name {item.name!r}")
                seen.add(item.name)
        return self

    def region(self, cloud: str | Cloud, override: str | None = None) -> str:
        """The region a resource of `cloud` lands in: its own override, the provider config, the default."""
        return region_of(self.regions, cloud, override)

    def clouds(self) -> list[str]:
        """The clouds this stack creates anything on, in a stable order."""
        used = {fleet.cloud.value for fleet in self.training_fleets}
        used |= {endpoint.cloud.value for endpoint in self.inference_endpoints}
        used |= {budget.cloud.value for budget in self.budgets}
        return [cloud.value for cloud in Cloud if cloud.value in used]

    def hours_by_name(self) -> dict[str, float]:
        """Component name -> hours per month it runs (for the cost model)."""
        hours = {f.name: f.hours_per_month for f in self.training_fleets}
        hours.update({e.name: e.hours_per_month for e in self.inference_endpoints})
        return hours


FINOPS_KEYS = {
    "tags": "tags",
    "trainingFleets": "trainingFleets",
    "inferenceEndpoints": "inferenceEndpoints",
    "budgets": "budgets",
    "costCeilingUsd": "costCeilingUsd",
    "gcpBillingAccount": "gcpBillingAccount",
    "azureSshPublicKey": "azureSshPublicKey",
    "agent": "agent",
}
# Plain values, never JSON: the CLI passes them to programs as they are.
SCALAR_KEYS = frozenset({"costCeilingUsd", "gcpBillingAccount", "azureSshPublicKey"})


def _format_location(loc: tuple[Any, ...]) -> str:
    path = f"{NAMESPACE}:"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("" if i == 0 else ".") + str(part)
    return path


def _aliased(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """`loc` with field names spelt as the stack file spells them (pydantic reports a defaulted
    field under its Python name)."""
    if not loc or not isinstance(loc[-1], str):
        return loc
    model = _model_at(loc[:-1])
    field = model.model_fields.get(loc[-1]) if model else None
    return (*loc[:-1], field.alias) if field is not None and field.alias else loc


def _misspelt_tag(key: str, given: Any) -> str | None:
    """A tag key of `given` that is probably `key` misspelt (`project` for `Project`)."""
    if not isinstance(given, Mapping):
        return None
    for candidate in given:
        if isinstance(candidate, str) and candidate.lower() == key.lower():
            return candidate
    close = difflib.get_close_matches(key, [str(k) for k in given], n=1, cutoff=0.8)
    return close[0] if close else None


def _error_lines(source: str, exc: ValidationError, data: Mapping[str, Any]) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = _aliased(tuple(err["loc"]))
        if loc == ("tags",) and err["type"] == "missing":
            lines.append(
                f"{source}: {NAMESPACE}:tags: required key is missing (Project, Team, Environment)"
            )
            continue
        if len(loc) == 2 and loc[0] == "tags" and err["type"] == "missing":
            wrong = _misspelt_tag(str(loc[1]), data.get("tags"))
            if wrong is not None:
                lines.append(
                    f"{source}: {NAMESPACE}:tags.{wrong}: did you mean {loc[1]}? (tag keys are "
                    f"case-sensitive; {loc[1]} is required)"
                )
                continue
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            model_keys = _allowed_keys_at(loc[:-1])
            hint = did_you_mean(str(loc[-1]), model_keys)
            message = (
                f"unknown key{hint}; allowed: {', '.join(model_keys)}"
                if model_keys
                else "unknown key"
            )
        elif err["type"] == "enum":
            message = f"{message} (got {err.get('input')!r})"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif (
            "input" in err
            and err["type"] not in ("value_error",)
            and not isinstance(err["input"], dict | list)
        ):
            message = f"{message} (got {err['input']!r})"
        lines.append(f"{source}: {_format_location(loc)}: {message}")
    return lines


_MODEL_AT: dict[str, type[BaseModel]] = {
    "trainingFleets": TrainingFleet,
    "inferenceEndpoints": InferenceEndpoint,
    "budgets": Budget,
    "tags": Tags,
    "nodes": NodeCount,
    "replicas": ReplicaCount,
    "agent": AgentSettings,
    "scaleOn": QueueScaling,
}


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model of the mapping at key path `loc` (list indexes skipped); None when unknown."""
    names = [p for p in loc if isinstance(p, str)]
    return _MODEL_AT.get(names[-1]) if names else StackConfig


def _allowed_keys_at(loc: tuple[Any, ...]) -> list[str]:
    model = _model_at(loc)
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


# (list key, instance type key, whether it is a list) of the entries that name hardware
_HARDWARE_KEYS = (
    ("trainingFleets", "instanceTypes", True),
    ("inferenceEndpoints", "instanceType", False),
)


def _catalog_problems(data: Mapping[str, Any], regions: Mapping[str, str]) -> list[str]:
    """Instance types and accelerators that the catalog does not know for their cloud and
    region, as `finops:<key path>: <problem>` lines.

    Reads the raw values, so an entry with a schema error elsewhere is still checked here:
    every problem of a stack file shows in one run.
    """
    from aifinops import (
        catalog,  # the catalog imports nothing of config; late import keeps start-up light
    )

    problems: list[str] = []
    for key, type_key, many in _HARDWARE_KEYS:
        entries = data.get(key)
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict) or entry.get("cloud") not in DEFAULT_REGION:
                continue
            cloud = str(entry["cloud"])
            override = entry.get("region") if isinstance(entry.get("region"), str) else None
            region = region_of(regions, cloud, override)
            names = entry.get(type_key)
            if many:
                values = names if isinstance(names, list) else []
                where = [f"{type_key}[{j}]" for j in range(len(values))]
            else:
                values, where = [names], [type_key]
            for path, name in zip(where, values, strict=False):
                if not isinstance(name, str):
                    continue
                try:
                    catalog.lookup(name, region, cloud=cloud)
                except CatalogError as exc:
                    problems.append(f"{NAMESPACE}:{key}[{i}].{path}: {exc}")
            accelerator = entry.get("accelerator")
            if entry.get("hosting") == Hosting.SERVERLESS.value:
                continue  # a Cloud Run GPU, checked by the schema against what Cloud Run offers
            if isinstance(accelerator, str):
                count = entry.get("acceleratorsPerNode", 1) if many else 1
                problem = _accelerator_problem(accelerator, count, cloud, region, key)
                if problem:
                    problems.append(f"{NAMESPACE}:{key}[{i}].accelerator: {problem}")
    return problems


# The service an entry's accelerator is bought from, by list key and cloud.
_SERVICE = {
    "trainingFleets": {"aws": "ec2", "gcp": "gce", "azure": "azure-vm"},
    "inferenceEndpoints": {"aws": "sagemaker", "gcp": "tpu"},
}


def _accelerator_problem(name: str, count: Any, cloud: str, region: str, key: str) -> str | None:
    """Why `count` x `name` cannot be had in `region` of `cloud`, or None when it can."""
    from aifinops import catalog

    try:
        catalog.accelerator(name)
        service = _SERVICE[key].get(cloud)
        if service is None or not isinstance(count, int) or count < 1:
            return None  # the schema says what is wrong with these
        if catalog.cheapest(name, count, cloud=cloud, region=region, service=service):
            return None
        catalog.check_region(region, cloud)
    except CatalogError as exc:
        return str(exc)
    priced = sorted({i.region for i in catalog.cheapest(name, count, cloud=cloud, service=service)})
    return (
        f"the catalog has no {service} type with {count} x {name} in {region} (snapshot "
        f"{catalog.SNAPSHOT_DATE}); priced in: {', '.join(priced) or 'no region'}"
    )


def parse(
    raw_config: Mapping[str, Any], source: str = "<config>", check_catalog: bool = True
) -> StackConfig:
    """Validate a stack's `config:` mapping (keys `finops:tags`, `aws:region`, ...).

    Values may be objects or, as the Pulumi CLI passes them to programs, JSON strings.
    Raises ConfigError with one line per problem, every problem of the file at once:
    unknown keys, the schema (tags included) and the catalog.
    """
    data: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw_config.items():
        namespace, _, name = str(key).partition(":")
        if namespace != NAMESPACE:
            continue
        if name not in FINOPS_KEYS:
            problems.append(
                f"{source}: {key}: unknown key{did_you_mean(name, FINOPS_KEYS)}; "
                f"allowed: {', '.join(f'{NAMESPACE}:{k}' for k in FINOPS_KEYS)}"
            )
            continue
        if isinstance(value, dict) and "secure" in value:
            continue  # an encrypted value: set, but only the Pulumi CLI can read it
        if isinstance(value, str) and name not in SCALAR_KEYS:
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                problems.append(f"{source}: {key}: expected a YAML mapping or list, got a string")
                continue
        data[name] = value
    regions = {}
    for cloud, key in REGION_KEYS.items():
        if key in raw_config:
            regions[cloud] = str(raw_config[key])
    data["regions"] = regions
    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(data)
    except ValidationError as exc:
        problems += _error_lines(source, exc, data)
    if check_catalog:
        problems += [f"{source}: {line}" for line in _catalog_problems(data, regions)]
    if problems or config is None:
        raise ConfigError("\n".join(dict.fromkeys(problems)))
    return config


def _stack_file_text(path: Path) -> str:
    """The text of a stack file; ConfigError when it is missing, unreadable or not UTF-8."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: stack file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a stack file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the stack file: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")  # Pulumi writes UTF-8; some editors add a BOM
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column}); "
            "save the file as UTF-8, as Pulumi reads it"
        ) from None


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a `Pulumi.<stack>.yaml` file."""
    text = _stack_file_text(path)
    if not text.strip():
        raise ConfigError(
            f"{path}: the stack file is empty; it needs a config: mapping with at least "
            f"{NAMESPACE}:tags (Project, Team, Environment), see docs/config.md"
        )
    try:
        document = YAML(typ="safe").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if document is None:
        raise ConfigError(
            f"{path}: the stack file has only comments; it needs a config: mapping with at "
            f"least {NAMESPACE}:tags (Project, Team, Environment), see docs/config.md"
        )
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'config:' key")
    if document.get("config") is None:
        raise ConfigError(
            f"{path}: no config: values; it needs at least {NAMESPACE}:tags (Project, Team, "
            "Environment), see docs/config.md"
        )
    config = document["config"]
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: 'config' must be a mapping")
    return config


def resolve_stack_file(stack: str, project_dir: Path) -> Path:
    """`dev` -> <project>/Pulumi.dev.yaml; a path to any `Pulumi.<name>.yaml` is taken as is."""
    candidate = Path(stack)
    if candidate.suffix in (".yaml", ".yml") or "/" in stack:
        return candidate
    return project_dir / f"Pulumi.{stack}.yaml"


def stack_name_of(path: Path) -> str:
    name = path.name
    if name.startswith("Pulumi.") and name.count(".") >= 2:
        return name[len("Pulumi.") : name.rindex(".")]
    return path.stem


def load(path: Path, check_catalog: bool = True) -> StackConfig:
    """Read and validate a stack file."""
    return parse(read_stack_file(path), source=str(path), check_catalog=check_catalog)


def from_pulumi_config() -> StackConfig:
    """Inside a Pulumi program: the validated config of the running stack."""
    import pulumi

    raw: dict[str, Any] = {}
    finops_config = pulumi.Config(NAMESPACE)
    for key in FINOPS_KEYS:
        value = finops_config.get(key)
        if value is not None:
            raw[f"{NAMESPACE}:{key}"] = value
    for key in REGION_KEYS.values():
        namespace, name = key.split(":")
        region = pulumi.Config(namespace).get(name)
        if region:
            raw[key] = region
    return parse(raw, source=f"Pulumi.{pulumi.get_stack()}.yaml")
