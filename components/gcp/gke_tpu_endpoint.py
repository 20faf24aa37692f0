"""`finops:gcp:GkeTpuInferenceEndpoint`: an LLM served by vLLM on TPU v5e/v6e nodes of a GKE
Standard cluster, `replicas_min` on demand and the replicas above it on Spot VMs.

Why GKE next to Vertex AI (`finops:gcp:TpuInferenceEndpoint`; docs/components-gcp-azure.md
says more): pulumi-gcp's Model Garden deployment takes no labels, so the Vertex endpoint's
spend is untagged, and Vertex sets Spot per deployment, so it cannot keep the minimum on
demand and burst on Spot. On GKE the cluster's and node pools' `resource_labels` reach the
node VMs and billing, GKE cost allocation adds the Pods' labels, and two node pools split
the replicas: on demand up to the minimum, Spot above it.

What it creates (children named `<name>-<role>`):

- `<name>-nodes-sa` (+ project grants): the nodes' service account, with
  `roles/container.defaultNodeServiceAccount` (logs, metrics) and
  `roles/artifactregistry.reader` (the image) and nothing else;
- `<name>-cluster`: a GKE Standard cluster, zonal (default) or regional, private nodes on the
  given VPC (the stack's `FleetNetwork`: Cloud NAT, Private Google Access), Workload
  Identity, a release channel, Managed Service for Prometheus, cost allocation, the stack's
  labels as `resource_labels`; its default node pool removed;
- `<name>-system`: one small N1 node for kube-system and the metrics pipeline (TPU nodes
  carry GKE's `google.com/tpu` taint: nothing else schedules there);
- `<name>-tpu`: `replicas_min` TPU hosts on demand (`ct5lp-hightpu-4t`...), a fixed size;
- `<name>-tpu-spot`: 0..(`replicas_max` - `replicas_min`) TPU hosts on Spot VMs, grown by the
  cluster autoscaler when the HPA adds Pods that find no room (absent when max == min);
- on the cluster, through a Kubernetes provider made from its endpoint: a Namespace, the
  vLLM Deployment (one Pod per TPU host, all its chips), an internal `LoadBalancer` Service,
  a `PodMonitoring` (Managed Prometheus scrapes `/metrics`) and a HorizontalPodAutoscaler on
  vLLM's queue (`vllm:num_requests_waiting`, through the Custom Metrics Stackdriver Adapter,
  a documented prerequisite).

The serving contract is vLLM's OpenAI-compatible server as GKE's tutorial runs it on TPUs
(cloud.google.com/kubernetes-engine/docs/tutorials/serve-vllm-tpu): `python3 -m
vllm.entrypoints.openai.api_server --model=<model_id> --tensor-parallel-size=<chips>`, HTTP
on 8000, `GET /health`, `POST /v1/completions`, Prometheus metrics on `/metrics`. The image
is the user's mirror of `vllm/vllm-tpu`, pinned by digest.
"""

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Required, TypedDict

import pulumi
import pulumi_gcp as gcp

from aifinops import catalog
from aifinops.catalog.gcp import VERTEX_TPU_MACHINES
from aifinops.components import _args, _hosting
from aifinops.components.gcp import _common, _tpu_serving
from aifinops.config import ServingKind

if TYPE_CHECKING:
    import pulumi_kubernetes as k8s

