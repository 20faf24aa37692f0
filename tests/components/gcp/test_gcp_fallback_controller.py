"""The GCP spot fallback controller: the AWS fleet's `decide` applied to two MIGs through the
Compute Engine REST API, its shortfall clock in GCS, the shipped function source, and the
resources the fleet deploys for it."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import urllib.error
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pulumi
import pytest
from gcp_engine import names_of, one, run_components

from aifinops.components.gcp import GpuTrainingFleet
from aifinops.components.gcp.fallback import (
    RESIZER_PERMISSIONS,
    source_archive,
    source_object_name,
)
from aifinops.components.gcp.functions import mig_fallback
from aifinops.components.gcp.scheduled import BUILD_ROLES

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ENV = {
    "SPOT_GROUP": "train-spot",
    "ON_DEMAND_GROUP": "train-on-demand",
    "STATE_BUCKET": "ckpt",
    "STATE_OBJECT": "finops-controller/train.json",
    "FLEET_DESIRED": "4",
    "FLEET_MAX": "6",
    "ON_DEMAND_BASE": "1",
    "FALLBACK_AFTER_MINUTES": "10",
}


class FakeMigs(mig_fallback.GcpApi):
    """Two MIGs and one GCS object in memory; `existing` is what spot capacity allows."""

    def __init__(self, spot_target: int, spot_existing: int, on_demand_target: int) -> None:
        super().__init__("p", "us-central1")
        self.targets = {"train-spot": spot_target, "train-on-demand": on_demand_target}
        self.spot_existing = spot_existing
        self.state: dict[str, Any] = {}
        self.resizes: list[tuple[str, int]] = []

    def target_size(self, group: str) -> int:
        return self.targets[group]

    def instance_counts(self, group: str) -> dict[str, int]:
        if group == "train-spot":
            running = min(self.spot_existing, self.targets[group])
        else:
            running = self.targets[group]
        return {"running": running, "pending": 0, "leaving": 0}

    def resize(self, group: str, size: int) -> None:
        self.resizes.append((group, size))
        self.targets[group] = size

    def read_state(self, bucket: str, name: str) -> dict[str, Any]:
        assert (bucket, name) == ("ckpt", "finops-controller/train.json")
        return dict(self.state)

    def write_state(self, bucket: str, name: str, state: Any) -> None:
        self.state = dict(state)


def test_short_spot_waits_then_on_demand_covers_it_on_top_of_the_base():
    migs = FakeMigs(spot_target=3, spot_existing=1, on_demand_target=1)
    first = mig_fallback.reconcile(migs, ENV, now=T0)
    assert migs.resizes == [] and first["changes"][0] == "shortfall clock started"
    assert migs.state["shortfall_since"] == T0.isoformat()

    mig_fallback.reconcile(migs, ENV, now=T0 + timedelta(minutes=5))
    assert migs.resizes == []  # still inside fallbackAfterMinutes

    mig_fallback.reconcile(migs, ENV, now=T0 + timedelta(minutes=11))
    assert migs.targets == {"train-spot": 3, "train-on-demand": 3}  # base 1 + 2 missing
    assert migs.state["shortfall_since"] is None


def test_spot_returning_drains_on_demand_one_vm_at_a_time_once_stable_down_to_the_base():
    migs = FakeMigs(spot_target=3, spot_existing=3, on_demand_target=3)
    record = mig_fallback.reconcile(migs, ENV, now=T0)
    assert migs.resizes == []  # running, not yet for SPOT_STABLE_MINUTES (15 by default)
    assert record["decision"]["on_demand_desired"] == 2
    assert migs.state["spot_history"].startswith("3@")
    mig_fallback.reconcile(migs, ENV, now=T0 + timedelta(minutes=14))
    assert migs.resizes == []
    for minute in (15, 16, 17):
        mig_fallback.reconcile(migs, ENV, now=T0 + timedelta(minutes=minute))
    assert migs.resizes == [("train-on-demand", 2), ("train-on-demand", 1)]  # base kept
    migs.resizes.clear()
    mig_fallback.reconcile(migs, ENV, now=T0 + timedelta(minutes=18))
    assert migs.resizes == []


def test_a_vm_still_being_deleted_holds_the_next_drain():
    migs = FakeMigs(spot_target=3, spot_existing=3, on_demand_target=3)
    migs.state = {"spot_history": f"3@{int((T0 - timedelta(hours=1)).timestamp())}"}
    leaving = {"running": 2, "pending": 0, "leaving": 1}
    migs.instance_counts = lambda group: (  # type: ignore[method-assign]
        leaving if group == "train-on-demand" else {"running": 3, "pending": 0, "leaving": 0}
    )
    record = mig_fallback.reconcile(migs, ENV, now=T0)
    assert (
        migs.resizes == [] and "waiting for the node being drained" in record["decision"]["reason"]
    )


def test_the_fleet_maximum_caps_both_groups_and_lowering_comes_first():
    migs = FakeMigs(spot_target=3, spot_existing=1, on_demand_target=1)
    migs.state = {"shortfall_since": (T0 - timedelta(minutes=30)).isoformat()}
    mig_fallback.reconcile(migs, {**ENV, "FLEET_MAX": "4"}, now=T0)
    # spot share 3, max 3 above the base: on-demand +2, spot lowered to what it runs
    assert migs.resizes == [("train-spot", 1), ("train-on-demand", 3)]


def test_a_budget_stop_in_the_state_holds_the_fleet_at_zero():
    migs = FakeMigs(spot_target=3, spot_existing=3, on_demand_target=1)
    migs.state = {"budget_enforced": True}
    mig_fallback.reconcile(migs, ENV, now=T0)
    assert migs.targets == {"train-spot": 0, "train-on-demand": 0}


class Recorder:
    """Stands in for urllib: answers the metadata token, MIG and GCS calls, records requests."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.requests: list[tuple[str, str, bytes | None]] = []

    def __call__(self, request: Any) -> Any:
        url, method = request.full_url, request.get_method()
        self.requests.append((method, url, request.data))
        if url.startswith("http://metadata.google.internal"):
            assert request.get_header("Metadata-flavor") == "Google"
            return io.BytesIO(json.dumps({"access_token": "tok"}).encode())
        assert request.get_header("Authorization") == "Bearer tok"
        if "listManagedInstances" in url:
            return io.BytesIO(json.dumps(self.pages.pop(0)).encode())
        if "alt=media" in url:
            raise urllib.error.HTTPError(url, 404, "Not Found", None, None)  # type: ignore[arg-type]
        if url.endswith("instanceGroupManagers/train-spot"):
            return io.BytesIO(b'{"targetSize": 3}')
        return io.BytesIO(b"{}")


