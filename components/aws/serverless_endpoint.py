"""`finops:aws:ServerlessInferenceEndpoint`: a SageMaker Serverless Inference endpoint, billed
per request and duration, for low or spiky traffic; least-privilege role as the real-time
endpoint's.

SageMaker serverless runs CPU containers only (no GPU, no Inferentia), with 1024-6144 MB of
memory in 1 GB steps and 1-200 concurrent invocations (botocore's
`ProductionVariantServerlessConfig`). After idle time the first request waits for a cold start
(container start + model load: seconds, up to about a minute for a model of several GB);
provisioned concurrency keeps that many copies warm, at a price per second whether used or not.

The container is a `model-archive` one (docs/components-aws.md, "Serving containers"): the
AWS PyTorch inference container's CPU build loads model.tar.gz and runs its code/inference.py.
`llm` (a TGI server) needs a GPU or Inferentia and is refused here.
"""

from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from aifinops import config as stack_config
from aifinops import serving
from aifinops.components import _args, _hosting
from aifinops.components.aws import _common
from aifinops.components.aws.inference import (
    VARIANT,
    model_archive_environment,
    model_location,
    sagemaker_model,
    serving_image,
    with_given_environment,
)
from aifinops.config import ServingKind, StackConfig
from aifinops.errors import CatalogError

TYPE_TOKEN = "finops:aws:ServerlessInferenceEndpoint"
# The CPU build of the AWS Deep Learning Container that main's model-archive endpoints run on
# GPUs (account 763104351884, aws/deep-learning-containers available_images.md): a serverless
# endpoint has no accelerator, so the GPU/Neuron builds do not start there.
DLC_REPOSITORY = "pytorch-inference"
DLC_TAG = "2.3.0-cpu-py311-ubuntu20.04-sagemaker"
DEFAULT_MAX_CONCURRENCY = 5
COLD_START_NOTE = (
    "serverless: after idle time the first request waits for a cold start (container start + "
    "model load: seconds, up to about a minute for a model of several GB); "
    "provisionedConcurrency keeps copies warm at a price per second"
)


class AwsServerlessInferenceEndpointArgs(TypedDict):
    """Arguments of `finops:aws:ServerlessInferenceEndpoint`."""

    model_version: str
    """`ModelVersion` tag of every resource (the model this endpoint serves)."""
    tags: dict[str, str]
    """The stack's tags, written on every taggable child."""
    model_data_url: str
    """s3:// URL of the model artifact (model.tar.gz with code/inference.py); the execution
    role may read exactly this."""
    serving: NotRequired[ServingKind]
    """What the container is: only `model-archive` (the default) runs on serverless CPUs."""
    memory_size_mb: NotRequired[int | None]
    """Memory of each copy, MB: 1024, 2048, 3072, 4096, 5120 or 6144 (default: the smallest
    that holds `model_memory_gib`, else 2048)."""
    max_concurrency: NotRequired[int]
    """Most concurrent invocations, 1-200 (default 5)."""
    provisioned_concurrency: NotRequired[int | None]
    """Copies kept warm, 1 to `max_concurrency` (default none: every copy cold-starts)."""
    model_memory_gib: NotRequired[float | None]
    """Memory the model needs, GiB (picks `memory_size_mb`, must fit in it)."""
    requests_per_month: NotRequired[float | None]
    """Stated traffic, requests a month (for the preview's price)."""
    mean_duration_ms: NotRequired[float | None]
    """Stated mean duration of a request, milliseconds (for the preview's price)."""
    image: NotRequired[str | None]
    """ECR image URI of a CPU serving container (default: the AWS Deep Learning Container
    `pytorch-inference`, CPU build `DLC_TAG`, the one the real-time endpoints run on GPUs)."""
    region: NotRequired[str | None]
    """AWS region (default: the provider's)."""
    environment: NotRequired[dict[str, str] | None]
    """Environment variables of the serving container."""


@dataclass(frozen=True)
class ServerlessPlan:
    memory_size_mb: int
    max_concurrency: int
    provisioned_concurrency: int | None
    model_bucket: str
    model_key: str
    image: str | None
    environment: dict[str, str]
    region: str | None
    catalog_region: str
    traffic: serving.Traffic | None


