"""finops:gcp:TpuInferenceEndpoint under the offline engine (whose SDK input-type check runs
on every resource): a Vertex AI Model Garden deployment on TPU machine types, replica bounds,
the duty-cycle autoscaling metric, spot, the serving contract and the invoker's scope."""

from __future__ import annotations

from typing import Any

import pytest
from gcp_engine import one, run_components

from aifinops.components.gcp import TpuInferenceEndpoint, TpuInferenceEndpointArgs
from aifinops.components.gcp.tpu_endpoint import DUTY_CYCLE_METRIC, plan_endpoint
from aifinops.engine import StackRun

DEPLOYMENT = "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment"
BASE: dict[str, Any] = {
    "model_version": "gemma-2-9b-v1",
    "serving": "llm",
    "model_id": "google/gemma-2-9b-it",
    "replicas_min": 1,
    "replicas_max": 4,
    "accelerator": "TPU-v5e",
    "model_memory_gib": 40,
    "region": "us-central1",
}


def endpoint_run(**overrides: Any) -> StackRun:
    args: TpuInferenceEndpointArgs = {**BASE, **overrides}  # type: ignore[typeddict-item]
    args = {k: v for k, v in args.items() if v is not None}  # type: ignore[assignment]
    return run_components(lambda: TpuInferenceEndpoint("serve", args))


@pytest.fixture(scope="module")
def run() -> StackRun:
    return endpoint_run()


def dedicated(run: StackRun) -> dict[str, Any]:
    return one(run, "serve-deployment").inputs["deployConfig"]["dedicatedResources"]


def test_one_model_garden_deployment_under_the_component(run):
    component = one(run, "serve")
    assert component.type == "finops:gcp:TpuInferenceEndpoint"
    deployment = one(run, "serve-deployment")
    assert deployment.type == DEPLOYMENT
    assert deployment.inputs["huggingFaceModelId"] == "google/gemma-2-9b-it"
    assert deployment.inputs["location"] == "us-central1"
    assert all(r.parent == component.urn for r in run.resources if r is not component)


def test_tpu_machine_type_and_topology_of_the_smallest_slice_holding_the_model(run):
    # 40 GiB: v5litepod-1 (16 GiB) is too small, v5litepod-4 (64 GiB) holds it
    spec = dedicated(run)["machineSpec"]
    assert spec == {"machineType": "ct5lp-hightpu-4t", "tpuTopology": "2x2"}


def test_replica_bounds_and_the_duty_cycle_metric(run):
    resources = dedicated(run)
    assert (resources["minReplicaCount"], resources["maxReplicaCount"]) == (1, 4)
    assert resources["autoscalingMetricSpecs"] == [{"metricName": DUTY_CYCLE_METRIC, "target": 60}]
    assert resources["spot"] is False


def test_spot_and_the_target_reach_the_deployment():
    resources = dedicated(endpoint_run(spot=True, target_duty_cycle_percent=75))
    assert resources["spot"] is True
    assert resources["autoscalingMetricSpecs"][0]["target"] == 75


def test_v6e_by_its_vertex_machine_type():
    run = endpoint_run(
        accelerator=None,
        model_memory_gib=None,
        accelerator_type="ct6e-standard-1t",
        region="us-east1",
    )
    assert dedicated(run)["machineSpec"] == {
        "machineType": "ct6e-standard-1t",
        "tpuTopology": "1x1",
    }


def test_without_image_model_garden_picks_the_container(run):
    model = one(run, "serve-deployment").inputs["modelConfig"]
    assert "containerSpec" not in model
    assert model["modelDisplayName"] == "serve-gemma-2-9b-v1"


def test_own_image_gets_the_contract_env_port_and_routes():
    run = endpoint_run(
        image="us-docker.pkg.dev/demo/serve/vllm-tpu:0.6",
        environment={"MAX_MODEL_LEN": "4096"},
        container_port=8000,
        predict_route="/v1/completions",
    )
    spec = one(run, "serve-deployment").inputs["modelConfig"]["containerSpec"]
    assert spec["imageUri"] == "us-docker.pkg.dev/demo/serve/vllm-tpu:0.6"
    assert spec["envs"] == [
        {"name": "MODEL_ID", "value": "google/gemma-2-9b-it"},
        {"name": "MAX_MODEL_LEN", "value": "4096"},
    ]
    assert spec["ports"] == [{"containerPort": 8000}]
    assert (spec["predictRoute"], spec["healthRoute"]) == ("/v1/completions", "/health")


def test_invoker_may_call_this_endpoint_only(run):
    grants = run.of_type("gcp:vertex/aiEndpointIamMember:AiEndpointIamMember")
    assert len(grants) == 1
    grant = grants[0].inputs
    assert grant["role"] == "roles/aiplatform.user"
    assert grant["location"] == "us-central1"
    assert grant["project"] == "finops-test"  # member and endpoint are known after `up`
    # no project-wide role: the account can reach nothing else
    assert run.of_type("gcp:projects/iAMMember:IAMMember") == []
    invoker = one(run, "serve-invoker").inputs
    assert "model-version=gemma-2-9b-v1" in invoker["description"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"serving": "model-archive"}, "serving: 'model-archive' is not allowed; llm"),
        ({"model_id": "gemma"}, "model_id: 'gemma' is not allowed; a Hugging Face id"),
        ({"model_id": None}, "model_id: required"),
        ({"accelerator": "TPU-v5p", "region": "us-east5"}, r"v5p does not serve on Vertex"),
        ({"replicas_min": 0}, r"replicas_min: 0 is not allowed; allowed: an integer 1\.\.100"),
        ({"replicas_max": 101}, r"replicas_max: 101 .*an integer 1\.\.100"),
        ({"replicas_min": 3, "replicas_max": 2}, r"replicas_max: 2 .*an integer 3\.\.100"),
        ({"target_duty_cycle_percent": 0}, "target_duty_cycle_percent: 0"),
        ({"image": "docker.io/vllm/vllm-tpu:latest"}, "an Artifact Registry or Container"),
        ({"environment": {"X": "1"}}, "only with image"),
        (
            {"image": "us-docker.pkg.dev/p/r/i:1", "environment": {"AIP_HTTP_PORT": "80"}},
            "not AIP_",
        ),
        ({"image": "us-docker.pkg.dev/p/r/i:1", "environment": {"1X": "1"}}, "a variable name"),
        ({"predict_route": "predict"}, "an HTTP path starting with /"),
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
        plan_endpoint(args, "finops:gcp:TpuInferenceEndpoint 'bad'")  # type: ignore[arg-type]
    assert str(caught.value).startswith("finops:gcp:TpuInferenceEndpoint 'bad'")
