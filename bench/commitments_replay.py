"""Commitment advice replayed on a real cluster's GPU demand (Alibaba GPU trace 2023).

Hourly demand: the GPUs (num_gpu x gpu_milli / 1000) of every scheduled pod of the trace
from its scheduled time to its deletion, over the trace's ~149 days, packed onto 8-GPU
p4d.24xlarge instances in us-east-1 (fractional instance-hours: perfect packing). The
advice (`aifinops.commitments`) is checked against a brute force over every whole number of
instances and compared with two rules of thumb: commit to the mean, commit to the peak.
Prices: catalog on-demand and the 1-year Standard RI rate (transcribed).

    .venv/bin/python bench/commitments_replay.py
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from aifinops import catalog
from aifinops.catalog.commitments import offers
from aifinops.commitments import HourlySeries
from aifinops.commitments.advise import advise, cost_usd

DATA = Path(__file__).parent / "data" / "alibaba_v2023_openb_pod_list_default.csv"
GPUS_PER_INSTANCE = 8


def hourly_instances(path: Path) -> list[float]:
    """Instances (8 GPUs each) in use in each clock hour of the trace."""
    seconds: dict[int, float] = {}
    for row in csv.DictReader(path.open()):
        if not row["scheduled_time"] or row["num_gpu"] == "0":
            continue  # never scheduled (pending), or no GPU
        gpus = float(row["num_gpu"]) * float(row["gpu_milli"]) / 1000
        start, end = float(row["scheduled_time"]), float(row["deletion_time"])
        t = start
        while t < end:
            hour = int(t // 3600)
            step = min(end, (hour + 1) * 3600) - t
            seconds[hour] = seconds.get(hour, 0.0) + gpus * step
            t += step
    first, last = min(seconds), max(seconds)
    return [seconds.get(h, 0.0) / 3600 / GPUS_PER_INSTANCE for h in range(first, last + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--type", default="p4d.24xlarge")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()
    demand = hourly_instances(DATA)
    info = catalog.lookup(args.type, args.region, cloud="aws")
    found = [o for o in offers(args.type, args.region) if o.offering == "aws-standard-ri"]
    series = HourlySeries("aws", args.region, args.type, tuple(demand), 0.0, source="alibaba 2023")
    advice = advise(series, found, info)
    assert advice.offer is not None
    rate, od = advice.offer.usd_per_hour, info.on_demand_usd_per_hour
    hours = len(demand)

    def monthly_saving(count: float) -> float:
        return (cost_usd(demand, 0, 0, od) - cost_usd(demand, count, rate, od)) * 730 / hours

    brute = max(range(int(max(demand)) + 2), key=lambda c: (round(monthly_saving(c), 6), -c))
    mean = sum(demand) / hours
    print(
        f"trace: {hours} hours ({hours / 24:.0f} days), {args.type} {args.region}: "
        f"on-demand ${od}/h, 1-year RI ${rate}/h (break-even {rate / od:.1%})"
    )
    print(
        f"demand in instances: floor (99 % of hours) {advice.floor_instances:.1f}, "
        f"mean {mean:.1f}, peak {max(demand):.1f}"
    )
    print(f"all on-demand: ${advice.on_demand_usd_per_month:,.0f}/month")
    print(
        f"recommended: {advice.committed_instances} instance(s), saving "
        f"${advice.saving_vs_on_demand_usd_per_month:,.0f}/month "
        f"({advice.saving_vs_on_demand_usd_per_month / advice.on_demand_usd_per_month:.1%}), "
        f"commitment used {advice.commitment_utilisation:.1%}"
    )
    print(
        f"brute force over 0..{int(max(demand)) + 1} instances: best {brute} "
        f"({'agrees' if brute == advice.committed_instances else 'DISAGREES'})"
    )
    for label, count in (
        ("commit to the mean", round(mean)),
        ("commit to the peak", round(max(demand))),
    ):
        print(f"{label}: {count} instance(s), saving ${monthly_saving(count):,.0f}/month")
    for drop in advice.risk:
        print(
            f"if {drop.drop_share:.0%} of the committed work goes: ${drop.saving_usd_per_month:+,.0f}/month"
        )
    print(
        f"loses money once more than {advice.drop_share_before_loss:.0%} of it goes; "
        f"term cost ${advice.commitment_usd_per_term:,.0f}"
    )
    vs_spot = advice.saving_vs_spot_usd_per_month
    if vs_spot is not None:
        verdict = (
            f"the commitment is ${vs_spot:,.0f}/month cheaper"
            if vs_spot >= 0
            else f"spot is ${-vs_spot:,.0f}/month cheaper for work that tolerates interruptions"
        )
        print(
            "the committed work on spot, with rework: "
            f"${advice.committed_work_on_spot_usd_per_month:,.0f}/month; {verdict}"
        )
    print("reproduce: .venv/bin/python bench/commitments_replay.py")


if __name__ == "__main__":
    main()
