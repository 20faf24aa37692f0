"""finops:gcp:GkeTpuInferenceEndpoint under the offline engine (whose SDK input-type check runs
on every resource, the Kubernetes ones included): the cluster, the on-demand and Spot TPU node
pools, the vLLM Deployment, its internal Service, HPA and scrape config, the labels of the tag
schema on all of them, the nodes' service account and the serving contract."""

from __future__ import annotations

from typing import Any

import pytest
from gcp_engine import assert_gcp_labels, gcp_labels_of, one, run_components

from aifinops.components.gcp import GkeTpuInferenceEndpoint, GkeTpuInferenceEndpointArgs
from aifinops.components.gcp.gke_tpu_endpoint import QUEUE_METRIC, plan_gke_endpoint
from aifinops.engine import StackRun

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"us-docker.pkg.dev/demo/serving/vllm-tpu@{DIGEST}"
BASE: dict[str, Any] = {
    "model_version": "qwen2-5-7b-v1",
    "serving": "llm",
    "model_id": "Qwen/Qwen2.5-7B-Instruct",
    "image": IMAGE,
    "zone": "us-central1-a",
    "replicas_min": 1,
    "replicas_max": 4,
    "accelerator": "TPU-v5e",
    "model_memory_gib": 40,
    "tags": {"Project": "Vision", "Team": "ML-Platform", "Environment": "dev"},
}
POOL = "gcp:container/nodePool:NodePool"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def endpoint_run(**overrides: Any) -> StackRun:
    args: GkeTpuInferenceEndpointArgs = {**BASE, **overrides}  # type: ignore[typeddict-item]
    args = {k: v for k, v in args.items() if v is not None}  # type: ignore[assignment]
    return run_components(lambda: GkeTpuInferenceEndpoint("serve", args))


@pytest.fixture(scope="module")
def run() -> StackRun:
    return endpoint_run()


def pod_spec(run: StackRun) -> dict[str, Any]:
    return one(run, "serve-server").inputs["spec"]["template"]["spec"]


def test_every_resource_under_the_component(run):
    component = one(run, "serve")
    assert component.type == "finops:gcp:GkeTpuInferenceEndpoint"
    assert all(r.parent == component.urn for r in run.resources if r is not component)
    kinds = sorted(r.type.rsplit(":", 1)[-1] for r in run.custom_resources())
    gcp_kinds = ["Account", "IAMMember", "IAMMember", "Cluster", "NodePool", "NodePool", "NodePool"]
    k8s_kinds = ["kubernetes", "Namespace", "Deployment", "Service", "HorizontalPodAutoscaler"]
    assert kinds == sorted([*gcp_kinds, *k8s_kinds, "PodMonitoring"])


def test_a_zonal_standard_cluster_with_private_nodes_workload_identity_and_cost_allocation(run):
    cluster = one(run, "serve-cluster").inputs
    assert cluster["location"] == "us-central1-a"
    assert cluster["removeDefaultNodePool"] is True
    assert cluster["privateClusterConfig"] == {
        "enablePrivateNodes": True,
        "enablePrivateEndpoint": False,
    }
    assert cluster["networkingMode"] == "VPC_NATIVE"
    assert cluster["workloadIdentityConfig"] == {"workloadPool": "finops-test.svc.id.goog"}
    assert cluster["costManagementConfig"] == {"enabled": True}
    assert cluster["releaseChannel"] == {"channel": "REGULAR"}
    assert cluster["monitoringConfig"]["managedPrometheus"] == {"enabled": True}


def test_a_regional_control_plane_keeps_the_nodes_in_the_zone():
    run = endpoint_run(regional=True)
    cluster = one(run, "serve-cluster").inputs
    assert (cluster["location"], cluster["nodeLocations"]) == ("us-central1", ["us-central1-a"])
    for pool in run.of_type(POOL):
        assert pool.inputs["nodeLocations"] == ["us-central1-a"], pool.name


