"""Instance metadata and interruption notices: AWS IMDSv2, GCP metadata server, Azure IMDS.

Only the standard library (urllib): the agent must start on any image. Every request has a
short timeout; a metadata server that does not answer yields "unknown" host facts and no
notice, never a crash.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

from aifinops.agents.config import MetadataSection
from aifinops.agents.lifecycle import SCALE_IN, azure_approve
from aifinops.agents.records import HostInfo

log = logging.getLogger("finops_agent.metadata")

AWS_DEFAULT = "http://169.254.169.254"
GCP_DEFAULT = "http://metadata.google.internal/computeMetadata/v1"
AZURE_DEFAULT = "http://169.254.169.254"

# Time a job has after the notice, when the cloud does not say (seconds)
AWS_NOTICE_SECONDS = 120.0
GCP_NOTICE_SECONDS = 30.0
AZURE_NOTICE_SECONDS = 30.0


@dataclass(frozen=True)
class Notice:
    """An interruption (or rebalance) notice for this instance."""

    kind: str  # "interruption" | "rebalance"
    # terminate | stop | hibernate | preempt | rebalance | scale-in (the fleet removes the node)
    action: str
    time: str  # ISO 8601 UTC when the instance is taken (best estimate)
    deadline_seconds: float  # from detection to `time`
    key: str  # identifies the notice, so its hook runs once even across agent restarts
    event_id: str = ""  # the cloud's id of the event, where it must be answered (Azure)


class MetadataClient(Protocol):
    cloud: str

    def host_info(self) -> HostInfo: ...

    def poll(self) -> list[Notice]: ...


class _Http:
    def __init__(self, timeout_seconds: float) -> None:
        self.timeout = timeout_seconds

    def request(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        method: str = "GET",
        data: bytes | None = None,
    ) -> tuple[int, str]:
        """(status, body); status 0 when the server cannot be reached."""
        req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            log.debug("metadata unreachable", extra={"url": url, "error": str(exc)})
            return 0, ""


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown-boot"


class AwsMetadata:
    """EC2 IMDSv2: a session token first (PUT), then GETs with the token header."""

    cloud = "aws"

    def __init__(self, section: MetadataSection) -> None:
        self.base = (section.endpoint or AWS_DEFAULT).rstrip("/")
        self.http = _Http(section.timeout_seconds)
        self._token = ""
        self._token_at = 0.0
        self._instance_id = ""

    def _get(self, path: str) -> tuple[int, str]:
        if not self._token or time.monotonic() - self._token_at > 3000:
            self._refresh_token()
        status, body = self.http.request(
            f"{self.base}/latest/{path}", {"X-aws-ec2-metadata-token": self._token}
        )
        if status == 401:  # token expired or IMDS restarted
            self._refresh_token()
            status, body = self.http.request(
                f"{self.base}/latest/{path}", {"X-aws-ec2-metadata-token": self._token}
            )
        return status, body

    def _refresh_token(self) -> None:
        status, body = self.http.request(
            f"{self.base}/latest/api/token",
            {"X-aws-ec2-metadata-token-ttl-seconds": "21600"},
            method="PUT",
        )
        self._token = body.strip() if status == 200 else ""
        self._token_at = time.monotonic()

    def host_info(self) -> HostInfo:
        def value(path: str) -> str:
            status, body = self._get(f"meta-data/{path}")
            return body.strip() if status == 200 and body.strip() else "unknown"

        lifecycle = value("instance-life-cycle")  # spot | on-demand | scheduled
        self._instance_id = value("instance-id")
        return HostInfo(
            instance_id=self._instance_id,
            instance_type=value("instance-type"),
            region=value("placement/region"),
            lifecycle=lifecycle if lifecycle in ("spot", "on-demand") else "unknown",
            cloud=self.cloud,
        )

    def poll(self) -> list[Notice]:
        notices = []
        status, body = self._get("meta-data/spot/instance-action")
        if status == 200:
            try:
                raw = json.loads(body)
                action = str(raw["action"])
                when = datetime.fromisoformat(str(raw["time"]).replace("Z", "+00:00"))
            except (ValueError, KeyError, TypeError):
                log.warning("unreadable spot instance-action", extra={"body": body[:200]})
            else:
                notices.append(
                    Notice(
                        kind="interruption",
                        action=action,
                        time=_iso(when),
                        deadline_seconds=max(0.0, when.timestamp() - time.time()),
                        key=f"aws:{self._instance_id}:{action}:{_iso(when)}",
                    )
                )
        # A termination lifecycle hook (the fleet removes this node): the state goes from
        # InService to Terminated and stays so while the hook waits.
        status, body = self._get("meta-data/autoscaling/target-lifecycle-state")
        if status == 200 and body.strip() == "Terminated":
            notices.append(
                Notice(
                    kind="interruption",
                    action=SCALE_IN,
                    time=_iso(datetime.now(UTC)),
                    deadline_seconds=0.0,  # the agent's [lifecycle] max_wait_seconds
                    key=f"aws:{self._instance_id}:{SCALE_IN}",
                )
            )
        status, body = self._get("meta-data/events/recommendations/rebalance")
        if status == 200:
            try:
                notice_time = str(json.loads(body)["noticeTime"])
            except (ValueError, KeyError, TypeError):
                notice_time = _iso(datetime.now(UTC))
            notices.append(
                Notice(
                    kind="rebalance",
                    action="rebalance",
                    time=notice_time,
                    deadline_seconds=AWS_NOTICE_SECONDS,
                    key=f"aws:{self._instance_id}:rebalance:{notice_time}",
                )
            )
        return notices


class GcpMetadata:
    """GCE metadata server (header Metadata-Flavor: Google); `instance/preempted` is TRUE."""

    cloud = "gcp"

    def __init__(self, section: MetadataSection) -> None:
        self.base = (section.endpoint or GCP_DEFAULT).rstrip("/")
        self.http = _Http(section.timeout_seconds)
        self._instance_id = ""
        self._boot = _boot_id()

    def _get(self, path: str) -> tuple[int, str]:
        return self.http.request(f"{self.base}/{path}", {"Metadata-Flavor": "Google"})

    def host_info(self) -> HostInfo:
        def value(path: str) -> str:
            status, body = self._get(path)
            return body.strip() if status == 200 and body.strip() else ""

        zone = value("instance/zone").rsplit("/", 1)[-1]  # projects/N/zones/us-central1-a
        machine = value("instance/machine-type").rsplit("/", 1)[-1]
        preemptible = value("instance/scheduling/preemptible").upper() == "TRUE"
        spot = value("instance/scheduling/provisioning-model").upper() == "SPOT"
        self._instance_id = value("instance/id") or "unknown"
        return HostInfo(
            instance_id=self._instance_id,
            instance_type=machine or "unknown",
            region=zone.rsplit("-", 1)[0] if zone else "unknown",
            lifecycle="spot" if (preemptible or spot) else "on-demand",
            cloud=self.cloud,
        )

    def poll(self) -> list[Notice]:
        status, body = self._get("instance/preempted")
        if status != 200 or body.strip().upper() != "TRUE":
            return []
        when = datetime.fromtimestamp(time.time() + GCP_NOTICE_SECONDS, UTC)
        return [
            Notice(
                kind="interruption",
                action="preempt",
                time=_iso(when),
                deadline_seconds=GCP_NOTICE_SECONDS,
                key=f"gcp:{self._instance_id}:preempt:{self._boot}",
            )
        ]


class AzureMetadata:
    """Azure IMDS (header Metadata: true); Scheduled Events Preempt (spot) and Terminate (the
    scale set deletes the VM; needs the terminate notification in its profile)."""

    cloud = "azure"

    def __init__(self, section: MetadataSection) -> None:
        self.base = (section.endpoint or AZURE_DEFAULT).rstrip("/")
        self.http = _Http(section.timeout_seconds)
        self._name = ""

    def _get(self, path: str) -> tuple[int, str]:
        return self.http.request(f"{self.base}/{path}", {"Metadata": "true"})

    def approve(self, event_id: str) -> bool:
        """Let a Scheduled Event start now: the checkpoint is done."""
        return azure_approve(self.http, self.base, event_id)

    def host_info(self) -> HostInfo:
        status, body = self._get("metadata/instance/compute?api-version=2021-02-01")
        compute: dict[str, Any] = {}
        if status == 200:
            try:
                compute = dict(json.loads(body))
            except (ValueError, TypeError):
                compute = {}
        self._name = str(compute.get("name", ""))
        priority = str(compute.get("priority", "")).lower()
        return HostInfo(
            instance_id=str(compute.get("vmId") or "unknown"),
            instance_type=str(compute.get("vmSize") or "unknown"),
            region=str(compute.get("location") or "unknown"),
            lifecycle="spot"
            if priority in ("spot", "low")
            else ("on-demand" if priority else "unknown"),
            cloud=self.cloud,
        )

    def poll(self) -> list[Notice]:
        status, body = self._get("metadata/scheduledevents?api-version=2020-07-01")
        if status != 200:
            return []
        try:
            events = list(json.loads(body).get("Events", []))
        except (ValueError, TypeError, AttributeError):
            return []
        notices = []
        for event in events:
            kind = event.get("EventType")
            if kind not in ("Preempt", "Terminate"):
                continue
            resources = event.get("Resources") or []
            if self._name and resources and self._name not in resources:
                continue  # an event for another VM of the same availability set
            try:
                when = parsedate_to_datetime(str(event.get("NotBefore")))
            except (TypeError, ValueError):
                when = datetime.fromtimestamp(time.time() + AZURE_NOTICE_SECONDS, UTC)
            notices.append(
                Notice(
                    kind="interruption",
                    # Terminate: the scale set deletes this VM (terminate notification)
                    action="preempt" if kind == "Preempt" else SCALE_IN,
                    time=_iso(when),
                    deadline_seconds=max(0.0, when.timestamp() - time.time()),
                    key=f"azure:{event.get('EventId', '')}",
                    event_id=str(event.get("EventId", "")),
                )
            )
        return notices


class StaticMetadata:
    """Provider "none": host facts from the config, never a notice."""

    cloud = "none"

    def __init__(self, section: MetadataSection) -> None:
        self.section = section

    def host_info(self) -> HostInfo:
        s = self.section
        return HostInfo(
            instance_id=s.instance_id or "unknown",
            instance_type=s.instance_type or "unknown",
            region=s.region or "unknown",
            lifecycle=s.lifecycle or "unknown",
            cloud=self.cloud,
        )

    def poll(self) -> list[Notice]:
        return []


def make_client(section: MetadataSection) -> MetadataClient:
    providers: dict[str, Any] = {
        "aws": AwsMetadata,
        "gcp": GcpMetadata,
        "azure": AzureMetadata,
        "none": StaticMetadata,
    }
    client: MetadataClient = providers[section.provider](section)
    return client


def resolve_host(
    client: MetadataClient, section: MetadataSection, hostname: str, tags: dict[str, str]
) -> HostInfo:
    """Host facts from the provider, config values filling what it could not tell."""
    info = client.host_info()
    return HostInfo(
        instance_id=_known(info.instance_id, section.instance_id),
        instance_type=_known(info.instance_type, section.instance_type),
        region=_known(info.region, section.region),
        lifecycle=_known(info.lifecycle, section.lifecycle),
        cloud=info.cloud,
        hostname=hostname,
        tags=dict(tags),
    )


def _known(value: str, fallback: str) -> str:
    return value if value and value != "unknown" else (fallback or "unknown")
