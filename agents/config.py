"""The agent's config file (TOML, or JSON with the same structure), read and validated once.

Every error names the file, the `[section] key`, the bad value and what is allowed, so the
user-data script that wrote the file can be fixed without reading this module.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

METADATA_PROVIDERS = ("aws", "gcp", "azure", "none")
HOOK_MODES = ("none", "command", "signal", "file")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "text")
# dimensions the CloudWatch agent can put on nvidia_smi_* besides InstanceId and index
CW_EXTRA_DIMENSIONS = ("name", "host", "InstanceType")
# NVML GPM rates over shorter spans are noise (agents/nvml.py keeps the same figure)
GPM_MIN_INTERVAL_SECONDS = 0.1


class ConfigError(ValueError):
    """The config file is unreadable or has a bad key or value."""


@dataclass(frozen=True)
class HookConfig:
    """What to run on an event. Modes: none, command (argv, no shell), signal, file."""

    mode: str = "none"
    command: tuple[str, ...] = ()
    signal: str = "SIGUSR1"
    pid: int = 0
    pid_file: str = ""
    file: str = ""
    timeout_seconds: float = 60.0


@dataclass(frozen=True)
class AgentSection:
    sample_interval_seconds: float = 1.0
    window_seconds: float = 60.0
    gpm: bool = True  # GPM SM/tensor activity on GPUs that have it (Hopper and newer)
    log_level: str = "info"
    log_format: str = "json"


@dataclass(frozen=True)
class SpoolSection:
    dir: str = "/var/lib/finops-agent/spool"
    max_bytes: int = 64 * 1024 * 1024
    segment_bytes: int = 1024 * 1024
    fsync: bool = True


@dataclass(frozen=True)
class ExportSection:
    path: str = "/var/lib/finops-agent/windows.jsonl"  # "" disables the export file
    max_bytes: int = 256 * 1024 * 1024
    rollup_seconds: int = 0  # 300: GPU summaries per 5 minutes (agents/rollup.py)


@dataclass(frozen=True)
class PrometheusSection:
    enabled: bool = True
    listen: str = "127.0.0.1:9401"


@dataclass(frozen=True)
class CloudWatchSection:
    enabled: bool = False
    namespace: str = "CWAgent"
    region: str = ""  # "" = the instance's region from metadata
    endpoint_url: str = ""  # "" = AWS; tests point it at moto_server
    extra_dimensions: tuple[str, ...] = ()  # of CW_EXTRA_DIMENSIONS, added to InstanceId+index
    # also publish nvidia_smi_* with the CloudWatch agent's own set: host, index, name, InstanceId
    cwagent_dimensions: bool = True
    tag_dimensions: tuple[str, ...] = ()
    storage_resolution_seconds: int = 60
    max_metrics_per_request: int = 1000
    ship_interval_seconds: float = 10.0
    max_backoff_seconds: float = 300.0


@dataclass(frozen=True)
class MetadataSection:
    provider: str = "none"
    endpoint: str = ""  # "" = the provider's link-local address; tests override it
    poll_seconds: float = 5.0
    timeout_seconds: float = 1.0
    instance_id: str = ""  # used with provider "none" (and as a fallback)
    instance_type: str = ""
    region: str = ""
    lifecycle: str = ""


@dataclass(frozen=True)
class CheckpointSection:
    on_rebalance: bool = False
    hook: HookConfig = field(default_factory=HookConfig)


@dataclass(frozen=True)
class LifecycleSection:
    """A node the fleet itself removes (agents/lifecycle.py): how long its checkpoint may take,
    and how the agent tells the cloud it is done."""

    max_wait_seconds: float = 900.0  # the bound: the node goes after this, hook done or not
    aws_hook_name: str = ""  # "" = do not complete AWS lifecycle actions
    aws_group_name: str = ""  # "" = the instance's group (DescribeAutoScalingInstances)
    heartbeat_seconds: float = 40.0  # RecordLifecycleActionHeartbeat while the hook runs
    region: str = ""  # "" = the instance's region from metadata
    endpoint_url: str = ""  # "" = AWS; tests point it at moto
    azure_approve: bool = True  # approve the Terminate event once the checkpoint is done


@dataclass(frozen=True)
class IdleSection:
    activity_threshold_percent: float = 5.0
    minutes: float = 30.0
    hook: HookConfig = field(default_factory=HookConfig)


@dataclass(frozen=True)
class WorkSection:
    listen: str = ""  # "" disables the loopback HTTP endpoint, e.g. "127.0.0.1:9402"
    file: str = ""  # "" disables the watched file, e.g. "/run/finops-agent/work.jsonl"


@dataclass(frozen=True)
class DiagnosisSection:
    """Input-bound diagnosis (agents/hostload.py): thresholds where each level switches on."""

    enabled: bool = True
    proc_root: str = "/proc"  # a container with the host's /proc mounted elsewhere: that path
    gpu_busy_percent: float = 60.0
    cpu_saturated_ratio: float = 0.90
    io_stalled_ratio: float = 0.10
    page_cache_misses_per_second: float = 1000.0
    hysteresis: float = 0.15


@dataclass(frozen=True)
class AgentConfig:
    agent: AgentSection = field(default_factory=AgentSection)
    spool: SpoolSection = field(default_factory=SpoolSection)
    export: ExportSection = field(default_factory=ExportSection)
    prometheus: PrometheusSection = field(default_factory=PrometheusSection)
    cloudwatch: CloudWatchSection = field(default_factory=CloudWatchSection)
    metadata: MetadataSection = field(default_factory=MetadataSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    lifecycle: LifecycleSection = field(default_factory=LifecycleSection)
    idle: IdleSection = field(default_factory=IdleSection)
    work: WorkSection = field(default_factory=WorkSection)
    diagnosis: DiagnosisSection = field(default_factory=DiagnosisSection)
    tags: Mapping[str, str] = field(default_factory=dict)
    source: str = "<defaults>"


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate the config file at `path` (`.json` is JSON, anything else TOML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the agent config: {exc.strerror}") from exc
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {_kind(path)}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a table of sections")
    return parse_config(raw, source=str(path))


def parse_config(raw: Mapping[str, Any], *, source: str = "<config>") -> AgentConfig:
    """Validate an already-parsed config mapping; errors name `source` and the key."""
    sections = {f.name for f in fields(AgentConfig)} - {"source"}
    _reject_unknown(raw, sections, source, "")
    tags = raw.get("tags", {})
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise ConfigError(f"{source}: [tags] must map tag keys to string values")
    cfg = AgentConfig(
        agent=_section(AgentSection, raw, "agent", source),
        spool=_section(SpoolSection, raw, "spool", source),
        export=_section(ExportSection, raw, "export", source),
        prometheus=_section(PrometheusSection, raw, "prometheus", source),
        cloudwatch=_section(CloudWatchSection, raw, "cloudwatch", source),
        metadata=_section(MetadataSection, raw, "metadata", source),
        checkpoint=_hooked(CheckpointSection, raw, "checkpoint", source),
        lifecycle=_section(LifecycleSection, raw, "lifecycle", source),
        idle=_hooked(IdleSection, raw, "idle", source),
        work=_section(WorkSection, raw, "work", source),
        diagnosis=_section(DiagnosisSection, raw, "diagnosis", source),
        tags=dict(tags),
        source=source,
    )
    _check_values(cfg, source)
    return cfg


def _kind(path: Path) -> str:
    return "JSON" if path.suffix == ".json" else "TOML"


def _reject_unknown(raw: Mapping[str, Any], allowed: set[str], source: str, where: str) -> None:
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            place = f"[{where}] " if where else "section "
            raise ConfigError(
                f"{source}: {place}{key!r} is not a known key{hint} "
                f"(known: {', '.join(sorted(allowed))})"
            )


def _section(cls: type[Any], raw: Mapping[str, Any], name: str, source: str) -> Any:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{name}] must be a table, not {type(table).__name__}")
    return _build(cls, table, name, source)


def _hooked(cls: type[Any], raw: Mapping[str, Any], name: str, source: str) -> Any:
    raw_table = raw.get(name, {})
    if not isinstance(raw_table, dict):
        raise ConfigError(f"{source}: [{name}] must be a table, not {type(raw_table).__name__}")
    table = dict(raw_table)
    hook_raw = table.pop("hook", {})
    if not isinstance(hook_raw, dict):
        raise ConfigError(f"{source}: [{name}.hook] must be a table")
    hook = _build(HookConfig, hook_raw, f"{name}.hook", source)
    section = _build(cls, table, name, source, skip={"hook"})
    return cls(**{**{f.name: getattr(section, f.name) for f in fields(cls)}, "hook": hook})


def _build(
    cls: type[Any], table: Mapping[str, Any], where: str, source: str, skip: set[str] | None = None
) -> Any:
    skip = skip or set()
    spec = {f.name: f for f in fields(cls) if f.name not in skip}
    _reject_unknown(table, set(spec), source, where)
    defaults = cls()
    values: dict[str, Any] = {}
    for key, value in table.items():
        expected = type(getattr(defaults, key))
        values[key] = _coerce(value, expected, f"{source}: [{where}] {key}")
    return cls(**values)


def _coerce(value: Any, expected: type, where: str) -> Any:
    if expected is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    if expected is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} must be a number, not {value!r}")
    if expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be an integer, not {value!r}")
    if expected is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be a string, not {value!r}")
    if expected is tuple:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where} must be a list of strings, not {value!r}")
    raise ConfigError(f"{where}: unsupported value {value!r}")  # pragma: no cover


def _check_values(cfg: AgentConfig, source: str) -> None:
    def bad(where: str, message: str) -> ConfigError:
        return ConfigError(f"{source}: [{where}] {message}")

    life = cfg.lifecycle
    if not 0 < life.max_wait_seconds <= 7200:
        raise bad(
            "lifecycle", f"max_wait_seconds must be in (0, 7200], not {life.max_wait_seconds}"
        )
    if not 1 <= life.heartbeat_seconds <= 3600:
        raise bad(
            "lifecycle", f"heartbeat_seconds must be in [1, 3600], not {life.heartbeat_seconds}"
        )

    def need(ok: bool, where: str, key: str, allowed: str, value: object) -> None:
        if not ok:
            raise bad(where, f"{key} must be {allowed}, not {value!r}")

    a = cfg.agent
    interval = a.sample_interval_seconds
    need(0.05 <= interval <= 60, "agent", "sample_interval_seconds", "0.05..60", interval)
    if a.gpm and interval < GPM_MIN_INTERVAL_SECONDS:
        raise bad(
            "agent",
            f"sample_interval_seconds {interval} is under GPM's {GPM_MIN_INTERVAL_SECONDS} s "
            "minimum (rates over shorter spans are noise): use at least "
            f"{GPM_MIN_INTERVAL_SECONDS}, or set gpm = false",
        )
    need(
        interval <= a.window_seconds <= 3600,
        "agent",
        "window_seconds",
        f"{interval}..3600 (at least one sample per window)",
        a.window_seconds,
    )
    _one_of(a.log_level, LOG_LEVELS, bad("agent", "log_level"))
    _one_of(a.log_format, LOG_FORMATS, bad("agent", "log_format"))
    sp = cfg.spool
    need(bool(sp.dir), "spool", "dir", "set", sp.dir)
    need(sp.max_bytes >= 64 * 1024, "spool", "max_bytes", "at least 65536", sp.max_bytes)
    need(
        4096 <= sp.segment_bytes <= sp.max_bytes // 2,
        "spool",
        "segment_bytes",
        f"4096..max_bytes/2 ({sp.max_bytes // 2})",
        sp.segment_bytes,
    )
    need(
        cfg.export.rollup_seconds in (0, 300),
        "export",
        "rollup_seconds",
        "0 (every window) or 300 (5-minute summaries)",
        cfg.export.rollup_seconds,
    )
    if cfg.prometheus.enabled:
        _check_loopback(cfg.prometheus.listen, bad("prometheus", "listen"))
    if cfg.work.listen:
        _check_loopback(cfg.work.listen, bad("work", "listen"))
    cw = cfg.cloudwatch
    need(
        cw.storage_resolution_seconds in (1, 60),
        "cloudwatch",
        "storage_resolution_seconds",
        "1 or 60",
        cw.storage_resolution_seconds,
    )
    need(
        1 <= cw.max_metrics_per_request <= 1000,
        "cloudwatch",
        "max_metrics_per_request",
        "1..1000 (the PutMetricData limit)",
        cw.max_metrics_per_request,
    )
    need(
        len(cw.tag_dimensions) <= 28,
        "cloudwatch",
        "tag_dimensions",
        "at most 28 keys (CloudWatch allows 30 dimensions)",
        cw.tag_dimensions,
    )
    for key in cw.extra_dimensions:
        _one_of(key, CW_EXTRA_DIMENSIONS, bad("cloudwatch", "extra_dimensions"))
    namespace_problem = _cloudwatch_text_problem(cw.namespace, 255)
    if namespace_problem or cw.namespace.startswith(":"):
        raise bad(
            "cloudwatch",
            f"namespace {cw.namespace!r}: {namespace_problem or 'must not start with a colon'}",
        )
    for key in cw.tag_dimensions:
        need(key in cfg.tags, "cloudwatch", "tag_dimensions", "keys present in [tags]", key)
        # CloudWatch refuses these for good (botocore before sending): a record carrying one
        # would be retried forever, so refuse the config instead
        problem = _cloudwatch_text_problem(key, 255) or (
            "must not start with a colon" if key.startswith(":") else ""
        )
        if problem:
            raise bad("cloudwatch", f"tag_dimensions: {key!r} as a dimension name {problem}")
        problem = _cloudwatch_text_problem(cfg.tags[key], 1024)
        if problem:
            raise ConfigError(
                f"{source}: [tags] {key!r} = {cfg.tags[key]!r} is a CloudWatch dimension value "
                f"([cloudwatch] tag_dimensions) and {problem}"
            )
    _one_of(cfg.metadata.provider, METADATA_PROVIDERS, bad("metadata", "provider"))
    lifecycle = cfg.metadata.lifecycle
    need(
        lifecycle in ("", "spot", "on-demand"),
        "metadata",
        "lifecycle",
        "spot or on-demand",
        lifecycle,
    )
    need(cfg.idle.minutes > 0, "idle", "minutes", "positive", cfg.idle.minutes)
    d = cfg.diagnosis
    need(bool(d.proc_root), "diagnosis", "proc_root", "set", d.proc_root)
    need(
        0 < d.gpu_busy_percent <= 100,
        "diagnosis",
        "gpu_busy_percent",
        "in (0, 100]",
        d.gpu_busy_percent,
    )
    need(
        0 < d.cpu_saturated_ratio <= 1,
        "diagnosis",
        "cpu_saturated_ratio",
        "in (0, 1]",
        d.cpu_saturated_ratio,
    )
    need(
        0 < d.io_stalled_ratio <= 1,
        "diagnosis",
        "io_stalled_ratio",
        "in (0, 1]",
        d.io_stalled_ratio,
    )
    need(
        d.page_cache_misses_per_second > 0,
        "diagnosis",
        "page_cache_misses_per_second",
        "positive",
        d.page_cache_misses_per_second,
    )
    need(0 <= d.hysteresis < 1, "diagnosis", "hysteresis", "in [0, 1)", d.hysteresis)
    _check_hook(cfg.checkpoint.hook, bad, "checkpoint.hook")
    _check_hook(cfg.idle.hook, bad, "idle.hook")


def _cloudwatch_text_problem(text: str, max_length: int) -> str:
    """Why CloudWatch would refuse `text` as a dimension name/value or namespace ("" if fine):
    ASCII only, no control characters, at least one non-whitespace, 1..max_length."""
    if not text.strip():
        return "is empty (CloudWatch needs at least one non-whitespace character)"
    if len(text) > max_length:
        return f"is longer than CloudWatch's {max_length} characters"
    if not text.isascii() or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return "has a character CloudWatch refuses (ASCII only, no control characters)"
    return ""


def _check_hook(hook: HookConfig, bad: Any, where: str) -> None:
    _one_of(hook.mode, HOOK_MODES, bad(where, "mode"))
    if hook.mode == "command" and not hook.command:
        raise bad(where, 'mode \'command\' needs command = ["/path/to/program", "arg"...]')
    if hook.mode == "signal":
        import signal as signal_module

        if not hook.signal.startswith("SIG") or not hasattr(signal_module, hook.signal):
            raise bad(where, f"signal {hook.signal!r} is not a signal name such as 'SIGUSR1'")
        if not hook.pid and not hook.pid_file:
            raise bad(where, "mode 'signal' needs pid or pid_file")
    if hook.mode == "file" and not hook.file:
        raise bad(where, "mode 'file' needs file = \"/run/...\"")
    if hook.timeout_seconds <= 0:
        raise bad(where, f"timeout_seconds must be positive, not {hook.timeout_seconds}")


def _one_of(value: str, allowed: tuple[str, ...], error: ConfigError) -> None:
    if value not in allowed:
        close = difflib.get_close_matches(value, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{error} must be one of {', '.join(allowed)}, not {value!r}{hint}")


def _check_loopback(listen: str, error: ConfigError) -> None:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{error} must be HOST:PORT, not {listen!r}")
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        raise ConfigError(
            f"{error} must be a loopback address (127.0.0.1:PORT); {host!r} would expose "
            "the agent to the network"
        )


def split_host_port(listen: str) -> tuple[str, int]:
    """'127.0.0.1:9401' -> ('127.0.0.1', 9401)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)