def test_rest_calls_paginate_count_existing_vms_and_resize():
    pages: list[dict[str, Any]] = [
        {
            "managedInstances": [
                {"instanceStatus": "RUNNING"},
                {"currentAction": "CREATING"},  # no capacity: no VM yet
            ],
            "nextPageToken": "p2",
        },
        {"managedInstances": [{"instanceStatus": "STAGING"}, {"instanceStatus": "STOPPING"}]},
    ]
    recorder = Recorder(pages)
    api = mig_fallback.GcpApi("proj", "us-central1", opener=recorder)
    assert api.target_size("train-spot") == 3
    assert api.instance_counts("train-spot") == {"running": 1, "pending": 1, "leaving": 1}
    api.resize("train-on-demand", 5)
    assert api.read_state("ckpt", "finops-controller/train.json") == {}
    api.write_state("ckpt", "finops-controller/train.json", {"shortfall_since": None})
    group = "https://compute.googleapis.com/compute/v1/projects/proj/regions/us-central1/instanceGroupManagers"
    calls = [(m, u) for m, u, _ in recorder.requests if "metadata" not in u]
    assert calls == [
        ("GET", f"{group}/train-spot"),
        ("POST", f"{group}/train-spot/listManagedInstances"),
        ("POST", f"{group}/train-spot/listManagedInstances?pageToken=p2"),
        ("POST", f"{group}/train-on-demand/resize?size=5"),
        (
            "GET",
            "https://storage.googleapis.com/storage/v1/b/ckpt/o/"
            "finops-controller%2Ftrain.json?alt=media",
        ),
        (
            "POST",
            "https://storage.googleapis.com/upload/storage/v1/b/ckpt/o?uploadType=media&"
            "name=finops-controller%2Ftrain.json",
        ),
    ]
    assert recorder.requests[-1][2] == b'{"shortfall_since": null}'
    assert sum("metadata" in u for _, u, _ in recorder.requests) == 1  # token fetched once


def test_shipped_source_imports_with_the_standard_library_alone(tmp_path: Path):
    archive = source_archive()
    assert sorted(archive.assets) == ["fallback_decision.py", "main.py"]
    for name, asset in archive.assets.items():
        assert isinstance(asset, pulumi.FileAsset)
        (tmp_path / name).write_text(Path(asset.path).read_text())
    check = (
        "import sys; sys.path.insert(0, '.'); import main, fallback_decision; "
        "assert main.decide is fallback_decision.decide; "
        "assert callable(main.reconcile_http)"
    )
    # -I -S: no site-packages, no repository on the path; the standard library alone
    subprocess.run([sys.executable, "-I", "-S", "-c", check], cwd=tmp_path, check=True)


def fleet(**overrides: Any) -> Any:
    args = {
        "model_version": "v1",
        "node_count": 4,
        "node_count_max": 6,
        "on_demand_base": 1,
        "instance_type": "g2-standard-8",
        "region": "us-central1",
        "fallback_after_minutes": 15,
        **overrides,
    }
    return run_components(lambda: GpuTrainingFleet("train", args))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def run() -> Any:
    return fleet()


