"""How `finops preview` lays a stack's cost out: the summary first, then the resources.

- Summary: one row per component, costliest first, the stack total, then the totals by tag.
- Resources, component by component in the same order: those that cost something, those whose
  cost follows their scale (a fallback group at 0 nodes) and those that could not be priced
  (UNKNOWN, with the reason). Free and usage-based ones (IAM, buckets, functions...) collapse
  into one line per component; `--all` lists them.
- On a terminal the layout fits its width, 80 columns included: a resource's name is never
  wrapped; the basis of a figure wraps on the lines below it.

The Markdown for pull requests (`--format markdown`, and the cost part of `finops check`)
follows the same order.
"""

from __future__ import annotations

import textwrap
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aifinops import tags as tag_schema
from aifinops.cost import FREE_OR_USAGE_BASED, CostReport, ResourceCost

if TYPE_CHECKING:
    from rich.console import Console

    from aifinops.cli.preview import Preview
    from aifinops.engine import StackRun

STACK_LEVEL = "(stack)"
"""The group of resources created outside any component (a default provider...)."""


@dataclass(frozen=True)
class ComponentCost:
    """One component of a stack (or the stack-level resources) and what it costs per month."""

    name: str
    kind: str
    """The component's type without its package: "GpuTrainingFleet"; "" for the stack level."""
    cloud: str
    monthly_usd: float
    listed: tuple[ResourceCost, ...]
    """Resources shown one by one: costed, priced by scale, or not priced (UNKNOWN)."""
    free: tuple[ResourceCost, ...]
    """Free or usage-based resources (shown as one line unless `--all`)."""

    @property
    def resource_count(self) -> int:
        """Resources of the component (its charge lines are not resources)."""
        return sum(1 for c in (*self.listed, *self.free) if c.charge is None)


def is_free(cost: ResourceCost) -> bool:
    """A resource type the cost model does not price at all (free or billed by usage)."""
    return cost.basis == FREE_OR_USAGE_BASED and cost.monthly_usd == 0


def is_unknown(cost: ResourceCost) -> bool:
    """A resource the model prices but could not (an instance type missing from the catalog...)."""
    return not cost.priced and not is_free(cost)


def short_type(token: str) -> str:
    """`aws:autoscaling/group:Group` -> `Group`; a token without a module part stays whole."""
    return token.rsplit(":", 1)[-1] if token.count(":") >= 2 else token


def _cloud_of(costs: Iterable[ResourceCost]) -> str:
    clouds = sorted({tag_schema.cloud_of(c.type) or "" for c in costs} - {""})
    return "/".join(clouds)


def summarize(run: StackRun, costs: CostReport) -> list[ComponentCost]:
    """Components (and the stack level), costliest first; in each, the costliest first."""
    kinds = {r.name: r.type for r in run.resources if not r.custom}
    groups: dict[str, list[ResourceCost]] = defaultdict(list)
    for cost in costs.resources:
        groups[cost.component or STACK_LEVEL].append(cost)
    found = []
    for name, members in groups.items():
        token = kinds.get(name, "")
        parts = token.split(":")
        cloud = parts[1] if len(parts) == 3 and parts[1] in tag_schema.CLOUDS else ""
        members.sort(key=lambda c: (-c.monthly_usd, not c.priced, c.type, c.name))
        found.append(
            ComponentCost(
                name=name,
                kind=parts[-1] if token else "",
                cloud=cloud or _cloud_of(members),
                monthly_usd=sum(c.monthly_usd for c in members),
                listed=tuple(c for c in members if not is_free(c)),
                free=tuple(c for c in members if is_free(c)),
            )
        )
    found.sort(key=lambda g: (-g.monthly_usd, g.name == STACK_LEVEL, g.name))
    return found


def tag_totals(costs: CostReport) -> list[tuple[str, list[tuple[str, float]]]]:
    """(tag key, [(value, USD per month)...]) with the largest value first."""
    return [
        (key, sorted(values.items(), key=lambda item: (-item[1], item[0])))
        for key, values in costs.by_tag.items()
        if values
    ]


def _wrap(text: str, width: int, initial_indent: str, subsequent_indent: str) -> list[str]:
    """`text` in lines of at most `width` (hyphenated words such as on-demand kept whole)."""
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=initial_indent,
        subsequent_indent=subsequent_indent,
        break_on_hyphens=False,
    )


def _money(usd: float) -> str:
    return f"{usd:,.2f}"


def _free_line(group: ComponentCost) -> str:
    counts = Counter(short_type(c.type) for c in group.free)
    kinds = ", ".join(f"{t} x{n}" if n > 1 else t for t, n in sorted(counts.items()))
    return f"+ {len(group.free)} free or usage-based: {kinds}"


