"""The Prometheus source against a real Debian `prometheus` on 127.0.0.1.

Fourteen days of history are backfilled with `promtool tsdb create-blocks-from openmetrics`
(one sample per 5 minutes, the agent's metric names and labels), then the source's PromQL
runs on the server. Skipped with the reason when the binaries are absent.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import prometheus_backfill
import pytest

from aifinops import config as stack_config
from aifinops.rightsizing import Kind, PreviewPricer, recommend
from aifinops.rightsizing.prometheus import PrometheusSource, read_usage
from aifinops.rightsizing.spool import SourceError

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parents[1] / "fixtures" / "rightsizing" / "Pulumi.rs.yaml"
ROOT = Path(__file__).resolve().parents[2]
STEP = 300
DAYS = 14
END = (int(time.time()) // 3600) * 3600 - 3600  # a whole hour, in the recent past
SAMPLES = DAYS * 86400 // STEP

HOSTS = {
    # instance label: (instance id, type, fleet, per-GPU (util, FB MiB) before/after half-time)
    "10.0.0.1:9401": (
        "i-aaa",
        "p3.8xlarge",
        "train-a",
        [(25, 10240), (0, 300), (0, 300), (0, 300)],
    ),
    "10.0.0.2:9401": ("i-bbb", "g4dn.12xlarge", "train-b", [(85, 12288)] * 4),
}


def _openmetrics() -> str:
    lines = [
        "# TYPE DCGM_FI_DEV_GPU_UTIL gauge",
    ]
    util, fb, total, info, work = [], [], [], [], []
    for target, (instance_id, instance_type, fleet, gpus) in HOSTS.items():
        for k in range(SAMPLES):
            t = END - (SAMPLES - 1 - k) * STEP
            idle_half = fleet == "train-b" and k < SAMPLES // 2  # train-b idle the first week
            for index, (busy, memory) in enumerate(gpus):
                labels = (
                    f'instance="{target}",job="finops-agent",fleet="{fleet}",gpu="{index}",'
                    f'UUID="GPU-{instance_id}-{index}",device="nvidia{index}",modelName="Tesla",Hostname="h"'
                )
                util.append(f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} {0 if idle_half else busy} {t}")
                fb.append(f"DCGM_FI_DEV_FB_USED{{{labels}}} {memory} {t}")
                total.append(f"finops_agent_gpu_memory_total_bytes{{{labels}}} {16 * 1024**3} {t}")
            info.append(
                f'finops_agent_info{{instance="{target}",job="finops-agent",version="1",driver="550",'
                f'instance_id="{instance_id}",instance_type="{instance_type}",lifecycle="on-demand",'
                f'cloud="aws"}} 1 {t}'
            )
            if fleet == "train-a":
                work.append(
                    f'finops_agent_work_units_total{{instance="{target}",job="finops-agent",unit="steps"}} '
                    f"{100 * k} {t}"
                )
    lines += util
    lines += ["# TYPE DCGM_FI_DEV_FB_USED gauge", *fb]
    lines += ["# TYPE finops_agent_gpu_memory_total_bytes gauge", *total]
    lines += ["# TYPE finops_agent_info gauge", *info]
    lines += ["# TYPE finops_agent_work_units counter", *work]
    return "\n".join(lines) + "\n# EOF\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not prometheus_backfill.available():
        pytest.skip("prometheus/promtool not installed (Debian: apt-get install prometheus)")
    with prometheus_backfill.start_prometheus(
        tmp_path_factory.mktemp("prom"), _openmetrics()
    ) as url:
        yield url


def test_per_gpu_figures_are_aggregated_on_the_server(prometheus: str) -> None:
    usages = read_usage(PrometheusSource(prometheus), lookback_days=DAYS, end=END)
    by_key = {(u.host, u.gpu_index): u for u in usages}
    assert sorted(by_key) == [("i-aaa", i) for i in range(4)] + [("i-bbb", i) for i in range(4)]
    a0 = by_key[("i-aaa", 0)]
    assert (a0.instance_type, a0.fleet, a0.lifecycle) == ("p3.8xlarge", "train-a", "on-demand")
    assert a0.util_p95_percent == 25
    assert a0.util_mean_percent == pytest.approx(25)
    assert a0.memory_peak_gib == pytest.approx(10.0)
    assert a0.memory_total_gib == pytest.approx(16.0)
    assert a0.intervals in (SAMPLES - 1, SAMPLES)
    assert a0.idle_hours_share == 0
    assert len(a0.observed_hours) in (DAYS * 24 - 1, DAYS * 24)
    assert a0.work_per_hour["steps"] == pytest.approx(1200, rel=0.01)
    assert a0.work_hours >= DAYS * 24 - 2
    assert by_key[("i-aaa", 1)].util_p95_percent == 0
    assert by_key[("i-aaa", 1)].idle_hours_share == 1
    b0 = by_key[("i-bbb", 0)]
    assert b0.util_p95_percent == 85
    assert b0.util_mean_percent == pytest.approx(42.5, abs=0.1)
    assert b0.util_mean_p95_percent == 85
    assert b0.idle_hours_share == pytest.approx(0.5, abs=0.01)
    assert b0.sm_active_p95 is None  # no DCGM_FI_PROF_SM_ACTIVE before Hopper
    assert b0.host_cpu_p95_percent is None  # not read from Prometheus: unknown


def test_prometheus_usage_drives_the_recommendations(prometheus: str) -> None:
    usages = read_usage(PrometheusSource(prometheus), lookback_days=DAYS, end=END)
    pricer = PreviewPricer(stack_config.read_stack_file(FIXTURE), ROOT)
    reports = recommend(stack_config.load(FIXTURE), usages, pricer)
    kept = {r.target: r.recommendation.kinds if r.recommendation else () for r in reports}
    assert kept == {
        "train-a": (Kind.FEWER_ACCELERATORS, Kind.SPOT_WITH_FALLBACK),
        "train-b": (Kind.SPOT_WITH_FALLBACK,),  # busy half the window: never scaled to zero
        "serve-a": (),
    }
    assert reports[0].evidence is not None
    assert reports[0].evidence.source == f"prometheus {prometheus}"


def test_unreachable_server_is_one_clear_error() -> None:
    port = _free_port()
    with pytest.raises(SourceError, match=r"cannot connect .* check --source prometheus:URL"):
        read_usage(PrometheusSource(f"http://127.0.0.1:{port}", timeout_seconds=2), end=END)
