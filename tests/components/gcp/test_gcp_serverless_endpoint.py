"""finops:gcp:ServerlessInferenceEndpoint under the offline engine: a Cloud Run service that
scales to zero, CPU only (request-based billing) or with an L4 (instance-based billing, the
GPU limits Cloud Run sets), labels, least privilege, argument errors, and its price."""

from __future__ import annotations

from typing import Any

import pytest
from gcp_engine import assert_gcp_labels, names_of, one, run_components

from aifinops.components.gcp import ServerlessInferenceEndpoint, ServerlessInferenceEndpointArgs
from aifinops.engine import EngineError, StackRun

SERVICE = "gcp:cloudrunv2/service:Service"
IMAGE = "us-docker.pkg.dev/finops-test/serve/embedder:1"


def endpoint_run(**overrides: Any) -> StackRun:
    args: ServerlessInferenceEndpointArgs = {
        "model_version": "minilm-v2",
        "image": IMAGE,
        "model_data_url": "gs://models-bucket/minilm",
        "requests_per_month": 200_000,
        "mean_duration_ms": 300,
    }
    args.update(overrides)  # type: ignore[typeddict-item]
    return run_components(lambda: ServerlessInferenceEndpoint("embed", args))


@pytest.fixture(scope="module")
def cpu_run() -> StackRun:
    return endpoint_run()


@pytest.fixture(scope="module")
def gpu_run() -> StackRun:
    return endpoint_run(accelerator="L4", model_memory_gib=16, requests_per_month=1000,
                        mean_duration_ms=2000)  # fmt: skip


def test_cpu_service_scales_to_zero_with_request_based_billing(cpu_run: StackRun) -> None:
    component = one(cpu_run, "embed")
    assert component.type == "finops:gcp:ServerlessInferenceEndpoint"
    service = one(cpu_run, "embed-service").inputs
    template = service["template"]
    assert template["scaling"] == {"minInstanceCount": 0, "maxInstanceCount": 3}
    assert template["maxInstanceRequestConcurrency"] == 80
    (container,) = template["containers"]
    assert container["image"] == IMAGE
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2048Mi"}
    assert container["resources"]["cpuIdle"] is True
    assert "nodeSelector" not in template and "gpuZonalRedundancyDisabled" not in template
    envs = {e["name"]: e["value"] for e in container["envs"]}
    assert envs == {"MODEL_VERSION": "minilm-v2", "MODEL_DATA_URL": "gs://models-bucket/minilm"}


def test_own_service_account_reads_only_the_model_bucket(cpu_run: StackRun) -> None:
    service = one(cpu_run, "embed-service").inputs
    # the account's email is computed by GCP: unknown in a preview, but set (not the default
    # compute account, which has Editor on the project)
    assert "serviceAccount" in service["template"]
    assert one(cpu_run, "embed-sa").inputs["accountId"].startswith("embed-run")
    reader = one(cpu_run, "embed-model-reader").inputs
    assert (reader["bucket"], reader["role"]) == ("models-bucket", "roles/storage.objectViewer")
    assert names_of(cpu_run, "gcp:projects/iAMMember:IAMMember") == ["embed-metric-writer"]
    assert not cpu_run.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")  # no public


def test_labels_on_service_and_revisions(cpu_run: StackRun) -> None:
    assert assert_gcp_labels(cpu_run, workload=True) >= 1
    service = one(cpu_run, "embed-service").inputs
    assert service["template"]["labels"]["model-version"] == "minilm-v2"


def test_l4_service_meets_cloud_runs_gpu_limits(gpu_run: StackRun) -> None:
    template = one(gpu_run, "embed-service").inputs["template"]
    assert template["nodeSelector"] == {"accelerator": "nvidia-l4"}
    assert template["gpuZonalRedundancyDisabled"] is True
    assert template["maxInstanceRequestConcurrency"] == 4
    (container,) = template["containers"]
    # Cloud Run: one L4 per instance, at least 4 vCPU and 16 GiB; GPUs need instance billing
    assert container["resources"]["limits"] == {
        "cpu": "4", "memory": "16384Mi", "nvidia.com/gpu": "1"
    }  # fmt: skip
    assert container["resources"]["cpuIdle"] is False


def test_prices_by_hand(cpu_run: StackRun, gpu_run: StackRun) -> None:
    # CPU: 200,000 x 0.3 s = 60,000 s x (1 x 0.000024 + 2 x 0.0000025) = $1.74, plus
    # 0.2 M requests x $0.40 = $0.08: $1.82 a month.
    (cpu_line,) = [t for _, t in cpu_run.messages if "/month" in t]
    assert "$1.82/month" in cpu_line
    # L4: 1,000 requests x (2 s + 900 s idle) = 902,000 s = 250.6 h x (0.0001867 + 4 x 0.000018
    # + 16 x 0.000002) = 0.0002907 $/s: $262.21 a month.
    (gpu_line,) = [t for _, t in gpu_run.messages if "/month" in t]
    assert "$262.21/month" in gpu_line and "instance-based" in gpu_line


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"accelerator": "A100"}, "accelerator: 'A100' is not allowed; allowed: L4"),
        ({"accelerator": "L4", "region": "us-west1"}, "Cloud Run offers L4 in"),
        ({"accelerator": "L4", "cpu": 2}, "cpu: 2 is not allowed; allowed: 4, 6, 8"),
        ({"accelerator": "L4", "memory_mb": 8192}, "memory_mb: 8192 is not allowed"),
        ({"cpu": 3}, "cpu: 3 is not allowed"),
        ({"memory_mb": 65536}, "memory_mb: 65536 is not allowed"),
        ({"max_concurrency": 1001}, "max_concurrency: 1001 is not allowed"),
        ({"accelerator": "L4", "model_memory_gib": 30}, "model_memory_gib: 30 is not allowed"),
        ({"image": ""}, "image: required"),
        ({"instance_type": "g2-standard-8"}, "args: 'instance_type' is not allowed"),
    ],
)
def test_argument_errors_name_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(EngineError, match=message):
        endpoint_run(**overrides)
