"""`finops:gcp:TpuInferenceEndpoint`: a Vertex AI online-prediction endpoint on TPU v5e/v6e,
autoscaled between `replicas_min` and `replicas_max` on the TPUs' duty cycle.

The Vertex AI alternative to `finops:gcp:GkeTpuInferenceEndpoint` (gke_tpu_endpoint.py; docs/
components-gcp-azure.md compares them): Vertex gives the URL, the load balancing, the health
checks and the autoscaler as one managed resource, as SageMaker does on AWS, but its spend
carries no labels and Spot applies to every replica or none.

What it creates (children named `<name>-<role>`):

- `<name>-deployment`: a `gcp.vertex.AiEndpointWithModelGardenDeployment` that deploys the
  Hugging Face model `model_id` (serving `llm`) to a new endpoint with dedicated resources:
  `machine_type` `ct5lp-hightpu-4t` (v5e) / `ct6e-standard-4t` (v6e)... with its TPU topology,
  `min_replica_count`/`max_replica_count`, one autoscaling metric spec (accelerator duty
  cycle at `target_duty_cycle_percent`) and `spot`. With `image` the container is yours
  (`container_spec`: image, env, port, predict and health routes); without it Model Garden
  picks its serving container for the model and the TPU.
- `<name>-invoker`: a service account that may call this endpoint and nothing else
  (`roles/aiplatform.user` granted on the endpoint by `<name>-invoke`).

Labels: pulumi-gcp 10.2's Model Garden deployment takes no labels (its `system_labels` are
Google's own); the endpoint shows in billing under Vertex AI's SKUs without the stack's
labels. The invoker account carries the component's name. Said loudly in the docs.
"""

import re
from dataclasses import dataclass
from typing import Any, Required, TypedDict

import pulumi
import pulumi_gcp as gcp

from aifinops import catalog
from aifinops.catalog.gcp import VERTEX_TPU_MACHINES
from aifinops.components import _args, _hosting
from aifinops.components.gcp import _common, _tpu_serving
from aifinops.config import ServingKind

TYPE_TOKEN = "finops:gcp:TpuInferenceEndpoint"
DUTY_CYCLE_METRIC = "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle"
MAX_REPLICAS = _tpu_serving.MAX_REPLICAS
INVOKER_ROLE = "roles/aiplatform.user"
# Artifact Registry, Container Registry: where Vertex AI pulls serving images from
_IMAGE = re.compile(
    r"^(?:[a-z0-9-]+-docker\.pkg\.dev|(?:[a-z]+\.)?gcr\.io)/[a-z0-9._/-]+(?::[\w.-]+|@sha256:[0-9a-f]{64})$"
)
_ROUTE = re.compile(r"^/[\w./-]*$")
COLD_START_NOTE = (
    "a new replica serves after the TPU host is provisioned, the image pulled and the model "
    "loaded (and compiled by XLA): typically 10-20 minutes for a 7-8B model on v5e; the "
    "endpoint keeps replicas_min warm, so only scale-out waits"
)


class TpuInferenceEndpointArgs(TypedDict, total=False):
    """Arguments of `finops:gcp:TpuInferenceEndpoint`."""

    model_version: Required[str]
    """The model version served (the endpoint's display name carries it)."""
    serving: Required[ServingKind]
    """What the container is: `llm` (a text-generation server for a Hugging Face model).
    `model-archive` is an AWS kind: Vertex AI would need a model upload pulumi-gcp lacks."""
    model_id: Required[str]
    """Hugging Face model id the endpoint serves (`google/gemma-2-9b-it`)."""
    replicas_min: int
    """Replicas always running (default 1; Vertex dedicated resources keep at least 1)."""
    replicas_max: int
    """Most replicas the autoscaler adds (default `replicas_min`, at most 100)."""
    accelerator_type: str
    """TPU slice from the catalog (`v5litepod-4`, `v6e-1`...) or its Vertex machine type
    (`ct5lp-hightpu-4t`). Or give `accelerator`."""
    accelerator: str
    """TPU generation (`TPU-v5e`, `TPU-v6e`): the cheapest slice with `model_memory_gib`."""
    model_memory_gib: float
    """HBM the model needs (weights, KV cache), GiB; picks the slice when by `accelerator`."""
    spot: bool
    """Every replica on Spot capacity (default False). Vertex AI sets Spot per deployment,
    not per replica: it cannot keep the minimum on demand and add Spot above it."""
    target_duty_cycle_percent: int
    """Autoscaling target: mean TPU duty cycle, percent 1-100 (default 60, Vertex's own)."""
    image: str
    """Serving container (Artifact Registry or gcr.io URI); default: Model Garden's container
    for `model_id` on TPU."""
    environment: dict[str, str]
    """Container variables (needs `image`; `AIP_*` are Vertex AI's own and refused)."""
    container_port: int
    """Port the container serves on (default 8080; with `image`)."""
    predict_route: str
    """HTTP path of predictions in the container (default `/predict`; with `image`)."""
    health_route: str
    """HTTP path of the health check in the container (default `/health`; with `image`)."""
    region: str
    """GCP region; default the stack's `gcp:region`, else us-central1."""
    project: str
    """GCP project id; default the stack's `gcp:project`, else the provider's."""
    tags: dict[str, str]
    """Canonical tags; the invoker account's description carries them (see Labels above)."""