TYPE_TOKEN = "finops:gcp:GkeTpuInferenceEndpoint"
MAX_REPLICAS = _tpu_serving.MAX_REPLICAS
SERVER_PORT = 8000
HEALTH_ROUTE = "/health"
REQUEST_ROUTE = "/v1/completions"
METRICS_ROUTE = "/metrics"
SERVER_COMMAND = ("python3", "-m", "vllm.entrypoints.openai.api_server")
# vLLM's queue of requests waiting for a batch slot, as the Custom Metrics Stackdriver Adapter
# names a Managed Prometheus gauge (prometheus.googleapis.com|<metric>|<kind>)
QUEUE_METRIC = "prometheus.googleapis.com|vllm:num_requests_waiting|gauge"
NODE_ROLES = ("roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader")
SYSTEM_MACHINE = "n1-standard-2"
RELEASE_CHANNEL = "REGULAR"
SPOT_LABEL = "cloud.google.com/gke-spot"
TPU_RESOURCE = "google.com/tpu"
INTERNAL_LB = {"networking.gke.io/load-balancer-type": "Internal"}
# Secrets never go in plain variables: the Hugging Face token comes from a Kubernetes Secret
_SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# Artifact Registry or Container Registry, pinned by digest: the nodes run exactly the bytes
# that were mirrored and checked, and a tag moved upstream changes nothing
_IMAGE = re.compile(
    r"^(?:[a-z0-9-]+-docker\.pkg\.dev|(?:[a-z]+\.)?gcr\.io)/[a-z0-9._/-]+(?::[\w.-]+)?"
    r"@sha256:[0-9a-f]{64}$"
)
_ZONE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$")
_K8S_NAME = re.compile(r"[^a-z0-9-]+")
COLD_START_NOTE = (
    "a replica above the minimum serves after the cluster autoscaler provisions a Spot TPU "
    "host (minutes, when there is capacity), the image is pulled and vLLM loads and "
    "XLA-compiles the model: typically 10-20 minutes for a 7-8B model on v5e"
)
ADAPTER_NOTE = (
    "the HPA reads vllm:num_requests_waiting through the Custom Metrics Stackdriver Adapter, "
    "which must run on the cluster (docs/components-gcp-azure.md); without it the HPA "
    "cannot read the metric and the endpoint stays at replicas_min"
)


class GkeTpuInferenceEndpointArgs(TypedDict, total=False):
    """Arguments of `finops:gcp:GkeTpuInferenceEndpoint`."""

    model_version: Required[str]
    """The model version served (a label on the cluster, node pools and Pods)."""
    serving: Required[ServingKind]
    """What the container is: `llm` (vLLM's OpenAI-compatible server, the only kind here)."""
    model_id: Required[str]
    """Hugging Face model id vLLM loads (`Qwen/Qwen2.5-7B-Instruct`)."""
    image: Required[str]
    """vLLM TPU image mirrored to Artifact Registry or gcr.io, pinned by digest
    (`us-docker.pkg.dev/<project>/<repo>/vllm-tpu@sha256:<64 hex>`)."""
    zone: Required[str]
    """Zone of the TPU nodes: one that offers the machine type (`us-central1-a` for v5e)."""
    replicas_min: int
    """Replicas (TPU hosts) always running, on demand (default 1, at least 1)."""
    replicas_max: int
    """Most replicas; those above `replicas_min` run on Spot VMs (default `replicas_min`)."""
    accelerator_type: str
    """TPU slice from the catalog (`v5litepod-4`, `v6e-1`...) or its GKE machine type
    (`ct5lp-hightpu-4t`). Or give `accelerator`."""
    accelerator: str
    """TPU generation (`TPU-v5e`, `TPU-v6e`): the cheapest single-host slice with
    `model_memory_gib`."""
    model_memory_gib: float
    """HBM the model needs (weights, KV cache), GiB; picks the slice when by `accelerator`."""
    target_queue_length: int
    """HPA target: mean requests waiting per replica (`vllm:num_requests_waiting`,
    default 10)."""
    max_model_len: int
    """vLLM `--max-model-len`: the longest prompt + output in tokens (default 4096)."""
    environment: dict[str, str]
    """Extra variables of the vLLM container (not the Hugging Face token: see below)."""
    hugging_face_token_secret: str
    """Kubernetes Secret in the endpoint's namespace whose key `token` holds a Hugging Face
    token, for gated models (becomes `HUGGING_FACE_HUB_TOKEN`)."""
    regional: bool
    """A regional control plane (default False: zonal, the free tier's one cluster)."""
    network: str
    """VPC network (self link or id) of the nodes; default the project's `default`."""
    subnetwork: str
    """Subnetwork of the nodes, in the region; give it with `network`."""
    system_machine_type: str
    """N1 machine of the system node (default n1-standard-2)."""
    region: str
    """GCP region; default the zone's."""
    project: str
    """GCP project id; default the stack's `gcp:project`, else the provider's."""
    tags: dict[str, str]
    """Canonical tags; spelled as GCP labels on the cluster, node pools and Pods."""


