"""The agent artefact a fleet installs: a wheelhouse bundle the stack builds and owns.

A fleet node never installs the agent by a name from the public package index (`finops` there
is somebody else's project). At deploy time the program builds one bundle:

- the `aifinops` wheel, built from this checkout (`pip wheel --no-build-isolation`, with
  `SOURCE_DATE_EPOCH` fixed so the same source gives the same bytes), or the wheel the stack
  names (`finops:agent.wheel`);
- the wheels of the agent extra's dependencies, pinned with their sha256 in
  `agents/deploy/requirements.lock` (pure-Python `py3-none-any` wheels), taken from a local
  cache and downloaded into it with `pip download --require-hashes` when missing; every wheel
  is checked against the lock's hashes whether it was downloaded now or cached earlier;
- `requirements.txt`: every wheel of the bundle as `name==version --hash=sha256:...`, so the
  host's `pip install --no-index --require-hashes` checks each wheel again and can install
  nothing else.

The bundle is an uncompressed tar (the wheels are zips already) with sorted members and fixed
owners and times: the same inputs give the same sha256, so an unchanged stack uploads
nothing and rolls no node. The fleet components upload it to their own bucket as a Pulumi
asset under `object_name`, and the boot script (components/agent_bootstrap.py) verifies that
sha256 before installing.

Built bundles are cached under `cache_root()` by a digest of their inputs (the source files,
the lock, a given wheel), so a program run builds at most once per change of the source.
"""

from __future__ import annotations

import email.parser
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from aifinops.components.agent_bootstrap import RequirementsInstall, check_requirements
from aifinops.config import AgentSettings
from aifinops.errors import FinopsError

DISTRIBUTION = "aifinops"
AGENT_EXTRA = "agent"
BUNDLE_DIR = "finops-agent-bundle"
BUNDLE_REQUIREMENTS = "requirements.txt"
OBJECT_PREFIX = "agent/"
# 1980-01-01, the earliest time a zip member can carry: wheels built with it are reproducible.
SOURCE_DATE_EPOCH = "315532800"
BUNDLE_FORMAT = "1"  # bump when the bundle's layout changes, so cached bundles are rebuilt
SOURCE_PARTS = ("pyproject.toml", "README.md", "finops", "agents", "components", "policies")
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", ".*")
LOCK_COMMAND = (
    "uv pip compile pyproject.toml --extra agent --generate-hashes --python-version 3.11 "
    "--python-platform linux -c requirements.lock -o agents/deploy/requirements.lock"
)

Progress = Callable[[str], None]


class AgentArtifactError(FinopsError):
    """The agent bundle cannot be built (names the file or requirement and what to do)."""


@dataclass(frozen=True)
class Pin:
    """One line of the agent lock: a distribution, its version and its allowed sha256s."""

    name: str
    version: str
    hashes: frozenset[str]


@dataclass(frozen=True)
class AgentBundle:
    """A built bundle on the deploying machine."""

    path: Path
    sha256: str
    wheels: tuple[str, ...]
    """File names of the wheels inside, the agent's first."""

    @property
    def object_name(self) -> str:
        """Where the fleet's bucket keeps it: a new bundle is a new object."""
        return f"{OBJECT_PREFIX}finops-agent-{self.sha256[:16]}.tar"


def lock_path() -> Path:
    """The agent's dependency lock, shipped with the agents package."""
    return Path(str(resources.files("aifinops.agents") / "deploy" / "requirements.lock"))


def source_root() -> Path | None:
    """The checkout this module runs from, when it is one (a pyproject.toml naming
    `aifinops` beside the packages); None for an installed copy."""
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and f'name = "{DISTRIBUTION}"' in pyproject.read_text():
        return root
    return None


