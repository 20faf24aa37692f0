"""Synthetic FOCUS 1.0 billing for benchmarks, the Spark test and the report's screenshot.

Deterministic (hash of the row number, no random state): N hourly charges over D days for a
dozen AI projects on AWS, GCP and Azure, each cloud with its own tag spelling (AWS `user:`
keys in Parquet exports' style, GCP labels `model-version`, Azure's lower case), a weekly
rhythm (dev and staging idle at weekends), about 7% untagged rows, savings-plan coverage
(BilledCost 0, EffectiveCost amortised) with its purchase lines, pipeline `Stage` tags, and a
runaway GPU fleet in `llm-finetune` for the last three days (the anomaly the report should
find). GPU hourly rates come from the project's catalog (on-demand, us-east-1).

    .venv/bin/python bench/focus_synth.py --rows 10000000 --out /tmp/focus-10m.parquet
    .venv/bin/python bench/focus_synth.py --rows 200000 --out demo.csv \
        --gpu-billing gpu.csv --windows windows.jsonl      # + GPU hosts and agent windows

`--gpu-billing`/`--windows` add six GPU instances billed hourly over the last two days and
their agent window records (5-minute windows, written by aifinops.agents.records), some of them idle.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# project, team, environment, model version, weight (share of rows)
PROJECTS = (
    ("llm-finetune", "ml-research", "staging", "llama-3-8b-ft7", 14),
    ("chat-serve", "assistant", "prod", "chat-v12", 13),
    ("vision-train", "ml-research", "dev", "vit-l-2026-02", 11),
    ("search-ranker", "search", "prod", "ranker-v44", 10),
    ("recsys", "personalization", "prod", "two-tower-v9", 9),
    ("embeddings", "search", "prod", "e5-large-v3", 8),
    ("speech-asr", "speech", "dev", "whisper-ft-4", 7),
    ("fraud-detect", "risk", "prod", "gbm-31", 6),
    ("doc-ocr", "platform", "dev", "ocr-v2", 5),
    ("forecast", "finance-ml", "staging", "tft-8", 5),
    ("labeling", "data", "dev", "none", 4),
    ("feature-store", "platform", "prod", "none", 3),
)
# provider, service, resource prefix, instance type (priced from the catalog) or flat $/h
SERVICES = (
    ("AWS", "Amazon Elastic Compute Cloud", "i-", "g5.12xlarge", 30),
    ("AWS", "Amazon Elastic Compute Cloud", "i-", "p4d.24xlarge", 6),
    (
        "AWS",
        "Amazon SageMaker",
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/",
        "ml.g5.2xlarge",
        12,
    ),
    ("AWS", "Amazon Simple Storage Service", "arn:aws:s3:::", 0.31, 14),
    ("AWS", "Amazon Elastic Block Store", "vol-", 0.11, 10),
    ("AWS", "AmazonCloudWatch", "arn:aws:logs:us-east-1:123456789012:log-group:", 0.05, 6),
    ("Google Cloud", "Compute Engine", "projects/ml-prod/zones/us-central1-a/instances/", 3.67, 10),
    (
        "Microsoft",
        "Virtual Machines",
        "/subscriptions/s1/resourceGroups/ml/providers/Microsoft.Compute/virtualMachines/",
        3.2,
        12,
    ),
)
STAGES = ("prepare", "train", "evaluate")


def _price(item: str | float) -> float:
    if isinstance(item, float | int):
        return float(item)
    from aifinops import catalog

    try:
        return float(catalog.lookup(item, "us-east-1").on_demand_usd_per_hour)
    except Exception:  # a type the catalog lost: a plausible GPU rate keeps the bench running
        return 5.0


def _case(values: list[str], index_sql: str) -> str:
    return (
        "CASE "
        + " ".join(f"WHEN {index_sql} = {i} THEN {v}" for i, v in enumerate(values))
        + " END"
    )


def _weighted(weights: list[int], hash_sql: str) -> str:
    """SQL: an index 0..len-1 drawn by weight from a hash."""
    total = sum(weights)
    bounds, acc = [], 0
    for w in weights:
        acc += w
        bounds.append(acc)
    parts = " ".join(f"WHEN ({hash_sql}) % {total} < {b} THEN {i}" for i, b in enumerate(bounds))
    return f"CASE {parts} END"


def focus_sql(rows: int, days: int, start: dt.date) -> str:
    """SELECT producing the synthetic FOCUS rows (DuckDB)."""
    q = "'"

    def lit(text: str) -> str:
        return q + text.replace(q, q + q) + q

    project = _weighted([p[4] for p in PROJECTS], "hash(i, 1)")
    service = _weighted([s[4] for s in SERVICES], "hash(i, 2)")
    rate = _case([f"{_price(s[3]):.6f}" for s in SERVICES], "s")
    provider = _case([lit(s[0]) for s in SERVICES], "s")
    service_name = _case([lit(s[1]) for s in SERVICES], "s")
    prefix = _case([lit(s[2]) for s in SERVICES], "s")
    names = [lit(p[0]) for p in PROJECTS]
    teams = [lit(p[1]) for p in PROJECTS]
    envs = [lit(p[2]) for p in PROJECTS]
    versions = [lit(p[3]) for p in PROJECTS]
    stage = _case([lit(s) for s in STAGES], "(hash(i, 5) % 3)")
    runaway_day = days - 3
    # the tag JSON as each cloud spells it
    aws_tags = (
        '\'{"user:Project": "\' || pn || \'", "user:Team": "\' || team || \'", '
        '"user:Environment": "\' || env || \'", "user:ModelVersion": "\' || mv || \'"\' || '
        "CASE WHEN pn = 'llm-finetune' THEN ', \"user:Stage\": \"' || stage || '\"' ELSE '' END || '}'"
    )
    gcp_tags = (
        '\'{"project": "\' || pn || \'", "team": "\' || team || \'", "environment": "\' '
        '|| env || \'", "model-version": "\' || mv || \'"}\''
    )
    azure_tags = (
        '\'{"project": "\' || pn || \'", "Team": "\' || team || \'", "environment": "\' '
        '|| env || \'", "ModelVersion": "\' || mv || \'"}\''
    )
    return f"""
