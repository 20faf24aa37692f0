"""Reversion simulation: lost GPU-hours of work and cost of the old and the new return to spot.

A training fleet of D nodes (spot-with-fallback) runs one synchronous data-parallel job on
exactly D nodes. Minute by minute, spot capacity follows a trace; the fallback controller
(the real `decide` of components/aws/lambdas/fallback_controller.py for the new reversion,
the previous version, copied below as `old_decide`, for the old) sets both groups' desired
capacity; the groups launch and remove nodes; the job runs, checkpoints every 30 minutes,
and restarts when a member leaves.

- Old: spot counts as back as soon as it is pending or in service; the on-demand excess is cut
  at once, with no warning (no lifecycle hook): the job loses everything since its last
  checkpoint, then restarts.
- New: spot counts as back once in service for `--stable-minutes`; one on-demand node is
  drained per run, through the lifecycle hook: the job checkpoints first (2 minutes), so it
  only restarts.

Spot availability traces. No minute-level public trace of spot capacity exists in our data:
the traces are drawn per instance type from the AWS Spot Instance Advisor's interruption
band of that type in us-east-1 (real public data, in the catalog: finops/catalog/data,
`interruption_index`), read as instances living 24 hours (aifinops.rightsizing.spot), which
gives the rate of capacity losses for a fleet of D nodes. Each loss takes away half the
fleet's spot capacity for an exponential outage (mean `--outage-minutes`); capacity then comes
back in `--flaps` short returns (3-12 minutes each, 5-20 minutes apart) before it stays:
the flapping that makes reversion churn. The model's parameters are printed with the
figures; `--flaps 0` is a pool that returns for good at once.

Lost GPU-hours: rolled-back work (GPUs x minutes since the last checkpoint) + restarts
(GPUs x `--restart-minutes`) + GPUs paid while the job cannot run (fewer than D nodes).
Cost: node-hours at the catalog's spot and on-demand prices.

    .venv/bin/python bench/reversion_sim.py
    .venv/bin/python bench/reversion_sim.py --flaps 0 --days 30 --seeds 5
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aifinops import catalog
from aifinops.components.aws.lambdas.fallback_controller import Decision, FleetState, decide
from aifinops.rightsizing.spot import hazard_of

COMMAND = ".venv/bin/python bench/reversion_sim.py"
REGION = "us-east-1"
TYPES = ("g5.12xlarge", "g6e.xlarge", "g4dn.12xlarge", "p4d.24xlarge")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPOT_PENDING_MINUTES = 2
ON_DEMAND_PENDING_MINUTES = 3
CHECKPOINT_HOOK_MINUTES = 2  # the job saves before the drained node goes (new reversion)


def old_decide(state: FleetState, now: datetime, fallback_after: timedelta) -> Decision:
    """The fallback controller's decision before issue 20 (pending spot counts, drain at once)."""
    fleet_max = max(0, state.fleet_max)
    desired = min(max(0, state.fleet_desired), fleet_max)
    spot = max(0, state.spot_in_service + state.spot_pending)
    missing = max(0, desired - spot)
    on_demand = min(state.on_demand_desired, missing)
    since = state.shortfall_since
    if missing > on_demand:
        since = since or now
        if now - since >= fallback_after:
            on_demand, since = missing, None
    else:
        since = None
    on_demand = max(0, min(on_demand, fleet_max - spot))
    return Decision(max(0, min(desired, fleet_max - on_demand)), on_demand, since, "old")


def spot_trace(
    hazard_per_node_hour: float,
    nodes: int,
    minutes: int,
    outage_minutes: float,
    flaps: int,
    rng: random.Random,
) -> list[int]:
    """Spot capacity available to the fleet, per minute (nodes)."""
    plenty = nodes * 2
    low = nodes // 2
    trace = [plenty] * minutes
    rate = hazard_per_node_hour * nodes / 60  # capacity losses per minute for the fleet

    def short(start: int, length: int) -> None:
        for m in range(max(0, start), min(start + length, minutes)):
            trace[m] = low

    t = 0
    while rate > 0:
        t += int(rng.expovariate(rate)) + 1
        if t >= minutes:
            break
        cursor = t + max(1, int(rng.expovariate(1 / outage_minutes)))
        short(t, cursor - t)
        for _ in range(flaps):  # back for 3-12 minutes, gone again for 5-20
            cursor += rng.randint(3, 12)
            gone = rng.randint(5, 20)
            short(cursor, gone)
            cursor += gone
        t = cursor
    return trace


