"""Time as the checks see it: wall clock for log windows, a monotonic clock for durations."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    """Where checks and the runner get the time from; tests pass a :class:`FixedClock`."""

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for durations and deadlines."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()


class FixedClock:
    """A wall clock frozen at one instant; durations still come from the real monotonic clock.

    >>> FixedClock(datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)).now().isoformat()
    '2026-11-30T12:00:00+00:00'
    """

    def __init__(self, at: datetime) -> None:
        self._at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self._at

    def monotonic(self) -> float:
        return time.monotonic()
