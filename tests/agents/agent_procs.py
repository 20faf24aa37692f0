"""Processes and servers the agent integration tests start, all on 127.0.0.1, all bounded.

The agent runs as a real `python -m aifinops.agents.cli` subprocess with the stubbed `pynvml` first
on PYTHONPATH, so SIGKILL and restarts are the real thing.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FAKE_NVML_DIR = Path(__file__).resolve().parent / "fake_nvml"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # not ready yet
            last_error = exc
        time.sleep(every)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})"
    )


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class AgentProcess:
    """`finops-agent` in a subprocess with a JSON config and the stubbed NVML."""

    def __init__(self, workdir: Path, config: dict[str, Any], scenario: str = "healthy8") -> None:
        self.workdir = workdir
        self.config_path = workdir / "agent.json"
        self.config_path.write_text(json.dumps(config))
        self.metrics_url = ""
        if config.get("prometheus", {}).get("enabled", True):
            self.metrics_url = f"http://{config['prometheus']['listen']}/metrics"
        self.scenario = scenario
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "agent.log"

    def start(self) -> AgentProcess:
        env = {
            **os.environ,
            **AWS_ENV,
            "PYTHONPATH": os.pathsep.join([str(FAKE_NVML_DIR), str(REPO)]),
            "FINOPS_FAKE_NVML": self.scenario,
        }
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aifinops.agents.cli", "--config", str(self.config_path)],
            cwd=self.workdir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        if self.metrics_url:
            wait_for("the agent's /metrics", lambda: self.metrics_text(), timeout=15)
        return self

    def metrics_text(self) -> str:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"agent exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}"
            )
        with urllib.request.urlopen(self.metrics_url, timeout=2) as resp:
            return str(resp.read().decode())

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of the first series `name` whose labels include `labels`."""
        for line in self.metrics_text().splitlines():
            if line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            metric_name, _, label_text = series.partition("{")
            if metric_name != name:
                continue
            if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
                return float(value)
        return None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=15)
        self.log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if hasattr(self, "log") and not self.log.closed:
            self.log.close()


class MotoServer:
    """`moto_server` (CloudWatch and friends) on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str | None:
        return shutil.which("moto_server", path=str(VENV_BIN)) or shutil.which("moto_server")

    def start(self) -> MotoServer:
        binary = self.binary()
        assert binary, "moto_server not found"
        self.proc = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(
            "moto_server", lambda: self.client().list_metrics() is not None, timeout=20, every=0.2
        )
        return self

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "cloudwatch",
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class TcpProxy:
    """A switchable forwarder: `down()` refuses connections (an outage), `up()` restores them."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        self._stop.clear()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()


class FakeImds:
    """EC2 IMDSv2 on 127.0.0.1: token required (401 without), spot instance-action on demand."""

    TOKEN = "fake-imds-token"

    def __init__(self, instance_id: str = "i-0abc1234567890def", lifecycle: str = "spot") -> None:
        self.instance_id = instance_id
        self.values = {
            "meta-data/instance-id": instance_id,
            "meta-data/instance-type": "p5.48xlarge",
            "meta-data/placement/region": "us-east-1",
            "meta-data/instance-life-cycle": lifecycle,
        }
        self.spot_action: dict[str, str] | None = None
        self.unauthorised = 0
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                if self.path == "/latest/api/token" and self.headers.get(
                    "X-aws-ec2-metadata-token-ttl-seconds"
                ):
                    self._send(200, imds.TOKEN)
                else:
                    self._send(400, "")

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != imds.TOKEN:
                    imds.unauthorised += 1
                    self._send(401, "")
                    return
                path = self.path.removeprefix("/latest/")
                if path == "meta-data/spot/instance-action" and imds.spot_action:
                    self._send(200, json.dumps(imds.spot_action))
                elif path in imds.values:
                    self._send(200, imds.values[path])
                else:
                    self._send(404, "")

            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def agent_config(workdir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A fast config for tests: 0.1 s samples, 1 s windows, everything in `workdir`."""
    config: dict[str, Any] = {
        "agent": {"sample_interval_seconds": 0.1, "window_seconds": 1.0, "log_format": "json"},
        "spool": {"dir": str(workdir / "spool"), "fsync": True},
        "export": {"path": str(workdir / "windows.jsonl")},
        "prometheus": {"enabled": True, "listen": f"127.0.0.1:{free_port()}"},
        "metadata": {"provider": "none", "instance_id": "i-test", "region": "us-east-1"},
        "tags": {"finops:fleet": "it"},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


def spooled_records(spool_dir: Path) -> list[dict[str, Any]]:
    """Every complete record in the spool's segments right now."""
    out: list[dict[str, Any]] = []
    for segment in sorted(spool_dir.glob("seg-*.jsonl")):
        data = segment.read_text()
        out.extend(json.loads(line) for line in data.split("\n")[:-1] if line)
    return out


def exported_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]


def cloudwatch_windows(
    client: Any, instance_id: str, gpus: range, start: float, end: float
) -> dict[int, set[float]]:
    """window_start timestamps that reached CloudWatch, per GPU index (nvidia_smi_utilization_gpu)."""
    import datetime as dt

    queries = [
        {
            "Id": f"g{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "CWAgent",
                    "MetricName": "nvidia_smi_utilization_gpu",
                    "Dimensions": [
                        {"Name": "InstanceId", "Value": instance_id},
                        {"Name": "index", "Value": str(i)},
                    ],
                },
                "Period": 1,
                "Stat": "SampleCount",
            },
        }
        for i in gpus
    ]
    result = client.get_metric_data(
        MetricDataQueries=queries,
        StartTime=dt.datetime.fromtimestamp(start - 5, dt.UTC),
        EndTime=dt.datetime.fromtimestamp(end + 5, dt.UTC),
    )
    out: dict[int, set[float]] = {}
    for series in result["MetricDataResults"]:
        out[int(series["Id"][1:])] = {ts.timestamp() for ts in series["Timestamps"]}
    return out
