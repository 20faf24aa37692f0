"""The agent bundle the fleets install: built reproducibly from this checkout, its dependency
wheels checked against the lock's sha256 (a tampered cached wheel is refused), and a given
wheel checked before it is bundled."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from aifinops.components import agent_artifact
from aifinops.components.agent_artifact import (
    AgentArtifactError,
    agent_source,
    build_bundle,
    cache_root,
    check_agent_wheel,
    read_lock,
    sha256_file,
)
from aifinops.components.agent_bootstrap import RequirementsInstall


@pytest.fixture(scope="session")
def wheel_cache() -> Path:
    """The pinned dependency wheels (downloaded once into the user's cache by `./dev setup`)."""
    build_bundle()
    return cache_root() / "wheels"


@pytest.fixture
def cache(tmp_path: Path, wheel_cache: Path) -> Path:
    """A private cache seeded with the verified wheels: nothing here reaches the index."""
    target = tmp_path / "cache"
    (target / "wheels").mkdir(parents=True)
    for wheel in wheel_cache.glob("*.whl"):
        shutil.copy(wheel, target / "wheels" / wheel.name)
    agent_artifact._BUILT.clear()
    return target


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }


def test_the_bundle_holds_the_agent_and_every_locked_wheel_pinned_by_hash(cache: Path) -> None:
    bundle = build_bundle(cache=cache, download=False)
    files = members(bundle.path)
    pins = read_lock(agent_artifact.lock_path())
    wheels = {name.rsplit("/", 1)[1]: data for name, data in files.items() if name.endswith(".whl")}
    assert len(wheels) == len(pins) + 1 and bundle.wheels[0].startswith("aifinops-")
    lines = files["finops-agent-bundle/requirements.txt"].decode().splitlines()
    assert lines[0].startswith("aifinops[agent]==0.1.0 --hash=sha256:")
    by_hash = {hashlib.sha256(data).hexdigest(): name for name, data in wheels.items()}
    pinned = {line.split(" --hash=sha256:")[1] for line in lines}
    assert pinned == set(by_hash)  # every line pins one wheel of the bundle by its bytes
    for pin in pins:  # and every dependency wheel is the one the lock names
        assert any(h in pin.hashes for h in by_hash), pin
    assert bundle.object_name == f"agent/finops-agent-{bundle.sha256[:16]}.tar"
    assert sha256_file(bundle.path) == bundle.sha256


def test_the_same_source_gives_the_same_bundle(cache: Path, tmp_path: Path) -> None:
    first = build_bundle(cache=cache, download=False)
    again = tmp_path / "again"
    shutil.copytree(cache / "wheels", again / "wheels")
    agent_artifact._BUILT.clear()
    second = build_bundle(cache=again, download=False)
    assert first.path != second.path
    assert first.sha256 == second.sha256  # wheel built twice, byte for byte


def test_a_tampered_cached_wheel_is_removed_and_refused(cache: Path) -> None:
    victim = next((cache / "wheels").glob("prometheus_client-*.whl"))
    with victim.open("ab") as handle:
        handle.write(b"not the published bytes")
    said: list[str] = []
    with pytest.raises(
        AgentArtifactError, match=r"prometheus-client==[\d.]+ not in the wheel cache"
    ):
        build_bundle(cache=cache, download=False, progress=said.append)
    assert not victim.exists()
    assert any("does not match the lock's sha256: removed" in line for line in said)


def test_an_unhashed_lock_line_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("boto3==1.44.8 \\\n    --hash=sha256:" + "a" * 64 + "\nurllib3==2.8.0\n")
    with pytest.raises(AgentArtifactError, match=r"requirements.lock:3: 'urllib3==2.8.0' is not"):
        read_lock(lock)


def make_wheel(path: Path, name: str, requires: list[str], entry: bool = True) -> Path:
    dist = path.name.split("-")[0] + "-" + path.name.split("-")[1]
    with zipfile.ZipFile(path, "w") as archive:
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n" + "".join(
            f"Requires-Dist: {r}\n" for r in requires
        )
        archive.writestr(f"{dist}.dist-info/METADATA", metadata)
        archive.writestr(
            f"{dist}.dist-info/entry_points.txt",
            "[console_scripts]\nfinops-agent = aifinops.agents.cli:main\n" if entry else "",
        )
    return path


def test_a_given_wheel_must_be_aifinops_with_the_agent_command_and_a_locked_extra(
    tmp_path: Path,
) -> None:
    pins = read_lock(agent_artifact.lock_path())
    good = make_wheel(
        tmp_path / "aifinops-0.1.0-py3-none-any.whl",
        "aifinops",
        ['botocore>=1.34; extra == "agent"', 'pulumi>=3; extra == "infra"'],
    )
    assert check_agent_wheel(good, pins) == ("aifinops", "0.1.0")
    stranger = make_wheel(tmp_path / "finops-0.1.0-py3-none-any.whl", "finops", [])
    with pytest.raises(AgentArtifactError, match="a wheel of 'finops'; the agent is 'aifinops'"):
        check_agent_wheel(stranger, pins)
    (tmp_path / "x").mkdir()
    unlocked = make_wheel(
        tmp_path / "x" / "aifinops-0.1.0-py3-none-any.whl",
        "aifinops",
        ['requests>=2; extra == "agent"'],
    )
    with pytest.raises(AgentArtifactError, match=r"requires requests>=2.*pins nothing; regenerate"):
        check_agent_wheel(unlocked, pins)
    (tmp_path / "y").mkdir()
    binary = make_wheel(
        tmp_path / "y" / "aifinops-0.1.0-cp311-cp311-linux_x86_64.whl", "aifinops", []
    )
    with pytest.raises(AgentArtifactError, match="not a pure-Python wheel"):
        check_agent_wheel(binary, pins)
    (tmp_path / "z").mkdir()
    headless = make_wheel(
        tmp_path / "z" / "aifinops-0.1.0-py3-none-any.whl", "aifinops", [], entry=False
    )
    with pytest.raises(AgentArtifactError, match="has no `finops-agent` command"):
        check_agent_wheel(headless, pins)


def test_a_given_wheel_is_bundled_instead_of_building_one(cache: Path, tmp_path: Path) -> None:
    built = build_bundle(cache=cache, download=False)
    wheel = tmp_path / built.wheels[0]
    wheel.write_bytes(members(built.path)[f"finops-agent-bundle/{built.wheels[0]}"])
    given = build_bundle(wheel, cache=cache, download=False)
    assert given.sha256 == built.sha256  # the same wheel makes the same bundle
    with pytest.raises(AgentArtifactError, match="agent wheel not found"):
        build_bundle(tmp_path / "missing.whl", cache=cache, download=False)


def test_component_arguments_pick_one_source() -> None:
    pinned = ["aifinops[agent]==0.1.0 --hash=sha256:" + "1" * 64]
    source = agent_source(
        "fleet 'x'",
        {"agent_requirements": pinned, "agent_index_url": "https://pypi.internal.example/simple"},
    )
    assert source == RequirementsInstall(tuple(pinned), "https://pypi.internal.example/simple")
    with pytest.raises(ValueError, match="fleet 'x': give agent_wheel or agent_requirements"):
        agent_source(
            "fleet 'x'",
            {"agent_wheel": "a.whl", "agent_requirements": pinned, "agent_index_url": "https://x"},
        )
    with pytest.raises(ValueError, match=r"fleet 'x': agent requirements\[0\]: 'aifinops' is not"):
        agent_source(
            "fleet 'x'", {"agent_requirements": ["aifinops"], "agent_index_url": "https://x"}
        )