def plan_serverless(args: AwsServerlessInferenceEndpointArgs) -> ServerlessPlan:
    """Validate `args` against the service's limits (ValueError naming the field, the value
    and what is allowed)."""
    raw: dict[str, Any] = dict(args)
    _args.known_keys(raw, AwsServerlessInferenceEndpointArgs.__annotations__)
    _args.require(raw, "model_version")
    _common.check_tags(raw.get("tags"), workload=True)
    kind = _args.enum_arg("", "serving", raw.get("serving"), ServingKind, ServingKind.MODEL_ARCHIVE)
    if kind != ServingKind.MODEL_ARCHIVE:
        raise _args.invalid(
            "serving",
            kind.value,
            "allowed: model-archive (a TGI llm server needs a GPU or Inferentia, which "
            "SageMaker Serverless Inference has not; use a real-time endpoint)",
        )
    match = model_location(str(_args.require(raw, "model_data_url")))
    image = serving_image(raw)
    sizes = serving.SAGEMAKER_MEMORY_SIZES_MB
    model_gib = None
    if raw.get("model_memory_gib") is not None:
        model_gib = _args.number(
            "model_memory_gib",
            raw["model_memory_gib"],
            f"GiB above 0, at most {sizes[-1] / 1024:g} (SageMaker serverless memory); larger "
            "models need a real-time endpoint",
            above=0,
            at_most=sizes[-1] / 1024,
        )
    memory = raw.get("memory_size_mb")
    if memory is None:
        memory = max(2048, serving.sagemaker_serverless_memory_mb(model_gib) or sizes[-1])
    elif isinstance(memory, bool) or memory not in sizes:
        raise _args.invalid("memory_size_mb", memory, [str(s) for s in sizes])
    memory = int(memory)
    if model_gib is not None and model_gib * 1024 > memory:
        raise _args.invalid(
            "memory_size_mb",
            memory,
            f"at least the model's {model_gib:g} GiB: "
            f"{serving.sagemaker_serverless_memory_mb(model_gib)}",
        )
    most = serving.SAGEMAKER_MAX_CONCURRENCY
    concurrency = _args.int_arg("", raw, "max_concurrency", DEFAULT_MAX_CONCURRENCY, 1, most)
    provisioned = raw.get("provisioned_concurrency")
    if provisioned is not None:
        provisioned = _args.whole_number("provisioned_concurrency", provisioned, 1, concurrency)
    traffic = None
    if raw.get("requests_per_month") is not None or raw.get("mean_duration_ms") is not None:
        traffic = serving.Traffic(
            _args.number(
                "requests_per_month", raw.get("requests_per_month"), "0 or more", at_least=0
            ),
            _args.number(
                "mean_duration_ms",
                raw.get("mean_duration_ms"),
                "milliseconds above 0, at most 60000 (SageMaker serverless invocation limit)",
                above=0,
                at_most=60_000,
            ),
        )
    region = raw.get("region") or None
    where = _common.catalog_region(region)
    environment = with_given_environment(
        model_archive_environment(where), raw.get("environment") or {}, ServingKind.MODEL_ARCHIVE
    )
    return ServerlessPlan(
        memory_size_mb=memory,
        max_concurrency=concurrency,
        provisioned_concurrency=provisioned,
        model_bucket=match["bucket"],
        model_key=match["key"],
        image=image,
        environment=environment,
        region=region,
        catalog_region=where,
        traffic=traffic,
    )


