"""Build the bundle of wheels that travels with bench/gpu_device_check.sh to a bare GPU host.

    .venv/bin/python bench/build_agent_bundle.py [--out bench/agent-bundle]

The GPU host may have no network at all: everything the agent needs comes in this folder
(at most 64 MiB; about 2.5 MiB today):

* this project's wheel, built here from a clean copy of the working tree (its name and
  version are read from pyproject.toml);
* the third-party wheels pinned with their hashes in bench/agent-bundle.lock
  (nvidia-ml-py, prometheus-client, and pip for a Python without ensurepip), fetched once
  through pip into a cache (`--cache`, default .cache/agent-wheels) and checked against
  those hashes;
* requirements.txt: every wheel with its sha256, for
  `pip install --no-index --find-links BUNDLE --require-hashes -r BUNDLE/requirements.txt`;
* MANIFEST.json: files, sizes, hashes, the wheel's Requires-Python, the git commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "bench" / "agent-bundle.lock"
MAX_BYTES = 64 * 2**20


class BundleError(Exception):
    pass


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pinned(lock: Path) -> dict[str, tuple[str, set[str]]]:
    """name -> (version, allowed sha256 hashes) from a `uv pip compile --generate-hashes` file."""
    text = re.sub(r"\\\n\s*", " ", lock.read_text())
    out: dict[str, tuple[str, set[str]]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)\s+(.*)$", line)
        if match:
            hashes = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", match.group(3)))
            out[normalise(match.group(1))] = (match.group(2), hashes)
    if not out:
        raise BundleError(f"{lock}: no pinned requirement with hashes")
    return out


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_name(path: Path) -> str:
    return normalise(path.name.split("-")[0])


def third_party_wheels(cache: Path) -> list[Path]:
    """The pinned wheels, from the cache or fetched into it; each checked against the lock."""
    pins = pinned(LOCK)
    cache.mkdir(parents=True, exist_ok=True)

    def cached(name: str) -> Path | None:
        version, hashes = pins[name]
        for path in cache.glob("*.whl"):
            if wheel_name(path) == name and f"-{version}-" in path.name and sha256(path) in hashes:
                return path
        return None

    missing = [name for name in pins if cached(name) is None]
    if missing:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
            for name in missing:
                version, hashes = pins[name]
                req.write(f"{name}=={version} " + " ".join(f"--hash=sha256:{h}" for h in hashes))
                req.write("\n")
        print(f"fetching {', '.join(missing)} into {cache} (pip, hashes from {LOCK.name})")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                "-r",
                req.name,
                "-d",
                str(cache),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        Path(req.name).unlink()
        if done.returncode != 0:
            raise BundleError(
                f"pip could not fetch {', '.join(missing)} (no network? put the wheels in "
                f"{cache}):\n{done.stderr.strip()[-1500:]}"
            )
    wheels = []
    for name in pins:
        path = cached(name)
        if path is None:
            raise BundleError(f"{name}: no wheel in {cache} matches the hashes in {LOCK}")
        wheels.append(path)
    return wheels


def source_copy(dest: Path) -> None:
    """The working tree's files (tracked, and untracked but not ignored) copied to `dest`:
    setuptools builds from a clean tree, never from a stale build/ or egg-info."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "-co", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in listed)):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def project_wheel(into: Path) -> tuple[Path, dict[str, str]]:
    """Build this project's wheel (no dependencies) and read its metadata."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    build = Path(tempfile.mkdtemp(prefix="agent-wheel-"))
    try:
        source_copy(build / "src")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(build),
                str(build / "src"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BundleError(f"building the project's wheel failed:\n{done.stderr[-1500:]}")
        built = list(build.glob("*.whl"))
        if len(built) != 1 or wheel_name(built[0]) != normalise(project["name"]):
            raise BundleError(f"expected one {project['name']} wheel, got {built}")
        target = into / built[0].name
        shutil.copy2(built[0], target)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    with zipfile.ZipFile(target) as wheel:
        metadata_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(metadata_name).decode()
    requires = re.search(r"^Requires-Python: (.+)$", metadata, re.M)
    facts = {
        "name": normalise(project["name"]),
        "version": str(project["version"]),
        "requires_python": requires.group(1).strip() if requires else "",
    }
    return target, facts


def git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def build(out: Path, cache: Path) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    wheels = []
    for path in third_party_wheels(cache):
        target = out / path.name
        shutil.copy2(path, target)
        wheels.append(target)
    project, facts = project_wheel(out)
    wheels.append(project)
    pins = pinned(LOCK)
    lines = []
    files: list[dict[str, Any]] = []
    for path in wheels:
        name = wheel_name(path)
        version = pins[name][0] if name in pins else facts["version"]
        digest = sha256(path)
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
        files.append({"file": path.name, "sha256": digest, "bytes": path.stat().st_size})
    (out / "requirements.txt").write_text(
        "# pip install --no-index --find-links . --require-hashes -r requirements.txt\n"
        + "\n".join(lines)
        + "\n"
    )
    total = sum(int(f["bytes"]) for f in files)
    manifest: dict[str, Any] = {
        "project": {**facts, "wheel": project.name},
        "wheels": files,
        "total_bytes": total,
        "built_from_commit": git_commit(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "lock": str(LOCK.relative_to(REPO)),
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if total > MAX_BYTES:
        raise BundleError(f"the bundle is {total / 2**20:.1f} MiB, over the 64 MiB that can travel")
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "agent-bundle")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "agent-wheels")
    args = parser.parse_args()
    try:
        manifest = build(args.out, args.cache)
    except BundleError as exc:
        print(f"build_agent_bundle: {exc}", file=sys.stderr)
        return 2
    print(f"bundle: {args.out}")
    for entry in manifest["wheels"]:
        print(
            f"  {entry['file']}  {entry['bytes'] / 1024:.0f} KiB  sha256 {entry['sha256'][:16]}..."
        )
    print(
        f"total {int(manifest['total_bytes']) / 2**20:.2f} MiB (limit 64 MiB); the wheel needs "
        f"Python {manifest['project']['requires_python']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
