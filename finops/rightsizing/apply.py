"""Apply recommendations to `Pulumi.<stack>.yaml` in place, one at a time, behind the policies.

The file is edited with ruamel.yaml's round-trip mode, so comments, key order and quoting
stay as they were; only the keys a recommendation names change. Each recommendation is tried
on a copy: the copy is previewed (offline Pulumi run, cost model, policies) through the
`Preview` callback the caller passes in (`aifinops.cli.rightsize` wires the policy pack; this
package may not import it). A recommendation is refused with the reason and left out when
it adds a mandatory violation, the config schema rejects it, it raises the previewed monthly
cost without being named in `accepted`, or the preview's delta is not the saving it claims.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from aifinops.config import NAMESPACE
from aifinops.errors import ConfigError, FinopsError, did_you_mean
from aifinops.rightsizing.pricing import set_keys
from aifinops.rightsizing.recommend import CENT, Recommendation, TargetReport

CLAIM_TOLERANCE_USD = 0.01
"""A previewed delta and the saving claimed for it may differ by rounding, no more."""


@dataclass(frozen=True)
class Finding:
    """One policy verdict on a previewed stack."""

    policy: str
    resource: str
    level: str
    """"mandatory", "advisory" or "disabled"."""
    message: str


@dataclass(frozen=True)
class PreviewResult:
    total_monthly_usd: float | None
    findings: tuple[Finding, ...] = ()

    @property
    def mandatory(self) -> dict[tuple[str, str], str]:
        """(policy, resource) -> message of each mandatory violation. A violation the stack
        already had is the same violation when only its message's figures change."""
        return {(f.policy, f.resource): f.message for f in self.findings if f.level == "mandatory"}


Preview = Callable[[Path], PreviewResult]
"""Preview a stack file (a path named `Pulumi.<stack>.yaml`): cost and policy verdicts."""


@dataclass
class ApplyResult:
    stack_file: Path
    applied: list[Recommendation] = field(default_factory=list)
    refused: list[tuple[Recommendation, str]] = field(default_factory=list)
    before: PreviewResult | None = None
    after: PreviewResult | None = None
    written: bool = False
    previewed_saving_usd: dict[str, float] = field(default_factory=dict)
    """Ref -> what the preview's monthly total fell by when the change was added."""

    @property
    def cost_delta_usd(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        if self.before.total_monthly_usd is None or self.after.total_monthly_usd is None:
            return None
        return self.after.total_monthly_usd - self.before.total_monthly_usd


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, order and quotes survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _set(entry: CommentedMap, changes: dict[str, Any]) -> None:
    """`pricing.set_keys` for ruamel's round-trip mapping, lists edited item by item so the
    comments ruamel keys by item position stay put."""
    for key, value in changes.items():
        if isinstance(value, list) and isinstance(entry.get(key), list):
            items = entry[key]
            for i, item in enumerate(value):
                if i < len(items):
                    items[i] = item
                else:
                    items.append(item)
            del items[len(value) :]
        elif isinstance(value, dict) and isinstance(entry.get(key), dict):
            _set(entry[key], value)
        else:
            set_keys(entry, {key: value})


def edit_stack_text(
    text: str, recommendations: Sequence[Recommendation], source: str = "<stack>"
) -> str:
    """`text` of a stack file with every recommendation's changes made, all else untouched."""
    yaml = _yaml()
    document = yaml.load(text)
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: no 'config:' mapping to edit")
    for rec in recommendations:
        key = f"{NAMESPACE}:{rec.target_kind}"
        entries = config.get(key)
        if not isinstance(entries, list) or rec.index >= len(entries):
            raise ConfigError(
                f"{source}: {key}[{rec.index}] not found (was the file edited since?)"
            )
        entry = entries[rec.index]
        if entry.get("name") != rec.target:
            raise ConfigError(
                f"{source}: {key}[{rec.index}] is {entry.get('name')!r}, expected {rec.target!r}"
            )
        _set(entry, rec.changes)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def to_apply(reports: Sequence[TargetReport], accepted: Sequence[str] = ()) -> list[Recommendation]:
    """The kept recommendation of each target, and the on_request changes named in `accepted`
    (`TARGET:KIND`); a name that matches none raises ConfigError with the names allowed."""
    chosen = [r.recommendation for r in reports if r.recommendation is not None]
    on_request = [c for r in reports for c in r.on_request]
    for name in accepted:
        if not any(c.named_by([name]) for c in on_request):
            allowed = [c.ref for c in on_request]
            raise ConfigError(
                f"--accept {name}: no change that costs more is named so"
                f"{did_you_mean(name, allowed)}; "
                + (f"allowed: {', '.join(allowed)}" if allowed else "there is none to accept")
            )
    picked = [c for c in on_request if c.named_by(accepted)]
    targets = {(c.target_kind, c.target) for c in picked}
    # an accepted change replaces the kept one of its target (both edit the same keys)
    return [r for r in chosen if (r.target_kind, r.target) not in targets] + picked


def _preview_text(text: str, stack_file: Path, preview: Preview) -> PreviewResult:
    with tempfile.TemporaryDirectory(prefix="finops-rightsize-") as folder:
        candidate = Path(folder) / stack_file.name
        candidate.write_text(text)
        return preview(candidate)


def apply(
    stack_file: Path,
    recommendations: Sequence[Recommendation],
    preview: Preview,
    *,
    accepted: Sequence[str] = (),
    write: bool = True,
) -> ApplyResult:
    """Try each recommendation on top of those kept so far; keep it when the preview adds
    no mandatory violation, its monthly total falls by the saving the recommendation claims
    (or, for a change named in `accepted`, rises by what it said it costs); write the file
    once with what was kept (unless `write` is False) and preview it again."""
    original = stack_file.read_text()
    result = ApplyResult(stack_file=stack_file)
    result.before = preview(stack_file)
    allowed = result.before.mandatory
    total = result.before.total_monthly_usd
    for rec in recommendations:
        if total is None:
            result.refused.append((rec, "UNKNOWN: the preview could not price the stack"))
            continue
        try:
            text = edit_stack_text(original, [*result.applied, rec], str(stack_file))
            outcome = _preview_text(text, stack_file, preview)
        except FinopsError as exc:
            result.refused.append((rec, f"the stack no longer validates: {exc}"))
            continue
        found = outcome.mandatory
        broken = sorted(key for key in found if key not in allowed)
        if broken:
            reasons = "; ".join(
                f"{policy} on {resource or 'stack'}: {found[(policy, resource)]}"
                for policy, resource in broken
            )
            result.refused.append((rec, f"breaks mandatory policy {reasons}"))
            continue
        if outcome.total_monthly_usd is None:
            result.refused.append((rec, "UNKNOWN: the preview could not price the change"))
            continue
        fell_by = total - outcome.total_monthly_usd
        if fell_by < -CENT and not rec.named_by(accepted):
            result.refused.append(
                (
                    rec,
                    f"raises the previewed cost by {-fell_by:,.2f} USD/month; apply it only by "
                    f"name: --accept {rec.ref}",
                )
            )
            continue
        if abs(fell_by - rec.monthly_saving_usd) > CLAIM_TOLERANCE_USD:
            result.refused.append(
                (
                    rec,
                    f"the preview changes by {-fell_by:+,.2f} USD/month, not the "
                    f"{-rec.monthly_saving_usd:+,.2f} claimed: not applied (please report it)",
                )
            )
            continue
        result.previewed_saving_usd[rec.ref] = fell_by
        total = outcome.total_monthly_usd
        result.applied.append(rec)
    final = edit_stack_text(original, result.applied, str(stack_file))
    if write and result.applied:
        stack_file.write_text(final)
        result.written = True
        result.after = preview(stack_file)
    else:
        result.after = _preview_text(final, stack_file, preview)
    return result


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.0f}"


