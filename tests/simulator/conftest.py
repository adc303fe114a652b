"""pytest set-up for the simulator: the marker, SIGTERM turned into cleanup, stale namespaces."""

from __future__ import annotations

import signal
from typing import Any, Iterator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "simulator: end-to-end scenarios on a simulated EC2 host (slow, root)"
    )


@pytest.fixture(scope="session", autouse=True)
def _simulator_cleanup() -> Iterator[None]:
    """On SIGTERM, unwind through every context manager (namespaces, containers, servers)."""
    from tests.simulator.netns import netns_unavailable_reason, remove_stale

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    if netns_unavailable_reason() is None:
        remove_stale()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if netns_unavailable_reason() is None:
            remove_stale()