WITH base AS (
  SELECT i, {project} AS p, {service} AS s,
         CAST(floor(i * {days}::DOUBLE / {rows}) AS INTEGER) AS d,
         CAST(hash(i, 3) % 24 AS INTEGER) AS h
  FROM range({rows}) t(i)
), named AS (
  SELECT *, {_case(names, "p")} AS pn, {_case(teams, "p")} AS team, {_case(envs, "p")} AS env,
         {_case(versions, "p")} AS mv, {stage} AS stage, {provider} AS provider,
         {service_name} AS service, {prefix} AS prefix, {rate} AS rate,
         DATE '{start.isoformat()}' + d AS day
  FROM base
), costed AS (
  SELECT *,
    -- dev and staging mostly stop at weekends; noise of +-20%
    rate * (CASE WHEN env <> 'prod' AND dayofweek(day) IN (0, 6) THEN 0.35 ELSE 1.0 END)
         * (0.8 + (hash(i, 4) % 400) / 1000.0)
         * (CASE WHEN pn = 'llm-finetune' AND s = 1 AND d >= {runaway_day} THEN 4.0 ELSE 1.0 END)
      AS list_cost,
    (hash(i, 7) % 100) < 7 AS untagged,
    provider = 'AWS' AND s IN (0, 1) AND (hash(i, 8) % 100) < 35 AS covered
  FROM named
)
SELECT
  CAST(day + INTERVAL (h) HOUR AS TIMESTAMP) AS ChargePeriodStart,
  CAST(day + INTERVAL (h + 1) HOUR AS TIMESTAMP) AS ChargePeriodEnd,
  DATE_TRUNC('month', day) AS BillingPeriodStart,
  'Usage' AS ChargeCategory,
  'USD' AS BillingCurrency,
  provider AS ProviderName,
  service AS ServiceName,
  CASE WHEN pn = 'llm-finetune' AND s = 1 AND d >= {runaway_day} AND hash(i, 9) % 3 = 0
       THEN 'i-0runaway' || (hash(i, 10) % 4)
       ELSE prefix || pn || '-' || (hash(i, 6) % 40) END AS ResourceId,
  '123456789012' AS SubAccountId,
  CASE WHEN untagged THEN NULL
       WHEN provider = 'Google Cloud' THEN {gcp_tags}
       WHEN provider = 'Microsoft' THEN {azure_tags}
       ELSE {aws_tags} END AS Tags,
  round(list_cost, 10) AS ListCost,
  round(CASE WHEN covered THEN 0 ELSE list_cost * 0.97 END, 10) AS BilledCost,
  round(CASE WHEN covered THEN list_cost * 0.72 ELSE list_cost * 0.97 END, 10) AS EffectiveCost
FROM costed
UNION ALL
-- the savings plan's daily fee: billed here, amortised onto the covered usage above
SELECT CAST(day AS TIMESTAMP), CAST(day + 1 AS TIMESTAMP), DATE_TRUNC('month', day), 'Purchase',
  'USD', 'AWS', 'Savings Plans for AWS Compute usage',
  'arn:aws:savingsplans::123456789012:savingsplan/sp-0demo', '123456789012', NULL,
  0, round(sum(list_cost * 0.72), 10), 0
