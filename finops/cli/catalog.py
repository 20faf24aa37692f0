"""`finops catalog`: list and show instance types, refresh AWS prices into the overlay."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from aifinops import catalog
from aifinops.catalog.models import InstanceInfo
from aifinops.catalog.store import CLOUDS, DEFAULT_REGIONS

SERVICES = ("ec2", "sagemaker", "gce", "tpu", "azure-vm")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `finops catalog list|show|refresh` to the `finops` parser."""
    parser = subparsers.add_parser(
        "catalog",
        help="instance types, accelerators and prices",
        description="Instance types, accelerators and prices of the shipped catalog "
        "(plus the refresh overlay, if any).",
    )
    actions = parser.add_subparsers(dest="catalog_action", metavar="ACTION")
    actions.required = True

    listing = actions.add_parser(
        "list",
        help="list instance types",
        description="One row per type, in its cloud's default region when offered there "
        f"({', '.join(f'{c} {r}' for c, r in DEFAULT_REGIONS.items())}), else its first "
        "region; --region or --all-regions to choose.",
    )
    listing.add_argument("--cloud", choices=CLOUDS)
    listing.add_argument("--service", choices=SERVICES)
    listing.add_argument(
        "--accelerator",
        help="accelerator model, e.g. A10G, H100, TPU-v5e; A100 also lists A100-80GB",
    )
    where = listing.add_mutually_exclusive_group()
    where.add_argument("--region", help="only rows in this region")
    where.add_argument("--all-regions", action="store_true", help="every region of every type")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(func=run_list)

    regions = actions.add_parser(
        "regions",
        help="the regions the catalog has prices in",
        description="The regions the catalog has prices in, per cloud, with the number of "
        "instance types priced in each. A region not listed is not in the catalog (it may "
        "still exist at the cloud).",
    )
    regions.add_argument("--cloud", choices=CLOUDS)
    regions.add_argument("--format", choices=("table", "json"), default="table")
    regions.set_defaults(func=run_regions)

    show = actions.add_parser("show", help="one instance type in detail")
    show.add_argument("instance_type", metavar="TYPE")
    show.add_argument("--region", help="default: the cloud's default region")
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.set_defaults(func=run_show)

    refresh = actions.add_parser(
        "refresh",
        help="fetch current AWS EC2 prices into the overlay",
        description="Query the AWS Pricing API (on-demand) and DescribeSpotPriceHistory (spot) "
        "for the catalog's EC2 types and write the overlay the catalog merges. Needs AWS "
        "credentials. The overlay path is FINOPS_CATALOG_OVERLAY, by default "
        "~/.cache/finops/catalog-overlay.json; FINOPS_CATALOG_OVERLAY= (empty) ignores it.",
    )
    refresh.add_argument(
        "--region",
        action="append",
        dest="regions",
        help="AWS region (repeatable; default us-east-1)",
    )
    refresh.add_argument(
        "--type", action="append", dest="types", help="only this EC2 type (repeatable)"
    )
    refresh.add_argument("--output", type=Path, help="overlay file to write")
    refresh.set_defaults(func=run_refresh)


def _console() -> Any:
    from rich.console import Console

    # A pipe or a test capture gets wide lines rather than cells cut to 80 columns.
    return Console(width=None if sys.stdout.isatty() else 160)


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _count(value: float) -> str:
    return f"{value:g}" if value >= 1 else f"{value:.3g}"


def _listed_rows(args: argparse.Namespace) -> list[InstanceInfo]:
    """The rows `catalog list` asks for; an unknown region or accelerator is a CatalogError."""
    rows: list[InstanceInfo] = []
    models = None
    if args.accelerator:
        models = {chip.model for chip in catalog.accelerator_family(args.accelerator)}
    if args.region:
        catalog.check_region(args.region, args.cloud)
    for name in catalog.instance_types(args.cloud, args.service):
        offered = catalog.regions(name)
        if args.all_regions:
            chosen = offered
        elif args.region:
            chosen = [args.region] if args.region in offered else []
        else:
            default = DEFAULT_REGIONS[catalog.lookup(name, offered[0]).cloud]
            chosen = [default if default in offered else offered[0]]
        for region in chosen:
            info = catalog.lookup(name, region)
            if models is None or info.accelerator in models:
                rows.append(info)
    return rows


def _nothing_matched(args: argparse.Namespace) -> str:
    asked = [
        f"{flag} {value}"
        for flag, value in (
            ("--cloud", args.cloud),
            ("--service", args.service),
            ("--accelerator", args.accelerator),
            ("--region", args.region),
        )
        if value
    ]
    hint = "" if args.all_regions or args.region else "; --all-regions searches every region"
    return f"no instance type in the catalog matches {' '.join(asked)}{hint}"


def _as_dict(info: InstanceInfo) -> dict[str, Any]:
    record = dataclasses.asdict(info)
    record["node_accelerator_memory_gib"] = info.node_accelerator_memory_gib
    record["throughput_per_node"] = round(info.throughput_per_node, 4)
    return record


