"""A real Debian `prometheus` on 127.0.0.1 holding backfilled history (OpenMetrics text).

History goes in with `promtool tsdb create-blocks-from openmetrics` as one block, then the
server starts on a free port. `start_prometheus` is a context manager; the caller skips the
test when `available()` is False.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def available() -> bool:
    return Path(PROMETHEUS).exists() and Path(PROMTOOL).exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def start_prometheus(folder: Path, openmetrics: str) -> Iterator[str]:
    """Backfill `openmetrics` (ending in '# EOF') into `folder` and serve it; yields the URL."""
    data = folder / "data"
    source = folder / "history.om"
    source.write_text(openmetrics)
    subprocess.run(
        [
            PROMTOOL,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=384h",
            "-q",
            str(source),
            str(data),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (folder / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    port = _free_port()
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=90d",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(
                "prometheus did not become ready: "
                + (folder / "prometheus.log").read_text()[-2000:]
            )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