@dataclass(frozen=True)
class GkeEndpointPlan:
    """The validated arguments: what the endpoint will be."""

    slice: catalog.InstanceInfo
    machine_type: str
    tpu_topology: str
    tpu_accelerator_label: str
    chips_per_host: int
    replicas_min: int
    replicas_max: int
    target_queue_length: int
    max_model_len: int
    model_id: str
    image: str
    environment: dict[str, str]
    hugging_face_token_secret: str | None
    zone: str
    region: str
    regional: bool
    system_machine_type: str

    @property
    def spot_max(self) -> int:
        """TPU hosts the Spot pool may grow to: the replicas above the minimum."""
        return self.replicas_max - self.replicas_min


def _gke_machine(where: str, info: catalog.InstanceInfo) -> tuple[str, str, str]:
    """(GKE machine type, topology, gke-tpu-accelerator label) of a single-host slice."""
    found = catalog.vertex_tpu_machine(info.instance_type)  # the same ct5lp/ct6e hosts
    label = catalog.gke_tpu_accelerator_label(info.accelerator)
    if found is None or label is None:
        served = [catalog.tpu_type_of_machine(m) for m in VERTEX_TPU_MACHINES]
        raise _args.invalid(
            "accelerator_type",
            info.instance_type,
            [*served, "(a single-host v5e or v6e slice: vLLM on GKE serves on one host)"],
            where=where,
        )
    return found[0], found[1], label


def _plain_secret(key: str) -> str | None:
    if key in _SECRET_ENV:
        return (
            "not a token in plain text: give hugging_face_token_secret (a Kubernetes Secret "
            "with key `token`)"
        )
    return None