def cache_root() -> Path:
    """`FINOPS_CACHE_DIR`, else `$XDG_CACHE_HOME/finops`, else `~/.cache/finops`."""
    configured = os.environ.get("FINOPS_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "finops"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_lock(path: Path) -> list[Pin]:
    """The pins of a `--generate-hashes` lock; AgentArtifactError naming the line otherwise."""
    pins: list[Pin] = []
    logical = ""
    for number, line in enumerate([*path.read_text().splitlines(), ""], start=1):
        stripped = line.split("#", 1)[0].strip()
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        if logical.strip():
            words = logical.split()
            name, sep, version = words[0].partition("==")
            hashes = frozenset(
                w.removeprefix("--hash=sha256:") for w in words[1:] if w.startswith("--hash=")
            )
            if not sep or not hashes or any(not w.startswith("--hash=sha256:") for w in words[1:]):
                raise AgentArtifactError(
                    f"{path}:{number}: {logical.strip()!r} is not `name==version "
                    f"--hash=sha256:...`; regenerate the lock: {LOCK_COMMAND}"
                )
            pins.append(Pin(str(canonicalize_name(name)), version, hashes))
        logical = ""
    if not pins:
        raise AgentArtifactError(f"{path}: no pinned requirement; regenerate: {LOCK_COMMAND}")
    return pins


def source_digest(root: Path) -> str:
    """A digest of every file that goes into the agent wheel (paths and contents)."""
    digest = hashlib.sha256()
    for part in SOURCE_PARTS:
        base = root / part
        files = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in files:
            relative = path.relative_to(root)
            if not path.is_file() or any(
                p == "__pycache__" or p.endswith(".egg-info") or p.startswith(".")
                for p in relative.parts
            ):
                continue
            if path.suffix == ".pyc":
                continue
            digest.update(str(relative).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_agent_wheel(root: Path, out_dir: Path) -> Path:
    """Build the `aifinops` wheel from the checkout at `root` into `out_dir`.

    The sources are copied first: setuptools builds in the tree, and a stale `build/` there
    could put deleted files into the wheel.
    """
    with tempfile.TemporaryDirectory(prefix="finops-agent-src-") as scratch:
        source = Path(scratch) / "src"
        source.mkdir()
        for part in SOURCE_PARTS:
            path = root / part
            if path.is_dir():
                shutil.copytree(path, source / part, ignore=_SKIPPED)
            elif path.is_file():
                shutil.copy2(path, source / part)
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "PYTHONHASHSEED": "0"}
        command = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(out_dir),
            str(source),
        ]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise AgentArtifactError(
                f"building the {DISTRIBUTION} wheel from {root} failed: "
                + (result.stderr.strip().splitlines() or ["no output"])[-1]
            )
    built = sorted(out_dir.glob(f"{DISTRIBUTION}-*.whl"))
    if len(built) != 1:
        raise AgentArtifactError(f"building the {DISTRIBUTION} wheel from {root} left {built}")
    return built[0]


def check_agent_wheel(wheel: Path, pins: Iterable[Pin]) -> tuple[str, str]:
    """The wheel's (name, version) after checking it is a pure-Python `aifinops` wheel with the
    `finops-agent` command, whose agent extra the lock satisfies."""
    try:
        name, version, _build, tags = parse_wheel_filename(wheel.name)
    except ValueError as exc:
        raise AgentArtifactError(f"{wheel}: not a wheel file name ({exc})") from None
    if name != DISTRIBUTION:
        raise AgentArtifactError(f"{wheel}: a wheel of {name!r}; the agent is {DISTRIBUTION!r}")
    if not any(t.abi == "none" and t.platform == "any" for t in tags):
        raise AgentArtifactError(
            f"{wheel}: not a pure-Python wheel (tags {sorted(map(str, tags))})"
        )
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"
            metadata = archive.read(f"{info}/METADATA").decode()
            entry_points = archive.read(f"{info}/entry_points.txt").decode()
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise AgentArtifactError(f"{wheel}: unreadable wheel ({exc})") from None
    if "finops-agent = aifinops.agents.cli:main" not in entry_points.replace("  ", " "):
        raise AgentArtifactError(f"{wheel}: has no `finops-agent` command (entry_points.txt)")
    pinned = {p.name: p for p in pins}
    requires = email.parser.Parser().parsestr(metadata).get_all("Requires-Dist") or []
    for line in requires:
        requirement = Requirement(line)
        if requirement.marker is None or not requirement.marker.evaluate(
            {"extra": AGENT_EXTRA, "python_version": "3.11"}
        ):
            continue
        key = str(canonicalize_name(requirement.name))
        pin = pinned.get(key)
        if pin is None or not requirement.specifier.contains(pin.version, prereleases=True):
            have = f"{pin.name}=={pin.version}" if pin else "nothing"
            raise AgentArtifactError(
                f"{wheel}: the agent extra requires {requirement}, the lock "
                f"{lock_path()} pins {have}; regenerate it: {LOCK_COMMAND}"
            )
    return str(name), str(version)


