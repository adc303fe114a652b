"""Test doubles for the SSM tests: a journal that replays lines, a filesystem that denies paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import FrozenSet, List, Optional, Sequence

from gd_doctor.host.fs import FileRead, RootFS
from gd_doctor.host.journal import JournalEntry
from tests.hostkit import NOW


class LinesJournal:
    """Journal entries whose MESSAGEs are the given lines (as the SSM unit writes them)."""

    description = "test journal"

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)
        self.asked: List[Sequence[str]] = []

    def read(
        self,
        *,
        units: Sequence[str],
        since: datetime,
        kernel: bool,
        timeout: float,
        max_entries: int,
    ) -> List[JournalEntry]:
        assert timeout > 0
        self.asked.append(tuple(units))
        return [JournalEntry(NOW, line, {"_SYSTEMD_UNIT": units[0]}) for line in self.lines]


@dataclass(frozen=True)
class DeniedFS(RootFS):
    """A RootFS where everything under ``denied`` answers "permission denied", as for a
    non-root user (independent of the uid the tests run as)."""

    denied: FrozenSet[str] = field(default_factory=frozenset)

    def _is_denied(self, abs_path: str) -> bool:
        return any(abs_path == d or abs_path.startswith(d.rstrip("/") + "/") for d in self.denied)

    def listdir(self, abs_path: str) -> Optional[List[str]]:
        return None if self._is_denied(abs_path) else super().listdir(abs_path)

    def listdir_problem(self, abs_path: str) -> Optional[str]:
        return (
            "permission denied" if self._is_denied(abs_path) else super().listdir_problem(abs_path)
        )

    def read(self, abs_path: str, max_bytes: int = 4 * 1024 * 1024) -> FileRead:
        if self._is_denied(abs_path):
            return FileRead(abs_path, problem="permission denied")
        return super().read(abs_path, max_bytes)

    def read_tail(self, abs_path: str, max_bytes: int = 4 * 1024 * 1024) -> FileRead:
        if self._is_denied(abs_path):
            return FileRead(abs_path, problem="permission denied")
        return super().read_tail(abs_path, max_bytes)
