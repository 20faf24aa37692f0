"""`finops:gcp:ServerlessInferenceEndpoint`: model serving on Cloud Run, scaling to zero,
optionally with one NVIDIA L4 GPU per instance.

What it creates (children named `<name>-<role>`):

- `<name>-sa`: the service's own service account (`roles/monitoring.metricWriter` on the
  project), with `roles/storage.objectViewer` on the model's bucket when `model_data_url` is
  a `gs://` URL (that bucket only).
- `<name>-service`: a `gcp.cloudrunv2.Service` with `replicas_min` (default 0: scale to zero)
  to `replicas_max` instances, `max_concurrency` requests per instance, the stack's labels on
  the service and its revisions, and no public invoker (callers need `roles/run.invoker`).

CPU only (the default): request-based billing (`cpu_idle`), per vCPU-second, GiB-second and
request while requests run; a cold start takes seconds. With `accelerator: L4`: at least 4 vCPU
and 16 GiB, instance-based billing (Cloud Run requires it for GPUs) from start until the
instance scales in after up to 15 idle minutes; the GPU is ready about 5 s after start, then
the model loads. GPU zonal redundancy is off by default (cheaper; an instance may not start
during a zonal outage); `gpu_zonal_redundancy=True` turns it on. Cloud Run offers no other
GPU for services in the regions the catalog prices (`aifinops.serving.CLOUD_RUN_GPUS`).
"""

from typing import Required, TypedDict
from urllib.parse import urlparse

import pulumi
import pulumi_gcp as gcp

from aifinops import serving
from aifinops.components import _args, _hosting
from aifinops.components.gcp import _common
from aifinops.errors import CatalogError

_COMPONENT = "finops:gcp:ServerlessInferenceEndpoint"
DEFAULT_CPU = 1
DEFAULT_MEMORY_MB = 2048
DEFAULT_CONCURRENCY = 80  # Cloud Run's default for 1 vCPU or more
DEFAULT_GPU_CONCURRENCY = 4  # a GPU serves a few batched requests, not 80
DEFAULT_MAX_INSTANCES = 3


class ServerlessInferenceEndpointArgs(TypedDict, total=False):
    """Arguments of `finops:gcp:ServerlessInferenceEndpoint`."""

    model_version: Required[str]
    """The model version served; written as the `model-version` label."""
    image: Required[str]
    """Serving container image (Artifact Registry, `REGION-docker.pkg.dev/...`)."""
    accelerator: str | None
    """`L4` for one NVIDIA L4 per instance; default none (CPU only)."""
    cpu: int
    """vCPU per instance: 1, 2, 4, 6 or 8 (default 1; with a GPU at least 4, default 4)."""
    memory_mb: int
    """Memory per instance, MB: 512 to 32768 (default 2048; with a GPU at least 16384)."""
    replicas_min: int
    """Instances kept up (default 0: scale to zero; each costs all month)."""
    replicas_max: int
    """Most instances (default 3, at most 1000)."""
    max_concurrency: int
    """Requests one instance serves at once, 1-1000 (default 80; 4 with a GPU)."""
    gpu_zonal_redundancy: bool
    """Reserve GPU capacity in other zones for failover (dearer per second); default False."""
    model_data_url: str | None
    """Where the model is (`gs://bucket/path`): passed as `MODEL_DATA_URL`, readable by the
    service account when on GCS."""
    model_memory_gib: float | None
    """Memory the model needs, GiB: at most the GPU's 24 GiB, or the instance memory."""
    requests_per_month: float | None
    """Stated traffic, requests a month (for the preview's price)."""
    mean_duration_ms: float | None
    """Stated mean duration of a request, milliseconds (for the preview's price)."""
    region: str
    """Cloud Run region; default the stack's `gcp:region`, else us-central1."""
    project: str
    """GCP project id; default the stack's `gcp:project`, else the provider's."""
    tags: dict[str, str]
    """Extra canonical tags (Project, Team, Environment...), written as labels."""


