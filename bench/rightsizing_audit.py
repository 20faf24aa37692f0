"""Training-run audit: a PyTorch vision job on on-demand p3.2xlarge, 8-hour runs.

Every current single-GPU type of the p3, g4dn, g5, g6 and g6e families that holds the job's
memory (peak plus headroom) is priced per completed run, on-demand and on spot, from the
catalog (prices, Spot Advisor ranges, V100-relative throughput). Work hours scale with
throughput; spot adds the expected rework and relaunch time from the interruption hazard
(`finops.rightsizing.spot`). Goal: the recommended option costs at least 75% less per
completed run than the baseline (the classic target is 40%) with an expected wall time at
most 15% longer.

    .venv/bin/python bench/rightsizing_audit.py
"""

from __future__ import annotations

import argparse

from finops import catalog
from finops.rightsizing.spot import (
    Checkpointing,
    best_option,
    hourly_hazard,
    run_option,
    run_options,
)

COMMAND = ".venv/bin/python bench/rightsizing_audit.py"
BASELINE = "p3.2xlarge"
FAMILIES = ("p3", "g4dn", "g5", "g6", "g6e")
REGION = "us-east-1"


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
        baseline, args.run_hours, candidates, checkpointing=ckpt, min_accelerator_memory_gib=need
    )
    base = run_option(
        baseline, args.run_hours, baseline.throughput_per_node, spot=False, checkpointing=ckpt
    )
    limit = base.expected_wall_hours * (1 + args.max_wall_increase)
    best = best_option(options, limit)

    print(
        f"Training-run audit: {args.run_hours:g} h runs of a vision job on on-demand {BASELINE} ({REGION})"
    )
    print(
        f"catalog {catalog.SNAPSHOT_DATE}; job peak memory {args.peak_memory_gib:g} GiB + {args.headroom:.0%} "
        f"headroom = {need:.1f} GiB per GPU; checkpoint every {args.checkpoint_minutes:g} min "
        f"({ckpt.write_hours * 60:.0f} min to write, {ckpt.restart_hours * 60:.0f} min to relaunch)"
    )
    print(
        "interruption hazard per hour = -ln(1 - monthly share) / 730, monthly share = the upper "
        "bound of the Spot Advisor range (>20% taken as 30%)"
    )
    print()
    header = (
        f"{'option':<24}{'GPU':>7}{'USD/h':>9}{'work h':>8}{'range':>8}{'hazard/h':>10}"
        f"{'E[intr]':>9}{'E[wall h]':>10}{'USD/run':>9}{'saving':>8}{'wall':>7}  goal"
    )
    print(header)
    print("-" * len(header))
    for o in options:
        info = catalog.lookup(o.instance_type, REGION)
        hazard = (
            hourly_hazard(o.monthly_interruption_share)
            if o.monthly_interruption_share is not None
            else 0.0
        )
        saving = 1 - o.expected_usd_per_run / base.expected_usd_per_run
        wall = o.expected_wall_hours / base.expected_wall_hours - 1
        meets = "yes" if saving >= 0.75 and o.expected_wall_hours <= limit else ""
        mark = " <- recommended" if o == best else ""
        print(
            f"{o.label:<24}{info.accelerator:>7}{o.usd_per_hour:>9.4f}{o.work_hours:>8.2f}"
            f"{o.interruption_range or '-':>8}{hazard:>10.6f}{o.expected_interruptions:>9.4f}"
            f"{o.expected_wall_hours:>10.2f}{o.expected_usd_per_run:>9.2f}{saving:>8.1%}{wall:>+7.0%}  {meets}{mark}"
        )
    print()
    print(
        f"baseline  {base.label}: {base.expected_usd_per_run:.2f} USD per completed run, {base.expected_wall_hours:.2f} h"
    )
    spot_base = next(o for o in options if o.instance_type == BASELINE and o.spot)
    print(
        f"classic   {spot_base.label}: {spot_base.expected_usd_per_run:.2f} USD per run "
        f"({1 - spot_base.expected_usd_per_run / base.expected_usd_per_run:.1%} cheaper; classic target 40%), "
        f"{spot_base.expected_wall_hours:.2f} h"
    )
    if best is None:
        print("no option meets the wall-time limit")
        return 1
    saving = 1 - best.expected_usd_per_run / base.expected_usd_per_run
    wall = best.expected_wall_hours / base.expected_wall_hours - 1
    print(
        f"recommended {best.label}: {best.expected_usd_per_run:.2f} USD per completed run, "
        f"{saving:.1%} cheaper (goal >= 75%), expected wall {best.expected_wall_hours:.2f} h "
        f"({wall:+.1%}; goal <= +15%) -> {'goal met' if saving >= 0.75 and wall <= 0.15 else 'goal NOT met'}"
    )
    print(f"reproduce: {COMMAND}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
