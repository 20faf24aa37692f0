"""`finops:aws:InferenceEndpoint`: a SageMaker real-time endpoint on Inferentia by default,
auto-scaled on invocations per instance, able to scale to zero, least-privilege role."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, Protocol, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from aifinops import catalog
from aifinops import config as stack_config
from aifinops.components import _args, _hosting
from aifinops.components.aws import _common
from aifinops.config import HOURS_PER_MONTH, ServingKind, StackConfig
from aifinops.errors import CatalogError

TYPE_TOKEN = "finops:aws:InferenceEndpoint"
DEFAULT_INSTANCE_TYPE = "ml.inf2.xlarge"
VARIANT = "primary"
# AWS Deep Learning Containers (account 763104351884), by serving kind and chip: what each
# expects is in docs/components-aws.md ("Serving containers"). Tags from
# aws/deep-learning-containers available_images.md and the Neuron DLC release notes.
DLC_IMAGES: dict[tuple[ServingKind, str], tuple[str, str]] = {
    (ServingKind.LLM, "neuron"): (
        "huggingface-pytorch-tgi-inference",
        "2.1.2-optimum0.0.28-neuronx-py310-ubuntu22.04",
    ),
    (ServingKind.LLM, "gpu"): (
        "huggingface-pytorch-tgi-inference",
        "2.4.0-tgi3.0.1-gpu-py311-cu124-ubuntu22.04",
    ),
    (ServingKind.MODEL_ARCHIVE, "neuron"): (
        "pytorch-inference-neuronx",
        "2.1.2-neuronx-py310-sdk2.20.2-ubuntu20.04",
    ),
    (ServingKind.MODEL_ARCHIVE, "gpu"): (
        "pytorch-inference",
        "2.3.0-gpu-py311-cu121-ubuntu20.04-sagemaker",
    ),
}
# NeuronCores per chip of the chips the neuronx DLCs run on (Inferentia1 needs other images)
NEURON_CORES_PER_CHIP = {"Inferentia2": 2, "Trainium1": 2}
# Where SageMaker unpacks model_data_url in the container, and where the inference toolkit
# finds the handler (`model_fn`, `predict_fn`...) packed in the archive's code/ folder.
MODEL_DIR = "/opt/ml/model"
LLM_DEFAULT_LIMITS = {
    # optimum-neuron's TGI entry point reads these (tgi_entry_point.py); the values are the
    # ones Hugging Face's SageMaker examples use on Inferentia2
    "MAX_BATCH_SIZE": "4",
    "MAX_INPUT_TOKENS": "3686",
    "MAX_TOTAL_TOKENS": "4096",
}
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+?)(?::[\w.-]+|@sha256:[0-9a-f]{64})$"
)
_S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9.-]{3,63})/(?P<key>.+)$")
SCALE_IN_COOLDOWN_SECONDS = 300
SCALE_OUT_COOLDOWN_SECONDS = 60
COLD_START_NOTE = (
    "scale to zero: with no copy running, the first request fails "
    "(NoCapacityInvocationFailures) and starts an instance; the endpoint serves again after "
    "instance launch + image pull + model load, typically 5-15 minutes on ml.inf2/ml.g5 for "
    "a 7-13B model. Clients must retry; not for latency-bound traffic."
)


class AwsInferenceEndpointArgs(TypedDict):
    """Arguments of `finops:aws:InferenceEndpoint`."""

    model_version: str
    """`ModelVersion` tag of every resource (the model this endpoint serves)."""
    tags: dict[str, str]
    """The stack's tags, written on every taggable child."""
    serving: ServingKind
    """llm: a Hugging Face TGI server (give `model_id`, or `model_data_url` with the weights);
    model-archive: a PyTorch inference container that loads `model_data_url` (model.tar.gz
    with the weights and code/inference.py)."""
    model_data_url: NotRequired[str | None]
    """s3:// URL of the model artifact (a .tar.gz, or a prefix ending in "/" for uncompressed
    models); the execution role may read exactly this. Required for model-archive."""
    model_id: NotRequired[str | None]
    """llm: the Hugging Face model id the server loads (HF_MODEL_ID); it downloads the
    weights at start, so the container gets network access."""
    image: NotRequired[str | None]
    """ECR image URI of the serving container (default: the AWS Deep Learning Container for
    `serving` and the instance's chip, Neuron builds on Inferentia)."""
    instance_type: NotRequired[str | None]
    """SageMaker hosting type from the catalog, "ml.*" (default ml.inf2.xlarge)."""
    accelerator: NotRequired[str | None]
    """Accelerator model instead of `instance_type`: the catalog's cheapest SageMaker type."""
    replicas_min: NotRequired[int]
    """Fewest instances (default 1); 0 scales to zero through an inference component."""
    replicas_max: NotRequired[int]
    """Most instances (default 1, at most 100)."""
    target_invocations_per_instance: NotRequired[int]
    """Target-tracking goal, invocations per instance per minute (default 100)."""
    model_memory_gib: NotRequired[float | None]
    """Accelerator memory the model needs, GiB (for the cheaper-Inferentia advice and the
    inference component's memory reservation)."""
    hours_per_month: NotRequired[float]
    """Hours a month the endpoint runs, for the monthly figures (default 730)."""
    region: NotRequired[str | None]
    """AWS region (default: the provider's)."""
    environment: NotRequired[dict[str, str] | None]
    """Environment variables of the serving container, over the ones `serving` needs."""
    network_isolation: NotRequired[bool]
    """Run the container without network access (default: true when SageMaker fetches the
    model itself, false for an llm that downloads `model_id`; true with one is refused)."""


