"""The systemd journal: entries of a unit and kernel messages, within a time window.

Two readers give the same :class:`JournalEntry` values:

* :class:`ReaderJournal`: systemd-python's ``journal.Reader`` (imported lazily: the module is
  optional). Matches ``_SYSTEMD_UNIT=<unit>`` (the service's own output) OR ``UNIT=<unit>``
  (PID 1's lines about it) OR ``_TRANSPORT=kernel`` (OOM kills), as ``journalctl -u`` does.
* :class:`JournalctlJournal`: ``journalctl -u <unit> -o json`` (plus ``_TRANSPORT=kernel`` in a
  second call), under a timeout.

:class:`FallbackJournal` tries the first and falls back to the second when systemd-python is
missing or cannot open the files: ``OSError(EPROTONOSUPPORT)`` (errno 93) means the journal was
written by a newer systemd than this libsystemd reads (compact mode, systemd 252+).
Both paths read three kinds of entries, each from the end of the window backwards and each with
its own cap, and return them merged in time order (at most ``max_entries``), so the same journal
gives the same entries either way:

* systemd's lines about the unit (``UNIT=<unit>``: starts, exits, restarts): the newest
  ``max_entries``;
* the service's own output (``_SYSTEMD_UNIT=<unit>``): the newest ``MAX_OUTPUT_LINES`` only. A
  chatty agent writes 10^6 lines a day; the signatures need its latest lines, and reading all
  of them cost seconds and hundreds of MiB while crowding systemd's lines out of the cap;
* kernel lines (``_TRANSPORT=kernel``): the newest ``max(max_entries, KERNEL_LINES)``, kept only
  when they name the unit's process (the unit name, or its first 15 characters, the kernel's
  ``comm`` limit).

The Reader walks backwards with ``seek_tail`` and ``_previous`` and stops at the first entry
older than the window, so a window of a million entries costs what its newest few thousand do.
:class:`FallbackJournal` gives the Reader only its share of the time, so a slow Reader never
leaves journalctl without time.

Under ``--root`` the journal files are ``<root>/var/log/journal/**/*.journal`` and
``<root>/run/log/journal/**/*.journal``; they are read with ``journal.Reader(files=...)`` or
``journalctl --file=...``. journalctl only reads those files, it does not touch the live host,
so it runs under ``--root`` too. Each file is resolved inside the root first
(:meth:`RootFS.host_path`) and handed over by its resolved name, so a journal directory linked
out of the root gives "no journal files", never someone else's journal.
"""

from __future__ import annotations

import errno
import json
import time
from dataclasses import field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Protocol, Sequence

from gd_doctor.frozen import dataclass, hot_dataclass
from gd_doctor.host.commands import CommandRunner, SubprocessRunner, UnavailableRunner
from gd_doctor.host.fs import RootFS

# Fields kept on every entry: enough for gd-doctor, and small so a large window stays cheap.
KEPT_FIELDS = (
    "MESSAGE", "PRIORITY", "_SYSTEMD_UNIT", "UNIT", "OBJECT_SYSTEMD_UNIT", "_TRANSPORT", "_PID",
    "_COMM", "SYSLOG_IDENTIFIER", "MESSAGE_ID", "EXIT_CODE", "EXIT_STATUS", "N_RESTARTS",
    "JOB_TYPE", "JOB_RESULT", "_BOOT_ID", "__REALTIME_TIMESTAMP",
)  # fmt: skip
MAX_MESSAGE = 8192
MAX_OUTPUT_LINES = 1_000  # the service's own output: its newest lines (see the docstring)
KERNEL_LINES = 10_000  # kernel lines are filtered after reading: read more than the cap
PRIMARY_SHARE = 0.5  # of the time, for the first reader of a FallbackJournal


# One value per entry read (up to a million in a window): a compiled __init__, as the standard
# decorator's, is the faster one per instance.
@hot_dataclass(frozen=True)
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


