"""`finops estimate PROPOSAL.yaml`: a priced plan across clouds and capacity types.

Each option (a training fleet, an inference endpoint, storage and a budget on one cloud) is
judged by the rule functions of `policies/` over its normalised resources, as the preview
judges a stack: options that pass every mandatory policy come first, cheapest first. This is
the one place that ties the estimate (finops core) to the policies.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aifinops import estimate
from aifinops.estimate import Option, Plan, PolicyVerdict, Proposal


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "estimate",
        help="price a project proposal (training, inference, storage) across clouds",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("proposal", type=Path, help="the proposal file (YAML; docs/estimate.md)")
    parser.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    parser.add_argument("--top", type=int, default=10, help="options to show (default 10)")
    parser.add_argument(
        "--policy-config",
        type=Path,
        help="policy settings as JSON (the policy pack's config shape); default the defaults",
    )
    parser.set_defaults(func=run)


def resources_of(option: Option, proposal: Proposal) -> list[Any]:
    """The option as the rules see a stack: a training fleet, an inference endpoint, the
    storage bucket and the project's budget, tagged as the stack transform would tag them."""
    from aifinops.policies.model import (
        BUDGET,
        ENDPOINT,
        FLEET,
        INFERENCE,
        OTHER,
        TRAINING,
        Resource,
    )
    from aifinops.tags import spell

    tags = {
        **{k: str(v) for k, v in proposal.tags.model_dump(by_alias=True).items()},
        "Environment": proposal.environment.value,
        "ModelVersion": str((proposal.tags.model_extra or {}).get("ModelVersion", proposal.name)),
    }
    spelled = spell(tags, option.cloud)
    name = proposal.name
    months = proposal.months
    found = []
    if option.training is not None:
        t = option.training
        found.append(
            Resource(
                name=f"{name}-training",
                type="finops:estimate:TrainingFleet",
                cloud=option.cloud,
                kind=FLEET,
                taggable=True,
                tags=spelled,
                instance_types=(t.instance_type,),
                region=option.region,
                workload=TRAINING,
                nodes_max=t.nodes,
                nodes_desired=t.nodes,
                on_demand_base=0,
                on_demand_percent_above_base=0.0 if t.capacity == "spot" else 100.0,
                monthly_usd=t.total_usd / months,
            )
        )
    if option.inference is not None:
        i = option.inference
        found.append(
            Resource(
                name=f"{name}-inference",
                type="finops:estimate:InferenceEndpoint",
                cloud=option.cloud,
                kind=ENDPOINT,
                taggable=True,
                tags=spelled,
                instance_types=(i.instance_type,),
                region=option.region,
                workload=INFERENCE,
                nodes_max=i.replicas,
                nodes_desired=i.replicas,
                monthly_usd=i.monthly_usd,
            )
        )
    if option.storage.gib:
        found.append(
            Resource(
                name=f"{name}-data",
                type="finops:estimate:Bucket",
                cloud=option.cloud,
                kind=OTHER,
                taggable=True,
                tags=spelled,
                region=option.region,
                monthly_usd=option.storage.monthly_usd,
            )
        )
    found.append(
        Resource(
            name=f"{name}-budget",
            type="finops:estimate:Budget",
            cloud=option.cloud,
            kind=BUDGET,
            budget_projects=(proposal.tags.Project,),
            budget_limit_usd=proposal.budget_monthly_usd,
        )
    )
    return found


def policy_checker(proposal: Proposal, settings: dict[str, Any] | None) -> estimate.Check:
    """`check(option)`: the policies' verdicts on the option's resources (cached per resource:
    many options share a fleet or an endpoint)."""
    from aifinops import policies
    from aifinops.policies.context import Context

    context = Context(
        environment=proposal.environment.value,
        stack_tags={"Project": proposal.tags.Project, "Team": proposal.tags.Team},
        cost_ceiling_usd=proposal.budget_monthly_usd,
    )

    def check(option: Option) -> list[PolicyVerdict]:
        violations = policies.evaluate(resources_of(option, proposal), context, settings)
        return [PolicyVerdict(v.policy, v.level, v.resource, v.message) for v in violations]

    return check