FROM costed WHERE covered GROUP BY day
"""


def write_focus(
    path: Path, rows: int, days: int = 35, start: dt.date = dt.date(2026, 1, 5)
) -> None:
    """Write `rows` synthetic charges (+ one purchase line a day) to CSV or Parquet."""
    import duckdb

    fmt = "parquet" if path.suffix == ".parquet" else "csv"
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    options = (
        "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)"
        if fmt == "parquet"
        else "(FORMAT csv, HEADER true)"
    )
    con.execute(f"COPY ({focus_sql(rows, days, start)}) TO '{path}' {options}")
    con.close()


def write_gpu_demo(
    billing: Path, windows: Path, days: int = 35, start: dt.date = dt.date(2026, 1, 5)
) -> None:
    """Six GPU instances billed hourly over the last two days, and their agent windows."""
    from aifinops.agents.records import STAT_METRICS, HostInfo, WindowRecord

    hosts = [
        # instance, type, fleet, project, GPUs, idle share per GPU (0-1)
        (
            "i-0a1b2c3d4e5f60001",
            "g5.12xlarge",
            "train-vision",
            "vision-train",
            4,
            (0.0, 0.0, 0.9, 1.0),
        ),
        (
            "i-0a1b2c3d4e5f60002",
            "g5.12xlarge",
            "train-vision",
            "vision-train",
            4,
            (0.1, 0.1, 0.1, 0.1),
        ),
        (
            "i-0a1b2c3d4e5f60003",
            "p4d.24xlarge",
            "finetune-a100",
            "llm-finetune",
            8,
            (0.0,) * 4 + (1.0,) * 4,
        ),
        ("i-0a1b2c3d4e5f60004", "g5.2xlarge", "serve-chat", "chat-serve", 1, (0.6,)),
        ("i-0a1b2c3d4e5f60005", "g5.2xlarge", "serve-chat", "chat-serve", 1, (0.55,)),
        ("i-0a1b2c3d4e5f60006", "g5.12xlarge", "asr-batch", "speech-asr", 4, (1.0, 1.0, 1.0, 0.2)),
    ]
    first = dt.datetime.combine(start + dt.timedelta(days=days - 2), dt.time(), tzinfo=dt.UTC)
    lines = [
        "ChargePeriodStart,ChargePeriodEnd,ChargeCategory,BillingCurrency,ProviderName,ServiceName,ResourceId,Tags,ListCost,BilledCost,EffectiveCost"
    ]
    with windows.open("w", encoding="utf-8") as out:
        for instance, itype, fleet, project, gpus, idle in hosts:
            rate = _price(itype)
            host = HostInfo(
                instance,
                itype,
                "us-east-1",
                "on-demand",
                "aws",
                f"ip-10-1-0-{instance[-1]}",
                {"finops:fleet": fleet},
            )
            tags = '"{""user:Project"": ""' + project + '""}"'
            for hour in range(48):
                begin = first + dt.timedelta(hours=hour)
                end = begin + dt.timedelta(hours=1)
                lines.append(
                    f"{begin:%Y-%m-%dT%H:%M:%SZ},{end:%Y-%m-%dT%H:%M:%SZ},Usage,USD,AWS,"
                    f"Amazon Elastic Compute Cloud,{instance},{tags},{rate:.6f},{rate:.6f},{rate:.6f}"
                )
                for step in range(12):
                    window_start = begin + dt.timedelta(minutes=5 * step)
                    for gpu in range(gpus):
                        record = WindowRecord(
                            window_start=window_start.timestamp(),
                            window_end=window_start.timestamp() + 300,
                            host=host,
                            gpu_index=gpu,
                            gpu_uuid=f"GPU-{instance}-{gpu}",
                            gpu_name="NVIDIA A10G"
                            if itype.startswith("g5")
                            else "NVIDIA A100-SXM4-40GB",
                            lost=False,
                            sample_count=300,
                            stats={name: None for name in STAT_METRICS},
                            memory_total_bytes=None,
                            memory_reserved_bytes=None,
                            idle=idle[gpu] >= 0.99,
                            idle_sample_ratio=idle[gpu],
                            ecc_corrected_volatile=None,
                            ecc_uncorrected_volatile=None,
                            xid_error_count=0,
                            xid_last=None,
                            work_units={},
                            interruption_action=None,
                        )
                        out.write(record.to_line())
    billing.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--start", default="2026-01-05", help="first day (YYYY-MM-DD)")
    parser.add_argument("--out", type=Path, required=True, help=".parquet or .csv")
    parser.add_argument("--gpu-billing", type=Path, help="also write GPU hosts' hourly lines (CSV)")
    parser.add_argument("--windows", type=Path, help="... and their agent windows (JSON Lines)")
    args = parser.parse_args()
    start = dt.date.fromisoformat(args.start)
    began = time.perf_counter()
    write_focus(args.out, args.rows, args.days, start)
    print(f"wrote {args.rows:,} rows to {args.out} in {time.perf_counter() - began:.1f} s")
    if args.gpu_billing and args.windows:
        write_gpu_demo(args.gpu_billing, args.windows, args.days, start)
        print(f"wrote {args.gpu_billing} and {args.windows}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