@dataclass(frozen=True)
class EndpointPlan:
    instance: catalog.InstanceInfo
    replicas_min: int
    replicas_max: int
    target_invocations: int
    model_memory_gib: float | None
    hours_per_month: float
    region: str | None
    catalog_region: str
    model_bucket: str | None
    model_key: str | None
    image: str | None
    network_isolation: bool
    serving: ServingKind
    environment: dict[str, str]

    @property
    def model_data_url(self) -> str | None:
        return f"s3://{self.model_bucket}/{self.model_key}" if self.model_bucket else None

    @property
    def scales_to_zero(self) -> bool:
        return self.replicas_min == 0


def _sagemaker_types(region: str) -> list[str]:
    return [
        name
        for name in catalog.instance_types(cloud="aws", service="sagemaker")
        if region in catalog.regions(name)
    ]


def resolve_instance(
    instance_type: str | None, accelerator: str | None, region: str
) -> catalog.InstanceInfo:
    """The catalog row of the endpoint's instance type (ValueError naming the field)."""
    if instance_type and accelerator:
        raise _args.invalid(
            "instance_type/accelerator",
            {"instance_type": instance_type, "accelerator": accelerator},
            "give one of instance_type or accelerator",
        )
    if accelerator:
        try:
            model = catalog.accelerator(accelerator).model
        except CatalogError:
            known = sorted(
                {catalog.lookup(t, region).accelerator for t in _sagemaker_types(region)}
            )
            raise _args.invalid("accelerator", accelerator, known) from None
        rows = catalog.cheapest(model, 1, cloud="aws", region=region, service="sagemaker")
        if not rows:
            raise _args.invalid(
                "accelerator", accelerator, f"no SageMaker hosting type with {model} in {region}"
            )
        return rows[0]
    name = instance_type or DEFAULT_INSTANCE_TYPE
    if not name.startswith("ml."):
        raise _args.invalid(
            "instance_type", name, f"a SageMaker type such as ml.{name} (catalog ml.* types)"
        )
    try:
        info = catalog.lookup(name, region, cloud="aws")
    except CatalogError:
        raise _args.invalid("instance_type", name, _sagemaker_types(region)) from None
    if info.service != "sagemaker":
        raise _args.invalid("instance_type", name, _sagemaker_types(region))
    return info