@dataclass(frozen=True)
class TpuEndpointPlan:
    """The validated arguments: what the endpoint will be."""

    slice: catalog.InstanceInfo
    machine_type: str
    tpu_topology: str
    replicas_min: int
    replicas_max: int
    spot: bool
    target_duty_cycle_percent: int
    model_id: str
    image: str | None
    environment: dict[str, str]
    container_port: int
    predict_route: str
    health_route: str
    region: str


def _vertex_reserved(key: str) -> str | None:
    return (
        "not AIP_*: Vertex AI sets those (port, routes, storage URI)"
        if key.startswith("AIP_")
        else None
    )


def plan_endpoint(args: TpuInferenceEndpointArgs, where: str = "") -> TpuEndpointPlan:
    """Validate `args` (ValueError naming the field, the value and what is allowed)."""
    raw: dict[str, Any] = dict(args)
    _args.known_keys(raw, TpuInferenceEndpointArgs.__annotations__, where=where)
    _args.required_str(where, raw, "model_version")
    serving = _args.enum_arg(
        where, "serving", _args.require(raw, "serving", where=where), ServingKind, ServingKind.LLM
    )
    if serving != ServingKind.LLM:
        raise _args.invalid(
            "serving",
            serving.value,
            "llm (a Vertex AI TPU endpoint serves Hugging Face models; for a model archive "
            "use finops:gcp:TpuBatchInference with your own container)",
            where=where,
        )
    model_id = _tpu_serving.model_id(raw, where)
    region = _common.region_of(raw.get("region"))
    info = _tpu_serving.tpu_slice(raw, where, region, bool(raw.get("spot")))
    vertex_machine = catalog.vertex_tpu_machine(info.instance_type)
    if vertex_machine is None:
        served = [catalog.tpu_type_of_machine(m) for m in VERTEX_TPU_MACHINES]
        raise _args.invalid(
            "accelerator_type",
            info.instance_type,
            [*served, "(v5p does not serve on Vertex AI prediction)"],
            where=where,
        )
    _tpu_serving.check_memory_fits(raw, where, info)
    machine_type, topology = vertex_machine
    replicas_min, replicas_max = _tpu_serving.replica_bounds(raw, where)
    target = _args.int_arg(where, raw, "target_duty_cycle_percent", 60, 1, 100)
    image = raw.get("image") or None
    if image and not _IMAGE.match(str(image)):
        raise _args.invalid(
            "image",
            image,
            "an Artifact Registry or Container Registry URI "
            "(<region>-docker.pkg.dev/<project>/<repo>/<image>:<tag>, gcr.io/...)",
            where=where,
        )
    environment = _tpu_serving.environment(raw, where, _vertex_reserved)
    if environment and not image:
        raise _args.invalid(
            "environment",
            sorted(environment),
            "only with image: Model Garden's own container takes no variables",
            where=where,
        )
    if image:
        environment = {"MODEL_ID": model_id, **environment}
    routes = {}
    for field, default in (("predict_route", "/predict"), ("health_route", "/health")):
        value = str(raw.get(field) or default)
        if not _ROUTE.match(value):
            raise _args.invalid(field, value, "an HTTP path starting with /", where=where)
        routes[field] = value
    port = _args.int_arg(where, raw, "container_port", 8080, 1, 65535)
    return TpuEndpointPlan(
        slice=info,
        machine_type=machine_type,
        tpu_topology=topology,
        replicas_min=replicas_min,
        replicas_max=replicas_max,
        spot=bool(raw.get("spot")),
        target_duty_cycle_percent=target,
        model_id=model_id,
        image=image,
        environment=environment,
        container_port=port,
        predict_route=routes["predict_route"],
        health_route=routes["health_route"],
        region=region,
    )


def _container(plan: TpuEndpointPlan) -> Any:
    vertex = gcp.vertex
    if not plan.image:
        return None
    return vertex.AiEndpointWithModelGardenDeploymentModelConfigContainerSpecArgs(
        image_uri=plan.image,
        envs=[
            vertex.AiEndpointWithModelGardenDeploymentModelConfigContainerSpecEnvArgs(
                name=key, value=value
            )
            for key, value in plan.environment.items()
        ],
        ports=[
            vertex.AiEndpointWithModelGardenDeploymentModelConfigContainerSpecPortArgs(
                container_port=plan.container_port
            )
        ],
        predict_route=plan.predict_route,
        health_route=plan.health_route,
    )


