"""boto3 clients for the audit: one session, retries with backoff on throttling, moto endpoints.

Every client retries in botocore's `standard` mode (ThrottlingException, RequestLimitExceeded,
5xx and connection errors, exponential backoff with jitter) up to `MAX_ATTEMPTS` times, so an
account under API pressure slows the audit down instead of failing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_ATTEMPTS = 10
"""Attempts per call, the first one included (botocore's `total_max_attempts`)."""
"""Attempts per call, the first included (botocore `total_max_attempts`)."""


@dataclass
class AwsClients:
    """Creates (and caches) clients per service and region from one boto3 session."""

    session: Any = None
    """A `boto3.Session`; None: a default session (environment, profile, instance role)."""
    endpoint_url: str | None = None
    """One endpoint for every service (moto_server); None: AWS."""
    profile: str | None = None
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.session is None:
            import boto3

            self.session = boto3.Session(profile_name=self.profile)

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._cache:
            from botocore.config import Config

            options: dict[str, Any] = {
                "retries": {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                "user_agent_extra": "finops-audit",
            }
            kwargs: dict[str, Any] = {"region_name": region}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
                options["s3"] = {"addressing_style": "path"}  # no bucket.127.0.0.1 hosts
            kwargs["config"] = Config(**options)
            self._cache[key] = self.session.client(service, **kwargs)
        return self._cache[key]

    def default_region(self) -> str:
        return str(getattr(self.session, "region_name", None) or "us-east-1")
