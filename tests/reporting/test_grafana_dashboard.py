"""Every PromQL query of the Grafana dashboard (agents/deploy/grafana-dashboard.json) on a
real Debian `prometheus` holding three hours of agent data, with the instance prices of
`finops dashboard` as recorded series; cost figures checked by hand.

Skipped with the reason when prometheus/promtool are absent (./dev setup installs them).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from aifinops import catalog
from aifinops.reporting.price_rules import price_rules

pytestmark = pytest.mark.integration
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
DASHBOARD = Path(__file__).resolve().parents[2] / "agents" / "deploy" / "grafana-dashboard.json"
STEP = 60
HOURS = 3
END = (int(time.time()) // 60) * 60 - 600  # a whole minute in the recent past
START = END - HOURS * 3600
# What Grafana puts in the queries (a 1-minute scrape: $__rate_interval = 4 x scrape).
VARIABLES = {
    "$__rate_interval": "4m",
    "$__range": f"{HOURS}h",
    "$fleet": ".*",
    "$instance": ".*",
    "$unit": "steps",
}
# target -> instance id, type, lifecycle, fleet, per-GPU (busy %, idle 0/1), steps/s
HOSTS = {
    "10.0.0.1:9401": (
        "i-aaa",
        "g5.12xlarge",
        "on-demand",
        "train-a",
        [(90, 0), (85, 0), (0, 1), (0, 1)],
        10,
    ),
    "10.0.0.2:9401": ("i-bbb", "g5.12xlarge", "spot", "train-a", [(95, 0)] * 4, 10),
    "10.0.0.3:9401": ("i-ccc", "g5.2xlarge", "on-demand", "serve-b", [(0, 1)], 0),
    "10.0.0.4:9401": ("i-ddd", "g5.2xlarge", "unknown", "serve-b", [(60, 0)], 0),
}


def _prices() -> str:
    return price_rules(["us-east-1"])


def _openmetrics(rules_text: str) -> str:
    families: dict[str, tuple[str, list[str]]] = {}

    def add(name: str, kind: str, sample: str) -> None:
        families.setdefault(name, (kind, []))[1].append(sample)

    times = range(START, END + 1, STEP)
    for target, (iid, itype, lifecycle, fleet, gpus, steps) in HOSTS.items():
        target_labels = f'instance="{target}",job="finops-agent",fleet="{fleet}"'
        for t in times:
            for index, (busy, idle) in enumerate(gpus):
                labels = (
                    f'{target_labels},gpu="{index}",UUID="GPU-{iid}-{index}",device="nvidia{index}",'
                    f'modelName="NVIDIA A10G",Hostname="h-{iid}"'
                )
                add("DCGM_FI_DEV_GPU_UTIL", "gauge", f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} {busy} {t}")
                add(
                    "DCGM_FI_PROF_SM_ACTIVE",
                    "gauge",
                    f"DCGM_FI_PROF_SM_ACTIVE{{{labels}}} {busy / 100} {t}",
                )
                add(
                    "DCGM_FI_DEV_FB_USED",
                    "gauge",
                    f"DCGM_FI_DEV_FB_USED{{{labels}}} {18000 if busy else 300} {t}",
                )
                add(
                    "DCGM_FI_DEV_FB_FREE",
                    "gauge",
                    f"DCGM_FI_DEV_FB_FREE{{{labels}}} {4000 if busy else 21700} {t}",
                )
                add(
                    "DCGM_FI_DEV_POWER_USAGE",
                    "gauge",
                    f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} {200 if busy else 60} {t}",
                )
                add(
                    "DCGM_FI_DEV_GPU_TEMP",
                    "gauge",
                    f"DCGM_FI_DEV_GPU_TEMP{{{labels}}} {70 if busy else 35} {t}",
                )
                xid = 79 if iid == "i-ddd" else 0
                add(
                    "DCGM_FI_DEV_XID_ERRORS",
                    "gauge",
                    f"DCGM_FI_DEV_XID_ERRORS{{{labels}}} {xid} {t}",
                )
                add(
                    "finops_agent_gpu_idle",
                    "gauge",
                    f"finops_agent_gpu_idle{{{labels}}} {idle} {t}",
                )
                add("finops_agent_gpu_lost", "gauge", f"finops_agent_gpu_lost{{{labels}}} 0 {t}")
            add(
                "finops_agent_info",
                "gauge",
                f'finops_agent_info{{{target_labels},version="1",driver="550",instance_id="{iid}",'
                f'instance_type="{itype}",lifecycle="{lifecycle}",cloud="aws"}} 1 {t}',
            )
            sink = f'{target_labels},sink="cloudwatch"'
            add(
                "finops_agent_spool_depth_records",
                "gauge",
                f"finops_agent_spool_depth_records{{{sink}}} 3 {t}",
            )
            add(
                "finops_agent_delivery_failures",
                "counter",
                f"finops_agent_delivery_failures_total{{{sink}}} {(t - START) // 600} {t}",
            )
            add(
                "finops_agent_last_delivery_timestamp_seconds",
                "gauge",
                f"finops_agent_last_delivery_timestamp_seconds{{{sink}}} {t - 30} {t}",
            )
            if steps:
                add(
                    "finops_agent_work_units",
                    "counter",
                    f'finops_agent_work_units_total{{{target_labels},unit="steps"}} {steps * (t - START)} {t}',
                )
            if iid == "i-bbb" and t >= END - 600:
                add(
                    "finops_agent_interruption_notice",
                    "gauge",
                    f'finops_agent_interruption_notice{{{target_labels},kind="interruption",'
                    f'action="terminate",time="2026-03-02T10:00:00Z"}} 1 {t}',
                )
    # the price series, as the generated recording rules write them
    for group in YAML(typ="safe").load(rules_text)["groups"]:
        for rule in group["rules"]:
            value = float(re.fullmatch(r"vector\(([0-9.]+)\)", rule["expr"]).group(1))
            labels = ",".join(f'{k}="{v}"' for k, v in rule["labels"].items())
            for t in times:
                add(rule["record"], "gauge", f"{rule['record']}{{{labels}}} {value} {t}")
    lines = []
    for name, (kind, samples) in families.items():
        lines.append(f"# TYPE {name} {kind}")
        lines += samples
    return "\n".join(lines) + "\n# EOF\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not (Path(PROMETHEUS).exists() and Path(PROMTOOL).exists()):
        pytest.skip("prometheus/promtool not installed (Debian: apt-get install prometheus)")
    folder = tmp_path_factory.mktemp("grafana-prom")
    source = folder / "history.om"
    source.write_text(_openmetrics(_prices()))
    subprocess.run(
        [
            PROMTOOL,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=24h",
            "-q",
            str(source),
            str(folder / "data"),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    (folder / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    port = _free_port()
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            "--storage.tsdb.retention.time=30d",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "prometheus.log").open("w"),
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
            pytest.fail(
                "prometheus did not become ready: "
                + (folder / "prometheus.log").read_text()[-2000:]
            )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _get(url: str, path: str, params: dict[str, Any]) -> Any:
    query = urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(f"{url}{path}?{query}", timeout=30) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def _substitute(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    assert "$" not in expr, expr
    return expr


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _targets() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in _dashboard()["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def _instant(url: str, expr: str) -> list[dict[str, Any]]:
    return list(_get(url, "/api/v1/query", {"query": _substitute(expr), "time": END})["result"])


def _by_title(title: str) -> str:
    return next(expr for t, expr in _targets() if t == title)


def test_every_query_answers_with_data(prometheus: str) -> None:
    targets = _targets()
    assert len(targets) >= 20
    for title, expr in targets:
        data = _get(
            prometheus,
            "/api/v1/query_range",
            {"query": _substitute(expr), "start": START + 600, "end": END, "step": STEP},
        )
        assert data["result"], f"{title}: no data for {expr}"
        for series in data["result"]:
            values = [float(v) for _, v in series["values"]]
            assert values and all(math.isfinite(v) for v in values), (title, series["metric"])


def test_variables_list_the_agents_labels(prometheus: str) -> None:
    found = {}
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
        assert match, variable["query"]
        selector, label = match.groups()
        values = _get(
            prometheus,
            f"/api/v1/label/{label}/values",
            {"match[]": _substitute(selector), "start": START, "end": END},
        )
        found[variable["name"]] = values
    assert found == {
        "fleet": ["serve-b", "train-a"],
        "instance": sorted(HOSTS),
        "unit": ["steps"],
    }


def test_cost_figures_by_hand(prometheus: str) -> None:
    od = {
        t: catalog.lookup(t, "us-east-1").on_demand_usd_per_hour
        for t in ("g5.12xlarge", "g5.2xlarge")
    }
    spot = catalog.lookup("g5.12xlarge", "us-east-1").spot_usd_per_hour
    assert spot is not None
    # i-aaa on-demand + i-bbb spot + i-ccc on-demand; i-ddd's lifecycle is unknown: no price
    fleet = od["g5.12xlarge"] + spot + od["g5.2xlarge"]
    [now] = _instant(prometheus, _by_title("Fleet cost now"))
    assert float(now["value"][1]) == pytest.approx(fleet)
    # idle: 2 of i-aaa's 4 GPUs, i-ccc's only GPU
    idle = od["g5.12xlarge"] * 2 / 4 + od["g5.2xlarge"]
    [idle_now] = _instant(prometheus, _by_title("Idle-GPU cost now"))
    assert float(idle_now["value"][1]) == pytest.approx(idle)
    [unpriced] = _instant(prometheus, _by_title("Instances without a price (UNKNOWN cost)"))
    assert float(unpriced["value"][1]) == 1
    [over_range] = _instant(prometheus, _by_title("Idle-GPU cost over the time range"))
    # 3 h of a constant rate, sampled every 5 minutes (36 or 37 samples by the range's ends)
    assert float(over_range["value"][1]) == pytest.approx(idle * HOURS, abs=idle * 5 / 60 + 1e-9)
    by_fleet = {
        s["metric"]["fleet"]: float(s["value"][1])
        for s in _instant(prometheus, _by_title("Idle-GPU cost by fleet"))
    }
    assert by_fleet == {
        "train-a": pytest.approx(od["g5.12xlarge"] / 2),
        "serve-b": pytest.approx(od["g5.2xlarge"]),
    }
    # train-a: (5.672 + spot) $/h over 2 x 10 steps/s = 72,000 steps/h
    per_thousand = {
        s["metric"]["fleet"]: float(s["value"][1])
        for s in _instant(prometheus, _by_title("Cost per 1,000 $unit"))
    }
    assert per_thousand == {"train-a": pytest.approx((od["g5.12xlarge"] + spot) / 72)}


def test_price_rules_load_and_evaluate(tmp_path: Path) -> None:
    if not Path(PROMTOOL).exists():
        pytest.skip("promtool not installed")
    rules = tmp_path / "prices.yml"
    rules.write_text(_prices())
    price = catalog.lookup("g5.12xlarge", "us-east-1").on_demand_usd_per_hour
    (tmp_path / "test.yml").write_text(
        json.dumps(
            {
                "rule_files": [str(rules)],
                "evaluation_interval": "5m",
                "tests": [
                    {
                        "interval": "5m",
                        "input_series": [],
                        "promql_expr_test": [
                            {
                                "expr": 'finops_instance_price_usd_per_hour{instance_type="g5.12xlarge", lifecycle="on-demand"}',
                                "eval_time": "10m",
                                "exp_samples": [
                                    {
                                        "labels": 'finops_instance_price_usd_per_hour{cloud="aws", region="us-east-1", instance_type="g5.12xlarge", lifecycle="on-demand"}',
                                        "value": price,
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        )
    )
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(tmp_path / "test.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_is_well_formed() -> None:
    dashboard = _dashboard()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__range", "__rate_interval"}
            assert used <= defined, (panel["title"], used)
    # no two panels overlap on the 24-column grid
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        area = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & area, panel["title"]
        assert g["x"] + g["w"] <= 24
        cells |= area


def test_finops_dashboard_writes_both_files(tmp_path: Path) -> None:
    from aifinops.cli import main

    assert main(["dashboard", "--out", str(tmp_path), "--region", "us-east-1"]) == 0
    assert json.loads((tmp_path / "finops-gpu-cost.json").read_text()) == _dashboard()
    assert (tmp_path / "finops-prices.rules.yml").read_text() == _prices()
    assert (
        main(
            ["dashboard", "--out", str(tmp_path), "--region", "us-east-1", "--region", "us-west-2"]
        )
        == 2
    )


def test_dashboard_only_uses_what_the_agent_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metric names and labels the queries read are the real agent's (stubbed NVML),
    apart from the scrape's target labels (instance, job, fleet) and the price rules."""
    import importlib.util
    import sys

    fake = Path(__file__).resolve().parents[1] / "agents" / "fake_nvml" / "pynvml.py"
    spec = importlib.util.spec_from_file_location("pynvml", fake)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    spec.loader.exec_module(module)
    module.configure("healthy8")
    from aifinops.agents.agent import Agent
    from aifinops.agents.config import parse_config
    from aifinops.agents.nvml import NvmlSampler
    from aifinops.agents.prom import build_registry, exposition

    cfg = parse_config(
        {
            "spool": {"dir": str(tmp_path / "spool")},
            "export": {"path": str(tmp_path / "w.jsonl")},
            "prometheus": {"enabled": False},
        }
    )
    agent = Agent(cfg, NvmlSampler())
    agent.start()
    agent.work.add_report({"unit": "steps", "amount": 5})
    agent.tick(1.0)
    text = exposition(build_registry(agent.snapshot)).decode()
    agent.close()
    exposed: dict[str, set[str]] = {}
    for family in re.findall(r"^# TYPE (\w+) ", text, re.M):  # families without samples too
        exposed.setdefault(family, set())
    for name, labels in re.findall(r"^(\w+)(?:\{([^}]*)\})? ", text, re.M):
        exposed.setdefault(name, set()).update(re.findall(r'(\w+)="', labels or ""))
    used = set(re.findall(r"\b(finops_agent_\w+|DCGM_FI_\w+)", DASHBOARD.read_text()))
    assert used and used <= set(exposed), used - set(exposed)
    assert {"instance_type", "lifecycle"} <= exposed["finops_agent_info"]
    assert "sink" in exposed["finops_agent_spool_depth_records"]
    assert {"gpu", "UUID"} <= exposed["DCGM_FI_DEV_GPU_UTIL"]
    assert "unit" in exposed["finops_agent_work_units_total"]