class GcpTpuInferenceEndpoint(pulumi.ComponentResource):
    """A Vertex AI endpoint serving a Hugging Face model on TPU v5e/v6e, autoscaled on the
    TPU duty cycle between `replicas_min` and `replicas_max`, with an invoker account."""

    endpoint_id: pulumi.Output[str]
    """The Vertex AI endpoint's id."""
    predict_url: pulumi.Output[str]
    """`https://<region>-aiplatform.googleapis.com/v1/projects/<project>/locations/<region>/
    endpoints/<id>:predict` (`:rawPredict` for the container's own request body)."""
    machine_type: pulumi.Output[str]
    """The Vertex machine type of every replica (`ct5lp-hightpu-4t`)."""
    accelerator_type: pulumi.Output[str]
    """The catalog's TPU slice of every replica (`v5litepod-4`)."""
    invoker_email: pulumi.Output[str]
    """Service account that may call this endpoint (and nothing else)."""

    def __init__(
        self,
        name: str,
        args: TpuInferenceEndpointArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        where = f"{TYPE_TOKEN} {name!r}"
        plan = plan_endpoint(args, where)
        super().__init__(_hosting.type_token(type(self), TYPE_TOKEN), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = _common.project_of(args.get("project"))
        vertex = gcp.vertex
        pulumi.log.info(f"TpuInferenceEndpoint {name}: {COLD_START_NOTE}", resource=self)
        deployment = vertex.AiEndpointWithModelGardenDeployment(
            f"{name}-deployment",
            location=plan.region,
            project=project,
            hugging_face_model_id=plan.model_id,
            model_config=vertex.AiEndpointWithModelGardenDeploymentModelConfigArgs(
                model_display_name=f"{name}-{args['model_version']}",
                container_spec=_container(plan),
            ),
            endpoint_config=vertex.AiEndpointWithModelGardenDeploymentEndpointConfigArgs(
                endpoint_display_name=f"{name} {args['model_version']}",
                # the shared regional DNS: one documented URL per endpoint
                dedicated_endpoint_enabled=False,
            ),
            deploy_config=vertex.AiEndpointWithModelGardenDeploymentDeployConfigArgs(
                dedicated_resources=vertex.AiEndpointWithModelGardenDeploymentDeployConfigDedicatedResourcesArgs(
                    machine_spec=vertex.AiEndpointWithModelGardenDeploymentDeployConfigDedicatedResourcesMachineSpecArgs(
                        machine_type=plan.machine_type, tpu_topology=plan.tpu_topology
                    ),
                    min_replica_count=plan.replicas_min,
                    max_replica_count=plan.replicas_max,
                    autoscaling_metric_specs=[
                        vertex.AiEndpointWithModelGardenDeploymentDeployConfigDedicatedResourcesAutoscalingMetricSpecArgs(
                            metric_name=DUTY_CYCLE_METRIC, target=plan.target_duty_cycle_percent
                        )
                    ],
                    spot=plan.spot,
                ),
            ),
            opts=child,
        )
        tags = _common.labels(args.get("tags"), args["model_version"])
        invoker = gcp.serviceaccount.Account(
            f"{name}-invoker",
            account_id=_common.account_id(name, "call"),
            display_name=f"finops {TYPE_TOKEN} {name} invoker",
            description=(
                f"{TYPE_TOKEN} {name}: may call this endpoint only; "
                + ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))
            )[:256],
            project=project,
            opts=child,
        )
        vertex.AiEndpointIamMember(
            f"{name}-invoke",
            endpoint=deployment.endpoint,
            location=plan.region,
            project=project,
            role=INVOKER_ROLE,
            member=_common.member(invoker),
            opts=child,
        )
        self.endpoint_id = deployment.endpoint
        self.predict_url = pulumi.Output.concat(
            f"https://{plan.region}-aiplatform.googleapis.com/v1/projects/",
            deployment.project,
            f"/locations/{plan.region}/endpoints/",
            deployment.endpoint,
            ":predict",
        )
        self.machine_type = pulumi.Output.from_input(plan.machine_type)
        self.accelerator_type = pulumi.Output.from_input(plan.slice.instance_type)
        self.invoker_email = invoker.email
        self.register_outputs(
            {
                "endpointId": self.endpoint_id,
                "predictUrl": self.predict_url,
                "machineType": self.machine_type,
                "acceleratorType": self.accelerator_type,
                "invokerEmail": self.invoker_email,
            }
        )
