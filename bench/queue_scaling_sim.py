"""Queue-depth scaling (`scaleOn`) of an AWS fleet, simulated minute by minute against moto's
SQS and Auto Scaling with the real controller (components/aws/lambdas/fallback_controller.py).

Jobs arrive in seeded bursts over a working day; each running node works on `--jobs-per-node`
jobs at a time, each taking `--job-minutes`; the controller runs once a minute, as its
schedule does. Printed: node-hours used against a fleet held at `nodes.max` for the day and
against one held at the size that keeps the same backlog, the peak, the minutes at zero, and
the minutes from the last job's end to zero nodes, with the spot price of the catalog.

moto launches instances at once: the simulated node count is the controller's decision, not
EC2's launch time (one to a few minutes on AWS), which comes on top.

    .venv/bin/python bench/queue_scaling_sim.py [--seed 7] [--hours 10]
"""

from __future__ import annotations

import argparse
import math
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from moto import mock_aws

from aifinops import catalog
from aifinops.components.aws.lambdas import fallback_controller as fc

REGION = "us-east-1"
INSTANCE_TYPE = "g5.xlarge"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def make_groups(asg: Any, ec2: Any, maximum: int) -> tuple[str, str]:
    template = ec2.create_launch_template(
        LaunchTemplateName="batch-lt",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": INSTANCE_TYPE},
    )["LaunchTemplate"]["LaunchTemplateId"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    names = ("batch-group", "batch-on-demand")
    for name in names:
        tags = [(fc.FLEET_MAX_TAG, str(maximum))] if name == names[0] else []
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=0,
            MaxSize=maximum,
            DesiredCapacity=0,
            VPCZoneIdentifier=subnet,
            LaunchTemplate={"LaunchTemplateId": template},
            Tags=[
                {
                    "ResourceId": name,
                    "ResourceType": "auto-scaling-group",
                    "Key": k,
                    "Value": v,
                    "PropagateAtLaunch": False,
                }
                for k, v in tags
            ],
        )
    return names


def running(asg: Any, names: tuple[str, str]) -> dict[str, str]:
    """Running instance id -> its group."""
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=list(names))
    return {
        i["InstanceId"]: g["AutoScalingGroupName"]
        for g in groups["AutoScalingGroups"]
        for i in g["Instances"]
        if i["LifecycleState"] in fc.RUNNING_STATES
    }


def arrivals(seed: int, minutes: int) -> dict[int, int]:
    """Bursts of 3-25 jobs, about one an hour in working hours, none in the last two hours."""
    rng = random.Random(seed)
    found: dict[int, int] = {}
    for minute in range(minutes - 120):
        if rng.random() < 1 / 60:
            found[minute] = rng.randint(3, 25)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hours", type=int, default=10)
    parser.add_argument("--max-nodes", type=int, default=8)
    parser.add_argument("--jobs-per-node", type=int, default=1)
    parser.add_argument("--job-minutes", type=int, default=20)
    parser.add_argument(
        "--no-protection",
        action="store_true",
        help="workers do not protect themselves from scale-in while they hold a job",
    )
    args = parser.parse_args()
    minutes = args.hours * 60
    plan = arrivals(args.seed, minutes)
    started = time.perf_counter()
    with mock_aws():
        asg = boto3.client("autoscaling", region_name=REGION)
        ec2 = boto3.client("ec2", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        names = make_groups(asg, ec2, args.max_nodes)
        url = sqs.create_queue(QueueName="batch-jobs")["QueueUrl"]
        held: dict[str, list[tuple[str, int]]] = {}
        node_minutes, peak, zero_minutes, last_job_end, zero_at = 0, 0, 0, -1, None
        restarted = 0
        for minute in range(minutes):
            for start in range(0, plan.get(minute, 0), 10):
                count = min(10, plan[minute] - start)
                sqs.send_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "MessageBody": "job"} for i in range(count)],
                )
            for name in names:  # what the Auto Scaling service does on its own: reach desired
                group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
                desired = group["AutoScalingGroups"][0]["DesiredCapacity"]
                asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=desired)
            nodes = running(asg, names)
            for node in [n for n in held if n not in nodes]:
                for receipt, _ in held.pop(node):
                    restarted += 1
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0
                    )
            for node in nodes:
                jobs = held.setdefault(node, [])
                for receipt, done in jobs:
                    if done <= minute:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=receipt)
                        last_job_end = minute
                jobs[:] = [(r, d) for r, d in jobs if d > minute]
                free = args.jobs_per_node - len(jobs)
                if free > 0:
                    got = sqs.receive_message(
                        QueueUrl=url, MaxNumberOfMessages=min(10, free), VisibilityTimeout=43200
                    ).get("Messages", [])
                    jobs += [(m["ReceiptHandle"], minute + args.job_minutes) for m in got]
                if not args.no_protection:  # what docs/components-aws.md asks of a worker
                    asg.set_instance_protection(
                        InstanceIds=[node],
                        AutoScalingGroupName=nodes[node],
                        ProtectedFromScaleIn=bool(jobs),
                    )
            demand = fc.QueueDemand(
                jobs=fc.read_queue_jobs(sqs, url),
                jobs_per_node=args.jobs_per_node,
                nodes_min=0,
            )
            fc.reconcile(
                asg,
                names[0],
                names[1],
                timedelta(minutes=10),
                now=T0 + timedelta(minutes=minute),
                demand=demand,
            )
            count = len(running(asg, names))
            if minute % 30 == 0:
                print(
                    f"  minute {minute:4d}: {demand.jobs:3d} jobs queued or running, {count} nodes",
                    flush=True,
                )
            node_minutes += count
            peak = max(peak, count)
            zero_minutes += count == 0
            if count == 0 and demand.jobs == 0 and zero_at is None and minute > max(plan):
                zero_at = minute
    elapsed = time.perf_counter() - started
    price = catalog.lookup(INSTANCE_TYPE, REGION).usd_per_hour(True)
    jobs_total = sum(plan.values())
    always_max = args.max_nodes * minutes
    # a fixed fleet that gives the same mean backlog per node would need at least this many
    steady = math.ceil(jobs_total * args.job_minutes / args.jobs_per_node / minutes)
    print(
        f"{jobs_total} jobs in {len(plan)} bursts over {args.hours} h, {args.job_minutes} min each, "
        f"{args.jobs_per_node} per node, nodes.max {args.max_nodes}; {INSTANCE_TYPE} spot "
        f"${price:.4f}/h (catalog {catalog.SNAPSHOT_DATE})"
    )
    print(
        f"queue-scaled: {node_minutes / 60:.1f} node-hours (${node_minutes / 60 * price:.2f}), "
        f"peak {peak} nodes, {zero_minutes} of {minutes} minutes at zero; {restarted} jobs "
        f"lost their node to a scale-in ({'without' if args.no_protection else 'with'} "
        "scale-in protection while working)"
    )
    print(
        f"held at nodes.max: {always_max / 60:.1f} node-hours (${always_max / 60 * price:.2f}); "
        f"held at the mean load ({steady} nodes): {steady * minutes / 60:.1f} node-hours"
    )
    if zero_at is not None:
        print(
            f"last job ended at minute {last_job_end}; zero nodes at minute {zero_at} "
            f"({zero_at - last_job_end} min later; documented: within {fc.SCALE_TO_ZERO_MINUTES})"
        )
    flag = " --no-protection" if args.no_protection else ""
    print(
        f"simulated in {elapsed:.1f} s: .venv/bin/python bench/queue_scaling_sim.py "
        f"--seed {args.seed} --hours {args.hours}{flag}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
