"""agent.journal over REAL journal files: both readers give the same entries and results.

The .journal files are made at test time from the real export captures in
tests/fixtures/journal/ with systemd-journal-remote (tests/harness/journal_files.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List

import pytest

from gd_doctor.checks import agent_logs as agent
from gd_doctor.checks.base import Options
from gd_doctor.facts import to_data
from gd_doctor.facts.agent_logs import JournalFacts
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.commands import SubprocessRunner
from gd_doctor.host.fs import RootFS
from gd_doctor.host.journal import (
    FallbackJournal,
    JournalctlJournal,
    JournalEntry,
    JournalUnavailable,
    ReaderJournal,
    UnavailableJournal,
    root_journal,
)
from gd_doctor.model import Outcome, Status
from tests.harness.journal_files import journal_from_export, journal_remote_unavailable_reason
from tests.hostkit import FIXTURES, make_host, run_one

UNIT = "amazon-guardduty-agent.service"
CAPTURED_AT = datetime(2026, 11, 30, 13, 30, tzinfo=timezone.utc)  # the capture run's clock
NAMES = ("restart-loop", "oom-kill", "crash-signal", "clean-run", "no-entries")

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


def _read(source: object, hours: float = 24) -> List[JournalEntry]:
    return source.read(  # type: ignore[attr-defined,no-any-return]
        units=[UNIT],
        since=CAPTURED_AT - timedelta(hours=hours),
        kernel=True,
        timeout=10,
        max_entries=20_000,
    )


def _journal_check(tmp_path: Path, journal: object) -> Outcome:
    host = make_host(tmp_path / "root", journal=journal, clock=FixedClock(CAPTURED_AT))
    return run_one(agent.journal, host)


def _facts(out: Outcome) -> JournalFacts:
    assert isinstance(out.facts, JournalFacts)
    return out.facts


@needs_remote
@needs_reader
@pytest.mark.parametrize("name", NAMES)
def test_reader_and_journalctl_agree(tmp_path: Path, name: str) -> None:
    path = journal_from_export(FIXTURES / "journal" / f"{name}.export", tmp_path)
    via_reader = _read(ReaderJournal([str(path)]))
    via_ctl = _read(JournalctlJournal(SubprocessRunner(), [str(path)]))
    assert via_reader == via_ctl
    r = _journal_check(tmp_path, ReaderJournal([str(path)]))
    c = _journal_check(tmp_path, JournalctlJournal(SubprocessRunner(), [str(path)]))
    assert (r.status, r.summary, to_data(r.facts) | {"source": ""}) == (
        c.status,
        c.summary,
        to_data(c.facts) | {"source": ""},
    )


@needs_remote
def test_unit_entries_match_journalctl_json_capture(tmp_path: Path) -> None:
    """Entries of the unit read back equal the JSON journalctl printed in the container."""
    import json

    path = journal_from_export(FIXTURES / "journal" / "restart-loop.export", tmp_path)
    got = [e.message for e in _read(JournalctlJournal(SubprocessRunner(), [str(path)]))]
    want = [
        json.loads(line)["MESSAGE"]
        for line in (FIXTURES / "journal" / "restart-loop.json").read_text().splitlines()
    ]
    assert got == want


@needs_remote
@pytest.mark.parametrize(
    "name,status,words",
    [
        ("restart-loop", Status.FAIL, "restart loop"),
        ("oom-kill", Status.FAIL, "lack of memory 2 time(s)"),
        ("crash-signal", Status.WARN, "failed exit"),
        ("clean-run", Status.OK, "no failures"),
        ("no-entries", Status.OK, "no journal entries"),
    ],
)
def test_journal_results(tmp_path: Path, name: str, status: Status, words: str) -> None:
    path = journal_from_export(FIXTURES / "journal" / f"{name}.export", tmp_path)
    out = _journal_check(tmp_path, JournalctlJournal(SubprocessRunner(), [str(path)]))
    assert out.status == status, out.summary
    assert words in out.summary
    assert _facts(out).readable


@needs_remote
def test_restart_loop_data_and_signature(tmp_path: Path) -> None:
    path = journal_from_export(FIXTURES / "journal" / "restart-loop.export", tmp_path)
    out = _journal_check(tmp_path, JournalctlJournal(SubprocessRunner(), [str(path)]))
    d = _facts(out)
    assert d.starts == 3 and d.failed_exits == 3 and d.exit_codes == (1,)
    assert d.max_restart_counter == 3 and 1 < (d.restart_interval_s or 0) < 5
    assert [s.id for s in d.signatures] == ["connect-timeout"] and d.restart_loop
    assert d.signatures[0].count >= 1 and d.signatures[0].lines
    assert d.last_clean_run is None


@needs_remote
def test_crash_signal_reports_the_signal(tmp_path: Path) -> None:
    path = journal_from_export(FIXTURES / "journal" / "crash-signal.export", tmp_path)
    out = _journal_check(tmp_path, JournalctlJournal(SubprocessRunner(), [str(path)]))
    assert _facts(out).signals == ("SEGV",)


@needs_remote
def test_window_excludes_old_entries(tmp_path: Path) -> None:
    path = journal_from_export(FIXTURES / "journal" / "restart-loop.export", tmp_path)
    later = CAPTURED_AT + timedelta(days=3)
    host = make_host(
        tmp_path / "r",
        journal=JournalctlJournal(SubprocessRunner(), [str(path)]),
        clock=FixedClock(later),
    )
    out = run_one(agent.journal, host, options=Options(since=timedelta(hours=24)))
    assert out.status == Status.OK and _facts(out).entries == 0 and _facts(out).readable


@needs_remote
@needs_reader
def test_root_journal_reads_files_under_the_root(tmp_path: Path) -> None:
    jdir = tmp_path / "var/log/journal/4f13e767eb044425a9237c47cd906f48"
    journal_from_export(FIXTURES / "journal" / "oom-kill.export", jdir)
    src = root_journal(RootFS(tmp_path), SubprocessRunner())
    assert isinstance(src, FallbackJournal)
    assert len(_read(src)) > 10


def test_root_without_journal_files_is_a_clear_result(tmp_path: Path) -> None:
    src = root_journal(RootFS(tmp_path), SubprocessRunner())
    assert isinstance(src, UnavailableJournal)
    out = _journal_check(tmp_path, src)
    assert out.status == Status.WARN and "no journal files" in out.summary
    # could not read is not "no entries": the health proof needs to tell them apart
    assert not _facts(out).readable and "no journal files" in (_facts(out).unreadable or "")


class _TooNew:
    description = "journal.Reader"

    def read(self, **kw: object) -> List[JournalEntry]:
        raise JournalUnavailable("journal files are newer than this libsystemd reads (errno 93)")


class _Fixed:
    description = "journalctl -o json"

    def read(self, **kw: object) -> List[JournalEntry]:
        return []


def test_errno_93_falls_back_to_journalctl() -> None:
    src = FallbackJournal(_TooNew(), _Fixed())
    assert _read(src) == []
    assert "errno 93" in src.description and src.description.startswith("journalctl")


@needs_remote
@needs_reader
@pytest.mark.parametrize("name", NAMES)
def test_the_c_reader_and_the_python_wrapper_agree(tmp_path: Path, name: str) -> None:
    """The C class read directly gives what systemd.journal.Reader gives (older python-systemd
    without the C methods reads through the wrapper)."""
    path = journal_from_export(FIXTURES / "journal" / f"{name}.export", tmp_path)
    native = ReaderJournal([str(path)])
    wrapped = ReaderJournal([str(path)], wrapper=True)
    assert native._native is not None and wrapped._native is None
    assert _read(native) == _read(wrapped)


@needs_reader
@pytest.mark.parametrize("wrapper", [False, True])
def test_reader_maps_eprotonosupport(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrapper: bool
) -> None:
    import errno

    from systemd import _reader, journal

    def boom(*a: object, **k: object) -> None:
        raise OSError(errno.EPROTONOSUPPORT, "Protocol not supported")

    src = ReaderJournal([str(tmp_path / "x.journal")], wrapper=wrapper)
    monkeypatch.setattr(journal if wrapper else _reader, "Reader" if wrapper else "_Reader", boom)
    with pytest.raises(JournalUnavailable, match="errno 93"):
        _read(src)


def test_garbage_journal_file_gives_clear_result(tmp_path: Path) -> None:
    bad = tmp_path / "var/log/journal/m/system.journal"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x00garbage" * 100)
    out = _journal_check(tmp_path, root_journal(RootFS(tmp_path), SubprocessRunner()))
    assert out.status in (Status.OK, Status.WARN)
    assert isinstance(out.facts, JournalFacts)