def _settings(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    from aifinops.errors import ConfigError

    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: policy config not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    from aifinops.policies.settings import SettingsError, resolve

    try:
        resolve(data)
    except SettingsError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return dict(data)


def _money(value: float | None) -> str:
    return "UNKNOWN" if value is None else f"${value:,.0f}"


def _option_json(result: Plan, option: Option) -> dict[str, Any]:
    import dataclasses

    return {
        "cloud": option.cloud,
        "region": option.region,
        "training": None if option.training is None else dataclasses.asdict(option.training),
        "inference": None if option.inference is None else dataclasses.asdict(option.inference),
        "storage": dataclasses.asdict(option.storage),
        "total_usd": option.total_usd,
        "monthly_usd": option.monthly_usd,
        "usd_per_unit": result.usd_per_unit(option),
        "passes_policies": option.passes,
        "fits_months": option.fits_schedule,
        "verdicts": [dataclasses.asdict(v) for v in option.verdicts],
    }


def _verdict_lines(option: Option) -> list[str]:
    return [
        f"    {v.level} {v.policy} {v.resource}: {v.message}"
        for v in option.verdicts
        if v.level in ("mandatory", "advisory")
    ]


def _describe(result: Plan, option: Option) -> list[str]:
    lines = []
    if option.training:
        t = option.training
        lines.append(
            f"  training: {t.nodes} x {t.instance_type} ({t.accelerator_count:g} x "
            f"{t.accelerator}) {t.capacity} at ${t.usd_per_node_hour:.4f}/h per node: "
            f"{t.accelerator_hours:,.0f} accelerator-hours, {t.wall_hours_per_run:,.1f} h wall "
            f"per run, {t.expected_interruptions_per_run:.2f} interruptions per run expected, "
            f"{_money(t.total_usd)} in all"
        )
        if not option.fits_schedule:
            lines.append(
                f"  LATE: {t.runs:g} run(s) take {t.wall_hours_per_run * t.runs:,.0f} h, more "
                f"than the proposal's {result.proposal.months:g} months"
            )
    if option.inference:
        i = option.inference
        lines.append(
            f"  inference: {i.replicas} x {i.instance_type} ({i.accelerator_count:g} x "
            f"{i.accelerator}, {i.requests_per_second_per_replica:,.1f} requests/s each) on "
            f"demand at ${i.usd_per_node_hour:.4f}/h: {_money(i.monthly_usd)}/month"
        )
    s = option.storage
    if s.gib:
        rate = "no price" if s.usd_per_gb_month is None else f"${s.usd_per_gb_month:g}/GB-month"
        lines.append(f"  storage: {s.gib:,.0f} GiB in {s.service or '-'} at {rate}: "
                     f"{_money(s.monthly_usd)}/month")  # fmt: skip
    per_unit = ", ".join(f"${v:,.4g} per {k}" for k, v in result.usd_per_unit(option).items())
    lines.append(
        f"  total {_money(option.total_usd)} over {result.proposal.months:g} months, "
        f"{_money(option.monthly_usd)}/month; {per_unit}"
    )
    return lines


def _table(result: Plan, shown: list[Option]) -> None:
    out = sys.stdout
    p = result.proposal
    print(f"{p.name}: {len(result.options)} options priced ({p.environment.value})", file=out)
    best = result.best
    if best is None:
        print(
            "no option passes the mandatory policies and fits the months; the nearest first",
            file=out,
        )
    else:
        print(f"cheapest option that passes the policies: {best.label}", file=out)
        for line in _describe(result, best):
            print(line, file=out)
    print("", file=out)
    print("rank | passes policies | fits months | option | total USD | USD/month", file=out)
    for n, option in enumerate(shown, start=1):
        print(
            f"{n} | {'yes' if option.passes else 'no'} | {'yes' if option.fits_schedule else 'no'} "
            f"| {option.label} | {_money(option.total_usd)} | {_money(option.monthly_usd)}",
            file=out,
        )
        if not option.passes:
            for line in _verdict_lines(option):
                if " mandatory " in f" {line.strip()} ":
                    print(line, file=out)
    for why in result.dropped:
        print(f"not priced: {why}", file=out)
    print("", file=out)
    print("assumptions:", file=out)
    for line in result.assumptions:
        print(f"  - {line}", file=out)


def _markdown(result: Plan, shown: list[Option]) -> str:
    lines = [
        "| rank | passes policies | option | total USD | USD/month | cost per unit of work |",
        "|---|---|---|---|---|---|",
    ]
    for n, option in enumerate(shown, start=1):
        per_unit = ", ".join(f"${v:,.4g} per {k}" for k, v in result.usd_per_unit(option).items())
        lines.append(
            f"| {n} | {'yes' if option.passes else 'no'} | {option.label} | "
            f"{_money(option.total_usd)} | {_money(option.monthly_usd)} | {per_unit} |"
        )
    lines += ["", "Assumptions:", *(f"- {a}" for a in result.assumptions)]
    lines += [f"- not priced: {why}" for why in result.dropped]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from aifinops.errors import ConfigError

    if args.top < 1:
        raise ConfigError(f"--top {args.top}: at least 1")
    proposal = estimate.load(args.proposal)
    result = estimate.plan(proposal, check=policy_checker(proposal, _settings(args.policy_config)))
    if not result.options:
        raise ConfigError(
            f"{args.proposal}: no option could be priced: " + "; ".join(result.dropped)
        )
    shown = result.options[: args.top]
    if args.format == "json":
        print(
            json.dumps(
                {
                    "proposal": proposal.name,
                    "options_priced": len(result.options),
                    "best": None if result.best is None else _option_json(result, result.best),
                    "options": [_option_json(result, o) for o in shown],
                    "not_priced": result.dropped,
                    "assumptions": result.assumptions,
                },
                indent=1,
            )
        )
    elif args.format == "markdown":
        print(_markdown(result, shown))
    else:
        _table(result, shown)
    return 0
