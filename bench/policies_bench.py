"""Policy accuracy on real code, and throughput: the rules in process, `finops check` on
Terraform, the CrossGuard pack through the Analyzer protocol, and the same rules through checkov.

1. corpus: the hand-labelled public configurations of tests/fixtures/corpus, scored per policy
   for `finops check PATH` (the rules) and for checkov's runner with the CKV_FINOPS checks
   (a block's verdict covers all its instances there): true/false positives, false negatives,
   undecided (UNKNOWN; for checkov: left out of its report), precision, recall;
2. Terraform throughput: N generated resources in one `.tf` (launch templates, Auto Scaling
   groups, instances, SageMaker endpoint configurations, buckets; many break a rule), median
   of `--repeat` runs each:
   - cold: a new process per run, as CI runs it: `python -m aifinops check --no-stack DIR`, and
     `checkov -d DIR --external-checks-dir policies/checkov --check CKV_FINOPS_...` (its start
     on an empty folder shown beside it);
   - warm: one process, the first run discarded: `aifinops.cli.check.path_report` (read,
     normalise, judge), the rules alone over the normalised resources (`policies.evaluate`),
     and checkov's Terraform runner (bench/checkov_inprocess.py, in checkov's virtualenv);
3. rules over `--resources` synthetic Pulumi wire inputs (normalise, then every policy);
4. pack: start `python -u -m pulumi.policy` as the engine does, `Configure`, then one `Analyze`
   per resource (latency per call: mean, p50, p95) and one `AnalyzeStack` over them all.

    .venv/bin/python bench/policies_bench.py [--terraform 1000] [--repeat 5] [--resources 10000]
        [--analyze 1000] [--skip-checkov] [--skip-pack]

Figures are printed as Markdown tables with the command that produced them and the load
average before and after (the figures move with it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "policies"))

import corpus  # noqa: E402

from aifinops.cli.check import path_report  # noqa: E402
from aifinops.policies import iac, pricing  # noqa: E402
from aifinops.policies.analyzer import running_pack  # noqa: E402
from aifinops.policies.context import Context  # noqa: E402
from aifinops.policies.normalize import normalize  # noqa: E402
from aifinops.policies.settings import resolve  # noqa: E402
from aifinops.policies.verdicts import evaluate  # noqa: E402

TAGS = {"Project": "vision", "Team": "ml-platform", "Environment": "dev", "ModelVersion": "v1"}
GPU_TYPES = ["g5.xlarge", "g6.xlarge", "g5.12xlarge", "p4d.24xlarge", "p3.2xlarge", "p5.48xlarge"]


@dataclass
class Synthetic:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str = ""


def synthetic(count: int, seed: int = 7) -> list[Synthetic]:
    """A reproducible mix of resources (10% under-tagged, a quarter on large or old GPUs)."""
    rng = random.Random(seed)
    found = []
    inputs: dict[str, Any]
    for i in range(count):
        tags = dict(TAGS) if rng.random() > 0.1 else {"Project": "vision"}
        kind = i % 6
        gpu = rng.choice(GPU_TYPES if rng.random() < 0.25 else GPU_TYPES[:2])
        if kind == 0:
            token, inputs = "aws:ec2/launchTemplate:LaunchTemplate", {
                "instanceType": gpu, "tags": tags,
                "metadataOptions": {"httpTokens": rng.choice(["required"] * 9 + ["optional"])},
                "tagSpecifications": [{"resourceType": k, "tags": tags} for k in ("instance", "volume")],
            }  # fmt: skip
        elif kind == 1:
            token, inputs = "aws:autoscaling/group:Group", {
                "maxSize": rng.choice([2, 4, 8]), "minSize": 0, "desiredCapacity": 2,
                "mixedInstancesPolicy": {
                    "instancesDistribution": {"onDemandBaseCapacity": 0,
                                              "onDemandPercentageAboveBaseCapacity": rng.choice([0, 0, 0, 100])},
                    "launchTemplate": {"overrides": [{"instanceType": gpu}]},
                },
                "tags": [{"key": k, "value": v, "propagateAtLaunch": True} for k, v in tags.items()],
            }  # fmt: skip
        elif kind == 2:
            token, inputs = "aws:ec2/instance:Instance", {
                "instanceType": gpu, "tags": tags, "metadataOptions": {"httpTokens": "required"},
            }  # fmt: skip
        elif kind == 3:
            token, inputs = "aws:sagemaker/endpointConfiguration:EndpointConfiguration", {
                "productionVariants": [{"instanceType": rng.choice(["ml.inf2.xlarge", "ml.g5.xlarge"]),
                                        "initialInstanceCount": 2}],
                "tags": tags,
            }  # fmt: skip
        elif kind == 4:
            token, inputs = "gcp:compute/instanceTemplate:InstanceTemplate", {
                "machineType": rng.choice(["g2-standard-4", "a2-highgpu-1g"]),
                "scheduling": {"provisioningModel": "SPOT"},
                "labels": {"project": "vision", "team": "ml-platform", "environment": "dev",
                           "model-version": "v1"},
            }  # fmt: skip
        else:
            token, inputs = "aws:s3/bucketV2:BucketV2", {"tags": tags}
        name = f"r{i}"
        found.append(Synthetic(token, name, f"urn:pulumi:dev::finops::{token}::{name}", inputs))
    return found


def bench_rules(resources: list[Synthetic], repeat: int) -> dict[str, Any]:
    """normalise, then evaluate: (wall, CPU) medians of `repeat` runs after a discarded one."""
    settings = resolve(None)
    context = Context(environment="dev")

    def normalise() -> list[Any]:
        return [normalize(r.type, r.name, r.inputs, urn=r.urn, region="us-east-1")
                for r in resources]  # fmt: skip

    normalised = normalise()
    return {
        "normalise": median_s(normalise, repeat, discard_first=True),
        "evaluate": median_s(lambda: evaluate(normalised, context, settings), repeat, True),
        "violations": len(evaluate(normalised, context, settings)),
    }


def bench_pack(resources: list[Synthetic]) -> dict[str, float]:
    raw_config = {
        "aws:region": "us-east-1",
        "finops:tags": {k: v for k, v in TAGS.items() if k != "ModelVersion"},
    }
    started = time.perf_counter()
    with running_pack(raw_config) as pack:
        startup_s = time.perf_counter() - started
        pack.configure(resolve(None))
        for r in resources[:20]:  # warm-up: imports, catalog index
            pack.analyze(r.type, r.name, r.urn, r.inputs)
        latencies = []
        for r in resources:
            t0 = time.perf_counter()
            pack.analyze(r.type, r.name, r.urn, r.inputs)
            latencies.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pack.analyze_stack(resources, {})
        stack_s = time.perf_counter() - t0
    latencies.sort()
    return {
        "startup_s": startup_s,
        "analyze_mean_ms": statistics.fmean(latencies) * 1000,
        "analyze_p50_ms": latencies[len(latencies) // 2] * 1000,
        "analyze_p95_ms": latencies[int(len(latencies) * 0.95)] * 1000,
        "analyze_per_s": len(latencies) / sum(latencies),
        "analyze_stack_s": stack_s,
    }


def terraform(count: int, seed: int = 11) -> str:
    rng = random.Random(seed)
    tags = "\n".join(f'    {k} = "{v}"' for k, v in TAGS.items())
    blocks = []
    for i in range(count):
        gpu = rng.choice(GPU_TYPES if rng.random() < 0.25 else GPU_TYPES[:2])
        kind = i % 5
        if kind == 0:
            blocks.append(f'''resource "aws_launch_template" "lt_{i}" {{
  instance_type = "{gpu}"
  tags = {{
{tags}
  }}
  metadata_options {{
    http_tokens = "{rng.choice(["required"] * 9 + ["optional"])}"
  }}
  tag_specifications {{
    resource_type = "instance"
    tags = {{
{tags}
    }}
  }}
  tag_specifications {{
    resource_type = "volume"
    tags = {{
{tags}
    }}
  }}
}}''')
        elif kind == 1:
            blocks.append(f'''resource "aws_autoscaling_group" "asg_{i}" {{
  max_size         = {rng.choice([2, 4, 8])}
  min_size         = 0
  desired_capacity = 2
  mixed_instances_policy {{
    instances_distribution {{
      on_demand_base_capacity                  = 0
      on_demand_percentage_above_base_capacity = {rng.choice([0, 0, 0, 100])}
    }}
    launch_template {{
      launch_template_specification {{
        launch_template_id = "lt-0123"
      }}
      override {{
        instance_type = "{gpu}"
      }}
    }}
  }}
}}''')
        elif kind == 2:
            blocks.append(f'''resource "aws_instance" "vm_{i}" {{
  ami           = "ami-0123"
  instance_type = "{gpu}"
  tags = {{
{tags}
  }}
  metadata_options {{
    http_tokens = "required"
  }}
}}''')
        elif kind == 3:
            blocks.append(f'''resource "aws_sagemaker_endpoint_configuration" "ep_{i}" {{
  production_variants {{
    variant_name           = "main"
    model_name             = "model"
    instance_type          = "{rng.choice(["ml.inf2.xlarge", "ml.g5.xlarge"])}"
    initial_instance_count = 2
  }}
  tags = {{
{tags}
  }}
}}''')
        else:
            blocks.append(f"""resource "aws_s3_bucket" "b_{i}" {{
  bucket = "bucket-{i}"
  tags = {{
{tags}
  }}
}}""")
    return "\n\n".join(blocks) + "\n"


CHECKOV_PYTHON = REPO / ".venv-checkov" / "bin" / "python"
CHECK_IDS = ",".join(f"CKV_FINOPS_{n}" for n in (1, 2, 3, 4, 5, 6, 8))
POLICY_OF_CHECK = {"CKV_FINOPS_1": "required-tags", "CKV_FINOPS_2": "gpu-instance-oversized"}


def checkov_binary() -> Path:
    return Path(os.environ.get("FINOPS_CHECKOV") or REPO / ".venv-checkov" / "bin" / "checkov")


def in_checkov(*args: str) -> Any:
    """bench/checkov_inprocess.py in checkov's virtualenv: its JSON answer."""
    python = checkov_binary().parent / "python"
    command = [str(python), str(REPO / "bench" / "checkov_inprocess.py"), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"checkov failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def bench_corpus(with_checkov: bool) -> dict[str, dict[str, corpus.Score]]:
    environment, labels = corpus.labels()
    units = corpus.units()
    rules = {unit: corpus.rules_outcomes(unit, environment) for unit in units}
    scores = {"rules": corpus.score((x, corpus.outcome(rules[x.unit], x)) for x in labels)}
    if with_checkov:
        os.environ["FINOPS_ENVIRONMENT"] = environment
        answer = in_checkov("results", *(str(corpus.CORPUS / unit) for unit in units))
        checkov: dict[str, dict[tuple[str, str], str]] = {}
        for unit in units:
            found = checkov.setdefault(unit, {})
            for check_id, name, verdict in answer[str(corpus.CORPUS / unit)]:
                if check_id in POLICY_OF_CHECK:
                    said = "fail" if verdict == "FAILED" else "pass"
                    if found.get((name, POLICY_OF_CHECK[check_id])) != "fail":
                        found[(name, POLICY_OF_CHECK[check_id])] = said
        scores["checkov"] = corpus.score(
            (x, corpus.outcome(checkov[x.unit], x, per_block=True)) for x in labels
        )
    return scores


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def median_s(run: Any, repeat: int, discard_first: bool) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds) of `repeat` runs."""
    if discard_first:
        run()
    walls, cpus = [], []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), _cpu_s()
        run()
        walls.append(time.perf_counter() - started)
        cpus.append(_cpu_s() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def bench_terraform(folder: str, repeat: int, with_checkov: bool) -> dict[str, Any]:
    settings = resolve(None)
    figures: dict[str, Any] = {}

    def finops_cold() -> None:
        command = [sys.executable, "-m", "aifinops", "check", "--no-stack", "--environment", "dev",
                   folder]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        if done.returncode not in (0, 1):
            raise SystemExit(f"finops check failed: {done.stdout[-1000:]}{done.stderr[-1000:]}")

    figures["rules_cold"] = median_s(finops_cold, repeat, discard_first=False)
    figures["rules_warm"] = median_s(
        lambda: path_report([folder], settings, "dev"), repeat, discard_first=True
    )
    resources = [pricing.priced(r) for r in iac.scan([folder]).resources]
    figures["resources"] = len(resources)
    context = Context(environment="dev")
    figures["evaluate_warm"] = median_s(
        lambda: evaluate(resources, context, settings), repeat, discard_first=True
    )
    if not with_checkov:
        return figures

    def checkov_cold(target: str) -> None:
        command = [str(checkov_binary()), "-d", target, "--external-checks-dir",
                   str(REPO / "policies" / "checkov"), "--check", CHECK_IDS, "--skip-download",
                   "--compact", "--quiet", "-o", "json", "--framework", "terraform"]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode not in (0, 1):
            raise SystemExit(f"checkov failed: {done.stderr[-1000:]}")

    with tempfile.TemporaryDirectory() as empty:
        figures["checkov_start"] = median_s(lambda: checkov_cold(empty), repeat, False)
    figures["checkov_cold"] = median_s(lambda: checkov_cold(folder), repeat, False)
    warm = in_checkov("time", "--repeat", str(repeat + 1), folder)
    figures["checkov_warm"] = (
        statistics.median(warm["seconds"][1:]),
        statistics.median(warm["cpu_seconds"][1:]),
    )
    figures["checkov_resources"] = warm["resources"]
    return figures


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terraform", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--analyze", type=int, default=1_000)
    parser.add_argument("--skip-checkov", action="store_true")
    parser.add_argument("--skip-pack", action="store_true")
    args = parser.parse_args()
    with_checkov = not args.skip_checkov
    if with_checkov and not checkov_binary().exists():
        raise SystemExit(f"{checkov_binary()} is missing: run ./dev setup, or --skip-checkov")
    command = "bench/policies_bench.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"# finops policies bench: `.venv/bin/python {command.strip()}`")
    print(f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{platform.machine()}; load average {load()} at the start")  # fmt: skip

    scores = bench_corpus(with_checkov)
    print()
    print("## Corpus (tests/fixtures/corpus, labels.json)")
    print()
    print("| path | policy | TP | FP | FN | undecided | precision | recall |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for path, by_policy in scores.items():
        name = "`finops check PATH`" if path == "rules" else "checkov + CKV_FINOPS"
        for policy, x in by_policy.items():
            print(f"| {name} | `{policy}` | {x.tp} | {x.fp} | {x.fn} | {x.unknown} | "
                  f"{x.precision:.2f} | {x.recall:.2f} |")  # fmt: skip
    for path, by_policy in scores.items():
        for policy, x in by_policy.items():
            for unit, name, expected, said in x.misses:
                print(f"- {path} `{policy}`: {unit} `{name}`: label {expected}, said {said}")

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "main.tf").write_text(terraform(args.terraform))
        tf = bench_terraform(folder, args.repeat, with_checkov)
    n = tf["resources"]
    print()
    print(f"## Terraform: {n:,} generated resources in one file, median of {args.repeat}")
    print()
    print("CPU: seconds of CPU this process (and its children) used; resources per CPU-second")
    print("is the throughput of one unloaded core, wall the throughput under this load.")
    print()
    print("| path | process | wall s | CPU s | resources/s wall | resources/CPU-s |")
    print("|---|---|---:|---:|---:|---:|")

    def row(name: str, state: str, figure: tuple[float, float], count: int, note: str = "") -> None:
        wall, cpu = figure
        print(f"| {name} | {state} | {wall:.3f} | {cpu:.3f} | {count / wall:,.0f}{note} | "
              f"{count / max(cpu, 1e-9):,.0f} |")  # fmt: skip

    row("`finops check --no-stack DIR` (read, normalise, judge, report)", "cold (new process)",
        tf["rules_cold"], n)  # fmt: skip
    row("`path_report` (read, normalise, judge)", "warm", tf["rules_warm"], n)
    row("`evaluate` (the rules over normalised resources)", "warm", tf["evaluate_warm"], n)
    if with_checkov:
        m = tf["checkov_resources"]
        start = f" (start on an empty folder: {tf['checkov_start'][0]:.2f} s)"
        row("checkov CLI, CKV_FINOPS checks", "cold (new process)", tf["checkov_cold"], m, start)
        row("checkov Terraform runner, CKV_FINOPS checks", "warm", tf["checkov_warm"], m)

    rules = bench_rules(synthetic(args.resources), args.repeat)
    count = args.resources
    print()
    print(f"## Pulumi wire inputs: {count:,} synthetic resources, warm, median of {args.repeat}")
    print()
    print("| path | wall s | CPU s | resources/s wall | resources/CPU-s |")
    print("|---|---:|---:|---:|---:|")
    for name, key in (("normalise (wire inputs -> `Resource`)", "normalise"),
                      (f"`evaluate`, all 8 policies ({rules['violations']} violations)",
                       "evaluate")):  # fmt: skip
        wall, cpu = rules[key]
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {count / wall:,.0f} | "
              f"{count / max(cpu, 1e-9):,.0f} |")  # fmt: skip
    if not args.skip_pack:
        pack = bench_pack(synthetic(args.analyze, seed=8))
        print()
        print("| path | resources | figure |")
        print("|---|---:|---|")
        print(
            f"| CrossGuard pack, `Analyze` over gRPC | {args.analyze:,} | "
            f"{pack['analyze_mean_ms']:.2f} ms/resource mean (p50 {pack['analyze_p50_ms']:.2f}, "
            f"p95 {pack['analyze_p95_ms']:.2f}) = {pack['analyze_per_s']:,.0f} resources/s; "
            f"pack start {pack['startup_s']:.2f} s |"
        )
        print(
            f"| CrossGuard pack, one `AnalyzeStack` | {args.analyze:,} | "
            f"{pack['analyze_stack_s'] * 1000:,.0f} ms ({args.analyze / pack['analyze_stack_s']:,.0f} resources/s) |"
        )
    print()
    print(f"# load average {load()} at the end")


if __name__ == "__main__":
    main()
