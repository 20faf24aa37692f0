"""Running the checkpoint and idle hooks (contract: agents/README.md, "Checkpoint-hook contract").

A hook never blocks sampling: commands run in a background thread with a timeout.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from aifinops.agents.config import HookConfig

log = logging.getLogger("finops_agent.hooks")


def run_hook(
    hook: HookConfig,
    env: Mapping[str, str],
    *,
    on_done: Callable[[str], None] | None = None,
) -> threading.Thread | None:
    """Start `hook` for an event described by `env` (FINOPS_* variables).

    Returns the thread running it (None for mode "none"). `on_done` receives the outcome:
    "ok", "failed" or "timeout".
    """
    if hook.mode == "none":
        return None

    def work() -> None:
        outcome = "failed"
        try:
            outcome = _run(hook, env)
        except Exception as exc:  # a hook failure is logged and exported, never fatal
            log.error("hook failed", extra={"mode": hook.mode, "error": str(exc)})
        log.info("hook finished", extra={"mode": hook.mode, "outcome": outcome, **env})
        if on_done:
            on_done(outcome)

    thread = threading.Thread(target=work, name=f"hook-{env.get('FINOPS_EVENT', '')}", daemon=True)
    thread.start()
    return thread


def _run(hook: HookConfig, env: Mapping[str, str]) -> str:
    if hook.file:
        write_event_file(Path(hook.file), env)
    if hook.mode == "file":
        return "ok"
    if hook.mode == "signal":
        pid = hook.pid or int(Path(hook.pid_file).read_text().strip())
        os.kill(pid, getattr(signal, hook.signal))
        return "ok"
    if hook.mode == "command":
        try:
            proc = subprocess.run(
                list(hook.command),
                env={**os.environ, **env},
                timeout=hook.timeout_seconds,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return "timeout"
        if proc.returncode != 0:
            log.error(
                "hook command failed",
                extra={
                    "returncode": proc.returncode,
                    "stderr": proc.stderr[-500:].decode("utf-8", "replace"),
                },
            )
            return "failed"
        return "ok"
    raise ValueError(f"unknown hook mode {hook.mode!r}")


def write_event_file(path: Path, env: Mapping[str, str]) -> None:
    """The file a job can watch: JSON, written to a temp name and renamed (never half-read)."""
    event = {
        "event": env.get("FINOPS_EVENT", ""),
        "action": env.get("FINOPS_INTERRUPTION_ACTION", ""),
        "time": env.get("FINOPS_INTERRUPTION_TIME", ""),
        "deadline_seconds": float(env.get("FINOPS_INTERRUPTION_DEADLINE_SECONDS", "0") or 0),
        "cloud": env.get("FINOPS_CLOUD", ""),
        "instance_id": env.get("FINOPS_INSTANCE_ID", ""),
        "idle_gpus": env.get("FINOPS_IDLE_GPUS", ""),
        "detected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(event) + "\n")
    os.replace(tmp, path)