def test_the_minimum_on_demand_and_the_rest_on_spot(run):
    on_demand = one(run, "serve-tpu").inputs
    assert on_demand["nodeCount"] == 1 and "autoscaling" not in on_demand
    assert on_demand["nodeConfig"]["machineType"] == "ct5lp-hightpu-4t"  # 40 GiB: v5litepod-4
    assert on_demand["nodeConfig"]["spot"] is False
    spot = one(run, "serve-tpu-spot").inputs
    assert spot["autoscaling"] == {"minNodeCount": 0, "maxNodeCount": 3}
    assert spot["initialNodeCount"] == 0
    assert spot["nodeConfig"]["machineType"] == "ct5lp-hightpu-4t"
    assert spot["nodeConfig"]["spot"] is True
    assert spot["nodeConfig"]["taints"] == [
        {"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NO_SCHEDULE"}
    ]
    system = one(run, "serve-system").inputs
    assert (system["nodeCount"], system["nodeConfig"]["machineType"]) == (1, "n1-standard-2")


def test_no_spot_pool_when_the_maximum_is_the_minimum():
    run = endpoint_run(replicas_min=2, replicas_max=2)
    assert sorted(r.name for r in run.of_type(POOL)) == ["serve-system", "serve-tpu"]
    assert one(run, "serve-tpu").inputs["nodeCount"] == 2


def test_the_labels_of_the_tag_schema_on_cluster_pools_and_pods(run):
    assert assert_gcp_labels(run, workload=True) == 4  # the cluster and its three pools
    for name in ("serve-cluster", "serve-tpu", "serve-tpu-spot", "serve-system"):
        assert gcp_labels_of(one(run, name))["model-version"] == "qwen2-5-7b-v1", name
    pods = one(run, "serve-server").inputs["spec"]["template"]["metadata"]["labels"]
    assert pods == {
        "app": "serve",
        "project": "vision",
        "team": "ml-platform",
        "environment": "dev",
        "model-version": "qwen2-5-7b-v1",
    }


def test_the_nodes_account_has_the_node_roles_and_nothing_else(run):
    grants = sorted(r.inputs["role"] for r in run.of_type("gcp:projects/iAMMember:IAMMember"))
    assert grants == ["roles/artifactregistry.reader", "roles/container.defaultNodeServiceAccount"]
    for pool in run.of_type(POOL):
        config = pool.inputs["nodeConfig"]
        assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}, pool.name
    assert pod_spec(run)["automountServiceAccountToken"] is False


def test_the_vllm_container_contract(run):
    (container,) = pod_spec(run)["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert "--model=Qwen/Qwen2.5-7B-Instruct" in container["args"]
    assert "--tensor-parallel-size=4" in container["args"]  # the 4 chips of the host
    assert "--port=8000" in container["args"]
    assert container["resources"]["limits"] == {"google.com/tpu": "4"}
    assert container["resources"]["requests"] == {"google.com/tpu": "4"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": 8000}, probe
    assert "replicas" not in one(run, "serve-server").inputs["spec"]  # the HPA's


def test_pods_land_on_the_tpu_hosts_and_prefer_on_demand(run):
    spec = pod_spec(run)
    assert spec["nodeSelector"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
        "cloud.google.com/gke-tpu-topology": "2x2",
    }
    (preferred,) = spec["affinity"]["nodeAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred["preference"]["matchExpressions"] == [
        {"key": "cloud.google.com/gke-spot", "operator": "DoesNotExist"}
    ]
    tolerated = {t["key"] for t in spec["tolerations"]}
    assert tolerated == {"google.com/tpu", "cloud.google.com/gke-spot"}


def test_internal_load_balancer_only(run):
    service = one(run, "serve-service").inputs
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["metadata"]["annotations"] == {
        "networking.gke.io/load-balancer-type": "Internal"
    }
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": 8000, "protocol": "TCP"}
    ]


def test_hpa_between_the_bounds_on_the_vllm_queue(run):
    spec = one(run, "serve-hpa").inputs["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 4)
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "serve",
    }
    assert spec["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": QUEUE_METRIC},
                "target": {"type": "AverageValue", "averageValue": "10"},
            },
        }
    ]
    scrape = one(run, "serve-scrape").inputs
    assert scrape["kind"] == "PodMonitoring"
    assert scrape["spec"]["endpoints"] == [{"port": 8000, "path": "/metrics", "interval": "15s"}]


