"""Compose, compare and keep one target's candidates; list the others with why they lost.

The cheaper type and spot are composed step by step, each step kept only when it lowers the
previewed cost and passes every check; scale-to-zero competes with the composite; changes
that raise the cost or cut node capacity are set aside for `--accept`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from aifinops.config import Capacity
from aifinops.errors import FinopsError
from aifinops.rightsizing.inputbound import input_bound, larger_host, storage_advice
from aifinops.rightsizing.model import (
    CENT,
    NAMED_TYPES,
    SIBLING,
    Alternative,
    Kind,
    Step,
)
from aifinops.rightsizing.pricing import PricedTarget
from aifinops.rightsizing.rules import Rules, lookup_type, spot_overhead


@dataclass
class Candidate:
    kinds: tuple[Kind, ...]
    summary: str
    changes: dict[str, Any]
    priced: PricedTarget | None = None
    refused: str | None = None
    steps: list[Step] = field(default_factory=list)
    nodes: float = 0.0
    capacity: str = ""
    why: str = ""
    retry: dict[str, Any] | None = None
    """Changes to price instead when the preview shows a padded type that does not fit."""


def merge_changes(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_changes(out[key], value)
        else:
            out[key] = value
    return out


class Evaluation:
    """Builds, prices, checks and chooses among one target's candidates."""

    def __init__(self, rules: Rules) -> None:
        self.r = rules
        self.alternatives: list[Alternative] = []
        self.on_request: list[Candidate] = []
        self.advice: list[str] = []

    def refuse(self, kinds: tuple[Kind, ...], summary: str, reason: str) -> None:
        self.alternatives.append(Alternative(kinds, summary, None, reason))

    def priced(self, candidate: Candidate) -> Candidate:
        try:
            candidate.priced = self.r.price(candidate.changes)
        except FinopsError as exc:
            # the program or the schema rejects the change: not a candidate
            candidate.priced = PricedTarget(float("inf"), ())
            candidate.refused = f"the preview rejects it: {exc}"
            return candidate
        candidate.refused = self.r.check_priced(candidate.priced)
        if candidate.refused and candidate.refused.startswith(SIBLING) and candidate.retry:
            priced = self.r.price(candidate.retry)
            refused = self.r.check_priced(priced)
            if not refused:
                candidate.changes, candidate.priced, candidate.refused = (
                    candidate.retry,
                    priced,
                    None,
                )
        return candidate

    def saving(self, candidate: Candidate) -> float:
        assert candidate.priced is not None
        return self.r.now.monthly_usd - candidate.priced.monthly_usd

    def shown(self, candidate: Candidate) -> float | None:
        """The saving to list, None when the change could not be priced."""
        if candidate.priced is None or math.isinf(candidate.priced.monthly_usd):
            return None
        return self.saving(candidate)

    # -- the rules -----------------------------------------------------------------------

    def cheaper_types(self) -> list[Candidate]:
        r = self.r
        fits = []
        blind: list[tuple[float, str, str]] = []
        for row in r.catalog_rows():
            if r.hourly(row) >= r.hourly(r.t.info) * (1 - r.s.min_saving_share):
                continue
            problem = r.misfit(row)
            if problem is None:
                fits.append(row)
            elif "was not measured" in problem or "hours of work" in problem:
                blind.append((r.hourly(row), row.instance_type, problem))
        if blind:
            _, name, problem = min(blind)
            self.refuse(
                (r.type_kind(r.lookup(name)),),
                f"{r.t.info.instance_type} -> {name} (and {len(blind) - 1} other cheaper types)",
                f"not priced: {problem}",
            )
        fits.sort(key=lambda i: (r.hourly(i), i.instance_type))
        out = []
        for info in fits[: r.s.type_candidates]:
            kind = r.type_kind(info)
            candidate = Candidate((kind,), r.type_summary(info, kind), r.type_changes(info))
            candidate.retry = r.type_changes(info, r.fitting_names(info))
            out.append(self.priced(candidate))
        if not fits:
            self.refuse(
                (Kind.SMALLER_ACCELERATOR,),
                "a cheaper type",
                self.no_cheaper_type_reason(),
            )
        return out

    def no_cheaper_type_reason(self) -> str:
        r = self.r
        cheaper = [
            row
            for row in r.catalog_rows()
            if r.hourly(row) < r.hourly(r.t.info) * (1 - r.s.min_saving_share)
        ]
        if not cheaper:
            return "no cheaper type in the catalog"
        cheapest = min(cheaper, key=lambda i: (r.hourly(i), i.instance_type))
        return f"no cheaper type carries the demand; the cheapest, {r.misfit(cheapest)}"

    def larger_types(self) -> list[Candidate]:
        r, u, s = self.r, self.r.u, self.r.s
        info = r.t.info
        peak = r.memory_peak
        memory_full = peak is not None and peak >= s.memory_full_share * r.need.min_memory_now
        bound = r.throughput_bound()
        waiting = input_bound(r)
        if waiting and not memory_full:
            if bound:
                self.refuse(
                    (Kind.LARGER_TYPE,),
                    f"a faster type than {info.instance_type}",
                    f"{waiting}: a faster GPU would wait as well; feed it first",
                )
            return []
        if not (memory_full or bound):
            if u.util_p95_percent >= 90 and u.util_mean_percent is not None:
                self.refuse(
                    (Kind.LARGER_TYPE,),
                    f"a faster type than {info.instance_type}",
                    f"5-minute peaks reach {u.util_p95_percent:.0f}% (p95 of peaks) but the "
                    f"time-weighted mean is {u.util_mean_percent:.1f}%: bursts, not a "
                    "throughput-bound fleet; a faster type would not be priced per unit of work",
                )
            return []
        need_speed = r.need.min_speed_now * ((1 + s.headroom) if bound else 1.0)
        options = [
            row
            for row in r.catalog_rows()
            # the same world size: a job's parallel layout is not the rule's to change
            if row.accelerator_count == info.accelerator_count
            and row.accelerator_info.kind == info.accelerator_info.kind
            and row.accelerator_info.relative_training_throughput >= need_speed - 1e-9
            and (not memory_full or row.accelerator_memory_gib > r.need.min_memory_now)
            and r.misfit(row) is None
        ]
        if not options:
            self.refuse(
                (Kind.LARGER_TYPE,), "a larger type", "no larger type in the catalog carries it"
            )
            return []
        best = min(
            options,
            key=lambda i: (
                r.hourly(i) / i.throughput_per_node if bound else r.hourly(i),
                i.instance_type,
            ),
        )
        why = []
        if memory_full and peak is not None:
            why.append(f"memory peak {peak:.1f} of {r.need.min_memory_now:g} GiB")
        if bound:
            why.append(bound)
        candidate = self.priced(
            Candidate(
                (Kind.LARGER_TYPE,),
                f"{info.instance_type} -> {best.instance_type}: {'; '.join(why)}",
                r.type_changes(best),
            )
        )
        candidate.why = "; ".join(why)
        return [candidate]

    def spot(self, base: Candidate) -> Candidate | None:
        r, t, s = self.r, self.r.t, self.r.s
        if t.key != "trainingFleets":
            return None
        if t.capacity != Capacity.ON_DEMAND.value and t.on_demand_base == 0:
            return None
        summary = "on spot with on-demand fallback"
        if s.checkpointing is None:
            self.refuse((Kind.SPOT_WITH_FALLBACK,), summary, "jobs do not checkpoint")
            return None
        primary = (
            base.priced.instance_types[0] if base.priced and base.priced.instance_types else ""
        )
        info = lookup_type(primary, t) or t.info
        index = info.interruption_index
        band = info.interruption_range or "at an unknown rate (taken as the worst range, >20%)"
        if info.spot_usd_per_hour is None:
            self.refuse(
                (Kind.SPOT_WITH_FALLBACK,),
                f"{info.instance_type} {summary}",
                f"no spot price for {info.instance_type} in {t.region}",
            )
            return None
        if s.max_interruption_index is not None and (
            index is None or index > s.max_interruption_index
        ):
            self.refuse(
                (Kind.SPOT_WITH_FALLBACK,),
                f"{info.instance_type} {summary}",
                f"{info.instance_type} is interrupted {band} a month (accepted: Spot Advisor "
                f"range <= {s.max_interruption_index})",
            )
            return None
        overhead = spot_overhead(info, r.ckpt, s.spot_instance_life_hours)
        if overhead - 1 > s.max_spot_rework_share:
            self.refuse(
                (Kind.SPOT_WITH_FALLBACK,),
                f"{info.instance_type} {summary}",
                f"interrupted {band} a month, checkpoints every {r.ckpt.interval_hours * 60:.0f} "
                f"min: expected rework +{overhead - 1:.1%} of the hours (accepted: "
                f"{s.max_spot_rework_share:.0%})",
            )
            return None
        changes = merge_changes(
            base.changes, {"capacity": Capacity.SPOT_WITH_FALLBACK.value, "onDemandBase": 0}
        )
        candidate = Candidate(
            (*base.kinds, Kind.SPOT_WITH_FALLBACK),
            f"{info.instance_type} on spot with on-demand fallback: interrupted "
            f"{band} a month, checkpoints every "
            f"{r.ckpt.interval_hours * 60:.0f} min (expected rework +{overhead - 1:.2%})",
            changes,
            steps=list(base.steps),
            nodes=base.nodes,
            capacity=Capacity.SPOT_WITH_FALLBACK.value,
        )
        if "instanceTypes" not in changes or len(changes["instanceTypes"]) < NAMED_TYPES:
            candidate.retry = merge_changes(changes, {"instanceTypes": r.fitting_names(info)})
            if r.t.uses_accelerator_form:
                candidate.retry = merge_changes(
                    candidate.retry, {"accelerator": None, "acceleratorsPerNode": None}
                )
        return self.priced(candidate)

    def fewer_nodes(self, base: Candidate) -> Candidate | None:
        r, t, u = self.r, self.r.t, self.r.u
        if u.peak_busy_hosts == 0:
            return None
        wanted = max(1, math.ceil(u.peak_busy_hosts * (1 + r.s.headroom) - 1e-9))
        if wanted >= t.nodes:
            return None
        first, second = u.peak_busy_hosts_halves
        if second > first:
            self.refuse(
                (Kind.FEWER_NODES,),
                f"{t.nodes} -> {wanted} nodes",
                f"demand is rising: at most {first} hosts busy at once in the first half of the "
                f"window, {second} in the second",
            )
            return None
        if t.key == "trainingFleets":
            extra: dict[str, Any] = {"nodes": {"desired": wanted, "min": min(t.nodes_min, wanted)}}
            what = "nodes"
        else:
            extra = {"replicas": {"min": wanted}}
            what = "replicas"
        candidate = Candidate(
            (*base.kinds, Kind.FEWER_NODES),
            f"{t.nodes} -> {wanted} {what}: at most {u.peak_busy_hosts} busy in the same hour "
            f"(+{r.s.headroom:.0%})",
            merge_changes(base.changes, extra),
            steps=list(base.steps),
            nodes=wanted,
            capacity=base.capacity,
        )
        return self.priced(candidate)

    def scale_to_zero(self) -> Candidate | None:
        t, u = self.r.t, self.r.u
        if not u.idle_all_window:
            return None
        if t.key == "trainingFleets":
            changes: dict[str, Any] = {"nodes": {"min": 0, "desired": 0}}
        else:
            changes = {"replicas": {"min": 0}}
        days = u.days_covered
        candidate = Candidate(
            (Kind.SCALE_TO_ZERO,),
            f"idle in every one of {u.observed_hours} observed hours over {days:.1f} days: "
            "scale to zero (min 0), scale up when work comes",
            changes,
            nodes=0,
            capacity=t.capacity,
        )
        return self.priced(candidate)

    # -- composing and choosing ------------------------------------------------------------

    def rank(self, candidate: Candidate) -> tuple[float, float, float, float, str]:
        """Cheapest previewed first; on a tie the faster, then the larger accelerator, then
        the cheaper named type (the preview prices a group at its cheapest override)."""
        assert candidate.priced is not None
        infos = [
            i for i in (lookup_type(n, self.r.t) for n in candidate.priced.instance_types) if i
        ]
        speed = min((i.accelerator_info.relative_training_throughput for i in infos), default=0.0)
        memory = min((i.accelerator_memory_gib for i in infos), default=0.0)
        named = self.r.hourly(infos[0]) if infos else 0.0
        return (round(candidate.priced.monthly_usd, 2), -speed, -memory, named, candidate.summary)

    def step(self, current: Candidate, nxt: Candidate | None, kind: Kind, label: str) -> Candidate:
        """`nxt` when it passes and lowers the previewed cost below `current`'s, else
        `current` (and `nxt` listed with why)."""
        if nxt is None or nxt.priced is None:
            return current
        assert current.priced is not None
        if nxt.refused:
            self.alternatives.append(
                Alternative(nxt.kinds, nxt.summary, self.shown(nxt), nxt.refused)
            )
            return current
        if nxt.priced.monthly_usd >= current.priced.monthly_usd - CENT:
            self.alternatives.append(
                Alternative(
                    nxt.kinds,
                    nxt.summary,
                    self.saving(nxt),
                    f"{label} does not lower the previewed cost "
                    f"({current.priced.monthly_usd:,.2f} -> {nxt.priced.monthly_usd:,.2f} USD/month)",
                )
            )
            return current
        nxt.steps = [*current.steps, Step(kind, nxt.summary, nxt.priced.monthly_usd)]
        return nxt

    def feed_the_gpus(self) -> None:
        """For a target whose GPUs wait on data: a larger host first of the on-request
        changes, and priced storage advice (inputbound.py)."""
        reason = input_bound(self.r)
        if reason is None:
            return
        host = larger_host(self, reason)
        if host is not None and host.refused:
            self.alternatives.append(
                Alternative(host.kinds, host.summary, self.shown(host), host.refused)
            )
        elif host is not None:
            self.on_request.insert(0, host)
        advice = storage_advice(self.r, reason)
        if advice:
            self.advice.append(advice)

    def capacity_cut(self, composite: Candidate) -> None:
        """Fewer nodes on top of the kept change, offered on request only: a window bounds
        the concurrency that was, not the next peak (bench/fleet_replay.py --dev: every
        such cut on the development split queued work in the following week)."""
        cut = self.fewer_nodes(composite)
        if cut is None or cut.priced is None:
            return
        if cut.refused:
            self.alternatives.append(
                Alternative(cut.kinds, cut.summary, self.shown(cut), cut.refused)
            )
            return
        if self.saving(cut) <= self.saving(composite) + CENT:
            return
        cut.steps = [*composite.steps, Step(Kind.FEWER_NODES, cut.summary, cut.priced.monthly_usd)]
        cut.why = (
            "cuts capacity: fewer nodes than the fleet has, sized on the hosts busy at once in "
            "the window; a later peak would queue"
        )
        self.on_request.append(cut)

    def run(self) -> tuple[Candidate | None, list[Candidate]]:
        r = self.r
        base = Candidate((), "", {}, priced=r.now, nodes=r.t.nodes, capacity=r.t.capacity)
        composite = base
        types = [c for c in self.cheaper_types()]
        larger = self.larger_types()
        passing = [c for c in types if not c.refused]
        for c in types:
            if c.refused:
                self.alternatives.append(Alternative(c.kinds, c.summary, self.shown(c), c.refused))
        if passing:
            best = min(passing, key=self.rank)
            enough = r.s.min_saving_share * r.now.monthly_usd
            if self.saving(best) >= enough:
                best.nodes, best.capacity = r.t.nodes, r.t.capacity
                composite = self.step(base, best, best.kinds[0], "the type change")
            for c in passing:
                if self.saving(c) < enough:
                    reason = f"saves less than {r.s.min_saving_share:.0%} of the previewed cost"
                elif c is best:
                    continue
                else:
                    reason = (
                        f"the kept type saves {self.saving(best) - self.saving(c):,.2f} "
                        "USD/month more"
                    )
                self.alternatives.append(Alternative(c.kinds, c.summary, self.saving(c), reason))
        for c in larger:
            if c.refused:
                self.alternatives.append(Alternative(c.kinds, c.summary, self.shown(c), c.refused))
            elif self.saving(c) > CENT and self.saving(c) > self.saving(composite):
                c.steps = [
                    Step(Kind.LARGER_TYPE, c.summary, c.priced.monthly_usd if c.priced else 0.0)
                ]
                composite = c
            elif self.saving(c) <= CENT:
                self.on_request.append(c)
        self.feed_the_gpus()
        composite = self.step(
            composite, self.spot(composite), Kind.SPOT_WITH_FALLBACK, "spot-with-fallback"
        )
        chosen: Candidate | None = composite if composite.steps else None
        self.capacity_cut(composite)
        zero = self.scale_to_zero()
        if zero is not None and zero.priced is not None:
            if zero.refused:
                self.alternatives.append(
                    Alternative(zero.kinds, zero.summary, self.shown(zero), zero.refused)
                )
            elif chosen is None or self.saving(zero) > self.saving(chosen) + CENT:
                if chosen is not None:
                    self.alternatives.append(
                        Alternative(
                            chosen.kinds,
                            joined(chosen),
                            self.saving(chosen),
                            f"scale-to-zero saves {self.saving(zero) - self.saving(chosen):,.2f} "
                            "USD/month more",
                        )
                    )
                zero.steps = [Step(Kind.SCALE_TO_ZERO, zero.summary, zero.priced.monthly_usd)]
                chosen = zero
            else:
                self.alternatives.append(
                    Alternative(zero.kinds, zero.summary, self.saving(zero), "saves less")
                )
        return chosen, self.on_request


def joined(candidate: Candidate) -> str:
    return "; ".join(s.summary for s in candidate.steps) or candidate.summary