# ---------------------------------------------------------------------------------------------
# Shared by both readers, so they cannot drift apart.


def _text(value: Any) -> str:
    """One field value as text: bytes decoded leniently, lists reduced to their first value."""
    kind = type(value)  # the common cases first: this runs for every field of every entry
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is bytes:
        return value.decode("utf-8", errors="replace")  # type: ignore[no-any-return]
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, int) for v in value):  # journalctl: binary as byte array
            return bytes(v & 0xFF for v in value).decode("utf-8", errors="replace")
        return _text(value[0]) if value else ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None:
        return ""
    return str(value)


def _kernel_tokens(units: Sequence[str]) -> List[str]:
    tokens = []
    for unit in units:
        base = unit[: -len(".service")] if unit.endswith(".service") else unit
        tokens += [base.lower(), base[:15].lower()]
    return tokens


def entry_from_fields(raw: Mapping[str, Any]) -> Optional[JournalEntry]:
    """A :class:`JournalEntry` from one entry's fields (journalctl JSON or Reader values)."""
    fields: Dict[str, str] = {k: _text(raw[k]) for k in KEPT_FIELDS if k in raw}
    try:
        usec = int(fields.get("__REALTIME_TIMESTAMP", ""))
    except ValueError:
        return None
    at = datetime.fromtimestamp(usec // 1_000_000, timezone.utc).replace(
        microsecond=usec % 1_000_000
    )
    message = fields.get("MESSAGE", "")[:MAX_MESSAGE].replace("\x00", "")
    fields["MESSAGE"] = message
    return JournalEntry(at, message, fields)


def wanted(entry: JournalEntry, units: Sequence[str], kernel: bool) -> bool:
    """The filter both readers apply after their coarse matches."""
    f = entry.fields
    if f.get("_SYSTEMD_UNIT") in units or f.get("UNIT") in units:
        return True
    if kernel and f.get("_TRANSPORT") == "kernel":
        low = entry.message.lower()
        return any(tok in low for tok in _kernel_tokens(units))
    return False


@dataclass(frozen=True)
class _Kind:
    """One kind of entries: the journal field both readers match on, how many of the newest
    matching entries they read, and which of those they keep."""

    field: str
    limit: int
    keep: Callable[[JournalEntry], bool]


def _kinds(units: Sequence[str], kernel: bool, max_entries: int) -> List[_Kind]:
    def about(e: JournalEntry) -> bool:
        return e.fields.get("UNIT") in units

    def output(e: JournalEntry) -> bool:
        return e.fields.get("UNIT") not in units and wanted(e, units, kernel)

    def kernel_line(e: JournalEntry) -> bool:
        f = e.fields
        mine = f.get("UNIT") in units or f.get("_SYSTEMD_UNIT") in units
        return not mine and wanted(e, units, kernel)

    cap = max(1, max_entries)
    kinds = [_Kind("UNIT", cap, about), _Kind("_SYSTEMD_UNIT", min(cap, MAX_OUTPUT_LINES), output)]
    if kernel:
        kinds.append(_Kind("_TRANSPORT", max(cap, KERNEL_LINES), kernel_line))
    return kinds


def _merged(parts: Sequence[List[JournalEntry]], max_entries: int) -> List[JournalEntry]:
    """The kinds' entries in time order (stable: equal times keep the kinds' order), at most
    ``max_entries``, the newest."""
    entries = sorted((e for part in parts for e in part), key=lambda e: e.timestamp)
    return entries[-max_entries:] if max_entries > 0 else entries


def _usec(entry: JournalEntry) -> int:
    return int(entry.fields.get("__REALTIME_TIMESTAMP", "0"))


def _since_usec(since: datetime) -> int:
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return int(since.timestamp() * 1_000_000)


# ---------------------------------------------------------------------------------------------