def plan_gke_endpoint(args: GkeTpuInferenceEndpointArgs, where: str = "") -> GkeEndpointPlan:
    """Validate `args` (ValueError naming the field, the value and what is allowed)."""
    raw: dict[str, Any] = dict(args)
    _args.known_keys(raw, GkeTpuInferenceEndpointArgs.__annotations__, where=where)
    _args.required_str(where, raw, "model_version")
    serving = _args.enum_arg(
        where, "serving", _args.require(raw, "serving", where=where), ServingKind, ServingKind.LLM
    )
    if serving != ServingKind.LLM:
        raise _args.invalid(
            "serving", serving.value, "llm (vLLM's OpenAI-compatible server)", where=where
        )
    model_id = _tpu_serving.model_id(raw, where)
    image = str(_args.require(raw, "image", where=where))
    if not _IMAGE.match(image):
        raise _args.invalid(
            "image",
            image,
            "your mirror of vllm/vllm-tpu in Artifact Registry or gcr.io, pinned by digest "
            "(<region>-docker.pkg.dev/<project>/<repo>/vllm-tpu@sha256:<64 hex>)",
            where=where,
        )
    zone = str(_args.require(raw, "zone", where=where))
    if not _ZONE.match(zone):
        raise _args.invalid("zone", zone, "a GCP zone such as us-central1-a", where=where)
    region = str(raw.get("region") or zone.rsplit("-", 1)[0])
    if not zone.startswith(f"{region}-"):
        raise _args.invalid("zone", zone, f"a zone of region {region}", where=where)
    info = _tpu_serving.tpu_slice(raw, where, region, spot=False)
    machine_type, topology, label = _gke_machine(where, info)
    _tpu_serving.check_memory_fits(raw, where, info)
    replicas_min, replicas_max = _tpu_serving.replica_bounds(raw, where)
    environment = _tpu_serving.environment(raw, where, _plain_secret)
    secret = raw.get("hugging_face_token_secret") or None
    if secret is not None and not re.match(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", secret):
        raise _args.invalid(
            "hugging_face_token_secret", secret, "a Kubernetes Secret name", where=where
        )
    system_machine = str(raw.get("system_machine_type") or SYSTEM_MACHINE)
    if system_machine not in catalog.cpu_machine_types():
        # (a region without the machine's price in the catalog shows UNKNOWN in the preview)
        raise _args.invalid(
            "system_machine_type", system_machine, catalog.cpu_machine_types(), where=where
        )
    return GkeEndpointPlan(
        slice=info,
        machine_type=machine_type,
        tpu_topology=topology,
        tpu_accelerator_label=label,
        chips_per_host=int(info.accelerator_count),
        replicas_min=replicas_min,
        replicas_max=replicas_max,
        target_queue_length=_args.int_arg(where, raw, "target_queue_length", 10, 1, 10_000),
        max_model_len=_args.int_arg(where, raw, "max_model_len", 4096, 16, 1_048_576),
        model_id=model_id,
        image=image,
        environment=environment,
        hugging_face_token_secret=secret,
        zone=zone,
        region=region,
        regional=bool(raw.get("regional")),
        system_machine_type=system_machine,
    )


def k8s_name(name: str) -> str:
    """A DNS-1123 label from a component name (Namespace, Deployment, Service)."""
    cleaned = _K8S_NAME.sub("-", name.lower()).strip("-")[:63].rstrip("-")
    return cleaned if cleaned[:1].isalpha() else f"e-{cleaned}"[:63].rstrip("-")


def pod_labels(labels: dict[str, str], app: str) -> dict[str, str]:
    """The stack's GCP labels as Kubernetes labels (values begin and end alphanumeric, as
    Kubernetes wants and GCP does not), plus `app`. GKE cost allocation bills by these."""
    found = {key: value.strip("-_") for key, value in labels.items()}
    return {**{k: v for k, v in found.items() if v}, "app": app}


def server_args(plan: GkeEndpointPlan) -> list[str]:
    """vLLM's command-line arguments for `plan` (one Pod drives every chip of its host)."""
    return [
        "--host=0.0.0.0",
        f"--port={SERVER_PORT}",
        f"--model={plan.model_id}",
        f"--tensor-parallel-size={plan.chips_per_host}",
        f"--max-model-len={plan.max_model_len}",
        "--download-dir=/data",
    ]


def _kubeconfig(cluster: gcp.container.Cluster) -> pulumi.Output[str]:
    """A kubeconfig for the cluster that authenticates with `gke-gcloud-auth-plugin` (the
    credentials of whoever runs `pulumi up`; nothing is stored in the state)."""

    def render(values: list[Any]) -> str:
        name, endpoint, auth = values
        ca = (
            auth.get("cluster_ca_certificate")
            if isinstance(auth, dict)
            else getattr(auth, "cluster_ca_certificate", None)
        )
        return "\n".join(
            [
                "apiVersion: v1",
                "kind: Config",
                "clusters:",
                f"- name: {name}",
                "  cluster:",
                f"    certificate-authority-data: {ca}",
                f"    server: https://{endpoint}",
                "contexts:",
                f"- name: {name}",
                "  context:",
                f"    cluster: {name}",
                f"    user: {name}",
                f"current-context: {name}",
                "users:",
                f"- name: {name}",
                "  user:",
                "    exec:",
                "      apiVersion: client.authentication.k8s.io/v1beta1",
                "      command: gke-gcloud-auth-plugin",
                "      provideClusterInfo: true",
                "      installHint: gcloud components install gke-gcloud-auth-plugin",
                "",
            ]
        )

    return pulumi.Output.all(cluster.name, cluster.endpoint, cluster.master_auth).apply(render)


def _node_config(
    account: gcp.serviceaccount.Account, labels: dict[str, str], machine_type: str, spot: bool
) -> gcp.container.NodePoolNodeConfigArgs:
    """The nodes of one pool: `account`, Workload Identity's metadata server, `labels`; Spot
    nodes tainted."""
    taints = (
        [
            # GKE labels Spot nodes but does not taint them: the taint keeps
            # everything but the serving Pods off capacity that may vanish
            gcp.container.NodePoolNodeConfigTaintArgs(
                key=SPOT_LABEL, value="true", effect="NO_SCHEDULE"
            )
        ]
        if spot
        else None
    )
    return gcp.container.NodePoolNodeConfigArgs(
        machine_type=machine_type,
        spot=spot,
        service_account=account.email,
        oauth_scopes=[_common.CLOUD_PLATFORM_SCOPE],  # IAM roles decide, not scopes
        workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
            mode="GKE_METADATA"
        ),
        resource_labels=labels,
        taints=taints,
    )


