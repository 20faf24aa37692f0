"""Seed case: 8-hour runs of a vision job on on-demand p3.2xlarge, and how much of the saving
is rightsizing rather than spot.

Every current single-GPU type of the p3, g4dn, g5, g6 and g6e families that holds the job's
memory (peak plus headroom) is priced per completed run, on-demand and on spot, from the
catalog (prices, Spot Advisor ranges, V100-relative throughput). Work hours scale with
throughput; spot adds the expected rework and relaunch time from the interruption hazard
(`aifinops.rightsizing.spot`, the Spot Advisor share read over an 8-hour instance life, the
harshest reading). The recommended option is the cheapest per completed run whose expected
wall time is at most 15% longer.

Two sensitivity tables follow, because both of the recommendation's inputs are estimates:
the throughput ratio of the proposed chip to the V100 (the catalog's is a roofline proxy),
from 0.9 to 2.0; and the spot price, per availability zone of us-east-1, from a real price
history (2022-05-31; older than the catalog's on-demand snapshot; types launched since, such
as g6e, have none). Each shows the saving rightsizing adds beyond moving the same p3.2xlarge
to spot.

    .venv/bin/python bench/rightsizing_audit.py
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

from aifinops import catalog
from aifinops.catalog import InstanceInfo
from aifinops.rightsizing.spot import (
    Checkpointing,
    RunOption,
    best_option,
    hourly_hazard,
    run_option,
    run_options,
)

COMMAND = ".venv/bin/python bench/rightsizing_audit.py"
BASELINE = "p3.2xlarge"
FAMILIES = ("p3", "g4dn", "g5", "g6", "g6e")
REGION = "us-east-1"
LIFE_HOURS = 8.0
RATIOS = (0.9, 1.0, 1.2, 1.5, 2.0)
SPOT_HISTORY = (
    Path(__file__).parent / "data" / "aws_spot_price_history_2022-05_use1_accelerated.tsv"
)


def spot_by_az() -> dict[str, dict[str, float]]:
    """Instance type -> AZ id -> the last Linux spot price in the history, USD/h."""
    last: dict[str, dict[str, tuple[str, float]]] = defaultdict(dict)
    with SPOT_HISTORY.open() as f:
        for row in csv.DictReader(f, delimiter="\t"):
            seen = last[row["instance_type"]].get(row["az_id"])
            if seen is None or row["timestamp"] >= seen[0]:
                last[row["instance_type"]][row["az_id"]] = (
                    row["timestamp"],
                    float(row["usd_per_hour"]),
                )
    return {t: {az: price for az, (_, price) in zones.items()} for t, zones in last.items()}


def per_run(
    info: InstanceInfo,
    base: InstanceInfo,
    hours: float,
    ckpt: Checkpointing,
    *,
    spot: bool,
    price: float | None = None,
    throughput: float | None = None,
) -> RunOption:
    return run_option(
        info,
        hours,
        base.throughput_per_node,
        spot=spot,
        checkpointing=ckpt,
        life_hours=LIFE_HOURS,
        spot_usd_per_hour=price,
        throughput=throughput,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-hours", type=float, default=8.0, help="run length on the baseline")
    parser.add_argument(
        "--peak-memory-gib", type=float, default=12.0, help="the job's peak GPU memory"
    )
    parser.add_argument("--headroom", type=float, default=0.20)
    parser.add_argument("--checkpoint-minutes", type=float, default=30.0)
    parser.add_argument("--max-wall-increase", type=float, default=0.15)
    args = parser.parse_args()

    ckpt = Checkpointing(interval_hours=args.checkpoint_minutes / 60)
    baseline = catalog.lookup(BASELINE, REGION)
    candidates = [
        catalog.lookup(name, REGION)
        for name in catalog.instance_types("aws", "ec2")
        if name.split(".")[0] in FAMILIES
        and REGION in catalog.regions(name)
        and catalog.lookup(name, REGION).accelerator_count == 1
    ]
    need = args.peak_memory_gib * (1 + args.headroom)
    options = run_options(
        baseline,
        args.run_hours,
        candidates,
        checkpointing=ckpt,
        min_accelerator_memory_gib=need,
        life_hours=LIFE_HOURS,
    )
    base = per_run(baseline, baseline, args.run_hours, ckpt, spot=False)
    limit = base.expected_wall_hours * (1 + args.max_wall_increase)
    best = best_option(options, limit)

    print(
        f"Seed case: {args.run_hours:g} h runs of a vision job on on-demand {BASELINE} ({REGION})"
    )
    print(
        f"catalog {catalog.SNAPSHOT_DATE}; job peak memory {args.peak_memory_gib:g} GiB + "
        f"{args.headroom:.0%} headroom = {need:.1f} GiB per GPU; checkpoint every "
        f"{args.checkpoint_minutes:g} min ({ckpt.write_hours * 60:.0f} min to write, "
        f"{ckpt.restart_hours * 60:.0f} min to relaunch); interruption hazard per hour = "
        f"-ln(1 - monthly share) / {LIFE_HOURS:g} h (the Spot Advisor range's upper bound; "
        ">20% as 30%)"
    )
    print()
    header = (
        f"{'option':<24}{'GPU':>7}{'USD/h':>9}{'work h':>8}{'range':>8}{'hazard/h':>10}"
        f"{'E[intr]':>9}{'E[wall h]':>10}{'USD/run':>9}{'saving':>8}{'wall':>7}"
    )
    print(header)
    print("-" * len(header))
    for o in options:
        info = catalog.lookup(o.instance_type, REGION)
        hazard = (
            hourly_hazard(o.monthly_interruption_share, LIFE_HOURS)
            if o.monthly_interruption_share is not None
            else 0.0
        )
        saving = 1 - o.expected_usd_per_run / base.expected_usd_per_run
        wall = o.expected_wall_hours / base.expected_wall_hours - 1
        mark = " <- recommended" if o == best else ""
        print(
            f"{o.label:<24}{info.accelerator:>7}{o.usd_per_hour:>9.4f}{o.work_hours:>8.2f}"
            f"{o.interruption_range or '-':>8}{hazard:>10.5f}{o.expected_interruptions:>9.3f}"
            f"{o.expected_wall_hours:>10.2f}{o.expected_usd_per_run:>9.2f}{saving:>8.1%}"
            f"{wall:>+7.0%}{mark}"
        )
    print()
    spot_base = next(o for o in options if o.instance_type == BASELINE and o.spot)
    print(
        f"baseline  {base.label}: {base.expected_usd_per_run:.2f} USD per completed run, "
        f"{base.expected_wall_hours:.2f} h"
    )
    print(
        f"same type on spot  {spot_base.label}: {spot_base.expected_usd_per_run:.2f} USD per run "
        f"({1 - spot_base.expected_usd_per_run / base.expected_usd_per_run:.1%} cheaper), "
        f"{spot_base.expected_wall_hours:.2f} h"
    )
    if best is None:
        print("no option meets the wall-time limit")
        return 1
    pick = catalog.lookup(best.instance_type, REGION)
    saving = 1 - best.expected_usd_per_run / base.expected_usd_per_run
    beyond = (
        spot_base.expected_usd_per_run - best.expected_usd_per_run
    ) / base.expected_usd_per_run
    print(
        f"recommended  {best.label}: {best.expected_usd_per_run:.2f} USD per completed run, "
        f"{saving:.1%} cheaper, expected wall {best.expected_wall_hours:.2f} h "
        f"({best.expected_wall_hours / base.expected_wall_hours - 1:+.1%}); rightsizing adds "
        f"{beyond * 100:.1f} points beyond moving {BASELINE} to spot "
        f"({1 - best.expected_usd_per_run / spot_base.expected_usd_per_run:.1%} off the spot run)"
    )

    print()
    catalog_ratio = pick.throughput_per_node / baseline.throughput_per_node
    print(
        f"Throughput ratio of {pick.instance_type} ({pick.accelerator}) to {BASELINE} (V100): "
        f"catalog {catalog_ratio:.2f} (roofline proxy); per completed run"
    )
    header = (
        f"{'ratio':>6}{'wall h':>8}{'wall':>7}{'spot USD':>10}{'saving':>8}{'beyond spot':>12}"
        f"{'on-demand USD':>15}{'saving':>8}"
    )
    print(header)
    print("-" * len(header))
    for ratio in sorted({*RATIOS, round(catalog_ratio, 2)}):
        throughput = ratio * baseline.throughput_per_node
        spot = per_run(pick, baseline, args.run_hours, ckpt, spot=True, throughput=throughput)
        demand = per_run(pick, baseline, args.run_hours, ckpt, spot=False, throughput=throughput)
        wall = spot.expected_wall_hours / base.expected_wall_hours - 1
        print(
            f"{ratio:>6.2f}{spot.expected_wall_hours:>8.2f}{wall:>+7.0%}"
            f"{spot.expected_usd_per_run:>10.2f}"
            f"{1 - spot.expected_usd_per_run / base.expected_usd_per_run:>8.1%}"
            f"{(spot_base.expected_usd_per_run - spot.expected_usd_per_run) / base.expected_usd_per_run * 100:>+11.1f}p"
            f"{demand.expected_usd_per_run:>15.2f}"
            f"{1 - demand.expected_usd_per_run / base.expected_usd_per_run:>8.1%}"
        )

    print()
    zones = spot_by_az()
    print(
        f"Spot price per availability zone of {REGION} (real history, 2022-05-31 ~18:00-24:00 "
        "UTC, last price per zone; zones with no change in those hours are absent)"
    )
    header = (
        f"{'type':<14}{'AZ':<10}{'USD/h':>8}{'of OD':>7}{'USD/run':>9}{'saving':>8}{'wall':>7}"
        f"{'beyond p3 spot, same AZ':>25}"
    )
    print(header)
    print("-" * len(header))
    p3_zones = zones.get(BASELINE, {})
    cheapest = [o.instance_type for o in options if o.spot][:8]  # the 8 cheapest spot runs
    shown = [BASELINE] + [name for name in cheapest if name != BASELINE and name in zones]
    for name in dict.fromkeys(shown):
        info = catalog.lookup(name, REGION)
        for az, price in sorted(zones[name].items()):
            o = per_run(info, baseline, args.run_hours, ckpt, spot=True, price=price)
            p3 = p3_zones.get(az)
            versus = "-"
            if p3 is not None and name != BASELINE:
                same = per_run(baseline, baseline, args.run_hours, ckpt, spot=True, price=p3)
                points = (
                    (same.expected_usd_per_run - o.expected_usd_per_run)
                    / base.expected_usd_per_run
                    * 100
                )
                versus = f"{points:+.1f} points"
            print(
                f"{name:<14}{az:<10}{price:>8.4f}{price / info.on_demand_usd_per_hour:>7.0%}"
                f"{o.expected_usd_per_run:>9.2f}"
                f"{1 - o.expected_usd_per_run / base.expected_usd_per_run:>8.1%}"
                f"{o.expected_wall_hours / base.expected_wall_hours - 1:>+7.0%}{versus:>25}"
            )
    if best.instance_type not in zones:
        print(
            f"{best.instance_type}: no price in the 2022 history (launched since); its figures "
            "above use the catalog's spot price"
        )
    print(f"reproduce: {COMMAND}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
