"""`finops:gcp:TpuBatchInference`: batch inference on Cloud TPU VMs (v5e, v6e, v5p).

No endpoint: for serving requests use `finops:gcp:GkeTpuInferenceEndpoint` (vLLM on GKE) or
`finops:gcp:TpuInferenceEndpoint` (Vertex AI). TPU
v5e/v6e slices run many models for less than the GPU that fits them; the catalog prices
both, so a stack can compare. What it creates (children named `<name>-<role>`):

- `<name>-sa`: the VMs' service account with `roles/monitoring.metricWriter` and
  `roles/logging.logWriter` on the project, and `roles/storage.objectViewer` on the model's
  bucket when `model_data_url` is a `gs://` URL (that bucket only).
- `<name>-0` ... `<name>-<replicas_min - 1>`: `gcp.tpu.V2Vm`s of `accelerator_type` (e.g.
  `v5litepod-4`: 4 v5e chips on one host) with the runtime version for the TPU generation
  (v5e `v2-alpha-tpuv5-lite`, v6e `v2-alpha-tpuv6e`, v5p `v2-alpha-tpuv5`; the TPU software
  versions page lists them), no external IP, labels and the service account.

Replicas: TPU VMs have no managed autoscaling (no instance group); `replicas_min` VMs are
created and `replicas_max` is recorded in the description for whoever scales by hand.

Spot (`spot=True`) cuts the chip-hour price by about 60 %. A preempted Spot TPU VM cannot be
restarted, only deleted and created again; unless `recreate_preempted=False`, the
`<name>-recreate` controller (components/gcp/tpu_recreate.py) does that every minute, under
the same node ids.

The finops GPU agent is not installed: it reads NVML, and a TPU VM has no NVIDIA GPU.
"""

from typing import Required, TypedDict
from urllib.parse import urlparse

import pulumi
import pulumi_gcp as gcp

from aifinops.components import _args, _hosting
from aifinops.components.gcp import _common, _tpu_serving, tpu_recreate

RUNTIME_VERSIONS = _tpu_serving.RUNTIME_VERSIONS
# Zones that offer each TPU generation in the catalog's regions (Cloud TPU regions and zones
# page, at the catalog's snapshot). Pass `zone` for any other.
TPU_ZONES = {
    ("TPU-v5e", "us-central1"): "us-central1-a",
    ("TPU-v5e", "europe-west4"): "europe-west4-b",
    ("TPU-v6e", "us-east1"): "us-east1-d",
    ("TPU-v6e", "europe-west4"): "europe-west4-a",
    # the zones of the catalog's other v6e regions (SkyPilot catalog v7 gcp/vms.csv, the rows
    # the prices come from; finops/catalog/data/SOURCES.md)
    ("TPU-v6e", "asia-northeast1"): "asia-northeast1-b",
    ("TPU-v6e", "asia-south1"): "asia-south1-b",
    ("TPU-v6e", "asia-southeast1"): "asia-southeast1-b",
    ("TPU-v6e", "us-central1"): "us-central1-b",
    ("TPU-v6e", "us-east4"): "us-east4-a",
    ("TPU-v6e", "us-east5"): "us-east5-a",
    ("TPU-v6e", "us-south1"): "us-south1-a",
    ("TPU-v6e", "us-west1"): "us-west1-c",
    ("TPU-v5p", "us-east5"): "us-east5-a",
    ("TPU-v5p", "europe-west4"): "europe-west4-b",
}
MAX_REPLICAS = 100