class AwsServerlessInferenceEndpoint(pulumi.ComponentResource):
    """A SageMaker model, a serverless endpoint configuration and its endpoint."""

    endpoint_name: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    memory_size_mb: pulumi.Output[int]
    monthly_usd: pulumi.Output[float]
    """Price for the stated traffic, USD a month (-1 when no traffic is stated or the region
    or provisioned concurrency is not priced: unknown, not free)."""

    def __init__(
        self,
        name: str,
        args: AwsServerlessInferenceEndpointArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        _common.check_name(name)
        plan = plan_serverless(args)
        super().__init__(_hosting.type_token(type(self), TYPE_TOKEN), name, None, opts)
        tags = _common.resource_tags(args["tags"], args["model_version"])
        child = pulumi.ResourceOptions(parent=self)
        pulumi.log.info(f"ServerlessInferenceEndpoint {name}: {COLD_START_NOTE}", resource=self)
        monthly = -1.0
        if plan.traffic is not None:
            try:
                quote = serving.sagemaker_serverless(
                    plan.memory_size_mb,
                    plan.traffic,
                    plan.catalog_region,
                    plan.provisioned_concurrency or 0,
                )
                monthly = round(quote.monthly_usd, 2)
                pulumi.log.info(
                    f"ServerlessInferenceEndpoint {name}: ${monthly:,.2f}/month: {quote.basis}",
                    resource=self,
                )
            except CatalogError as exc:
                pulumi.log.warn(
                    f"ServerlessInferenceEndpoint {name}: price unknown: {exc}", resource=self
                )

        model, role = sagemaker_model(
            self,
            name,
            image=plan.image,
            dlc_repository=DLC_REPOSITORY,
            dlc_tag=DLC_TAG,
            region=plan.region,
            model_data_url=args["model_data_url"],
            environment=plan.environment,
            network_isolation=True,
            location=plan,
            description=f"finops serverless inference endpoint {name}: image, model, logs",
            tags=tags,
        )
        config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            aws.sagemaker.EndpointConfigurationArgs(
                production_variants=[
                    aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                        variant_name=VARIANT,
                        model_name=model.name,
                        serverless_config=aws.sagemaker.EndpointConfigurationProductionVariantServerlessConfigArgs(
                            memory_size_in_mb=plan.memory_size_mb,
                            max_concurrency=plan.max_concurrency,
                            provisioned_concurrency=plan.provisioned_concurrency,
                        ),
                    )
                ],
                region=plan.region,
                tags=tags,
            ),
            opts=child,
        )
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            aws.sagemaker.EndpointArgs(
                endpoint_config_name=config.name, region=plan.region, tags=tags
            ),
            opts=child,
        )
        self.endpoint_name = endpoint.name
        self.execution_role_arn = role.arn
        self.memory_size_mb = pulumi.Output.from_input(plan.memory_size_mb)
        self.monthly_usd = pulumi.Output.from_input(monthly)
        self.register_outputs(
            {
                "endpointName": self.endpoint_name,
                "executionRoleArn": self.execution_role_arn,
                "memorySizeMb": self.memory_size_mb,
                "monthlyUsd": self.monthly_usd,
            }
        )


def from_config(
    endpoint: stack_config.InferenceEndpoint, config: StackConfig
) -> AwsServerlessInferenceEndpointArgs:
    """Arguments for one `finops:inferenceEndpoints` entry with `hosting: serverless` (aws)."""
    if not endpoint.model_data_url:
        raise ValueError(
            f"inferenceEndpoints {endpoint.name}: modelDataUrl is required on AWS "
            "(s3://<bucket>/<key> of the model artifact)"
        )
    args: AwsServerlessInferenceEndpointArgs = {
        "model_version": endpoint.model_version,
        "tags": config.tags.as_dict(),
        "model_data_url": endpoint.model_data_url,
        "serving": endpoint.serving or ServingKind.MODEL_ARCHIVE,
        "region": config.region(endpoint.cloud, endpoint.region),
        "requests_per_month": endpoint.requests_per_month,
        "mean_duration_ms": endpoint.mean_duration_ms,
    }
    if endpoint.memory_mb:
        args["memory_size_mb"] = endpoint.memory_mb
    if endpoint.max_concurrency:
        args["max_concurrency"] = endpoint.max_concurrency
    if endpoint.provisioned_concurrency:
        args["provisioned_concurrency"] = endpoint.provisioned_concurrency
    if endpoint.model_memory_gib:
        args["model_memory_gib"] = endpoint.model_memory_gib
    if endpoint.image:
        args["image"] = endpoint.image
    if endpoint.env:
        args["environment"] = {k: str(v) for k, v in endpoint.env.items()}
    return args