def test_v6e_by_machine_type_and_the_token_from_a_secret():
    run = endpoint_run(
        accelerator=None,
        model_memory_gib=None,
        accelerator_type="ct6e-standard-4t",
        zone="us-east1-d",
        hugging_face_token_secret="hf-token",
        target_queue_length=4,
    )
    assert one(run, "serve-tpu").inputs["nodeConfig"]["machineType"] == "ct6e-standard-4t"
    spec = pod_spec(run)
    assert spec["nodeSelector"]["cloud.google.com/gke-tpu-accelerator"] == "tpu-v6e-slice"
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["HUGGING_FACE_HUB_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "hf-token", "key": "token"}
    }
    target = one(run, "serve-hpa").inputs["spec"]["metrics"][0]["pods"]["target"]
    assert target["averageValue"] == "4"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"serving": "model-archive"}, "serving: 'model-archive' is not allowed; llm"),
        ({"model_id": "qwen"}, "model_id: 'qwen' is not allowed; a Hugging Face id"),
        ({"image": None}, "image: required"),
        ({"image": "docker.io/vllm/vllm-tpu:latest"}, "pinned by digest"),
        ({"image": "us-docker.pkg.dev/demo/serving/vllm-tpu:v1"}, "pinned by digest"),
        ({"zone": None}, "zone: required"),
        ({"zone": "us-central1"}, "zone: 'us-central1' is not allowed; a GCP zone"),
        ({"zone": "us-east1-b", "region": "us-central1"}, "a zone of region us-central1"),
        ({"accelerator": "TPU-v5p", "zone": "us-east5-a"}, "single-host v5e or v6e"),
        ({"replicas_min": 0}, r"replicas_min: 0 is not allowed; allowed: an integer 1\.\.100"),
        ({"replicas_min": 3, "replicas_max": 2}, r"replicas_max: 2 .*an integer 3\.\.100"),
        ({"environment": {"HF_TOKEN": "hf_x"}}, "not a token in plain text"),
        ({"environment": {"1X": "1"}}, "a variable name"),
        ({"system_machine_type": "n1-standard-3"}, "did you mean n1-standard-32"),
        ({"target_queue_length": 0}, "target_queue_length: 0"),
        (
            {"accelerator": None, "accelerator_type": "v5litepod-1", "model_memory_gib": 40},
            "16 GiB",
        ),
        ({"replica_max": 3}, "did you mean replicas_max"),
    ],
)
def test_bad_args_are_refused_naming_the_field(overrides, message):
    args = {k: v for k, v in {**BASE, **overrides}.items() if v is not None}
    with pytest.raises(ValueError, match=message) as caught:
        plan_gke_endpoint(args, "finops:gcp:GkeTpuInferenceEndpoint 'bad'")  # type: ignore[arg-type]
    assert str(caught.value).startswith("finops:gcp:GkeTpuInferenceEndpoint 'bad'")
    assert "\n" not in str(caught.value)


def test_the_policies_read_the_pool_labels_and_flag_a_pool_without_them(run):
    """`required-tags` sees a node pool's nested labels (before, GKE types were untaggable
    and never checked): the component's pools pass, one stripped of a label is flagged."""
    from aifinops.policies.context import Context
    from aifinops.policies.normalize.wire import normalize
    from aifinops.policies.verdicts import evaluate

    pool = one(run, "serve-tpu-spot")
    read = normalize(pool.type, pool.name, pool.inputs)
    assert read.tags["model-version"] == "qwen2-5-7b-v1"
    context = Context(environment="dev")
    assert [v for v in evaluate([read], context) if v.policy == "required-tags"] == []
    labels = {k: v for k, v in pool.inputs["nodeConfig"]["resourceLabels"].items() if k != "team"}
    stripped = {
        **pool.inputs,
        "nodeConfig": {**pool.inputs["nodeConfig"], "resourceLabels": labels},
    }
    flagged = evaluate([normalize(pool.type, pool.name, stripped)], context)
    assert [v.policy for v in flagged if v.policy == "required-tags"] == ["required-tags"]


def test_a_gcp_program_without_a_gke_endpoint_does_not_load_the_kubernetes_sdk():
    """Every GCP stack imports aifinops.components.gcp: the Kubernetes SDK (about 0.2 s and
    20 MiB) is paid only by a stack that builds a GKE endpoint."""
    import json
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "import aifinops.components.gcp\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert "pulumi_kubernetes" not in json.loads(done.stdout)