def dependency_wheels(
    pins: Iterable[Pin], cache: Path, *, download: bool, progress: Progress
) -> list[Path]:
    """One verified wheel per pin, from `cache` (filled with `pip download` when missing)."""
    cache.mkdir(parents=True, exist_ok=True)
    pins = list(pins)

    def cached(pin: Pin) -> Path | None:
        for path in sorted(cache.glob("*.whl")):
            try:
                name, version, _b, _t = parse_wheel_filename(path.name)
            except ValueError:
                continue
            if name == pin.name and version == Version(pin.version):
                if sha256_file(path) in pin.hashes:
                    return path
                progress(f"agent bundle: {path} does not match the lock's sha256: removed")
                path.unlink()
        return None

    missing = [pin for pin in pins if cached(pin) is None]
    if missing:
        names = ", ".join(f"{p.name}=={p.version}" for p in missing)
        if not download:
            raise AgentArtifactError(
                f"agent bundle: {names} not in the wheel cache {cache}; run `finops "
                "agent-bundle` once with access to the package index"
            )
        progress(f"agent bundle: downloading {len(missing)} pinned wheel(s): {names}")
        _download(missing, cache)
    wheels = []
    for pin in pins:
        path = cached(pin)
        if path is None:
            raise AgentArtifactError(
                f"agent bundle: no pure-Python wheel of {pin.name}=={pin.version} with a "
                f"sha256 from {lock_path()} (is it published as py3-none-any?)"
            )
        wheels.append(path)
    return wheels


def _download(pins: list[Pin], cache: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="finops-wheels-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(
            "".join(
                f"{p.name}=={p.version} "
                + " ".join(f"--hash=sha256:{h}" for h in sorted(p.hashes))
                + "\n"
                for p in pins
            )
        )
        target = Path(scratch) / "wheels"
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "--dest",
            str(target),
            "--requirement",
            str(requirements),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise AgentArtifactError(f"agent bundle: pip download failed: {last}")
        for wheel in target.glob("*.whl"):
            shutil.move(str(wheel), cache / wheel.name)