@dataclass
class Node:
    spot: bool
    ready_at: int
    leaving_at: int | None = None  # drained through the lifecycle hook (new reversion)


@dataclass
class Tally:
    spot_node_minutes: int = 0
    on_demand_node_minutes: int = 0
    rollback_gpu_minutes: float = 0.0
    restart_gpu_minutes: float = 0.0
    stalled_gpu_minutes: float = 0.0
    unwarned_removals: int = 0
    drains: int = 0
    restarts: int = 0
    log: list[str] = field(default_factory=list)


def run(
    trace: list[int],
    nodes: int,
    gpus: float,
    *,
    new: bool,
    fallback_after: timedelta,
    stable_for: timedelta,
    checkpoint_minutes: int,
    restart_minutes: int,
) -> Tally:
    tally = Tally()
    spot: list[Node] = []
    on_demand: list[Node] = []
    spot_desired, od_desired = nodes, 0
    since: datetime | None = None
    history: tuple[tuple[int, datetime], ...] = ()
    members: set[int] = set()  # id() of the job's nodes
    running, since_ckpt, restart_left = False, 0, 0

    def stop(warned: bool) -> None:
        """A member left: the job stops (rolling back unless it was warned) and restarts."""
        nonlocal running, since_ckpt, restart_left
        if running and not warned:
            tally.rollback_gpu_minutes += since_ckpt * nodes * gpus
        running, since_ckpt, restart_left = False, 0, 0
        members.clear()

    for minute, available in enumerate(trace):
        now = T0 + timedelta(minutes=minute)
        # spot reclaimed beyond capacity: 2-minute notice, the agent's hook checkpoints
        while len(spot) > available:
            gone = spot.pop()
            if id(gone) in members:
                stop(warned=True)
        # drained nodes whose checkpoint is done leave
        for node in [n for n in on_demand if n.leaving_at is not None and n.leaving_at <= minute]:
            on_demand.remove(node)
        # the groups move towards their desired capacity
        if len(spot) < spot_desired:
            spot += [
                Node(True, minute + SPOT_PENDING_MINUTES)
                for _ in range(min(spot_desired, available) - len(spot))
            ]
        while len(spot) > spot_desired:
            gone = spot.pop()
            if id(gone) in members:
                stop(warned=new)
        staying = [n for n in on_demand if n.leaving_at is None]
        if len(staying) < od_desired:
            on_demand += [
                Node(False, minute + ON_DEMAND_PENDING_MINUTES)
                for _ in range(od_desired - len(staying))
            ]
        excess = len(staying) - od_desired
        for node in sorted(staying, key=lambda n: -n.ready_at)[: max(0, excess)]:
            if new:  # Terminating:Wait: the job checkpoints, then the node goes
                node.leaving_at = minute + CHECKPOINT_HOOK_MINUTES
                tally.drains += 1
                if id(node) in members:
                    stop(warned=True)
            else:
                on_demand.remove(node)
                tally.unwarned_removals += id(node) in members
                if id(node) in members:
                    stop(warned=False)
        # the controller, every minute
        in_service = sum(1 for n in spot if n.ready_at <= minute)
        state = FleetState(
            fleet_desired=nodes,
            fleet_max=nodes * 2,
            spot_desired=spot_desired,
            spot_in_service=in_service,
            on_demand_desired=od_desired,
            shortfall_since=since,
            spot_pending=len(spot) - in_service,
            spot_history=history,
            on_demand_running=sum(1 for n in on_demand if n.leaving_at is None),
            on_demand_terminating=sum(1 for n in on_demand if n.leaving_at is not None),
        )
        if new:
            decision = decide(state, now, fallback_after, stable_for)
            history = decision.spot_history
        else:
            decision = old_decide(state, now, fallback_after)
        spot_desired, od_desired, since = (
            decision.spot_desired,
            decision.on_demand_desired,
            decision.shortfall_since,
        )
        # the job
        ready = [n for n in spot + on_demand if n.ready_at <= minute and n.leaving_at is None]
        tally.spot_node_minutes += len(spot)
        tally.on_demand_node_minutes += len(on_demand)
        if running:
            since_ckpt = 0 if since_ckpt + 1 >= checkpoint_minutes else since_ckpt + 1
        elif restart_left:
            restart_left -= 1
            tally.restart_gpu_minutes += nodes * gpus
            running = restart_left == 0
        elif len(ready) >= nodes:
            # the job restarts on the nodes that have been up longest
            members.update(id(n) for n in sorted(ready, key=lambda n: n.ready_at)[:nodes])
            restart_left = restart_minutes
            tally.restarts += 1
        else:
            tally.stalled_gpu_minutes += len(ready) * gpus
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--flaps", type=int, default=3)
    parser.add_argument("--outage-minutes", type=float, default=45)
    parser.add_argument("--stable-minutes", type=float, default=15)
    parser.add_argument("--fallback-minutes", type=float, default=10)
    parser.add_argument("--checkpoint-minutes", type=int, default=30)
    parser.add_argument("--restart-minutes", type=int, default=5)
    args = parser.parse_args()
    minutes = int(args.days * 24 * 60)
    print(
        f"reversion simulation: {args.nodes} nodes, {args.days:g} days x {args.seeds} seeds, "
        f"outages mean {args.outage_minutes:g} min + {args.flaps} flaps, spot stable "
        f"{args.stable_minutes:g} min, fallback after {args.fallback_minutes:g} min, "
        f"checkpoint every {args.checkpoint_minutes} min, restart {args.restart_minutes} min"
    )
    print(f"reproduce: {' '.join([COMMAND, *sys.argv[1:]])}")
    header = (
        f"{'type':<14} {'band':>6} {'policy':<4} {'lost GPU-h':>10} {'rollback':>9} "
        f"{'restart':>8} {'stalled':>8} {'OD node-h':>9} {'cost $':>9} {'$/useful GPU-h':>14}"
    )
    print(header)
    for instance_type in TYPES:
        info = catalog.lookup(instance_type, REGION, cloud="aws")
        hazard = hazard_of(info, life_hours=24.0)
        spot_price, od_price = info.usd_per_hour(spot=True), info.usd_per_hour(spot=False)
        gpus = info.accelerator_count
        for policy in ("old", "new"):
            totals = Tally()
            for seed in range(args.seeds):
                trace = spot_trace(
                    hazard,
                    args.nodes,
                    minutes,
                    args.outage_minutes,
                    args.flaps,
                    random.Random(f"{instance_type}:{seed}"),
                )
                t = run(
                    trace,
                    args.nodes,
                    gpus,
                    new=policy == "new",
                    fallback_after=timedelta(minutes=args.fallback_minutes),
                    stable_for=timedelta(minutes=args.stable_minutes),
                    checkpoint_minutes=args.checkpoint_minutes,
                    restart_minutes=args.restart_minutes,
                )
                for name in (
                    "spot_node_minutes",
                    "on_demand_node_minutes",
                    "rollback_gpu_minutes",
                    "restart_gpu_minutes",
                    "stalled_gpu_minutes",
                ):
                    setattr(totals, name, getattr(totals, name) + getattr(t, name))
            per_seed = 60 * args.seeds
            lost = (
                totals.rollback_gpu_minutes
                + totals.restart_gpu_minutes
                + totals.stalled_gpu_minutes
            ) / per_seed
            cost = (
                totals.spot_node_minutes * spot_price + totals.on_demand_node_minutes * od_price
            ) / per_seed
            paid_gpu_h = args.nodes * gpus * minutes / 60
            useful = max(1e-9, paid_gpu_h - lost)
            print(
                f"{instance_type:<14} {info.interruption_range or '?':>6} {policy:<4} "
                f"{lost:>10.1f} {totals.rollback_gpu_minutes / per_seed:>9.1f} "
                f"{totals.restart_gpu_minutes / per_seed:>8.1f} "
                f"{totals.stalled_gpu_minutes / per_seed:>8.1f} "
                f"{totals.on_demand_node_minutes / per_seed:>9.1f} {cost:>9.0f} "
                f"{cost / useful:>14.3f}"
            )


if __name__ == "__main__":
    main()
