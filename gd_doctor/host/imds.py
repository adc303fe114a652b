"""The EC2 instance metadata service (IMDSv2 first, IMDSv1 only where v2 is refused)."""

from __future__ import annotations

from typing import Optional, Protocol

from gd_doctor.host.settings import HostSettings


class ImdsClient(Protocol):
    """Talks to IMDS. Never goes through a proxy; never logs tokens or credentials."""

    endpoint: Optional[str]


class UnavailableImds:
    """No IMDS: analysing a root, or IMDS switched off by AWS_EC2_METADATA_DISABLED."""

    def __init__(self, reason: str) -> None:
        self.endpoint: Optional[str] = None
        self.reason = reason


def live_imds(settings: HostSettings) -> ImdsClient:
    """The IMDS client for the live host."""
    return UnavailableImds("IMDS client not built yet")