class GcpServerlessInferenceEndpoint(pulumi.ComponentResource):
    """A Cloud Run service that scales to zero, with its own service account."""

    service_name: pulumi.Output[str]
    uri: pulumi.Output[str]
    service_account_email: pulumi.Output[str]
    monthly_usd: pulumi.Output[float]
    """Price for the stated traffic, USD a month (-1 when unknown: no traffic stated or the
    region not priced)."""

    def __init__(
        self,
        name: str,
        args: ServerlessInferenceEndpointArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        where = f"{_COMPONENT} {name!r}"
        raw = dict(args)
        _args.known_keys(raw, ServerlessInferenceEndpointArgs.__annotations__, where=where)
        model_version = _args.required_str(where, raw, "model_version")
        image = _args.required_str(where, raw, "image")
        region = _common.region_of(args.get("region"))
        gpu = None
        accelerator = args.get("accelerator")
        if accelerator:
            gpu = serving.CLOUD_RUN_GPUS.get(accelerator)
            if gpu is None:
                raise _args.invalid("accelerator", accelerator, list(serving.CLOUD_RUN_GPUS),
                                    where=where)  # fmt: skip
            if region not in gpu.regions:
                raise _args.invalid(
                    "region", region, f"Cloud Run offers {accelerator} in {', '.join(gpu.regions)}",
                    where=where,
                )  # fmt: skip
        cpus = serving.CLOUD_RUN_CPUS
        cpu = _args.int_arg(where, raw, "cpu", gpu.min_cpu if gpu else DEFAULT_CPU)
        if cpu not in cpus or (gpu and cpu < gpu.min_cpu):
            allowed = [c for c in cpus if not gpu or c >= gpu.min_cpu]
            raise _args.invalid("cpu", cpu, [str(c) for c in allowed], where=where)
        least_mb = int(gpu.min_memory_gib * 1024) if gpu else 512
        most_mb = int(serving.CLOUD_RUN_MAX_MEMORY_GIB * 1024)
        memory_mb = _args.int_arg(
            where, raw, "memory_mb", least_mb if gpu else DEFAULT_MEMORY_MB, least_mb, most_mb
        )
        replicas_max = _args.int_arg(
            where, raw, "replicas_max", DEFAULT_MAX_INSTANCES, 1, serving.CLOUD_RUN_MAX_INSTANCES
        )
        replicas_min = _args.int_arg(where, raw, "replicas_min", 0, 0, replicas_max)
        concurrency = _args.int_arg(
            where,
            raw,
            "max_concurrency",
            DEFAULT_GPU_CONCURRENCY if gpu else DEFAULT_CONCURRENCY,
            1,
            serving.CLOUD_RUN_MAX_CONCURRENCY,
        )
        memory_gib = memory_mb / 1024
        model_gib = args.get("model_memory_gib")
        if model_gib is not None:
            room = gpu.memory_gib if gpu else memory_gib
            _args.number(
                "model_memory_gib",
                model_gib,
                f"GiB above 0, at most the {room:g} GiB of "
                + (f"the {accelerator}" if gpu else "instance memory (memory_mb)"),
                above=0,
                at_most=room,
                where=where,
            )
        traffic = None
        if args.get("requests_per_month") is not None or args.get("mean_duration_ms") is not None:
            traffic = serving.Traffic(
                _args.number("requests_per_month", args.get("requests_per_month"),
                             "0 or more", at_least=0, where=where),
                _args.number("mean_duration_ms", args.get("mean_duration_ms"),
                             "milliseconds above 0, at most 3600000 (Cloud Run's 60-minute "
                             "request timeout)", above=0, at_most=3_600_000, where=where),
            )  # fmt: skip
        zonal = bool(args.get("gpu_zonal_redundancy", False))
        model_url = args.get("model_data_url") or None

        super().__init__(_hosting.type_token(type(self), _COMPONENT), name, None, opts)
        monthly = -1.0
        if traffic is not None:
            try:
                quote = serving.cloud_run(
                    cpu, memory_gib, traffic, region, gpu=accelerator if gpu else None,
                    min_instances=replicas_min, zonal_redundancy=zonal,
                )  # fmt: skip
                monthly = round(quote.monthly_usd, 2)
                pulumi.log.info(
                    f"ServerlessInferenceEndpoint {name}: ${monthly:,.2f}/month: {quote.basis}; "
                    f"{quote.note}",
                    resource=self,
                )
            except CatalogError as exc:
                pulumi.log.warn(
                    f"ServerlessInferenceEndpoint {name}: price unknown: {exc}", resource=self
                )
        project = _common.project_of(args.get("project"))
        labels = _common.labels(args.get("tags"), model_version)
        account = _common.service_account(_COMPONENT, name, "run", project, self)
        child = pulumi.ResourceOptions(parent=self)
        if model_url and model_url.startswith("gs://"):
            gcp.storage.BucketIAMMember(
                f"{name}-model-reader",
                bucket=urlparse(model_url).netloc,
                role="roles/storage.objectViewer",
                member=_common.member(account),
                opts=child,
            )
        limits = {"cpu": str(cpu), "memory": f"{memory_mb}Mi"}
        if gpu:
            limits["nvidia.com/gpu"] = "1"
        envs = [gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name="MODEL_VERSION",
                                                               value=model_version)]  # fmt: skip
        if model_url:
            envs.append(
                gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(
                    name="MODEL_DATA_URL", value=model_url
                )
            )
        service = gcp.cloudrunv2.Service(
            f"{name}-service",
            location=region,
            project=project,
            labels=labels,
            description=f"finops {_COMPONENT} {name}",
            ingress="INGRESS_TRAFFIC_ALL",
            template=gcp.cloudrunv2.ServiceTemplateArgs(
                labels=labels,
                service_account=account.email,
                max_instance_request_concurrency=concurrency,
                scaling=gcp.cloudrunv2.ServiceTemplateScalingArgs(
                    min_instance_count=replicas_min, max_instance_count=replicas_max
                ),
                node_selector=gcp.cloudrunv2.ServiceTemplateNodeSelectorArgs(
                    accelerator=gpu.accelerator
                )
                if gpu
                else None,
                gpu_zonal_redundancy_disabled=(not zonal) if gpu else None,
                containers=[
                    gcp.cloudrunv2.ServiceTemplateContainerArgs(
                        image=image,
                        envs=envs,
                        resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                            limits=limits,
                            # request-based billing without a GPU; GPUs need instance-based
                            cpu_idle=not gpu,
                            startup_cpu_boost=True,  # shorter cold starts
                        ),
                    )
                ],
            ),
            opts=child,
        )
        self.service_name = service.name
        self.uri = service.uri
        self.service_account_email = account.email
        self.monthly_usd = pulumi.Output.from_input(monthly)
        self.register_outputs(
            {
                "serviceName": self.service_name,
                "uri": self.uri,
                "serviceAccountEmail": self.service_account_email,
                "monthlyUsd": self.monthly_usd,
            }
        )
