"""Network probes: DNS, TCP, TLS and HTTPS, each with its own timeout."""

from __future__ import annotations

from typing import Protocol

from gd_doctor.host.settings import HostSettings


class Network(Protocol):
    """Resolves names and probes endpoints; every call takes a timeout."""

    description: str


class UnavailableNetwork:
    """No live network: analysing a root."""

    def __init__(self, reason: str) -> None:
        self.description = f"unavailable ({reason})"
        self.reason = reason


def live_network(settings: HostSettings) -> Network:
    """The network of the live host."""
    return UnavailableNetwork("network probes not built yet")