# --- Markdown ---------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(run: StackRun, costs: CostReport) -> list[str]:
    """The summary as Markdown lines: components costliest first, total, totals by tag."""
    groups = summarize(run, costs)
    lines = ["| component | kind | cloud | resources | $/month |", "|---|---|---|---:|---:|"]
    for group in groups:
        lines.append(
            f"| `{group.name}` | {group.kind} | {group.cloud} | {group.resource_count} | "
            f"{_money(group.monthly_usd)} |"
        )
    lines.append(
        f"| **total** | | | {sum(g.resource_count for g in groups)} | "
        f"**{_money(costs.total_monthly_usd)}** |"
    )
    lines.append("")
    for key, values in tag_totals(costs):
        lines.append(f"- by {key}: " + ", ".join(f"{v} ${_money(usd)}" for v, usd in values))
    unknown = [c for c in costs.resources if is_unknown(c)]
    if unknown:
        lines += [
            "",
            f"**{len(unknown)} line(s) could not be priced (UNKNOWN below); "
            "the totals leave them out.**",
        ]
    if costs.usage_zero_keys:
        lines += ["", usage_line(costs)]
    return lines


def usage_line(costs: CostReport) -> str:
    """Which usage keys are still 0, and where they are set."""
    where = f"in {costs.usage_file}" if costs.usage_file else "no usage file: `finops usage init`"
    return f"usage keys still 0 ({where}), their lines at $0: " + ", ".join(costs.usage_zero_keys)


def to_markdown(preview: Preview, show_all: bool = False) -> str:
    """The whole preview as Markdown, for a pull request or a CI log."""
    groups = summarize(preview.run, preview.costs)
    lines = [f"## finops preview: stack `{preview.run.stack}`", ""]
    lines += summary_markdown(preview.run, preview.costs)
    lines += ["", "### Resources", ""]
    lines += ["| component | resource | type | $/month | basis |", "|---|---|---|---:|---|"]
    for group in groups:
        for cost in group.listed:
            figure = "UNKNOWN" if is_unknown(cost) else _money(cost.monthly_usd)
            lines.append(
                f"| {group.name} | `{cost.name}` | {short_type(cost.type)} | {figure} | "
                f"{_cell(cost.basis)} |"
            )
        if show_all:
            for cost in group.free:
                lines.append(
                    f"| {group.name} | `{cost.name}` | {short_type(cost.type)} | 0.00 | "
                    f"{_cell(cost.basis)} |"
                )
        elif group.free:
            lines.append(f"| {group.name} | {_cell(_free_line(group))} | | 0.00 | |")
    lines += ["", "### Policies", ""]
    if not preview.policies_ran:
        lines.append(preview.policies_note)
    elif not preview.violations:
        lines.append("All policies pass.")
    else:
        lines += ["| level | policy | resource | message |", "|---|---|---|---|"]
        for v in preview.violations:
            lines.append(
                f"| {v.level} | `{v.policy}` | `{v.resource or STACK_LEVEL}` | {_cell(v.message)} |"
            )
    notes = [text for level, text in preview.run.messages if level in ("info", "warning")]
    if notes:
        lines += ["", "### Notes from the components", ""] + [f"- {n}" for n in notes]
    lines += ["", "<details><summary>Assumptions</summary>", ""]
    lines += [f"- {a}" for a in preview.costs.assumptions] + ["", "</details>"]
    return "\n".join(lines) + "\n"


# --- Terminal ---------------------------------------------------------------------------


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _summary_lines(groups: list[ComponentCost], costs: CostReport, width: int) -> list[str]:
    """The summary table as plain lines: component | kind | cloud | resources | $/month.

    Component names are never cut: the kind column gives way first (cut with "…"), and a name
    too long for even that gets a line of its own.
    """
    figures = [_money(g.monthly_usd) for g in groups] + [_money(costs.total_monthly_usd)]
    figure_width = max([len("$/month"), *(len(f) for f in figures)])
    cloud_width = max([len("cloud"), *(len(g.cloud) for g in groups)])
    fixed = 2 + cloud_width + 2 + len("resources") + 2 + figure_width
    name_width = max([len("component"), *(len(g.name) for g in groups)])
    name_width = min(name_width, max(width - fixed - 2 - 4, len("total")))
    kind_width = max([len("kind"), *(len(g.kind) for g in groups)])
    kind_width = max(min(kind_width, width - fixed - 2 - name_width), 4)

    def row(name: str, kind: str, cloud: str, count: str, figure: str) -> str:
        tail = (
            f"{_fit(kind, kind_width):<{kind_width}}  {cloud:<{cloud_width}}  "
            f"{count:>{len('resources')}}  {figure:>{figure_width}}"
        )
        if len(name) > name_width:
            return f"{name}\n{'':<{name_width}}  {tail}"
        return f"{name:<{name_width}}  {tail}"

    rule = "─" * min(width, name_width + 2 + kind_width + fixed)
    lines = [row("component", "kind", "cloud", "resources", "$/month"), rule]
    for group, figure in zip(groups, figures, strict=False):
        lines += row(group.name, group.kind, group.cloud, str(group.resource_count), figure).split(
            "\n"
        )
    lines.append(rule)
    total = sum(g.resource_count for g in groups)
    lines.append(row("total", "", "", str(total), figures[-1]))
    return lines