class ReaderJournal:
    """systemd-python's reader; ``files`` for journal files, else the local journal.

    It reads through the C class ``systemd._reader._Reader`` itself: ``_previous``,
    ``_get_all`` and ``_get_realtime`` give raw field bytes, which is all this reader needs.
    The Python wrapper ``systemd.journal.Reader`` adds per-field converters this reader turns
    off anyway, and its module imports ``logging``, ``uuid`` and ``traceback`` (16 million
    instructions, 2 % of a healthy run). A python-systemd whose C class lacks those methods,
    or ``wrapper=True``, reads through ``journal.Reader.get_previous`` instead; both give the
    same entries (tests/agent/test_journal.py).
    """

    _FAST = ("_previous", "_get_all", "_get_realtime")

    def __init__(self, files: Optional[Sequence[str]] = None, *, wrapper: bool = False) -> None:
        try:
            from systemd import _reader  # optional native module: import lazily
        except ImportError as exc:
            raise JournalUnavailable(f"systemd-python is not installed ({exc})") from exc
        self._native: Any = None
        self._journal: Any = None
        # The C methods give raw bytes without the per-field Python converters of
        # get_previous(), a third of its cost; older python-systemd has them too. Both
        # readers are that C class, so what it has decides how every read steps.
        self._fast = all(hasattr(_reader._Reader, m) for m in self._FAST)
        if self._fast and not wrapper:
            self._native = _reader
        else:
            try:
                from systemd import journal
            except ImportError as exc:
                raise JournalUnavailable(f"systemd-python is not installed ({exc})") from exc
            self._journal = journal
        self.files = list(files) if files is not None else None
        self.description = "systemd-python journal.Reader"

    def _open(self) -> Any:
        try:
            if self._native is not None:
                native = self._native
                if self.files is not None:
                    return native._Reader(0, files=self.files)
                return native._Reader(native.LOCAL_ONLY)  # journal.Reader's default, as journalctl
            # Every field stays raw text, so entries equal what journalctl's JSON gives.
            converters = {k: _text for k in self._journal.DEFAULT_CONVERTERS}
            if self.files is not None:
                return self._journal.Reader(files=self.files, converters=converters)
            return self._journal.Reader(converters=converters)
        except OSError as exc:
            if exc.errno == errno.EPROTONOSUPPORT:
                raise JournalUnavailable(
                    "journal files are newer than this libsystemd reads (errno 93, EPROTONOSUPPORT)"
                ) from exc
            raise JournalUnavailable(f"cannot open the journal: {exc.strerror or exc}") from exc

    def read(
        self,
        *,
        units: Sequence[str],
        since: datetime,
        kernel: bool,
        timeout: float,
        max_entries: int,
    ) -> List[JournalEntry]:
        deadline = time.monotonic() + timeout
        reader = self._open()
        try:
            parts = []
            for kind in _kinds(units, kernel, max_entries):
                values = ["kernel"] if kind.field == "_TRANSPORT" else list(units)
                parts.append(self._backwards(reader, kind, values, since, deadline, timeout))
            return _merged(parts, max_entries)
        finally:
            reader.close()

    def _backwards(
        self,
        reader: Any,
        kind: _Kind,
        values: Sequence[str],
        since: datetime,
        deadline: float,
        timeout: float,
    ) -> List[JournalEntry]:
        """The newest ``kind.limit`` entries with ``kind.field`` in ``values`` back to ``since``,
        read from the end (kept ones, oldest first)."""
        reader.flush_matches()
        for value in values:  # matches on one field are alternatives ("FIELD=value", as C takes)
            reader.add_match(f"{kind.field}={value}")
        reader.seek_tail()
        # journalctl --since=@SECONDS starts at the whole second: so does this reader
        start = _since_usec(since) // 1_000_000 * 1_000_000
        fast = self._fast
        out: List[JournalEntry] = []
        for n in range(kind.limit):
            try:
                raw = self._previous(reader, fast)
            except OSError as exc:  # a corrupt or truncated file mid-read
                if out:
                    break
                raise JournalUnavailable(f"journal read failed: {exc}") from exc
            if raw is None:
                break
            entry = entry_from_fields(raw)
            if entry is None:
                continue
            if _usec(entry) < start:
                break
            if kind.keep(entry):
                out.append(entry)
            if n % 256 == 255 and time.monotonic() > deadline:
                raise JournalUnavailable(f"journal read timed out after {timeout:.1f} s")
        out.reverse()
        return out

    @staticmethod
    def _previous(reader: Any, fast: bool) -> Optional[Mapping[str, Any]]:
        if not fast:
            raw = reader.get_previous()
            return raw or None
        if not reader._previous():
            return None
        raw = reader._get_all()
        raw["__REALTIME_TIMESTAMP"] = reader._get_realtime()
        return raw  # type: ignore[no-any-return]


