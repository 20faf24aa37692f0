"""Policy throughput: the rules in process, the CrossGuard pack through the Analyzer protocol,
and the same rules through checkov on Terraform.

1. rules: normalise then evaluate every policy over N synthetic resources (Pulumi wire
   inputs: launch templates, Auto Scaling groups, instances, SageMaker endpoint
   configurations, GCP templates, buckets; many break a rule, the bench prints how many)
   -> resources/s;
2. pack: start `python -u -m pulumi.policy` as the engine does, `Configure`, then one `Analyze`
   per resource (latency per call: mean, p50, p95) and one `AnalyzeStack` over them all;
3. checkov: M generated Terraform resources of the same mix in one `.tf` file, scanned by
   checkov's own runner (`--external-checks-dir policies/checkov`, only the CKV_FINOPS checks)
   -> wall time, resources/s; the startup alone (an empty folder) is shown beside it.

    .venv/bin/python bench/policies_bench.py [--resources 10000] [--analyze 1000] [--terraform 500]

Figures are printed as a Markdown table with the command that produced them.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
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

from policies.analyzer import running_pack  # noqa: E402
from policies.context import Context  # noqa: E402
from policies.normalize import normalize  # noqa: E402
from policies.settings import resolve  # noqa: E402
from policies.verdicts import evaluate  # noqa: E402

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


def bench_rules(resources: list[Synthetic]) -> dict[str, float]:
    started = time.perf_counter()
    normalised = [
        normalize(r.type, r.name, r.inputs, urn=r.urn, region="us-east-1") for r in resources
    ]
    normalise_s = time.perf_counter() - started
    settings = resolve(None)
    started = time.perf_counter()
    violations = evaluate(normalised, Context(environment="dev"), settings)
    evaluate_s = time.perf_counter() - started
    return {
        "normalise_per_s": len(resources) / normalise_s,
        "evaluate_per_s": len(resources) / evaluate_s,
        "end_to_end_per_s": len(resources) / (normalise_s + evaluate_s),
        "violations": float(len(violations)),
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


def bench_checkov(count: int) -> dict[str, float]:
    binary = Path(os.environ.get("FINOPS_CHECKOV") or REPO / ".venv-checkov" / "bin" / "checkov")
    checks = ",".join(f"CKV_FINOPS_{n}" for n in (1, 2, 3, 4, 5, 6, 8))

    def scan(folder: str) -> float:
        command = [str(binary), "-d", folder, "--external-checks-dir", str(REPO / "policies" / "checkov"),
                   "--check", checks, "--skip-download", "--compact", "--quiet", "-o", "json",
                   "--framework", "terraform"]  # fmt: skip
        t0 = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode not in (0, 1):
            raise SystemExit(f"checkov failed: {done.stderr[-1000:]}")
        return time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as folder:
        Path(folder, "main.tf").write_text(terraform(count))
        baseline = scan(empty)
        wall = scan(folder)
    return {
        "startup_s": baseline,
        "wall_s": wall,
        "per_s": count / wall,
        "per_s_without_startup": count / max(wall - baseline, 1e-9),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--analyze", type=int, default=1_000)
    parser.add_argument("--terraform", type=int, default=500)
    args = parser.parse_args()
    command = "bench/policies_bench.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"# finops policies bench: `.venv/bin/python {command.strip()}`")
    print(f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{platform.machine()}")  # fmt: skip
    rules = bench_rules(synthetic(args.resources))
    pack = bench_pack(synthetic(args.analyze, seed=8))
    checkov = bench_checkov(args.terraform)
    print()
    print("| path | resources | figure |")
    print("|---|---:|---|")
    print(
        f"| rules in process (normalise + all 8 policies) | {args.resources:,} | "
        f"{rules['end_to_end_per_s']:,.0f} resources/s (normalise {rules['normalise_per_s']:,.0f}/s, "
        f"evaluate {rules['evaluate_per_s']:,.0f}/s; {rules['violations']:.0f} violations) |"
    )
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
    print(f"| checkov runner, CKV_FINOPS checks on `.tf` | {args.terraform:,} | "
          f"{checkov['wall_s']:.2f} s wall = {checkov['per_s']:,.0f} resources/s "
          f"(checkov start on an empty folder {checkov['startup_s']:.2f} s; "
          f"{checkov['per_s_without_startup']:,.0f} resources/s beyond it) |")  # fmt: skip


if __name__ == "__main__":
    main()