class TpuBatchInferenceArgs(TypedDict, total=False):
    """Arguments of `finops:gcp:TpuBatchInference`."""

    model_version: Required[str]
    """The model version served; written as the `model-version` label."""
    replicas_min: Required[int]
    """TPU VMs created (TPU VMs have no managed autoscaling)."""
    replicas_max: int
    """Upper bound for manual or controller scaling; default `replicas_min`."""
    accelerator_type: str
    """TPU accelerator type from the catalog: `v5litepod-1`, `v5litepod-4`, `v5litepod-8`,
    `v6e-1`, `v6e-4`, `v6e-8`, `v5p-8`. Or give `accelerator`."""
    accelerator: str
    """TPU generation (`TPU-v5e`, `TPU-v6e`, `TPU-v5p`): the cheapest slice in the region with
    at least `model_memory_gib` of HBM is used."""
    model_memory_gib: float
    """HBM the model needs (weights, KV cache, activations), GiB; picks the slice size when
    choosing by `accelerator`. Default: the smallest slice."""
    spot: bool
    """Spot TPU VMs (about 60 % cheaper, preemptible); default False."""
    region: str
    """GCP region; default the stack's `gcp:region`, else us-central1."""
    zone: str
    """Zone of the TPU VMs; default a zone known to offer the generation in `region`."""
    project: str
    """GCP project id; default the stack's `gcp:project`, else the provider's."""
    runtime_version: str
    """TPU software version; default the generation's (`v2-alpha-tpuv5-lite` for v5e)."""
    network: str
    """VPC network; default `default`."""
    subnetwork: str
    """Subnetwork in `region`; default the network's auto subnet."""
    image: str
    """Serving container image the VMs run at boot (`docker run` with host networking and the
    TPU devices); none: the VMs boot idle for your own deployment."""
    model_data_url: str
    """Where the model artefacts are (`gs://bucket/path`); passed to the container as
    `MODEL_DATA_URL` and granted read access when on GCS."""
    tags: dict[str, str]
    """Extra canonical tags (Project, Team, Environment...), written as GCP labels."""
    recreate_preempted: bool
    """With `spot`: deploy the controller that recreates preempted VMs (default True)."""


_COMPONENT = "finops:gcp:TpuBatchInference"


def _serving_script(image: str, model_data_url: str | None) -> str:
    env = f" -e MODEL_DATA_URL='{model_data_url}'" if model_data_url else ""
    return (
        "#!/bin/bash\n"
        "# finops TpuBatchInference: run the serving container on the TPU host\n"
        "set -euo pipefail\n"
        "docker rm -f finops-serving >/dev/null 2>&1 || true\n"
        "docker run -d --name finops-serving --restart unless-stopped --privileged "
        f"--net host{env} '{image}'\n"
    )