class JournalctlJournal:
    """``journalctl -o json`` under a timeout; ``files`` adds ``--file=`` for each file."""

    def __init__(self, run: CommandRunner, files: Optional[Sequence[str]] = None) -> None:
        self.run = run
        self.files = list(files) if files is not None else None
        self.description = "journalctl -o json"

    def close(self) -> None:
        """Kill any journalctl still running (the end of the run)."""
        close = getattr(self.run, "close", None)
        if callable(close):
            close()

    def _argv(self, matches: Sequence[str], since: datetime, lines: int) -> List[str]:
        argv = ["journalctl", "--no-pager", "-q", "-a", "-o", "json"]
        argv += [f"--file={f}" for f in self.files or ()]
        # --reverse: with --since, --lines alone keeps the OLDEST lines of the window
        # (systemd 252); newest first, it keeps the newest and stops at the window start
        argv += [f"--since=@{_since_usec(since) // 1_000_000}", f"--lines={lines}", "--reverse"]
        return argv + list(matches)

    def _call(self, argv: List[str], timeout: float) -> Iterable[JournalEntry]:
        res = self.run.run(argv, timeout=timeout)
        if res.problem:
            raise JournalUnavailable(f"journalctl: {res.problem}")
        if res.returncode not in (0, None) and not res.stdout.strip():
            err = res.stderr.strip().splitlines()
            raise JournalUnavailable(f"journalctl failed: {err[-1] if err else res.returncode}")
        for line in res.stdout.splitlines():
            try:
                raw = json.loads(line)
            except ValueError:
                continue  # a line cut by the output limit
            if isinstance(raw, dict):
                entry = entry_from_fields(raw)
                if entry is not None:
                    yield entry

    def read(
        self,
        *,
        units: Sequence[str],
        since: datetime,
        kernel: bool,
        timeout: float,
        max_entries: int,
    ) -> List[JournalEntry]:
        deadline = time.monotonic() + timeout
        parts = []
        for kind in _kinds(units, kernel, max_entries):
            values = ["kernel"] if kind.field == "_TRANSPORT" else list(units)
            # Exact field matches rather than -u: -u also pulls coredump and per-user lines, and
            # the Reader path must see the same entries. Matches on one field are alternatives.
            argv = self._argv([f"{kind.field}={v}" for v in values], since, kind.limit)
            left = max(0.05, deadline - time.monotonic())
            newest_first = [e for e in self._call(argv, left) if kind.keep(e)]
            parts.append(newest_first[::-1])
        return _merged(parts, max_entries)