def test_the_fleet_deploys_the_controller_with_its_numbers(run):
    env = one(run, "train-controller").inputs["serviceConfig"]["environmentVariables"]
    assert {k: env[k] for k in ("FLEET_DESIRED", "FLEET_MAX", "ON_DEMAND_BASE")} == {
        "FLEET_DESIRED": "4",
        "FLEET_MAX": "6",
        "ON_DEMAND_BASE": "1",
    }
    assert env["FALLBACK_AFTER_MINUTES"] == "15"
    assert env["SPOT_GROUP"] == one(run, "train-spot").outputs["name"]
    assert env["ON_DEMAND_GROUP"] == one(run, "train-on-demand").outputs["name"]
    assert env["STATE_BUCKET"] == one(run, "train-checkpoints").outputs["name"]
    assert one(run, "train-controller-schedule").inputs["schedule"] == "* * * * *"
    # new code, new object name: the function only redeploys when its source object changes
    source = one(run, "train-controller-source").inputs["name"]
    assert source == source_object_name() and source.startswith("mig-fallback-")
    storage = one(run, "train-controller").inputs["buildConfig"]["source"]["storageSource"]
    assert storage["object"] == source


def test_the_controller_owns_the_group_sizes_and_may_only_resize_them(run):
    for group in ("train-spot", "train-on-demand"):
        assert one(run, group).options.get("ignoreChanges") == ["targetSize"]
    role = one(run, "train-controller-role").inputs
    assert role["permissions"] == list(RESIZER_PERMISSIONS)
    invoker = one(run, "train-controller-invoker").inputs
    assert invoker["role"] == "roles/run.invoker"


def test_the_function_is_built_by_its_own_build_account(run):
    """New projects give the default Cloud Build account no rights (July 2024), and locked-down
    organisations disable it: the build names an account holding the documented roles, and
    the function waits for them."""
    builder = one(run, "train-controller-build-sa")
    function = one(run, "train-controller")
    assert function.inputs["buildConfig"]["serviceAccount"] == builder.id
    grants = [
        r
        for r in run.of_type("gcp:projects/iAMMember:IAMMember")
        if r.name.startswith("train-controller-build-")
    ]
    assert sorted(g.inputs["role"] for g in grants) == sorted(BUILD_ROLES.values())
    assert {g.urn for g in grants} <= set(function.options.get("dependsOn", []))
    runtime = one(run, "train-controller-sa")
    assert builder.inputs["accountId"] != runtime.inputs["accountId"]


def test_the_function_waits_for_its_own_grants(run):
    """Its first scheduled call resizes the MIGs and writes its state object: created before
    those bindings, it would fail its first minutes with 403s."""
    depends = set(one(run, "train-controller").options.get("dependsOn", []))
    for grant in ("train-controller-resizer", "train-controller-state"):
        assert one(run, grant).urn in depends, grant


def test_no_controller_without_fallback_and_groups_keep_their_sizes():
    for overrides in (
        {"fallback_controller": False},
        {"capacity": "on-demand", "on_demand_base": 0},
    ):
        run = fleet(**overrides)
        assert names_of(run, "gcp:cloudfunctionsv2/function:Function") == []
        groups = run.of_type("gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager")
        assert groups and all(not g.options.get("ignoreChanges") for g in groups)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"node_count_max": 3}, r"node_count_max: 3 is not allowed; allowed: an integer 4 or more"),
        ({"fallback_after_minutes": 0}, r"fallback_after_minutes: 0 .*an integer 1\.\.120"),
        ({"fallback_after_minutes": 2.5}, r"fallback_after_minutes: 2\.5 .*an integer 1\.\.120"),
    ],
)
def test_bad_controller_args(overrides, message):
    args = {"model_version": "v1", "node_count": 4, "accelerator": "L4", "region": "us-central1"}
    with pytest.raises(ValueError, match=message):
        GpuTrainingFleet("bad", {**args, **overrides})  # type: ignore[typeddict-item]


def test_the_source_object_name_follows_the_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from aifinops.components.gcp import fallback

    main, decision = tmp_path / "main.py", tmp_path / "decision.py"
    main.write_text("x = 1\n")
    decision.write_text("y = 1\n")
    monkeypatch.setattr(
        fallback, "SOURCE_FILES", {"main.py": main, "fallback_decision.py": decision}
    )
    before = fallback.source_object_name()
    assert fallback.source_object_name() == before
    decision.write_text("y = 2\n")
    assert fallback.source_object_name() != before


# --- the function's REST calls against the permissions its identity holds -----------------

