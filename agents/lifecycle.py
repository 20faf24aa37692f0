"""Seeing a node off when the fleet itself removes it (scale-in, fallback drain, budget stop).

A spot interruption gives a fixed deadline; a removal the fleet orders waits for us, up to a
bound. The signal differs per cloud, the answer is the same:

| cloud | the node is being removed when | done is told by |
|---|---|---|
| AWS | IMDSv2 `autoscaling/target-lifecycle-state` is `Terminated` (termination lifecycle hook) | `CompleteLifecycleAction` (CONTINUE); `RecordLifecycleActionHeartbeat` meanwhile |
| Azure | a Scheduled Event `Terminate` for this VM (scale set terminate notification) | approving the event (`StartRequests`) |
| GCP | the shutdown script that a managed instance group's delete runs (`finops-agent --scale-in`) | the script returning |

The job's checkpoint hook runs once (the same `[checkpoint.hook]` as for a spot notice, with
`FINOPS_INTERRUPTION_ACTION=scale-in`). The checkpoint is done when the hook is done: a
`command` hook when it exits; a `file` or `signal` hook when the job has saved and exited,
seen as no compute process left on any GPU. Never longer than `[lifecycle]
max_wait_seconds`: a hung hook costs that bound, never a stuck node.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aifinops.agents.config import AgentConfig, LifecycleSection

log = logging.getLogger("finops_agent.lifecycle")

SCALE_IN = "scale-in"  # FINOPS_INTERRUPTION_ACTION of a removal the fleet orders


def see_off(
    hook_done: threading.Event,
    released: Callable[[], bool],
    *,
    max_wait_seconds: float,
    heartbeat_seconds: float,
    heartbeat: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    poll_seconds: float = 1.0,
) -> str:
    """Wait until the hook is done and the job let go of the GPUs, heartbeating meanwhile.

    Returns "checkpointed", or "timeout" after `max_wait_seconds` (the bound on a hung hook).
    """
    stop = stop or threading.Event()
    started = clock()
    last_beat = started
    while True:
        if hook_done.is_set() and released():
            return "checkpointed"
        now = clock()
        if now - started >= max_wait_seconds:
            return "timeout"
        if heartbeat is not None and now - last_beat >= heartbeat_seconds:
            try:
                heartbeat()
            except Exception as exc:  # the hook's heartbeat timeout is the fallback
                log.warning("lifecycle heartbeat failed", extra={"error": str(exc)})
            last_beat = now
        remaining = max_wait_seconds - (now - started)
        stop.wait(min(poll_seconds, max(0.0, remaining)))


class AwsLifecycleAction:
    """CompleteLifecycleAction / RecordLifecycleActionHeartbeat for this instance (botocore)."""

    def __init__(
        self, section: LifecycleSection, region: str, instance_id: str, client: Any = None
    ) -> None:
        self.section = section
        self.instance_id = instance_id
        if client is None:
            import botocore.session
            from botocore.config import Config

            client = botocore.session.get_session().create_client(
                "autoscaling",
                region_name=section.region or region,
                endpoint_url=section.endpoint_url or None,
                config=Config(
                    connect_timeout=3,
                    read_timeout=10,
                    retries={"mode": "standard", "max_attempts": 3},
                ),
            )
        self.client = client
        self._group = section.aws_group_name

    def group(self) -> str:
        """The instance's Auto Scaling group: from the config, else asked once."""
        if not self._group:
            found = self.client.describe_auto_scaling_instances(InstanceIds=[self.instance_id])
            instances = found.get("AutoScalingInstances", [])
            if not instances:
                raise LookupError(f"instance {self.instance_id} is in no Auto Scaling group")
            self._group = str(instances[0]["AutoScalingGroupName"])
        return self._group

    def _target(self) -> dict[str, str]:
        return {
            "LifecycleHookName": self.section.aws_hook_name,
            "AutoScalingGroupName": self.group(),
            "InstanceId": self.instance_id,
        }

    def heartbeat(self) -> None:
        self.client.record_lifecycle_action_heartbeat(**self._target())

    def complete(self) -> None:
        self.client.complete_lifecycle_action(**self._target(), LifecycleActionResult="CONTINUE")


def azure_approve(http: Any, base: str, event_id: str) -> bool:
    """Approve a Scheduled Event now (Azure IMDS `StartRequests`), instead of at NotBefore."""
    body = json.dumps({"StartRequests": [{"EventId": event_id}]}).encode()
    status, _ = http.request(
        f"{base}/metadata/scheduledevents?api-version=2020-07-01",
        {"Metadata": "true", "Content-Type": "application/json"},
        method="POST",
        data=body,
    )
    return bool(status == 200)


def gpu_processes_gone(nvidia_smi: str | None = None) -> bool:
    """No compute process on any GPU (`nvidia-smi --query-compute-apps`); False when unknown."""
    binary = nvidia_smi or shutil.which("nvidia-smi")
    if not binary:
        return False
    try:
        out = subprocess.run(
            [binary, "--query-compute-apps=pid", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return not out.strip()


def scale_in_now(
    cfg: AgentConfig,
    released: Callable[[], bool] | None = None,
    stop: threading.Event | None = None,
) -> str:
    """`finops-agent --scale-in`: the GCE shutdown script's path (a MIG deleting the VM).

    Runs `[checkpoint.hook]` with FINOPS_INTERRUPTION_ACTION=scale-in and waits as `see_off`
    does; returns its outcome. The shutdown script is not the agent's service, so nothing is
    answered to the cloud: the script returning is the answer.
    """
    from aifinops.agents.hooks import run_hook

    life = cfg.lifecycle
    hook = cfg.checkpoint.hook
    when = datetime.now(UTC) + timedelta(seconds=life.max_wait_seconds)
    env = {
        "FINOPS_EVENT": "interruption",
        "FINOPS_INTERRUPTION_ACTION": SCALE_IN,
        "FINOPS_INTERRUPTION_TIME": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "FINOPS_INTERRUPTION_DEADLINE_SECONDS": f"{life.max_wait_seconds:.0f}",
        "FINOPS_CLOUD": cfg.metadata.provider,
        "FINOPS_INSTANCE_ID": socket.gethostname(),
    }
    done = threading.Event()
    if run_hook(hook, env, on_done=lambda outcome: done.set()) is None:
        done.set()
    if released is None:
        released = gpu_processes_gone if hook.mode in ("file", "signal") else (lambda: True)
    outcome = see_off(
        done,
        released,
        max_wait_seconds=life.max_wait_seconds,
        heartbeat_seconds=life.heartbeat_seconds,
        stop=stop,
    )
    log.warning("node released to the fleet", extra={"outcome": outcome, "via": "scale-in"})
    return outcome