def model_location(url: str) -> re.Match[str]:
    """`model_data_url` split into `bucket` and `key` (ValueError unless s3://<bucket>/<key>)."""
    match = _S3_URL.match(url)
    if not match:
        raise _args.invalid("model_data_url", url, "allowed: s3://<bucket>/<key>")
    return match


def serving_image(raw: Mapping[str, Any]) -> str | None:
    """The `image` argument: None, or an ECR image URI (ValueError otherwise)."""
    image = raw.get("image") or None
    if image and not _ECR_IMAGE.match(image):
        raise _args.invalid(
            "image",
            image,
            "allowed: an ECR image URI <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>",
        )
    return image


def plan_endpoint(args: AwsInferenceEndpointArgs) -> EndpointPlan:
    """Validate `args` (ValueError naming the field, the value and what is allowed)."""
    raw: dict[str, Any] = dict(args)
    _args.known_keys(raw, AwsInferenceEndpointArgs.__annotations__)
    _args.require(raw, "model_version")
    _common.check_tags(raw.get("tags"), workload=True)
    serving = _args.enum_arg(
        "", "serving", _args.require(raw, "serving"), ServingKind, ServingKind.MODEL_ARCHIVE
    )
    url = raw.get("model_data_url") or None
    match = model_location(str(url)) if url else None
    model_id = raw.get("model_id") or None
    if serving == ServingKind.MODEL_ARCHIVE and not url:
        raise _args.invalid(
            "model_data_url",
            url,
            "required with serving model-archive: s3://<bucket>/<key> of model.tar.gz "
            "(weights and code/inference.py)",
        )
    if serving == ServingKind.LLM and not (model_id or url):
        raise _args.invalid(
            "model_id",
            model_id,
            "required with serving llm unless model_data_url holds the weights",
        )
    if model_id and serving != ServingKind.LLM:
        raise _args.invalid("model_id", model_id, "only with serving llm")
    image = serving_image(raw)
    region = raw.get("region") or None
    where = _common.catalog_region(region)
    instance = resolve_instance(raw.get("instance_type"), raw.get("accelerator"), where)
    replicas_max = _args.int_arg("", raw, "replicas_max", 1, 1, 100)
    replicas_min = _args.int_arg("", raw, "replicas_min", 1, 0, replicas_max)
    target = _args.int_arg("", raw, "target_invocations_per_instance", 100, 1)
    memory = None
    if raw.get("model_memory_gib") is not None:
        memory = _args.number(
            "model_memory_gib",
            raw["model_memory_gib"],
            f"GiB above 0, at most the {instance.node_accelerator_memory_gib:g} GiB of "
            f"accelerator memory of {instance.instance_type} (or pick a larger instance_type)",
            above=0,
            at_most=instance.node_accelerator_memory_gib,
        )
    hours = _args.number(
        "hours_per_month",
        raw.get("hours_per_month", HOURS_PER_MONTH),
        "hours in (0, 744]",
        above=0,
        at_most=744,
    )
    downloads = serving == ServingKind.LLM and model_id is not None and not url
    isolated = raw.get("network_isolation")
    if isolated and downloads:
        raise _args.invalid(
            "network_isolation",
            isolated,
            f"false: the server downloads {model_id} from the Hugging Face Hub at start "
            "(or give model_data_url with the weights)",
        )
    environment = container_environment(
        serving, instance, model_id, bool(url), raw.get("environment") or {}, region or where
    )
    return EndpointPlan(
        instance=instance,
        replicas_min=replicas_min,
        replicas_max=replicas_max,
        target_invocations=target,
        model_memory_gib=memory,
        hours_per_month=hours,
        region=region,
        catalog_region=where,
        model_bucket=match["bucket"] if match else None,
        model_key=match["key"] if match else None,
        image=image,
        network_isolation=not downloads if isolated is None else bool(isolated),
        serving=serving,
        environment=environment,
    )


def chip_family(instance: catalog.InstanceInfo) -> str:
    """Which DLC build runs on `instance`: "neuron" on Inferentia and Trainium, else "gpu"."""
    return "neuron" if instance.accelerator in NEURON_CORES_PER_CHIP else "gpu"