def _add(archive: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = int(SOURCE_DATE_EPOCH)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        archive.addfile(info)
        return
    info.mode = 0o644
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def write_bundle(
    agent_wheel: Path, name_version: tuple[str, str], deps: list[Path], out: Path
) -> None:
    """The bundle tar: the wheels and a requirements file pinning each by name and sha256."""
    name, version = name_version
    lines = [f"{name}[{AGENT_EXTRA}]=={version} --hash=sha256:{sha256_file(agent_wheel)}"]
    for wheel in deps:
        dist, wheel_version, _b, _t = parse_wheel_filename(wheel.name)
        lines.append(f"{dist}=={wheel_version} --hash=sha256:{sha256_file(wheel)}")
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as archive:
        _add(archive, BUNDLE_DIR, None)
        _add(archive, f"{BUNDLE_DIR}/{BUNDLE_REQUIREMENTS}", ("\n".join(lines) + "\n").encode())
        for wheel in sorted([agent_wheel, *deps], key=lambda p: p.name):
            _add(archive, f"{BUNDLE_DIR}/{wheel.name}", wheel.read_bytes())


_BUILT: dict[str, AgentBundle] = {}


def _quiet(message: str) -> None:
    del message


def build_bundle(
    agent_wheel: Path | None = None,
    *,
    cache: Path | None = None,
    download: bool = True,
    progress: Progress = _quiet,
) -> AgentBundle:
    """The agent bundle: `agent_wheel`, or a wheel built from this checkout, plus the locked
    dependency wheels. Cached by a digest of its inputs under `cache` (default
    `cache_root()`); `download=False` never reaches the package index."""
    cache = cache or cache_root()
    lock = lock_path()
    pins = read_lock(lock)
    digest = hashlib.sha256(f"{BUNDLE_FORMAT}\0".encode() + lock.read_bytes())
    root = None
    if agent_wheel is not None:
        if not agent_wheel.is_file():
            raise AgentArtifactError(f"{agent_wheel}: agent wheel not found")
        digest.update(b"wheel\0" + sha256_file(agent_wheel).encode())
    else:
        root = source_root()
        if root is None:
            raise AgentArtifactError(
                "the agent wheel is built from a checkout of this project, and this is an "
                "installed copy: give a built wheel (finops:agent.wheel) or pinned "
                "requirements for a private index (finops:agent.requirements)"
            )
        digest.update(b"source\0" + source_digest(root).encode())
    key = digest.hexdigest()
    if key in _BUILT and _BUILT[key].path.is_file():
        return _BUILT[key]
    bundles = cache / "agent-bundles"
    target = bundles / f"{key}.tar"
    if not target.is_file():
        bundles.mkdir(parents=True, exist_ok=True)
        deps = dependency_wheels(pins, cache / "wheels", download=download, progress=progress)
        with tempfile.TemporaryDirectory(prefix="finops-agent-wheel-") as scratch:
            if agent_wheel is None:
                assert root is not None
                progress(f"agent bundle: building the {DISTRIBUTION} wheel from {root}")
                wheel = build_agent_wheel(root, Path(scratch))
            else:
                wheel = agent_wheel
            name_version = check_agent_wheel(wheel, pins)
            partial = bundles / f".{key}.{os.getpid()}.part"
            write_bundle(wheel, name_version, deps, partial)
            os.replace(partial, target)  # atomic: a parallel build writes the same bytes
    with tarfile.open(target) as archive:
        wheels = [
            m.name.rsplit("/", 1)[-1] for m in archive.getmembers() if m.name.endswith(".whl")
        ]
    agent_first = sorted(wheels, key=lambda w: (not w.startswith(f"{DISTRIBUTION}-"), w))
    bundle = AgentBundle(path=target, sha256=sha256_file(target), wheels=tuple(agent_first))
    _BUILT[key] = bundle
    return bundle


def agent_args(agent: AgentSettings) -> dict[str, Any]:
    """The fleets' `agent_*` arguments from the stack's `finops:agent` key."""
    if agent.requirements:
        return {"agent_requirements": list(agent.requirements), "agent_index_url": agent.index_url}
    return {"agent_wheel": agent.wheel} if agent.wheel else {}


def agent_source(
    where: str, args: Mapping[str, Any], progress: Progress = _quiet
) -> AgentBundle | RequirementsInstall:
    """What a fleet's hosts install, from the component's `agent_*` arguments: requirements
    from a private index, else a bundle of `agent_wheel` or of a wheel built from this
    checkout. ValueError naming the field when they are inconsistent."""
    requirements = args.get("agent_requirements")
    index_url = args.get("agent_index_url")
    wheel = args.get("agent_wheel")
    if requirements or index_url:
        if wheel:
            raise ValueError(f"{where}: give agent_wheel or agent_requirements, not both")
        install = RequirementsInstall(tuple(requirements or ()), str(index_url or ""))
        try:
            check_requirements(install.requirements, install.index_url)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        return install
    return build_bundle(Path(str(wheel)) if wheel else None, progress=progress)
