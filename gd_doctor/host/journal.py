"""The systemd journal: entries of a unit and kernel messages, within a time window.

Placeholder ports; the readers (systemd-python's ``journal.Reader`` with a ``journalctl -o json``
fallback, and files under a ``--root``) live here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import List, Mapping, Protocol, Sequence

from gd_doctor.host.commands import CommandRunner
from gd_doctor.host.fs import RootFS


@dataclass(frozen=True)
class JournalEntry:
    """One journal entry, with the fields gd-doctor reads."""

    timestamp: datetime
    message: str
    fields: Mapping[str, str] = field(default_factory=dict)


class JournalUnavailable(Exception):
    """The journal cannot be read; the message says why, for the report."""


class JournalSource(Protocol):
    """Reads entries of systemd units (and kernel messages) since a point in time."""

    description: str

    def read(
        self,
        *,
        units: Sequence[str],
        since: datetime,
        kernel: bool,
        timeout: float,
        max_entries: int,
    ) -> List[JournalEntry]: ...


class UnavailableJournal:
    """A journal port that always says why it cannot be read."""

    def __init__(self, reason: str) -> None:
        self.description = f"unavailable ({reason})"
        self.reason = reason

    def read(
        self,
        *,
        units: Sequence[str],
        since: datetime,
        kernel: bool,
        timeout: float,
        max_entries: int,
    ) -> List[JournalEntry]:
        raise JournalUnavailable(self.reason)


def live_journal(run: CommandRunner) -> JournalSource:
    """The live host's journal."""
    return UnavailableJournal("journal reader not built yet")


def root_journal(fs: RootFS, run: CommandRunner) -> JournalSource:
    """The journal files under a ``--root`` (var/log/journal and run/log/journal)."""
    return UnavailableJournal("journal files under a root not read yet")
