"""Service account and custom role ids are project-wide in GCP: two stacks (dev and prod of
one program, or two programs) sharing a project must not collide, and one stack must get the
same ids on every `pulumi up`. Ids stay within IAM's rules for any fleet name."""

from __future__ import annotations

import re

import pytest

from aifinops.components.gcp import GpuTrainingFleet, TpuInferenceEndpoint
from aifinops.engine import StackRun, run_program

CONFIG = {"gcp:project": "shared-project", "gcp:region": "us-central1"}
ACCOUNT_ID = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$")  # projects.serviceAccounts.create
ROLE_ID = re.compile(r"^[a-zA-Z0-9_.]{3,64}$")  # projects.roles.create
LONG_NAME = "vision-transformer-large-pretrain-eu-west"  # 41 characters


def deploy(stack: str, fleet: str = "train", project: str = "finops") -> StackRun:
    def program() -> None:
        GpuTrainingFleet(fleet, {"model_version": "v1", "node_count": 2, "accelerator": "L4"})
        TpuInferenceEndpoint(
            f"{fleet[:30]}-serve",
            {
                "model_version": "v1",
                "serving": "llm",
                "model_id": "Qwen/Qwen2.5-7B-Instruct",
                "accelerator_type": "v5litepod-4",
            },
        )

    return run_program(program, stack, CONFIG, {"gcp": "us-central1"}, project=project)


def ids(run: StackRun) -> dict[str, str]:
    found = {
        r.name: r.inputs["accountId"] for r in run.of_type("gcp:serviceaccount/account:Account")
    }
    found |= {
        r.name: r.inputs["roleId"] for r in run.of_type("gcp:projects/iAMCustomRole:IAMCustomRole")
    }
    return found


@pytest.mark.parametrize("fleet", ["train", LONG_NAME, "9-lives"])
def test_ids_follow_iam_rules_for_any_fleet_name(fleet: str) -> None:
    found = ids(deploy("dev", fleet))
    assert len(found) == 5  # nodes, controller, build, endpoint invoker accounts; resizer role
    for name, value in found.items():
        pattern = ROLE_ID if name.endswith("-controller-role") else ACCOUNT_ID
        assert pattern.match(value), (name, value)
    assert len(set(found.values())) == len(found)


def test_two_stacks_in_one_project_get_different_ids_and_a_stack_keeps_its_own() -> None:
    dev, prod, other_program = deploy("dev"), deploy("prod"), deploy("dev", project="other")
    assert set(ids(dev).values()).isdisjoint(ids(prod).values())
    assert set(ids(dev).values()).isdisjoint(ids(other_program).values())
    assert ids(deploy("dev")) == ids(dev)


def test_ids_stay_readable() -> None:
    found = ids(deploy("dev"))
    assert found["train-sa"].startswith("train-train-")
    assert found["train-controller-role"].startswith("finops_train_mig_resizer_")