class FallbackJournal:
    """Tries ``primary``; when it cannot read, uses ``fallback`` and says why in description."""

    def __init__(self, primary: JournalSource, fallback: JournalSource) -> None:
        self.primary = primary
        self.fallback = fallback
        self.description = primary.description

    def close(self) -> None:
        """Close both readers (kills a journalctl still running)."""
        for source in (self.primary, self.fallback):
            close = getattr(source, "close", None)
            if callable(close):
                close()

    def read(
        self,
        *,
        units: Sequence[str],
        since: datetime,
        kernel: bool,
        timeout: float,
        max_entries: int,
    ) -> List[JournalEntry]:
        start = time.monotonic()
        try:
            # only a share of the time: a slow primary must leave the fallback its own
            out = self.primary.read(
                units=units,
                since=since,
                kernel=kernel,
                timeout=timeout * PRIMARY_SHARE,
                max_entries=max_entries,
            )
            self.description = self.primary.description
            return out
        except JournalUnavailable as exc:
            self.description = f"{self.fallback.description} ({self.primary.description}: {exc})"
            left = max(0.05, timeout - (time.monotonic() - start))
            return self.fallback.read(
                units=units, since=since, kernel=kernel, timeout=left, max_entries=max_entries
            )


def _with_fallback(files: Optional[Sequence[str]], run: CommandRunner) -> JournalSource:
    ctl = JournalctlJournal(run, files)
    try:
        reader = ReaderJournal(files)
    except JournalUnavailable as exc:
        ctl.description = f"journalctl -o json ({exc})"
        return ctl
    return FallbackJournal(reader, ctl)


def live_journal(run: CommandRunner) -> JournalSource:
    """The live host's journal: journal.Reader when systemd-python imports, else journalctl."""
    return _with_fallback(None, run)


MAX_JOURNAL_FILES = 512  # journalctl --file arguments; a real machine keeps a few dozen
JOURNAL_SUFFIXES = (".journal", ".journal~")
_GLOB_CHARS = frozenset("*?[]\\")  # journalctl globs --file= arguments: such a name is refused


@dataclass(frozen=True)
class JournalFiles:
    """The journal files under a root, as confined host paths, and the ones refused."""

    paths: List[str] = field(default_factory=list)
    refused: List[str] = field(default_factory=list)  # "<path>: <problem>"
    left_out: int = 0


def find_journal_files(fs: RootFS) -> JournalFiles:
    """Journal files under a root (persistent and volatile): each one a regular file inside
    the root, named by its resolved host path, so ``journalctl --file`` and ``journal.Reader``
    open exactly what was checked (no link of the captured machine is followed by them)."""
    out = JournalFiles()
    left = 0
    for base in ("/var/log/journal", "/run/log/journal"):
        walk = fs.walk(base, max_depth=1, max_files=MAX_JOURNAL_FILES)
        left += walk.left_out
        for path, _st in walk.files:
            if not path.endswith(JOURNAL_SUFFIXES):
                continue
            if len(out.paths) >= MAX_JOURNAL_FILES:
                left += 1
                continue
            real, problem = fs.host_path(path)
            if real is not None and _GLOB_CHARS.intersection(real):
                real, problem = None, "its name holds glob characters journalctl would expand"
            if real is None:
                out.refused.append(f"{path}: {problem}")
            else:
                out.paths.append(real)
    out.paths.sort()
    return JournalFiles(out.paths, out.refused, left)


def journal_files(fs: RootFS) -> List[str]:
    """Real paths of the journal files under a root (persistent and volatile), sorted."""
    return find_journal_files(fs).paths


def root_journal(fs: RootFS, run: CommandRunner) -> JournalSource:
    """The journal files under a ``--root`` (var/log/journal and run/log/journal).

    ``run`` runs ``journalctl --file``: it only reads the files it is given. The live host's
    runner is unavailable under --root, so a SubprocessRunner stands in for it then.
    """
    found = find_journal_files(fs)
    if not found.paths:
        why = f"; refused: {'; '.join(found.refused[:5])}" if found.refused else ""
        return UnavailableJournal(
            f"no journal files under {fs.path('/var/log/journal')} or "
            f"{fs.path('/run/log/journal')}{why}"
        )
    runner = SubprocessRunner() if isinstance(run, UnavailableRunner) else run
    return _with_fallback(found.paths, runner)