class GcpTpuBatchInference(pulumi.ComponentResource):
    """Model serving on Cloud TPU VMs (v5e/v6e/v5p), spot optional, with a least-privilege
    service account and labels."""

    accelerator_type: pulumi.Output[str]
    """The TPU accelerator type of every VM (`v5litepod-4`)."""
    zone: pulumi.Output[str]
    """Zone of the TPU VMs."""
    vm_names: pulumi.Output[list[str]]
    """Names of the TPU VMs."""
    service_account_email: pulumi.Output[str]
    """E-mail of the VMs' service account."""

    def __init__(
        self,
        name: str,
        args: TpuBatchInferenceArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        where = f"{_COMPONENT} {name!r}"
        model_version = _args.required_str(where, args, "model_version")
        replicas_min = _args.required_int(where, args, "replicas_min", 0, MAX_REPLICAS)
        replicas_max = _args.int_arg(
            where, args, "replicas_max", replicas_min, replicas_min, MAX_REPLICAS
        )
        spot = bool(args.get("spot"))
        region = _common.region_of(args.get("region"))
        info = _tpu_serving.pick_slice(
            where,
            region,
            args.get("accelerator_type"),
            args.get("accelerator"),
            _tpu_serving.model_memory(args, where),
            spot,
        )
        zone = args.get("zone") or TPU_ZONES.get((info.accelerator, region))
        if not zone:
            raise ValueError(
                f"{where}: no known {info.accelerator} zone in {region}; pass zone "
                "(gcloud compute tpus locations list)"
            )
        if not zone.startswith(f"{region}-"):
            raise ValueError(f"{where}: zone {zone!r} is not in region {region!r}")
        runtime_version = args.get("runtime_version") or RUNTIME_VERSIONS.get(info.accelerator)
        if not runtime_version:
            raise ValueError(
                f"{where}: no default runtime version for {info.accelerator}; pass runtime_version"
            )
        model_data_url = args.get("model_data_url")
        model_bucket = None
        if model_data_url:
            parsed = urlparse(model_data_url)
            if parsed.scheme == "gs":
                model_bucket = parsed.netloc
            elif parsed.scheme not in ("https", "http"):
                raise ValueError(
                    f"{where}: model_data_url {model_data_url!r} must be a gs:// or https:// URL"
                )
        image = args.get("image")
        for field, value in (("image", image), ("model_data_url", model_data_url)):
            if value and "'" in value:
                raise ValueError(f"{where}: {field} {value!r} must not contain quotes")

        super().__init__(_hosting.type_token(type(self), _COMPONENT), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = _common.project_of(args.get("project"))
        labels = _common.labels(args.get("tags"), model_version)
        account = _common.service_account(
            where,
            name,
            "serve",
            project,
            self,
            project_roles=("roles/monitoring.metricWriter", "roles/logging.logWriter"),
        )
        if model_bucket:
            gcp.storage.BucketIAMMember(
                f"{name}-model-read",
                bucket=model_bucket,
                role="roles/storage.objectViewer",
                member=_common.member(account),
                opts=child,
            )
        # the VMs and the recreate controller's node spec: one network, so a recreated node
        # lands where the component put it
        network = args.get("network") or "default"
        subnetwork = args.get("subnetwork")
        metadata = {"finops-replicas-max": str(replicas_max)}
        if image:
            metadata["startup-script"] = _serving_script(image, model_data_url)
        vms = [
            gcp.tpu.V2Vm(
                _common.child_name(name, str(index)),
                zone=zone,
                project=project,
                accelerator_type=info.instance_type,
                runtime_version=runtime_version,
                description=(
                    f"{name} replica {index + 1}/{replicas_min} (max {replicas_max}), "
                    f"{'spot' if spot else 'on-demand'}"
                ),
                scheduling_config=gcp.tpu.V2VmSchedulingConfigArgs(spot=spot),
                service_account=gcp.tpu.V2VmServiceAccountArgs(
                    email=account.email, scopes=[_common.CLOUD_PLATFORM_SCOPE]
                ),
                network_config=gcp.tpu.V2VmNetworkConfigArgs(
                    network=network,
                    subnetwork=subnetwork,
                    enable_external_ips=False,
                ),
                metadata=metadata,
                labels=labels,
                opts=child,
            )
            for index in range(replicas_min)
        ]

        if spot and args.get("recreate_preempted", True) and vms:
            description = f"{name} batch inference, recreated after preemption"
            tpu_recreate.recreate_controller(
                name,
                parent=self,
                project=project,
                region=region,
                zone=zone,
                labels=labels,
                node_ids=[vm.name for vm in vms],
                node_spec=tpu_recreate.node_spec(
                    accelerator_type=info.instance_type,
                    runtime_version=runtime_version,
                    description=description,
                    spot=True,
                    account_email=account.email,
                    scopes=[_common.CLOUD_PLATFORM_SCOPE],
                    network=network,
                    subnetwork=subnetwork,
                    metadata=metadata,
                    labels=vms[0].labels.apply(lambda found: dict(found or {})),
                ),
                vm_account=account,
            )
        self.accelerator_type = pulumi.Output.from_input(info.instance_type)
        self.zone = pulumi.Output.from_input(zone)
        self.vm_names = pulumi.Output.all(*[vm.name for vm in vms]).apply(list)
        self.service_account_email = account.email
        self.register_outputs(
            {
                "accelerator_type": self.accelerator_type,
                "zone": self.zone,
                "vm_names": self.vm_names,
                "service_account_email": self.service_account_email,
            }
        )
