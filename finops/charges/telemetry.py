"""The agent's telemetry on a fleet: its config from the boot script, its metrics from the
agent's own layout (`aifinops.agents.cloudwatch.series_layout`), priced at CloudWatch's list prices.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import tomllib
from typing import TYPE_CHECKING, Any

from aifinops import catalog
from aifinops.catalog import charges as prices
from aifinops.charges.base import (
    Charge,
    NodeGroup,
    money,
    unknown,
)
from aifinops.config import HOURS_PER_MONTH
from aifinops.errors import CatalogError

if TYPE_CHECKING:
    from aifinops.agents.config import AgentConfig
    from aifinops.engine import EngineResource


AGENT_PROGRAM = "finops-agent"
_HEREDOC = re.compile(r"cat > (\S+) <<'([A-Za-z_][A-Za-z0-9_]*)'\n(.*?)\n\2\n", re.S)


def agent_config_of(boot_script: str) -> AgentConfig | None:
    """The finops agent's config written by a fleet's boot script, or None when the script
    installs no agent. Raises ValueError when it writes one that the agent would refuse."""
    from aifinops.agents.config import ConfigError as AgentConfigError
    from aifinops.agents.config import parse_config

    for path, _, body in _HEREDOC.findall(boot_script):
        if not path.endswith(".toml"):
            continue
        try:
            raw = tomllib.loads(body)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"the agent config {path} in the boot script: {exc}") from exc
        if "metadata" not in raw:
            continue
        try:
            return parse_config(raw, source=path)
        except AgentConfigError as exc:
            raise ValueError(str(exc)) from exc
    return None


def decoded(text: Any) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    if text.startswith("#!"):
        return text
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def telemetry_charge(
    resource: EngineResource, boot_script: str | None, group: NodeGroup, cloud: str, region: str
) -> Charge | None:
    """The monthly cost of the agent's cloud metrics on a fleet group, from its real config."""
    type_ = f"{cloud}:charge:AgentTelemetry"
    if boot_script is None:
        return None
    try:
        config = agent_config_of(boot_script)
    except ValueError as exc:
        return unknown(resource, "telemetry", type_, f"agent config unreadable: {exc}")
    if config is None:
        if AGENT_PROGRAM in boot_script:
            return unknown(
                resource,
                "telemetry",
                type_,
                f"the boot script installs {AGENT_PROGRAM} but writes no config this model "
                "reads (a TOML heredoc with [metadata])",
            )
        return None
    cw = config.cloudwatch
    if not cw.enabled:
        return Charge(
            resource,
            "telemetry",
            type_,
            0.0,
            "agent metrics on the host only (Prometheus, export file): no cloud metrics charge",
        )
    from aifinops.agents.cloudwatch import series_layout

    layout = series_layout(cw)
    try:
        infos = [catalog.lookup(t, region, cloud=cloud) for t in group.instance_types]
    except CatalogError as exc:
        return unknown(resource, "telemetry", type_, str(exc))
    if not infos:
        return unknown(resource, "telemetry", type_, "no instance type to count GPUs on")
    gpus = max(1, math.ceil(infos[0].accelerator_count))
    nodes, hours = group.nodes, group.hours
    per_instance = layout.per_gpu * gpus
    types_in_use = min(math.ceil(nodes), len(infos))
    tag_metrics = layout.per_tag_set * types_in_use
    steady = (per_instance * nodes + tag_metrics) * hours / HOURS_PER_MONTH
    # Spot replacements start new InstanceId series. CloudWatch prorates custom metrics by
    # the hour, so a replaced instance's series and its successor's overlap by about one hour.
    share = sum(i.monthly_interruption_share for i in infos) / len(infos)
    replacements = nodes * group.spot_share * share * hours / HOURS_PER_MONTH
    churn = replacements * per_instance / HOURS_PER_MONTH
    metric_months = steady + churn
    metrics_usd = prices.tiered_usd("aws", region, "cloudwatch-custom-metric", metric_months)
    request_price = prices.unit_price("aws", region, "cloudwatch-api-requests")
    if metrics_usd is None or request_price is None:
        return unknown(
            resource, "telemetry", type_, f"no CloudWatch prices for {region} in the catalog"
        )
    per_ship_windows = max(1.0, cw.ship_interval_seconds / config.agent.window_seconds)
    ships = hours * 3600 / max(cw.ship_interval_seconds, config.agent.window_seconds)
    datums = gpus * layout.datums_per_record * per_ship_windows
    requests = nodes * ships * math.ceil(datums / cw.max_metrics_per_request)
    requests_usd = requests / 1000 * request_price.usd
    first = prices.tiers("aws", region, "cloudwatch-custom-metric")[0]
    cwagent = " + the CloudWatch agent's set" if cw.cwagent_dimensions else ""
    basis = (
        f"{nodes:g} nodes x {gpus} GPU x {layout.per_gpu} metrics (InstanceId, index{cwagent})"
        + (
            f" + {layout.per_tag_set} per-fleet copies x {types_in_use} instance type(s)"
            if tag_metrics
            else ""
        )
        + f" x {hours:g}/{HOURS_PER_MONTH:g} h = {steady:,.1f} metric-months; "
        f"spot churn {replacements:.2f} replacements/month (interruptions {share:.0%}/month) "
        f"add {churn:.3f} (hourly proration); at ${first.usd:.2f}/metric-month "
        f"(first tier; resolution {cw.storage_resolution_seconds} s costs the same) = "
        f"{money(metrics_usd)}; PutMetricData {requests:,.0f} requests at "
        f"${request_price.usd:.2f}/1,000 = {money(requests_usd)}"
    )
    return Charge(resource, "telemetry", type_, metrics_usd + requests_usd, basis)
