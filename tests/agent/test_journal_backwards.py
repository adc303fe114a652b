"""Both journal readers read backwards from the end of the window, each kind of entry with its
own cap: a flood of the agent's own output neither crowds out systemd's lines about the unit
nor costs a walk through every entry of the window.

The journals are REAL .journal files (systemd-journal-remote) made from the real restart-loop
capture (tests/fixtures/journal/restart-loop.export) plus a flood of the agent's own output
lines, copied from one of its real stdout entries with new times and messages.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

import pytest

from gd_doctor.checks import agent_logs as agent
from gd_doctor.facts.agent_logs import JournalFacts
from gd_doctor.host import journal as journal_mod
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.commands import SubprocessRunner
from gd_doctor.host.journal import (
    FallbackJournal,
    JournalctlJournal,
    JournalEntry,
    JournalUnavailable,
    ReaderJournal,
)
from tests.harness.journal_files import (
    format_export,
    journal_from_export,
    journal_remote_unavailable_reason,
    parse_export,
)
from tests.hostkit import FIXTURES, make_host, run_one

UNIT = "amazon-guardduty-agent.service"
CAPTURED_AT = datetime(2026, 11, 30, 13, 30, tzinfo=timezone.utc)
SINCE = CAPTURED_AT - timedelta(hours=24)
CAP = 100  # MAX_OUTPUT_LINES for these tests: small, so the flood is cheap to write
OLD, NEW = 200, 400  # flood lines before the window and inside it (after the capture)

needs_remote = pytest.mark.skipif(
    journal_remote_unavailable_reason() is not None,
    reason=f"systemd-journal-remote: {journal_remote_unavailable_reason()}",
)


def _has_reader() -> bool:
    try:
        ReaderJournal()
    except JournalUnavailable:
        return False
    return True


needs_reader = pytest.mark.skipif(not _has_reader(), reason="systemd-python not installed")


def _flooded(tmp_path: Path) -> Path:
    """The restart loop, OLD output lines a day and more before it, NEW output lines after."""
    real = list(parse_export((FIXTURES / "journal" / "restart-loop.export").read_bytes()))
    output = next(e for e in real if e.get("_TRANSPORT") == b"stdout")
    first = int(real[0]["__REALTIME_TIMESTAMP"])
    last = int(real[-1]["__REALTIME_TIMESTAMP"])
    mono = int(real[0]["__MONOTONIC_TIMESTAMP"])

    def line(at: int, mono_at: int, text: str) -> Dict[str, bytes]:
        e = {k: v for k, v in output.items() if k != "__CURSOR"}
        e["__REALTIME_TIMESTAMP"] = str(at).encode()
        e["__MONOTONIC_TIMESTAMP"] = str(mono_at).encode()
        e["MESSAGE"] = text.encode()
        return e

    day = 30 * 3600 * 1_000_000
    old = [line(first - day + i, mono - 10_000 + i, f"INFO old heartbeat {i}") for i in range(OLD)]
    new = [line(last + 1000 * (i + 1), mono + 10**9 + i, f"INFO heartbeat {i}") for i in range(NEW)]
    return journal_from_export(format_export(old + real + new), tmp_path)


def _read(source: Any) -> List[JournalEntry]:
    return source.read(  # type: ignore[no-any-return]
        units=[UNIT], since=SINCE, kernel=True, timeout=10, max_entries=20_000
    )


@needs_remote
@needs_reader
def test_a_flood_of_output_keeps_every_systemd_line_and_the_newest_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_mod, "MAX_OUTPUT_LINES", CAP)
    path = _flooded(tmp_path)
    via_reader = _read(ReaderJournal([str(path)]))
    via_ctl = _read(JournalctlJournal(SubprocessRunner(), [str(path)]))
    assert via_reader == via_ctl
    about = [e for e in via_reader if e.fields.get("UNIT") == UNIT]
    output = [e for e in via_reader if e.fields.get("_SYSTEMD_UNIT") == UNIT]
    assert len(about) == 14  # every line systemd wrote about the unit in the capture
    assert [e.message for e in output] == [f"INFO heartbeat {i}" for i in range(NEW - CAP, NEW)]
    assert not any("old heartbeat" in e.message for e in via_reader)  # before the window
    times = [e.timestamp for e in via_reader]
    assert times == sorted(times)


@needs_remote
@needs_reader
def test_the_restart_loop_is_still_seen_under_the_flood(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_mod, "MAX_OUTPUT_LINES", CAP)
    path = _flooded(tmp_path)
    host = make_host(
        tmp_path / "root", journal=ReaderJournal([str(path)]), clock=FixedClock(CAPTURED_AT)
    )
    out = run_one(agent.journal, host)
    assert isinstance(out.facts, JournalFacts)
    assert out.facts.starts == 3 and out.facts.failed_exits == 3 and out.facts.restart_loop
    assert out.facts.entries == 14 + CAP


class _Counting:
    """A systemd journal.Reader that counts the entries it steps over."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.steps = 0

    def _previous(self, *a: Any) -> Any:
        self.steps += 1
        return self.inner._previous(*a)

    def get_previous(self, *a: Any) -> Any:
        self.steps += 1
        return self.inner.get_previous(*a)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@needs_remote
@needs_reader
def test_the_reader_steps_over_the_newest_entries_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_mod, "MAX_OUTPUT_LINES", CAP)
    path = _flooded(tmp_path)
    src = ReaderJournal([str(path)])
    opened: List[_Counting] = []
    real_open = src._open

    def counting_open() -> Any:
        opened.append(_Counting(real_open()))
        return opened[-1]

    monkeypatch.setattr(src, "_open", counting_open)
    entries = _read(src)
    assert len(entries) == 14 + CAP
    # systemd's 14 lines (+1 step to the end), the newest CAP output lines, no kernel lines
    # (+1): not the 600 flood lines nor anything before the window
    assert opened[0].steps <= 14 + 1 + CAP + 1
    assert opened[0].steps < OLD + NEW


class _Slow:
    """A primary reader that spends all the time it is given (on a patched clock)."""

    description = "journal.Reader"

    def __init__(self, clock: List[float]) -> None:
        self.clock = clock
        self.given: List[float] = []

    def read(self, **kw: Any) -> List[JournalEntry]:
        self.given.append(float(kw["timeout"]))
        self.clock[0] += float(kw["timeout"])
        raise JournalUnavailable(f"journal read timed out after {kw['timeout']:.1f} s")


class _Recording:
    description = "journalctl -o json"

    def __init__(self) -> None:
        self.given: List[float] = []

    def read(self, **kw: Any) -> List[JournalEntry]:
        self.given.append(float(kw["timeout"]))
        return []


def test_a_slow_reader_leaves_the_fallback_its_share(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(journal_mod.time, "monotonic", lambda: clock[0])
    slow, ctl = _Slow(clock), _Recording()
    src = FallbackJournal(slow, ctl)
    assert _read(src) == []
    assert slow.given == [10 * journal_mod.PRIMARY_SHARE]
    assert ctl.given == [pytest.approx(10 * (1 - journal_mod.PRIMARY_SHARE))]
    assert "timed out" in src.description and src.description.startswith("journalctl")