def pull_request_body(result: ApplyResult, stack: str) -> str:
    """Markdown for the pull request that carries the edited stack file."""
    lines = [f"## Rightsizing `{stack}`", ""]
    saving = sum(result.previewed_saving_usd.values())
    lines.append(
        f"{len(result.applied)} change(s) to `{result.stack_file.name}`: the preview's monthly "
        f"cost falls by {_money(saving)}."
    )
    if result.cost_delta_usd is not None:
        lines.append(
            f"Preview cost: {_money(result.before.total_monthly_usd if result.before else None)} -> "
            f"{_money(result.after.total_monthly_usd if result.after else None)} a month "
            f"({result.cost_delta_usd:+,.2f} USD, `finops preview` on the edited file)."
        )
    rework = sum(r.expected_rework_usd for r in result.applied)
    if rework > 0:
        lines.append(
            f"Spot interruptions are expected to redo about {_money(rework)} of work a month "
            "(relaunch and lost work; not in the preview)."
        )
    lines += [
        "",
        "| target | change | previewed saving/month | cost per unit of work | evidence |",
        "|---|---|---|---|---|",
    ]
    for rec in result.applied:
        before, after = rec.usd_per_work_before, rec.usd_per_work_after
        unit = (
            f"{before:.4g} -> {after:.4g} USD per {rec.work_unit}"
            if before is not None and after is not None
            else "n/a"
        )
        metrics = ", ".join(f"{k}={v}" for k, v in rec.evidence.metrics.items() if v is not None)
        days = (rec.evidence.window_end - rec.evidence.window_start) / 86400
        lines.append(
            f"| {rec.target} | {'+'.join(k.value for k in rec.kinds)}: {rec.summary} | "
            f"{_money(result.previewed_saving_usd.get(rec.ref, rec.monthly_saving_usd))} | "
            f"{unit} | {rec.evidence.hosts} hosts, {rec.evidence.gpus} GPUs, {days:.1f} days "
            f"({rec.evidence.source}): {metrics} |"
        )
    if result.refused:
        lines += ["", "### Refused", ""]
        lines += [f"- {rec.ref}: {reason}" for rec, reason in result.refused]
    if result.after is not None:
        advisory = [f for f in result.after.findings if f.level == "advisory"]
        mandatory = [f for f in result.after.findings if f.level == "mandatory"]
        lines += ["", "### Policy verdicts after the change", ""]
        if not advisory and not mandatory:
            lines.append("No violations.")
        lines += [
            f"- **{f.level}** `{f.policy}` {f.resource}: {f.message}" for f in mandatory + advisory
        ]
    lines += [
        "",
        f"Headroom: {result.applied[0].headroom:.0%} above the observed peak."
        if result.applied
        else "",
    ]
    return "\n".join(lines).rstrip() + "\n"
