"""Processes of the live host (through psutil)."""

from __future__ import annotations

from typing import Protocol


class ProcessTable(Protocol):
    """Looks up processes by PID or name prefix."""

    description: str


class UnavailableProcesses:
    """No live processes: analysing a root."""

    def __init__(self, reason: str) -> None:
        self.description = f"unavailable ({reason})"
        self.reason = reason


def live_processes() -> ProcessTable:
    """The live host's process table."""
    return UnavailableProcesses("process table not built yet")
