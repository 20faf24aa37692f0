"""finops:gcp:TpuBatchInference under the offline engine: TPU VMs per replica, slice choice
from the catalog, runtime version and zone per generation, spot, labels, least privilege."""

from __future__ import annotations

from typing import Any

import pytest
from gcp_engine import assert_gcp_labels, names_of, one, run_components

from aifinops.components.gcp import TpuBatchInference, TpuBatchInferenceArgs
from aifinops.engine import StackRun

V2VM = "gcp:tpu/v2Vm:V2Vm"


def endpoint_run(**overrides: Any) -> StackRun:
    args: TpuBatchInferenceArgs = {
        "model_version": "llama-3.1-8b",
        "replicas_min": 2,
        "replicas_max": 5,
        "accelerator": "TPU-v5e",
        "model_memory_gib": 40,
        "region": "us-central1",
        "model_data_url": "gs://models-bucket/llama",
        "image": "us-docker.pkg.dev/demo/serve/jetstream:1",
    }
    args.update(overrides)  # type: ignore[typeddict-item]
    return run_components(lambda: TpuBatchInference("serve", args))


@pytest.fixture(scope="module")
def run() -> StackRun:
    return endpoint_run()


def test_one_tpu_vm_per_minimum_replica_under_the_component(run):
    component = one(run, "serve")
    assert component.type == "finops:gcp:TpuBatchInference"
    assert names_of(run, V2VM) == ["serve-0", "serve-1"]
    assert all(r.parent == component.urn for r in run.resources if r is not component)


def test_smallest_v5e_slice_holding_the_model_with_its_runtime_and_zone(run):
    vm = one(run, "serve-0").inputs
    assert vm["acceleratorType"] == "v5litepod-4"  # 4 x 16 GiB >= 40 GiB; v5litepod-1 is not
    assert vm["runtimeVersion"] == "v2-alpha-tpuv5-lite"
    assert vm["zone"] == "us-central1-a"
    assert vm["schedulingConfig"] == {"spot": False}
    assert vm["networkConfig"]["enableExternalIps"] is False
    assert "max 5" in vm["description"]


def test_vms_run_the_serving_container_with_the_model_location(run):
    script = one(run, "serve-0").inputs["metadata"]["startup-script"]
    assert "MODEL_DATA_URL='gs://models-bucket/llama'" in script
    assert "'us-docker.pkg.dev/demo/serve/jetstream:1'" in script


def test_labels_on_every_vm(run):
    assert assert_gcp_labels(run, workload=True) == 2
    assert one(run, "serve-1").inputs["labels"]["model-version"] == "llama-3-1-8b"


def test_service_account_reads_only_the_model_bucket(run):
    roles = sorted(r.inputs["role"] for r in run.of_type("gcp:projects/iAMMember:IAMMember"))
    assert roles == ["roles/logging.logWriter", "roles/monitoring.metricWriter"]
    grant = one(run, "serve-model-read").inputs
    assert (grant["bucket"], grant["role"]) == ("models-bucket", "roles/storage.objectViewer")


def test_spot_v6e_in_us_east1():
    run = endpoint_run(
        accelerator=None, accelerator_type="v6e-1", region="us-east1", spot=True, image=None
    )
    vm = one(run, "serve-0").inputs
    assert (vm["acceleratorType"], vm["zone"]) == ("v6e-1", "us-east1-d")
    assert vm["runtimeVersion"] == "v2-alpha-tpuv6e"
    assert vm["schedulingConfig"] == {"spot": True}
    assert "startup-script" not in vm["metadata"]


def test_zero_replicas_create_no_vm():
    run = endpoint_run(replicas_min=0)
    assert names_of(run, V2VM) == []


BASE: dict[str, Any] = {"model_version": "v1", "replicas_min": 1, "region": "us-central1"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"accelerator_type": "g2-standard-8"}, "is a gce machine, not a TPU"),
        ({"accelerator_type": "v5litepod-3"}, r"did you mean .*v5litepod"),
        ({"accelerator": "TPU-v5e", "model_memory_gib": 4096}, "does not fit one TPU-v5e slice"),
        ({"accelerator": "TPU-v5p"}, "no TPU-v5p TPU in us-central1; offered in: "),
        ({"accelerator": "A100"}, "is not a TPU generation"),
        (
            {"accelerator_type": "v5litepod-4", "replicas_max": 0},
            r"replicas_max: 0 .*an integer 1\.\.100",
        ),
        ({"accelerator_type": "v5litepod-4", "zone": "us-east1-d"}, "is not in region"),
        (
            {"accelerator_type": "v5litepod-4", "model_data_url": "s3://b/m"},
            "must be a gs:// or https:// URL",
        ),
    ],
)
def test_bad_args_are_refused_with_the_field_and_value(overrides, message):
    with pytest.raises(ValueError, match=message) as caught:
        TpuBatchInference("bad", {**BASE, **overrides})  # type: ignore[typeddict-item]
    assert "finops:gcp:TpuBatchInference 'bad'" in str(caught.value)


# --- recreate path for preempted Spot TPU VMs --------------------------------------------


def test_spot_batch_gets_a_recreate_controller_scoped_to_its_nodes():
    run = endpoint_run(spot=True, image=None)
    (role,) = run.of_type("gcp:projects/iAMCustomRole:IAMCustomRole")
    assert sorted(role.inputs["permissions"]) == [
        "tpu.nodes.create",
        "tpu.nodes.delete",
        "tpu.nodes.get",
    ]
    act_as = one(run, "serve-recreate-act-as").inputs
    assert act_as["role"] == "roles/iam.serviceAccountUser"  # on the VMs' account only
    assert one(run, "serve-recreate-schedule").inputs["schedule"] == "* * * * *"
    function = one(run, "serve-recreate").inputs
    assert function["serviceConfig"]["environmentVariables"]["ZONE"] == "us-central1-a"
    assert function["buildConfig"]["entryPoint"] == "reconcile_http"


def test_on_demand_or_opted_out_batch_has_no_controller(run):
    assert [r.name for r in run.resources if "recreate" in r.name] == []
    opted_out = endpoint_run(spot=True, recreate_preempted=False)
    assert [r.name for r in opted_out.resources if "recreate" in r.name] == []
