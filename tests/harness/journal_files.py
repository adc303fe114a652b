"""Turn journal export files (``journalctl -o export``) into real ``.journal`` files.

Uses ``systemd-journal-remote`` (Debian package ``systemd-journal-remote``), which needs no running
journald::

    SYSTEMD_JOURNAL_COMPACT=0 /lib/systemd/systemd-journal-remote --output=DIR/system.journal -

``SYSTEMD_JOURNAL_COMPACT=0`` keeps the file readable by older libsystemd (Debian 11's
python3-systemd 234 fails on compact files with errno 93).

Example::

    from tests.harness.journal_files import journal_from_export, journal_remote_unavailable_reason

    @pytest.mark.skipif(journal_remote_unavailable_reason() is not None, reason=...)
    def test_reader(tmp_path):
        path = journal_from_export(FIXTURES / "journal/restart-loop.export", tmp_path)
        # journalctl --file=path ... or systemd.journal.Reader(files=[str(path)])
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

JOURNAL_REMOTE_CANDIDATES: tuple[str, ...] = (
    "/lib/systemd/systemd-journal-remote",
    "/usr/lib/systemd/systemd-journal-remote",
)
TIMEOUT = 60.0


class JournalFileError(RuntimeError):
    """systemd-journal-remote could not write the journal file."""


def journal_remote_path() -> str | None:
    """Path of the systemd-journal-remote binary, or None if it is not installed."""
    for candidate in JOURNAL_REMOTE_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("systemd-journal-remote")


def journal_remote_unavailable_reason() -> str | None:
    """Why journal files cannot be made here, or None if they can."""
    if journal_remote_path() is None:
        return "systemd-journal-remote is missing (apt-get install systemd-journal-remote)"
    return None


def journal_from_export(
    export: Path | str | bytes,
    out_dir: Path | str,
    *,
    name: str = "system.journal",
    compact: bool = False,
    timeout: float = TIMEOUT,
) -> Path:
    """Write the export-format entries in ``export`` to ``out_dir/name`` and return its path.

    ``export`` is a path to an ``.export`` file or the export-format bytes themselves. ``name``
    must end in ``.journal``; an existing file of that name is replaced. ``compact=True`` writes
    the newer compact format (systemd >= 252 readers only).
    """
    tool = journal_remote_path()
    if tool is None:
        raise JournalFileError(journal_remote_unavailable_reason() or "no systemd-journal-remote")
    if not name.endswith(".journal"):
        raise ValueError(f"journal file names must end in .journal: {name!r}")
    data = export if isinstance(export, bytes) else Path(export).read_bytes()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / name
    if target.exists():
        target.unlink()
    env = dict(os.environ)
    env["SYSTEMD_JOURNAL_COMPACT"] = "1" if compact else "0"
    env.setdefault("SYSTEMD_LOG_LEVEL", "warning")
    proc = subprocess.run(
        [tool, f"--output={target}", "-"],
        input=data,
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if proc.returncode != 0 or not target.exists():
        raise JournalFileError(
            f"{tool} failed with {proc.returncode}: {proc.stderr.decode('utf-8', 'replace')}"
        )
    return target


def parse_export(data: bytes) -> Iterator[dict[str, bytes]]:
    """Parse journal export format into one dict per entry (binary-safe fields included)."""
    entry: dict[str, bytes] = {}
    i, n = 0, len(data)
    while i < n:
        nl = data.find(b"\n", i)
        if nl < 0:
            nl = n
        line = data[i:nl]
        if not line:
            if entry:
                yield entry
                entry = {}
            i = nl + 1
            continue
        eq = line.find(b"=")
        if eq >= 0:
            entry[line[:eq].decode("utf-8", "replace")] = line[eq + 1 :]
            i = nl + 1
        else:
            # Binary field: NAME\n<64-bit little-endian length><data>\n
            key = line.decode("utf-8", "replace")
            size = int.from_bytes(data[nl + 1 : nl + 9], "little")
            start = nl + 9
            entry[key] = data[start : start + size]
            i = start + size + 1
    if entry:
        yield entry


def format_export(entries: Iterable[dict[str, bytes]]) -> bytes:
    """Serialise entries back to export format (binary form for values holding a newline)."""
    out = bytearray()
    for entry in entries:
        for key, value in entry.items():
            k = key.encode("utf-8")
            if b"\n" in value:
                out += k + b"\n" + len(value).to_bytes(8, "little") + value + b"\n"
            else:
                out += k + b"=" + value + b"\n"
        out += b"\n"
    return bytes(out)


def journalctl_messages(journal: Path, *extra: str, timeout: float = TIMEOUT) -> list[str]:
    """MESSAGE of every entry in a journal file, read back with ``journalctl --file``."""
    proc = subprocess.run(
        ["journalctl", f"--file={journal}", "--no-pager", "-o", "cat", *extra],
        capture_output=True,
        timeout=timeout,
        check=True,
        env={**os.environ, "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"},
    )
    return proc.stdout.decode("utf-8", "replace").splitlines()