class GcpGkeTpuInferenceEndpoint(pulumi.ComponentResource):
    """vLLM on TPU v5e/v6e nodes of a GKE cluster: `replicas_min` on demand, Spot above it,
    scaled by an HPA on vLLM's queue, behind an internal load balancer."""

    cluster_name: pulumi.Output[str]
    """The GKE cluster's name."""
    request_url: pulumi.Output[str]
    """`http://<internal LB address>:8000/v1/completions`, reachable from the VPC."""
    machine_type: pulumi.Output[str]
    """The GKE machine type of every TPU host (`ct5lp-hightpu-4t`)."""
    accelerator_type: pulumi.Output[str]
    """The catalog's TPU slice of every TPU host (`v5litepod-4`)."""
    namespace: pulumi.Output[str]
    """Kubernetes namespace of the Deployment, Service and HPA."""

    def __init__(
        self,
        name: str,
        args: GkeTpuInferenceEndpointArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        where = f"{TYPE_TOKEN} {name!r}"
        plan = plan_gke_endpoint(args, where)
        super().__init__(_hosting.type_token(type(self), TYPE_TOKEN), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = _common.project_of(args.get("project"))
        labels = _common.labels(args.get("tags"), args["model_version"])
        pulumi.log.info(f"GkeTpuInferenceEndpoint {name}: {COLD_START_NOTE}", resource=self)
        pulumi.log.info(f"GkeTpuInferenceEndpoint {name}: {ADAPTER_NOTE}", resource=self)

        nodes_account = _common.service_account(
            TYPE_TOKEN, f"{name}-nodes", "nodes", project, self, project_roles=NODE_ROLES
        )
        cluster = self._cluster(name, plan, args, project, labels, child)

        def node_pool(
            role: str, machine_type: str, spot: bool, **size: Any
        ) -> gcp.container.NodePool:
            """A node pool of `machine_type` in the plan's zone; `size`: its node count or
            autoscaling."""
            return gcp.container.NodePool(
                _common.child_name(name, role, 40),
                cluster=cluster.name,
                location=cluster.location,
                project=project,
                node_locations=[plan.zone],
                node_config=_node_config(nodes_account, labels, machine_type, spot),
                management=gcp.container.NodePoolManagementArgs(
                    auto_repair=True, auto_upgrade=True
                ),
                opts=child,
                **size,
            )

        node_pool("system", plan.system_machine_type, spot=False, node_count=1)
        pools = [node_pool("tpu", plan.machine_type, spot=False, node_count=plan.replicas_min)]
        if plan.spot_max > 0:
            pools.append(
                node_pool(
                    "tpu-spot",
                    plan.machine_type,
                    spot=True,
                    initial_node_count=0,
                    autoscaling=gcp.container.NodePoolAutoscalingArgs(
                        min_node_count=0, max_node_count=plan.spot_max
                    ),
                )
            )

        # imported here, not at the top: every GCP program imports this package, and only
        # a stack with a GKE endpoint should pay for the Kubernetes SDK (python -X importtime:
        # about 0.2 s; tests/components/gcp/test_gcp_gke_tpu_endpoint.py holds it)
        import pulumi_kubernetes as k8s

        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=_kubeconfig(cluster),
            opts=pulumi.ResourceOptions(parent=self, depends_on=pools),
        )
        self._workload(name, plan, labels, provider)
        self.cluster_name = cluster.name
        self.machine_type = pulumi.Output.from_input(plan.machine_type)
        self.accelerator_type = pulumi.Output.from_input(plan.slice.instance_type)
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "requestUrl": self.request_url,
                "machineType": self.machine_type,
                "acceleratorType": self.accelerator_type,
                "namespace": self.namespace,
            }
        )

    def _cluster(
        self,
        name: str,
        plan: GkeEndpointPlan,
        args: GkeTpuInferenceEndpointArgs,
        project: pulumi.Input[str],
        labels: dict[str, str],
        child: pulumi.ResourceOptions,
    ) -> gcp.container.Cluster:
        network = args.get("network")
        subnetwork = args.get("subnetwork")
        return gcp.container.Cluster(
            _common.child_name(name, "cluster", 40),
            project=project,
            location=plan.region if plan.regional else plan.zone,
            node_locations=[plan.zone] if plan.regional else None,
            description=f"{TYPE_TOKEN} {name}: vLLM on {plan.machine_type}",
            # node pools of their own: the default pool would be one more untainted VM
            remove_default_node_pool=True,
            initial_node_count=1,
            network=network,
            subnetwork=subnetwork,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(),
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                # no external IPs on nodes: egress through the network's Cloud NAT, Google
                # APIs through Private Google Access; the control plane keeps its endpoint
                enable_private_nodes=True,
                enable_private_endpoint=False,
            ),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=pulumi.Output.concat(project, ".svc.id.goog"),
            ),
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=RELEASE_CHANNEL),
            # GKE cost allocation: the Pods' labels in the billing export
            cost_management_config=gcp.container.ClusterCostManagementConfigArgs(enabled=True),
            monitoring_config=gcp.container.ClusterMonitoringConfigArgs(
                enable_components=["SYSTEM_COMPONENTS"],
                managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(
                    enabled=True
                ),
            ),
            resource_labels=labels,
            opts=child,
        )

    def _workload(
        self,
        name: str,
        plan: GkeEndpointPlan,
        labels: dict[str, str],
        provider: "k8s.Provider",
    ) -> None:
        import pulumi_kubernetes as k8s

        on_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        app = k8s_name(name)
        meta = k8s.meta.v1
        core = k8s.core.v1
        namespace = core.Namespace(
            f"{name}-namespace",
            metadata=meta.ObjectMetaArgs(name=app, labels=pod_labels(labels, app)),
            opts=on_cluster,
        )
        self.namespace = namespace.metadata.apply(lambda m: (m.name if m else None) or app)
        object_meta = meta.ObjectMetaArgs(
            name=app, namespace=self.namespace, labels=pod_labels(labels, app)
        )
        env = [
            core.EnvVarArgs(name="HF_HOME", value="/data"),
            core.EnvVarArgs(name="VLLM_XLA_CACHE_PATH", value="/data/xla"),
            *[core.EnvVarArgs(name=k, value=v) for k, v in plan.environment.items()],
        ]
        if plan.hugging_face_token_secret:
            env.append(
                core.EnvVarArgs(
                    name="HUGGING_FACE_HUB_TOKEN",
                    value_from=core.EnvVarSourceArgs(
                        secret_key_ref=core.SecretKeySelectorArgs(
                            name=plan.hugging_face_token_secret, key="token"
                        )
                    ),
                )
            )
        health = core.HTTPGetActionArgs(path=HEALTH_ROUTE, port=SERVER_PORT)
        container = core.ContainerArgs(
            name="vllm",
            image=plan.image,
            command=list(SERVER_COMMAND),
            args=server_args(plan),
            env=env,
            ports=[core.ContainerPortArgs(container_port=SERVER_PORT, name="http")],
            resources=core.ResourceRequirementsArgs(
                requests={TPU_RESOURCE: str(plan.chips_per_host)},
                limits={TPU_RESOURCE: str(plan.chips_per_host)},
            ),
            # model download + XLA compilation: up to 30 minutes before the first /health
            startup_probe=core.ProbeArgs(http_get=health, period_seconds=10, failure_threshold=180),
            readiness_probe=core.ProbeArgs(http_get=health, period_seconds=10, failure_threshold=3),
            liveness_probe=core.ProbeArgs(http_get=health, period_seconds=30, failure_threshold=3),
            volume_mounts=[core.VolumeMountArgs(name="data", mount_path="/data")],
        )
        prefer_on_demand = core.AffinityArgs(
            node_affinity=core.NodeAffinityArgs(
                preferred_during_scheduling_ignored_during_execution=[
                    core.PreferredSchedulingTermArgs(
                        weight=100,
                        preference=core.NodeSelectorTermArgs(
                            match_expressions=[
                                core.NodeSelectorRequirementArgs(
                                    key=SPOT_LABEL, operator="DoesNotExist"
                                )
                            ]
                        ),
                    )
                ]
            )
        )
        k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata=object_meta,
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # no `replicas`: the HPA owns the count (a declared one would reset it to
                # the minimum on every `pulumi up`); it starts at 1 and the HPA raises it
                selector=meta.LabelSelectorArgs(match_labels={"app": app}),
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=pod_labels(labels, app)),
                    spec=core.PodSpecArgs(
                        containers=[container],
                        # the server calls no Kubernetes or Google API: no token mounted, and
                        # no Workload Identity binding for its service account
                        automount_service_account_token=False,
                        node_selector={
                            "cloud.google.com/gke-tpu-accelerator": plan.tpu_accelerator_label,
                            "cloud.google.com/gke-tpu-topology": plan.tpu_topology,
                        },
                        affinity=prefer_on_demand,
                        tolerations=[
                            core.TolerationArgs(
                                key=TPU_RESOURCE, operator="Exists", effect="NoSchedule"
                            ),
                            core.TolerationArgs(
                                key=SPOT_LABEL,
                                operator="Equal",
                                value="true",
                                effect="NoSchedule",
                            ),
                        ],
                        # Spot VMs get 30 s notice: stop taking requests, finish what runs
                        termination_grace_period_seconds=25,
                        volumes=[
                            core.VolumeArgs(name="data", empty_dir=core.EmptyDirVolumeSourceArgs())
                        ],
                    ),
                ),
            ),
            # the first rollout waits for the model to load (see the startup probe)
            opts=pulumi.ResourceOptions.merge(
                on_cluster, pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts("40m"))
            ),
        )
        service = core.Service(
            f"{name}-service",
            metadata=meta.ObjectMetaArgs(
                name=app,
                namespace=self.namespace,
                labels=pod_labels(labels, app),
                annotations=dict(INTERNAL_LB),
            ),
            spec=core.ServiceSpecArgs(
                type="LoadBalancer",
                selector={"app": app},
                ports=[
                    core.ServicePortArgs(
                        name="http", port=SERVER_PORT, target_port=SERVER_PORT, protocol="TCP"
                    )
                ],
            ),
            opts=on_cluster,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-scrape",
            api_version="monitoring.googleapis.com/v1",
            kind="PodMonitoring",
            metadata=meta.ObjectMetaArgs(name=app, namespace=self.namespace),
            spec={
                "selector": {"matchLabels": {"app": app}},
                "endpoints": [{"port": SERVER_PORT, "path": METRICS_ROUTE, "interval": "15s"}],
            },
            opts=on_cluster,
        )
        autoscaling = k8s.autoscaling.v2
        autoscaling.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=meta.ObjectMetaArgs(name=app, namespace=self.namespace),
            spec=autoscaling.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=autoscaling.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=app
                ),
                min_replicas=plan.replicas_min,
                max_replicas=plan.replicas_max,
                metrics=[
                    autoscaling.MetricSpecArgs(
                        type="Pods",
                        pods=autoscaling.PodsMetricSourceArgs(
                            metric=autoscaling.MetricIdentifierArgs(name=QUEUE_METRIC),
                            target=autoscaling.MetricTargetArgs(
                                type="AverageValue",
                                average_value=str(plan.target_queue_length),
                            ),
                        ),
                    )
                ],
            ),
            opts=on_cluster,
        )

        def lb_address(status: "k8s.core.v1.outputs.ServiceStatus | None") -> str:
            ingress = (
                status.load_balancer.ingress if status and status.load_balancer else None
            ) or []
            return (ingress[0].ip if ingress else None) or "<internal LB address>"

        self.request_url = pulumi.Output.concat(
            "http://",
            service.status.apply(lb_address),
            f":{SERVER_PORT}{REQUEST_ROUTE}",
        )