def run_list(args: argparse.Namespace) -> int:
    """Print the matching rows as a rich table or a JSON list (prices USD per hour)."""
    rows = _listed_rows(args)
    if not rows:
        print(f"note: {_nothing_matched(args)}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps([_as_dict(info) for info in rows], indent=1))
        return 0
    from rich.table import Table

    table = Table(
        title=f"{len(rows)} instance types (USD per hour; catalog {catalog.SNAPSHOT_DATE})"
    )
    for header in (
        "cloud",
        "service",
        "type",
        "region",
        "accelerator",
        "count",
        "acc GiB/node",
        "vCPU",
        "GiB",
        "on-demand",
        "spot",
        "interruptions",
    ):
        numeric = header in {"count", "acc GiB/node", "vCPU", "GiB", "on-demand", "spot"}
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
    for info in rows:
        table.add_row(
            info.cloud,
            info.service,
            info.instance_type,
            info.region,
            info.accelerator,
            _count(info.accelerator_count),
            f"{info.node_accelerator_memory_gib:g}",
            str(info.vcpus),
            f"{info.memory_gib:g}",
            _money(info.on_demand_usd_per_hour),
            _money(info.spot_usd_per_hour),
            info.interruption_range or "-",
        )
    _console().print(table)
    return 0


def run_regions(args: argparse.Namespace) -> int:
    """Print every region the catalog has prices in, with how many types each has."""
    counts: dict[tuple[str, str], int] = {}
    for cloud in [args.cloud] if args.cloud else CLOUDS:
        for name in catalog.instance_types(cloud):
            for region in catalog.regions(name):
                counts[(cloud, region)] = counts.get((cloud, region), 0) + 1
    if args.format == "json":
        listing = [{"cloud": c, "region": r, "types": n} for (c, r), n in sorted(counts.items())]
        print(json.dumps(listing, indent=1))
        return 0
    from rich.table import Table

    table = Table(title=f"{len(counts)} regions in the catalog ({catalog.SNAPSHOT_DATE})")
    for header in ("cloud", "region", "types"):
        table.add_column(header, justify="right" if header == "types" else "left", no_wrap=True)
    for (cloud, region), number in sorted(counts.items()):
        table.add_row(cloud, region, str(number))
    _console().print(table)
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print one type in one region: accelerator, prices, throughput, regions offered."""
    info = catalog.lookup(args.instance_type, args.region)
    chip = info.accelerator_info
    if args.format == "json":
        record = _as_dict(info)
        record["regions"] = catalog.regions(info.instance_type)
        record["accelerator_info"] = dataclasses.asdict(chip)
        print(json.dumps(record, indent=1))
        return 0
    from rich.table import Table

    table = Table(title=f"{info.instance_type} in {info.region}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    spot_line = "-"
    if info.spot_usd_per_hour is not None:
        spot_line = f"{info.spot_usd_per_hour:.4f} USD/h"
        if info.spot_savings_percent is not None:
            spot_line += f" ({info.spot_savings_percent:g} % off)"
    per_throughput = f"{info.usd_per_throughput_hour():.4f} on-demand"
    if info.spot_usd_per_hour is not None:
        per_throughput += f", {info.usd_per_throughput_hour(spot=True):.4f} spot"
    for field, value in (
        ("cloud / service", f"{info.cloud} / {info.service}"),
        ("family / generation", f"{info.family} / {info.generation}"),
        (
            "accelerator",
            f"{_count(info.accelerator_count)} x {chip.model} ({chip.vendor} {chip.kind})",
        ),
        (
            "accelerator memory",
            f"{info.accelerator_memory_gib:g} GiB each, "
            f"{info.node_accelerator_memory_gib:g} GiB per node",
        ),
        ("dense BF16 TFLOPS", f"{chip.dense_bf16_tflops:g} per accelerator"),
        ("throughput (V100 = 1)", f"{info.throughput_per_node:.2f} per node"),
        ("vCPU / memory", f"{info.vcpus} / {info.memory_gib:g} GiB"),
        ("on-demand", f"{info.on_demand_usd_per_hour:.4f} USD/h"),
        ("spot", spot_line),
        ("spot interruptions", info.interruption_range or "-"),
        ("USD per throughput-hour", per_throughput),
        ("regions", ", ".join(catalog.regions(info.instance_type))),
    ):
        table.add_row(field, value)
    _console().print(table)
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    """Fetch AWS EC2 prices with a progress bar and write the overlay file."""
    from rich.progress import Progress

    from aifinops.catalog.overlay import default_overlay_path, overlay_path
    from aifinops.catalog.refresh import ec2_types, refresh, write_overlay

    regions = [catalog.check_region(r, "aws") for r in args.regions or ["us-east-1"]]
    types = ec2_types(args.types)
    output = args.output or overlay_path() or default_overlay_path()
    console = _console()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("AWS prices", total=len(regions) * (len(types) + 1))

        def step(what: str) -> None:
            progress.update(task, advance=1, description=what)

        document = refresh(regions, types, on_step=step)
    write_overlay(document, output)
    catalog.reload()
    console.print(f"wrote {len(document['prices'])} prices for {', '.join(regions)} to {output}")
    if overlay_path() != output:
        console.print(
            f"note: the catalog reads {overlay_path() or 'no overlay'}; set "
            f"FINOPS_CATALOG_OVERLAY={output} to use this file"
        )
    return 0