def _resource_lines(groups: list[ComponentCost], width: int, show_all: bool) -> list[str]:
    """Plain lines of the resource list: name | type | $/month, the basis wrapped below.

    Names are never cut or wrapped: the name column is as wide as the longest name that fits
    beside a type and a figure; a longer name gets a line of its own.
    """
    figure_width = 12
    rows = [c for g in groups for c in (*g.listed, *(g.free if show_all else ()))]
    longest = max((len(c.name) for c in rows), default=10)
    name_width = min(longest, max(width - 2 - 2 - 10 - 2 - figure_width, 10))
    type_width = max(width - 2 - name_width - 2 - 2 - figure_width, 6)
    indent = " " * 6
    lines: list[str] = []
    for group in groups:
        about = [group.kind or "outside any component", group.cloud]
        head = f"{group.name} ({', '.join(a for a in about if a)})"
        total = f"${_money(group.monthly_usd)}/month"
        if len(head) + 1 + len(total) <= width:
            lines += ["", head + total.rjust(width - len(head))]
        else:
            lines += ["", head, total.rjust(width)]
        for cost in (*group.listed, *(group.free if show_all else ())):
            kind = short_type(cost.type)
            if len(kind) > type_width:
                kind = kind[: type_width - 1] + "…"
            figure = "UNKNOWN" if is_unknown(cost) else _money(cost.monthly_usd)
            tail = f"{kind:<{type_width}}  {figure:>{figure_width}}"
            if len(cost.name) > name_width:
                lines.append(f"  {cost.name}")
                lines.append(f"  {'':<{name_width}}  {tail}")
            else:
                lines.append(f"  {cost.name:<{name_width}}  {tail}")
            if cost.basis != FREE_OR_USAGE_BASED:
                lines += _wrap(
                    cost.basis, width=width, initial_indent=indent, subsequent_indent=indent
                )
        if group.free and not show_all:
            line = "  " + _free_line(group)
            lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return lines


def _shown_path(path: Path) -> str:
    """`path` relative to the current folder when it lies below it (shorter on a terminal)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def print_table(preview: Preview, console: Console, show_all: bool = False) -> None:
    """The preview for a terminal of `console.width` columns (80 included)."""
    from rich.markup import escape
    from rich.text import Text

    width = console.width
    groups = summarize(preview.run, preview.costs)
    console.print(
        Text(
            f"finops preview - stack {preview.run.stack} ({_shown_path(preview.stack_file)})",
            style="bold",
        )
    )
    console.print()
    for number, line in enumerate(_summary_lines(groups, preview.costs, width)):
        style = "bold" if number == 0 or line.startswith("total") else ""
        console.print(Text(line, style=style), no_wrap=True, overflow="ignore", crop=False)
    console.print()
    for key, values in tag_totals(preview.costs):
        parts = ", ".join(f"{escape(v)} ${_money(usd)}" for v, usd in values)
        console.print(f"[bold]by {key}[/bold]: {parts}")
    unknown = [c for c in preview.costs.resources if is_unknown(c)]
    if unknown:
        console.print(
            f"[bold yellow]{len(unknown)} line(s) could not be priced (UNKNOWN below): "
            "the totals leave them out[/bold yellow]"
        )
    if preview.costs.usage_zero_keys:
        for line in _wrap(usage_line(preview.costs), width, "", "  "):
            console.print(Text(line, style="yellow"))
    for line in _resource_lines(groups, width, show_all):
        console.print(Text(line), no_wrap=True, overflow="ignore", crop=False)
    if not show_all and any(g.free for g in groups):
        console.print("[dim](--all lists the free and usage-based resources)[/dim]")
    console.print()
    console.print("[dim]assumptions:[/dim]")
    for assumption in preview.costs.assumptions:
        for line in _wrap(assumption, width, initial_indent="  - ", subsequent_indent="    "):
            console.print(Text(line, style="dim"))
    for level, text in preview.run.messages:
        if level in ("info", "warning"):
            lines = _wrap(text, width, initial_indent="note: ", subsequent_indent="  ") or ["note:"]
            console.print(Text.assemble(("note", "cyan"), lines[0][4:]))
            for line in lines[1:]:
                console.print(Text(line))
    if not preview.policies_ran:
        console.print(f"[yellow]{escape(preview.policies_note)}[/yellow]")
        return
    if not preview.violations:
        console.print("[green]policies: all pass[/green]")
        return
    levels = Counter(v.level for v in preview.violations)
    console.print(
        "[bold]policies[/bold]: " + ", ".join(f"{n} {level}" for level, n in sorted(levels.items()))
    )
    for v in preview.violations:
        color = "red" if v.level == "mandatory" else "yellow"
        console.print(
            Text.assemble(
                "  ",
                (v.level.upper(), f"bold {color}"),
                f"  {v.policy}  ",
                v.resource or STACK_LEVEL,
            ),
            no_wrap=True,
            overflow="ignore",
            crop=False,
        )
        for line in _wrap(
            v.message, width=width, initial_indent=" " * 6, subsequent_indent=" " * 6
        ):
            console.print(Text(line))