# Compute Engine and Cloud Storage API references ("Required IAM permissions" / "IAM
# permissions for JSON methods"): the permission each call the function makes needs.
GROUP_URL = r"https://compute\.googleapis\.com/compute/v1/projects/[^/]+/regions/[^/]+/instanceGroupManagers/[^/?]+"
PERMISSION_OF_CALL = [
    ("GET", rf"{GROUP_URL}", {"compute.instanceGroupManagers.get"}),
    ("POST", rf"{GROUP_URL}/listManagedInstances(\?.*)?", {"compute.instanceGroupManagers.get"}),
    ("POST", rf"{GROUP_URL}/resize\?size=\d+", {"compute.instanceGroupManagers.update"}),
    (
        "GET",
        r"https://storage\.googleapis\.com/storage/v1/b/(?P<bucket>[^/]+)/o/[^?]+\?alt=media",
        {"storage.objects.get"},
    ),
    # an upload that replaces the object also needs delete (Cloud Storage: overwriting)
    (
        "POST",
        r"https://storage\.googleapis\.com/upload/storage/v1/b/(?P<bucket>[^/]+)/o\?uploadType=media&name=.+",
        {"storage.objects.create", "storage.objects.delete"},
    ),
]
# roles/storage.objectUser (Cloud Storage IAM roles), the object permissions it holds
OBJECT_USER = {
    "storage.objects.create",
    "storage.objects.delete",
    "storage.objects.get",
    "storage.objects.list",
    "storage.objects.update",
}


class FakeRest:
    """Two MIGs and the state object behind the REST API the function calls."""

    def __init__(self) -> None:
        self.targets = {"train-spot": 3, "train-on-demand": 1}
        self.spot_vms = 1
        self.state: bytes | None = None
        self.calls: list[tuple[str, str]] = []

    def __call__(self, request: Any) -> Any:
        url, method = request.full_url, request.get_method()
        if url.startswith("http://metadata.google.internal"):
            return io.BytesIO(b'{"access_token": "tok"}')
        self.calls.append((method, url))
        group = url.split("instanceGroupManagers/")[-1].split("/")[0].split("?")[0]
        if "listManagedInstances" in url:
            running = self.spot_vms if group == "train-spot" else self.targets[group]
            return io.BytesIO(
                json.dumps({"managedInstances": [{"instanceStatus": "RUNNING"}] * running}).encode()
            )
        if "/resize?size=" in url:
            self.targets[group] = int(url.rsplit("=", 1)[1])
            return io.BytesIO(b"{}")
        if "instanceGroupManagers/" in url:
            return io.BytesIO(json.dumps({"targetSize": self.targets[group]}).encode())
        if "alt=media" in url:
            if self.state is None:
                raise urllib.error.HTTPError(url, 404, "Not Found", None, None)  # type: ignore[arg-type]
            return io.BytesIO(self.state)
        if "uploadType=media" in url:
            self.state = request.data
            return io.BytesIO(b"{}")
        raise AssertionError(f"unexpected call {method} {url}")


def test_every_call_of_the_function_is_granted_to_its_identity(run):
    """Each REST call the controller makes needs a permission its service account holds: the
    custom role on the project (MIGs), objectUser on the checkpoint bucket (its state)."""
    rest = FakeRest()
    api = mig_fallback.GcpApi("p", "us-central1", opener=rest)
    mig_fallback.reconcile(api, ENV, now=T0)  # shortfall clock starts: state written
    mig_fallback.reconcile(api, ENV, now=T0 + timedelta(minutes=11))  # falls back: resize
    rest.spot_vms = 3
    mig_fallback.reconcile(api, ENV, now=T0 + timedelta(minutes=12))  # spot back: drain
    assert {m for m, _ in rest.calls} == {"GET", "POST"} and any(
        "resize" in u for _, u in rest.calls
    )

    role = one(run, "train-controller-role")
    account_roles = {
        r.inputs["role"]
        for r in run.of_type("gcp:projects/iAMMember:IAMMember")
        if r.name == "train-controller-resizer"
    }
    assert account_roles == {role.outputs["name"]}
    project_permissions = set(role.inputs["permissions"])
    state_grant = one(run, "train-controller-state").inputs
    assert state_grant["role"] == "roles/storage.objectUser"
    missing = []
    for method, url in rest.calls:
        matches = [
            (re.fullmatch(pattern, url), needed)
            for verb, pattern, needed in PERMISSION_OF_CALL
            if verb == method and re.fullmatch(pattern, url)
        ]
        assert matches, f"no permission known for {method} {url}: add it to PERMISSION_OF_CALL"
        match, needed = matches[-1]
        if "bucket" in match.groupdict():
            assert match["bucket"] == ENV["STATE_BUCKET"]  # the bucket the grant is on
            granted = OBJECT_USER
        else:
            granted = project_permissions
        missing += [f"{method} {url}: {p}" for p in sorted(needed - granted)]
    assert missing == []