def model_archive_environment(region: str) -> dict[str, str]:
    """What the sagemaker-pytorch-inference toolkit needs to run code/inference.py of the
    unpacked model archive (any chip; Neuron adds one worker per NeuronCore)."""
    return {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": f"{MODEL_DIR}/code",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": region,
    }


def container_environment(
    serving: ServingKind,
    instance: catalog.InstanceInfo,
    model_id: str | None,
    has_model_data: bool,
    given: dict[str, str],
    region: str,
) -> dict[str, str]:
    """What the serving container needs (docs/components-aws.md, "Serving containers"), with
    `given` on top. ValueError when `given` removes what the container cannot start without.

    - llm (TGI): HF_MODEL_ID (the model id, or /opt/ml/model for weights in the archive);
      SM_NUM_GPUS on GPUs (tensor parallelism over all of them); on Neuron HF_NUM_CORES (all
      NeuronCores), HF_AUTO_CAST_TYPE and the batch/token limits optimum-neuron compiles for.
    - model-archive (sagemaker-pytorch-inference toolkit): SAGEMAKER_PROGRAM and
      SAGEMAKER_SUBMIT_DIRECTORY point at code/inference.py in the unpacked archive; on
      Neuron one model-server worker per NeuronCore (each worker loads the model onto one).
    """
    environment: dict[str, str] = {}
    family = chip_family(instance)
    cores = int(instance.accelerator_count) * NEURON_CORES_PER_CHIP.get(instance.accelerator, 0)
    if serving == ServingKind.LLM:
        environment["HF_MODEL_ID"] = model_id if model_id and not has_model_data else MODEL_DIR
        if family == "neuron":
            environment |= {"HF_NUM_CORES": str(cores), "HF_AUTO_CAST_TYPE": "bf16"}
            environment |= LLM_DEFAULT_LIMITS
        else:
            environment["SM_NUM_GPUS"] = str(int(instance.accelerator_count))
    else:
        environment |= model_archive_environment(region)
        if family == "neuron":
            environment["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(cores)
    return with_given_environment(environment, given, serving)


def with_given_environment(
    environment: dict[str, str], given: Mapping[str, Any], serving: ServingKind
) -> dict[str, str]:
    """`environment` with `given` on top (values as strings). ValueError when `given` blanks
    what the `serving` container cannot start without (HF_MODEL_ID, SAGEMAKER_PROGRAM)."""
    required = ["HF_MODEL_ID"] if serving == ServingKind.LLM else ["SAGEMAKER_PROGRAM"]
    for key, value in given.items():
        if key in required and not str(value).strip():
            raise _args.invalid(
                f"environment.{key}", value, f"the {serving.value} container needs it"
            )
        environment[str(key)] = str(value)
    return environment


def cheaper_inferentia_option(
    instance_type: str,
    region: str | None,
    model_memory_gib: float | None,
    hours: float = HOURS_PER_MONTH,
) -> dict[str, Any] | None:
    """The cheapest SageMaker Inferentia type with enough accelerator memory, when
    `instance_type` is a GPU type and that Inferentia type costs less; else None.

    Enough memory: `model_memory_gib` when known, else all the GPU type's accelerator memory.
    Prices are on-demand USD; monthly figures are per instance for `hours` hours.
    """
    current = catalog.lookup(instance_type, region)
    if current.service != "sagemaker" or current.accelerator_info.kind != "gpu":
        return None
    need = model_memory_gib or current.node_accelerator_memory_gib
    candidates = [
        row
        for chip in catalog.accelerators()
        if chip.kind == "inferentia"
        for row in catalog.cheapest(
            chip.model, 1, cloud="aws", region=current.region, service="sagemaker"
        )
        if row.node_accelerator_memory_gib >= need
        and row.on_demand_usd_per_hour < current.on_demand_usd_per_hour
    ]
    if not candidates:
        return None
    best = min(candidates, key=lambda r: (r.on_demand_usd_per_hour, r.instance_type))
    current_monthly = current.on_demand_usd_per_hour * hours
    best_monthly = best.on_demand_usd_per_hour * hours
    return {
        "instance_type": best.instance_type,
        "current_instance_type": current.instance_type,
        "region": current.region,
        "accelerator_memory_gib": best.node_accelerator_memory_gib,
        "needed_memory_gib": need,
        "monthly_usd": round(best_monthly, 2),
        "current_monthly_usd": round(current_monthly, 2),
        "monthly_savings_usd": round(current_monthly - best_monthly, 2),
        "hours_per_month": hours,
        "note": "Inferentia runs models compiled with the Neuron SDK (optimum-neuron)",
    }


class ModelLocation(Protocol):
    """Where a model artifact lies (an endpoint plan, serverless or not); None: no artifact."""

    @property
    def model_bucket(self) -> str | None: ...

    @property
    def model_key(self) -> str | None: ...


def execution_role_statements(
    plan: ModelLocation,
    repository_arn: pulumi.Input[str],
    logs_arn: pulumi.Input[str],
    partition: str = "aws",
) -> list[dict[str, Any]]:
    """The endpoint's execution role: pull its image, read its model, write its logs."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "PullServingImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": repository_arn,
        },
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",  # no resource-level permissions
        },
        {
            "Sid": "EndpointLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": logs_arn,
        },
    ]
    if plan.model_bucket is None or plan.model_key is None:
        return statements  # an llm that downloads its model: nothing to read in S3
    key = plan.model_key
    bucket_arn = f"arn:{partition}:s3:::{plan.model_bucket}"
    model_resource = f"{bucket_arn}/{key}" + ("*" if key.endswith("/") else "")
    statements.insert(
        2,
        {
            "Sid": "ReadModel",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": model_resource,
        },
    )
    if key.endswith("/"):
        statements.append(
            {
                "Sid": "ListModelPrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [f"{key}*"]}},
            }
        )
    return statements


class AwsInferenceEndpoint(pulumi.ComponentResource):
    """A SageMaker endpoint (model, endpoint configuration, endpoint) with Application Auto
    Scaling on invocations per instance; replicas_min 0 scales to zero."""

    endpoint_name: pulumi.Output[str]
    instance_type: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    cheaper_instance_type: pulumi.Output[str]
    """Cheaper Inferentia type with enough accelerator memory ("" when none)."""
    cheaper_monthly_savings_usd: pulumi.Output[float]
    """Monthly saving per instance of `cheaper_instance_type`, USD (0 when none)."""

    def __init__(
        self,
        name: str,
        args: AwsInferenceEndpointArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        _common.check_name(name)
        plan = plan_endpoint(args)
        super().__init__(_hosting.type_token(type(self), TYPE_TOKEN), name, None, opts)
        tags = _common.resource_tags(args["tags"], args["model_version"])
        child = pulumi.ResourceOptions(parent=self)
        region = plan.region
        self.cheaper_option = cheaper_inferentia_option(
            plan.instance.instance_type,
            plan.catalog_region,
            plan.model_memory_gib,
            plan.hours_per_month,
        )
        if self.cheaper_option:
            option = self.cheaper_option
            pulumi.log.info(
                f"InferenceEndpoint {name}: {option['instance_type']} "
                f"({option['accelerator_memory_gib']:g} GiB Inferentia) would cost "
                f"${option['monthly_usd']:,.2f}/month per instance instead of "
                f"${option['current_monthly_usd']:,.2f} for {option['current_instance_type']}: "
                f"${option['monthly_savings_usd']:,.2f} less ({option['note']})",
                resource=self,
            )
        if plan.scales_to_zero:
            pulumi.log.info(f"InferenceEndpoint {name}: {COLD_START_NOTE}", resource=self)

        repository, tag = (
            DLC_IMAGES[(plan.serving, chip_family(plan.instance))] if not plan.image else ("", "")
        )
        model, role = sagemaker_model(
            self,
            name,
            image=plan.image,
            dlc_repository=repository,
            dlc_tag=tag,
            region=region,
            model_data_url=plan.model_data_url,
            environment=plan.environment,
            # SageMaker fetches the image and model_data_url itself; the container needs
            # no network, unless an llm downloads its model from the Hub at start
            network_isolation=plan.network_isolation,
            location=plan,
            description=f"finops inference endpoint {name}: image, model, logs",
            tags=tags,
        )
        variant = aws.sagemaker.EndpointConfigurationProductionVariantArgs(
            variant_name=VARIANT,
            instance_type=plan.instance.instance_type,
            initial_instance_count=max(1, plan.replicas_min),
            # scale to zero: the endpoint holds no model; its inference component does
            model_name=None if plan.scales_to_zero else model.name,
            initial_variant_weight=None if plan.scales_to_zero else 1.0,
            managed_instance_scaling=aws.sagemaker.EndpointConfigurationProductionVariantManagedInstanceScalingArgs(
                status="ENABLED", min_instance_count=0, max_instance_count=plan.replicas_max
            )
            if plan.scales_to_zero
            else None,
            routing_configs=[
                aws.sagemaker.EndpointConfigurationProductionVariantRoutingConfigArgs(
                    routing_strategy="LEAST_OUTSTANDING_REQUESTS"
                )
            ]
            if plan.scales_to_zero
            else None,
        )
        config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",  # short: SageMaker names stop at 63 characters
            aws.sagemaker.EndpointConfigurationArgs(
                production_variants=[variant],
                # inference components run with the configuration's role
                execution_role_arn=role.arn if plan.scales_to_zero else None,
                region=region,
                tags=tags,
            ),
            opts=child,
        )
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            aws.sagemaker.EndpointArgs(endpoint_config_name=config.name, region=region, tags=tags),
            opts=child,
        )
        if plan.scales_to_zero:
            self._inference_component(name, plan, tags, endpoint, model, region)
        else:
            self._variant_scaling(name, plan, tags, endpoint, region)

        self.endpoint_name = endpoint.name
        self.instance_type = pulumi.Output.from_input(plan.instance.instance_type)
        self.execution_role_arn = role.arn
        self.cheaper_instance_type = pulumi.Output.from_input(
            self.cheaper_option["instance_type"] if self.cheaper_option else ""
        )
        self.cheaper_monthly_savings_usd = pulumi.Output.from_input(
            float(self.cheaper_option["monthly_savings_usd"]) if self.cheaper_option else 0.0
        )
        self.register_outputs(
            {
                "endpointName": self.endpoint_name,
                "instanceType": self.instance_type,
                "executionRoleArn": self.execution_role_arn,
                "cheaperInstanceType": self.cheaper_instance_type,
                "cheaperMonthlySavingsUsd": self.cheaper_monthly_savings_usd,
            }
        )

    def _variant_scaling(
        self,
        name: str,
        plan: EndpointPlan,
        tags: dict[str, str],
        endpoint: aws.sagemaker.Endpoint,
        region: str | None,
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            aws.appautoscaling.TargetArgs(
                service_namespace="sagemaker",
                scalable_dimension="sagemaker:variant:DesiredInstanceCount",
                resource_id=pulumi.Output.concat("endpoint/", endpoint.name, f"/variant/{VARIANT}"),
                min_capacity=plan.replicas_min,
                max_capacity=plan.replicas_max,
                region=region,
                tags=tags,
            ),
            opts=child,
        )
        _invocations_policy(
            name, target, plan, "SageMakerVariantInvocationsPerInstance", region, child
        )

    def _inference_component(
        self,
        name: str,
        plan: EndpointPlan,
        tags: dict[str, str],
        endpoint: aws.sagemaker.Endpoint,
        model: aws.sagemaker.Model,
        region: str | None,
    ) -> None:
        """Scale to zero: one inference component (one copy per instance) on an endpoint with
        managed instance scaling; copies track invocations, a step policy wakes it from zero."""
        child = pulumi.ResourceOptions(parent=self)
        component_name = _common.stack_scoped_name(name)
        memory_gib = plan.model_memory_gib or plan.instance.memory_gib / 2
        component = aws_native.sagemaker.InferenceComponent(
            f"{name}-inference-component",
            aws_native.sagemaker.InferenceComponentArgs(
                inference_component_name=component_name,
                endpoint_name=endpoint.name,
                variant_name=VARIANT,
                specification=aws_native.sagemaker.InferenceComponentSpecificationArgs(
                    model_name=model.name,
                    compute_resource_requirements=aws_native.sagemaker.InferenceComponentComputeResourceRequirementsArgs(
                        min_memory_required_in_mb=int(
                            min(memory_gib, plan.instance.memory_gib / 2) * 1024
                        ),
                        number_of_accelerator_devices_required=max(
                            1.0, plan.instance.accelerator_count
                        ),
                    ),
                ),
                runtime_config=aws_native.sagemaker.InferenceComponentRuntimeConfigArgs(
                    copy_count=1
                ),
                tags=[aws_native.TagArgs(key=k, value=v) for k, v in tags.items()],
            ),
            opts=child,
        )
        resource_id = pulumi.Output.concat("inference-component/", component_name)
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            aws.appautoscaling.TargetArgs(
                service_namespace="sagemaker",
                scalable_dimension="sagemaker:inference-component:DesiredCopyCount",
                resource_id=resource_id,
                min_capacity=0,
                max_capacity=plan.replicas_max,
                region=region,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[component]),
        )
        _invocations_policy(
            name, target, plan, "SageMakerInferenceComponentInvocationsPerCopy", region, child
        )
        wake = aws.appautoscaling.Policy(
            f"{name}-wake-from-zero",
            aws.appautoscaling.PolicyArgs(
                policy_type="StepScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                step_scaling_policy_configuration=aws.appautoscaling.PolicyStepScalingPolicyConfigurationArgs(
                    adjustment_type="ChangeInCapacity",
                    metric_aggregation_type="Maximum",
                    cooldown=SCALE_OUT_COOLDOWN_SECONDS,
                    step_adjustments=[
                        aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                            metric_interval_lower_bound="0", scaling_adjustment=1
                        )
                    ],
                ),
                region=region,
            ),
            opts=child,
        )
        aws.cloudwatch.MetricAlarm(
            f"{name}-no-capacity-alarm",
            aws.cloudwatch.MetricAlarmArgs(
                alarm_description=f"requests to {name} found no copy: start one",
                namespace="AWS/SageMaker",
                metric_name="NoCapacityInvocationFailures",
                dimensions={"InferenceComponentName": component_name},
                statistic="Maximum",
                period=60,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="missing",
                alarm_actions=[wake.arn],
                region=region,
                tags=tags,
            ),
            opts=child,
        )


def from_config(
    endpoint: stack_config.InferenceEndpoint, config: StackConfig
) -> AwsInferenceEndpointArgs:
    """Arguments for one `finops:inferenceEndpoints` entry of a stack (cloud aws; the schema
    has required `serving` and what it needs)."""
    assert endpoint.serving is not None
    if endpoint.replicas is None:
        raise ValueError(f"inferenceEndpoints {endpoint.name}: replicas is required")
    args: AwsInferenceEndpointArgs = {
        "model_version": endpoint.model_version,
        "tags": config.tags.as_dict(),
        "serving": endpoint.serving,
        "replicas_min": endpoint.replicas.min,
        "replicas_max": endpoint.replicas.max,
        "target_invocations_per_instance": endpoint.target_invocations_per_instance,
        "hours_per_month": endpoint.hours_per_month,
        "region": config.region(endpoint.cloud, endpoint.region),
    }
    if endpoint.instance_type:
        args["instance_type"] = endpoint.instance_type
    if endpoint.accelerator:
        args["accelerator"] = endpoint.accelerator
    if endpoint.image:
        args["image"] = endpoint.image
    if endpoint.model_memory_gib:
        args["model_memory_gib"] = endpoint.model_memory_gib
    if endpoint.model_data_url:
        args["model_data_url"] = endpoint.model_data_url
    if endpoint.model_id:
        args["model_id"] = endpoint.model_id
    if endpoint.env:
        args["environment"] = {k: str(v) for k, v in endpoint.env.items()}
    return args


def _invocations_policy(
    name: str,
    target: aws.appautoscaling.Target,
    plan: EndpointPlan,
    metric_type: str,
    region: str | None,
    child: pulumi.ResourceOptions,
) -> aws.appautoscaling.Policy:
    """Target tracking on invocations (per instance, or per inference-component copy)."""
    return aws.appautoscaling.Policy(
        f"{name}-invocations-policy",
        aws.appautoscaling.PolicyArgs(
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=float(plan.target_invocations),
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type=metric_type
                ),
                scale_in_cooldown=SCALE_IN_COOLDOWN_SECONDS,
                scale_out_cooldown=SCALE_OUT_COOLDOWN_SECONDS,
            ),
            region=region,
        ),
        opts=child,
    )


def sagemaker_model(
    parent: pulumi.Resource,
    name: str,
    *,
    image: str | None,
    dlc_repository: str,
    dlc_tag: str,
    region: str | None,
    model_data_url: pulumi.Input[str] | None,
    environment: Mapping[str, str],
    network_isolation: bool,
    location: ModelLocation,
    description: str,
    tags: Mapping[str, str],
) -> tuple[aws.sagemaker.Model, aws.iam.Role]:
    """A SageMaker model and its execution role (`<name>-execution-role`, `-policy`): the
    given ECR image, or the AWS DLC `dlc_repository:dlc_tag` of the region; the role may pull
    exactly that repository, read the model at `location` and write the endpoint's logs
    (`execution_role_statements`). Shared by the provisioned and the serverless endpoint."""
    child = pulumi.ResourceOptions(parent=parent)
    invoke = pulumi.InvokeOptions(parent=parent)
    account = aws.get_caller_identity_output(opts=invoke).account_id
    partition = aws.get_partition_output(opts=invoke).partition
    region_name = (
        pulumi.Output.from_input(region) if region else aws.get_region_output(opts=invoke).region
    )
    if image:
        model_image: pulumi.Input[str] = image
        parts = _ECR_IMAGE.match(image)
        assert parts is not None
        repository_arn: pulumi.Input[str] = pulumi.Output.concat(
            "arn:",
            partition,
            f":ecr:{parts['region']}:{parts['account']}:repository/",
            parts["repo"],
        )
    else:
        prebuilt = aws.sagemaker.get_prebuilt_ecr_image_output(
            repository_name=dlc_repository, image_tag=dlc_tag, region=region, opts=invoke
        )
        model_image = prebuilt.registry_path
        repository_arn = pulumi.Output.concat(
            "arn:", partition, ":ecr:", region_name, ":", prebuilt.registry_id,
            ":repository/", dlc_repository,
        )  # fmt: skip
    logs_arn = pulumi.Output.concat(
        "arn:", partition, ":logs:", region_name, ":", account, ":log-group:/aws/sagemaker/*"
    )
    role = aws.iam.Role(
        f"{name}-execution-role",
        aws.iam.RoleArgs(
            assume_role_policy=_common.assume_role_policy("sagemaker.amazonaws.com"),
            description=description,
            tags=dict(tags),
        ),
        opts=child,
    )
    policy = aws.iam.RolePolicy(
        f"{name}-execution-policy",
        aws.iam.RolePolicyArgs(
            role=role.id,
            policy=partition.apply(
                lambda part: _common.policy_document(
                    execution_role_statements(location, repository_arn, logs_arn, part)
                )
            ),
        ),
        opts=child,
    )
    model = aws.sagemaker.Model(
        f"{name}-model",
        aws.sagemaker.ModelArgs(
            execution_role_arn=role.arn,
            enable_network_isolation=network_isolation,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=model_image,
                model_data_url=model_data_url,
                environment=dict(environment),
            ),
            region=region,
            tags=dict(tags),
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[policy]),
    )
    return model, role
