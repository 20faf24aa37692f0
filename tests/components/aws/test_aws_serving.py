"""What the serving container of an inference endpoint gets, by serving kind and chip: the
AWS Deep Learning Container built for that chip and the environment its entry point needs
(docs/components-aws.md, "Serving containers"). The endpoint used to start the TGI server
with an empty environment, which exits without HF_MODEL_ID, even for an image classifier."""

from __future__ import annotations

from typing import Any

import pytest
from aws_helpers import STACK_TAGS, only, policy_statements, run_components

from aifinops.components.aws import InferenceEndpoint
from aifinops.components.aws.inference import DLC_IMAGES, plan_endpoint
from aifinops.config import ServingKind
from aifinops.engine import StackRun

ARCHIVE = "s3://vision-models/resnet50-v3/model.tar.gz"


def args(**overrides: Any) -> dict[str, Any]:
    return {"model_version": "v1", "tags": STACK_TAGS, "replicas_min": 1, **overrides}


def served(**overrides: Any) -> StackRun:
    return run_components(lambda: InferenceEndpoint("serve", args(**overrides)))  # type: ignore[arg-type]


def container(run: StackRun) -> dict[str, Any]:
    return only(run, "aws:sagemaker/model:Model").inputs["primaryContainer"]


def image_of(kind: ServingKind, family: str) -> str:
    repository, tag = DLC_IMAGES[(kind, family)]
    return f"763104351884.dkr.ecr.us-east-1.amazonaws.com/{repository}:{tag}"


def test_image_classifier_on_inferentia2_gets_the_neuron_pytorch_container() -> None:
    run = served(serving="model-archive", model_data_url=ARCHIVE, instance_type="ml.inf2.xlarge")
    got = container(run)
    assert got["image"] == image_of(ServingKind.MODEL_ARCHIVE, "neuron")
    assert "pytorch-inference-neuronx:" in got["image"]
    assert got["modelDataUrl"] == ARCHIVE
    assert got["environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": "us-east-1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2",  # one per NeuronCore of the Inferentia2 chip
    }
    model = only(run, "aws:sagemaker/model:Model").inputs
    assert model["enableNetworkIsolation"] is True  # SageMaker fetches image and archive
    statements = policy_statements(only(run, "aws:iam/rolePolicy:RolePolicy"))
    assert (
        statements["ReadModel"]["Resource"] == "arn:aws:s3:::vision-models/resnet50-v3/model.tar.gz"
    )
    assert statements["PullServingImage"]["Resource"].endswith(
        ":repository/pytorch-inference-neuronx"
    )


def test_archive_on_a_gpu_gets_the_gpu_pytorch_container() -> None:
    got = container(
        served(serving="model-archive", model_data_url=ARCHIVE, instance_type="ml.g5.xlarge")
    )
    assert got["image"] == image_of(ServingKind.MODEL_ARCHIVE, "gpu")
    assert (
        got["image"].endswith("-sagemaker")
        and "SAGEMAKER_MODEL_SERVER_WORKERS" not in got["environment"]
    )


def test_llm_from_the_hub_on_inferentia2_gets_tgi_neuron_and_network_access() -> None:
    run = served(
        serving="llm", model_id="HuggingFaceH4/zephyr-7b-beta", instance_type="ml.inf2.48xlarge"
    )
    got = container(run)
    assert got["image"] == image_of(ServingKind.LLM, "neuron")
    assert "modelDataUrl" not in got
    assert got["environment"] == {
        "HF_MODEL_ID": "HuggingFaceH4/zephyr-7b-beta",
        "HF_NUM_CORES": "24",  # 12 Inferentia2 chips, 2 NeuronCores each
        "HF_AUTO_CAST_TYPE": "bf16",
        "MAX_BATCH_SIZE": "4",
        "MAX_INPUT_TOKENS": "3686",
        "MAX_TOTAL_TOKENS": "4096",
    }
    # the server downloads the weights at start: no isolation, nothing to read in S3
    assert only(run, "aws:sagemaker/model:Model").inputs["enableNetworkIsolation"] is False
    assert "ReadModel" not in policy_statements(only(run, "aws:iam/rolePolicy:RolePolicy"))


def test_llm_on_gpus_shards_over_all_of_them() -> None:
    got = container(served(serving="llm", model_data_url=ARCHIVE, instance_type="ml.g5.12xlarge"))
    assert got["image"] == image_of(ServingKind.LLM, "gpu")
    assert got["environment"] == {"HF_MODEL_ID": "/opt/ml/model", "SM_NUM_GPUS": "4"}


def test_given_environment_goes_on_top() -> None:
    got = container(
        served(
            serving="model-archive",
            model_data_url=ARCHIVE,
            environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "MY_SETTING": "x"},
        )
    )
    assert got["environment"]["SAGEMAKER_MODEL_SERVER_WORKERS"] == "1"
    assert got["environment"]["MY_SETTING"] == "x"
    assert got["environment"]["SAGEMAKER_PROGRAM"] == "inference.py"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, r"serving: required \(got None\)"),
        ({"serving": "triton"}, r"serving: 'triton' is not allowed"),
        (
            {"serving": "model-archive"},
            r"model_data_url: None .*required with serving model-archive",
        ),
        ({"serving": "llm"}, r"model_id: None .*required with serving llm"),
        (
            {"serving": "model-archive", "model_data_url": ARCHIVE, "model_id": "a/b"},
            r"model_id: 'a/b' .*only with serving llm",
        ),
        (
            {"serving": "llm", "model_id": "a/b", "network_isolation": True},
            r"network_isolation: True .*downloads a/b from the Hugging Face Hub",
        ),
        (
            {"serving": "llm", "model_id": "a/b", "environment": {"HF_MODEL_ID": ""}},
            r"environment.HF_MODEL_ID: '' .*the llm container needs it",
        ),
    ],
)
def test_what_a_container_cannot_start_without_is_refused(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        plan_endpoint(args(**overrides))  # type: ignore[arg-type]
