"""Package transaction history from dnf's and yum's SQLite databases, read-only and bounded.

dnf 4 (libdnf's "swdb", Amazon Linux 2023, RHEL 8/9) keeps ``/var/lib/dnf/history.sqlite``:
``trans`` (``dt_begin`` unix time, ``cmdline``, ``state`` 1 done / 2 error), ``trans_item``
(``action``: 1 install, 2 downgrade, 6 upgrade, 8 remove, 9 reinstall...; the replaced side, 3/5/
7/10, is left out), ``rpm`` (name, epoch, version, release, arch). yum 3 (Amazon Linux 2) keeps
``/var/lib/yum/history/history-YYYY-MM-DD.sqlite``: ``trans_beg``/``trans_end`` (``timestamp``,
``return_code``), ``trans_data_pkgs`` (``state``: Install, Update, Erase...), ``pkgtups``.

The database is opened by this machine's path of the (confined) file with ``mode=ro`` and
``immutable=1``: SQLite then takes no lock, writes no journal and never creates a file next to
it. A hostile database (not SQLite, another schema, huge tables, views where tables should be)
gives a problem string, never an exception: only named columns of named tables are selected,
``trusted_schema`` is off, a progress handler ends any query past its time, rows are capped.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, List, Optional, Sequence, Tuple

from gd_doctor.host.fs import RootFS
from gd_doctor.redact import redact

DNF_HISTORY = "/var/lib/dnf/history.sqlite"
YUM_HISTORY_DIR = "/var/lib/yum/history"
MAX_TRANSACTIONS = 200
MAX_ITEMS = 2000
MAX_YUM_FILES = 10
QUERY_SECONDS = 2.0
# libdnf TransactionItemAction: the new side of each change (the replaced side is the same
# change seen from the old package)
DNF_ACTIONS = {
    1: "install",
    2: "downgrade",
    4: "obsolete",
    6: "upgrade",
    8: "remove",
    9: "reinstall",
    11: "reason change",
}
YUM_STATES = {
    "Install": "install",
    "True-Install": "install",
    "Dep-Install": "install",
    "Update": "upgrade",
    "Downgrade": "downgrade",
    "Erase": "remove",
    "Reinstall": "reinstall",
    "Obsoleting": "obsolete",
}


@dataclass(frozen=True)
class Change:
    """One package changed by one transaction."""

    action: str
    package: str  # name-[epoch:]version-release.arch


@dataclass(frozen=True)
class Transaction:
    """One dnf/yum transaction: when, its command line (redacted), failed or not, changes."""

    at: datetime
    source: str
    cmdline: str
    failed: Optional[bool]
    changes: Tuple[Change, ...]


def _connect(path: str, deadline: float) -> sqlite3.Connection:
    uri = f"file:{urllib.parse.quote(path)}?mode=ro&immutable=1"
    conn = sqlite3.connect(uri, uri=True, timeout=0.5, check_same_thread=False)
    # A view or trigger in a hostile database cannot call functions; a query past its time
    # is interrupted (the handler runs every 1000 virtual machine steps).
    conn.execute("PRAGMA trusted_schema = OFF")
    conn.execute("PRAGMA query_only = ON")
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
    return conn


def _rows(conn: sqlite3.Connection, sql: str, args: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sql, tuple(args)).fetchmany(MAX_ITEMS)]


def _nevra(name: Any, epoch: Any, version: Any, release: Any, arch: Any) -> str:
    ep = f"{epoch}:" if str(epoch or "0") not in ("0", "") else ""
    return f"{name}-{ep}{version}-{release}.{arch}"[:200]


def _utc(ts: Any) -> Optional[datetime]:
    if not isinstance(ts, (int, float)) or not 0 < ts < 4102444800:  # before 2100
        return None
    return datetime.fromtimestamp(ts, timezone.utc)


def _dnf(conn: sqlite3.Connection, since: datetime, source: str) -> List[Transaction]:
    trans = _rows(
        conn,
        "SELECT id, dt_begin, cmdline, state FROM trans WHERE dt_begin >= ? "
        "ORDER BY dt_begin DESC LIMIT ?",
        (int(since.timestamp()), MAX_TRANSACTIONS),
    )
    out: List[Transaction] = []
    for tid, begin, cmdline, state in trans:
        at = _utc(begin)
        if at is None:
            continue
        items = _rows(
            conn,
            "SELECT ti.action, r.name, r.epoch, r.version, r.release, r.arch FROM trans_item ti "
            "JOIN rpm r ON r.item_id = ti.item_id WHERE ti.trans_id = ? ORDER BY ti.id LIMIT ?",
            (tid, MAX_ITEMS),
        )
        changes = tuple(
            Change(DNF_ACTIONS[a], _nevra(*rest)) for a, *rest in items if a in DNF_ACTIONS
        )
        failed = None if state not in (1, 2) else state == 2
        out.append(Transaction(at, source, redact(str(cmdline or ""))[:300], failed, changes))
    return out


def _yum(conn: sqlite3.Connection, since: datetime, source: str) -> List[Transaction]:
    trans = _rows(
        conn,
        "SELECT b.tid, b.timestamp, e.return_code FROM trans_beg b LEFT JOIN trans_end e "
        "ON e.tid = b.tid WHERE b.timestamp >= ? ORDER BY b.timestamp DESC LIMIT ?",
        (int(since.timestamp()), MAX_TRANSACTIONS),
    )
    out: List[Transaction] = []
    for tid, begin, code in trans:
        at = _utc(begin)
        if at is None:
            continue
        cmd = _rows(conn, "SELECT cmdline FROM trans_cmdline WHERE tid = ? LIMIT 1", (tid,))
        items = _rows(
            conn,
            "SELECT d.state, p.name, p.epoch, p.version, p.release, p.arch FROM trans_data_pkgs d "
            "JOIN pkgtups p ON p.pkgtupid = d.pkgtupid WHERE d.tid = ? LIMIT ?",
            (tid, MAX_ITEMS),
        )
        changes = tuple(
            Change(YUM_STATES[s], _nevra(*rest)) for s, *rest in items if s in YUM_STATES
        )
        failed = None if not isinstance(code, int) else code != 0
        line = redact(str(cmd[0][0] if cmd else ""))[:300]
        out.append(Transaction(at, source, line, failed, changes))
    return out


Reader = Callable[[sqlite3.Connection, datetime, str], List[Transaction]]


def _read_one(
    fs: RootFS,
    path: str,
    since: datetime,
    reader: Reader,
    timeout: float,
) -> Tuple[List[Transaction], Optional[str]]:
    host_path, problem = fs.host_path(path)
    if host_path is None:
        return [], None if problem == "missing" else f"{path}: {problem}"
    try:
        conn = _connect(host_path, time.monotonic() + timeout)
    except sqlite3.Error as exc:
        return [], f"{path}: cannot open ({exc})"
    try:
        return reader(conn, since, path), None
    except (sqlite3.Error, ValueError, TypeError, OverflowError) as exc:
        return [], f"{path}: not a readable history database ({redact(str(exc))[:120]})"
    finally:
        conn.close()


def read_db(
    fs: RootFS, path: str, since: datetime, timeout: float = QUERY_SECONDS
) -> Tuple[List[Transaction], Optional[str]]:
    """The transactions of one history database (dnf's or a yum one) since ``since``."""
    return _read_one(fs, path, since, _dnf if path == DNF_HISTORY else _yum, timeout)


def yum_files(fs: RootFS) -> List[str]:
    names = [n for n in fs.listdir(YUM_HISTORY_DIR) or [] if n.startswith("history-")]
    return [
        f"{YUM_HISTORY_DIR}/{n}" for n in sorted(names)[-MAX_YUM_FILES:] if n.endswith(".sqlite")
    ]


def read_history(
    fs: RootFS, since: datetime, timeout: float = QUERY_SECONDS
) -> Tuple[List[Transaction], List[str]]:
    """Every dnf and yum transaction since ``since`` (newest first per database, capped), and
    the databases that could not be read."""
    out: List[Transaction] = []
    problems: List[str] = []
    todo: List[Tuple[str, Reader]] = [(DNF_HISTORY, _dnf)]
    todo += [(p, _yum) for p in yum_files(fs)]
    for path, read in todo:
        got, problem = _read_one(fs, path, since, read, timeout)
        out += got
        if problem:
            problems.append(problem)
    return out, problems


def is_history_db(path: str) -> bool:
    return path == DNF_HISTORY or (
        path.startswith(YUM_HISTORY_DIR + "/history-") and path.endswith(".sqlite")
    )


# --- a bundle's copy ----------------------------------------------------------------------

# The bundle holds no copy of the host's database (its console output and command lines may
# hold secrets, its size is the host's): a new database of the same tables and columns the
# readers above use, with the window's transactions only, command lines redacted.
_DNF_DDL = (
    "CREATE TABLE trans (id INTEGER PRIMARY KEY, dt_begin INTEGER NOT NULL, cmdline TEXT,"
    " state INTEGER NOT NULL)",
    "CREATE TABLE trans_item (id INTEGER PRIMARY KEY, trans_id INTEGER, item_id INTEGER,"
    " action INTEGER NOT NULL)",
    "CREATE TABLE rpm (item_id INTEGER UNIQUE NOT NULL, name TEXT NOT NULL, epoch INTEGER NOT"
    " NULL, version TEXT NOT NULL, release TEXT NOT NULL, arch TEXT NOT NULL)",
)
_YUM_DDL = (
    "CREATE TABLE trans_beg (tid INTEGER PRIMARY KEY, timestamp INTEGER NOT NULL)",
    "CREATE TABLE trans_end (tid INTEGER PRIMARY KEY, timestamp INTEGER, return_code INTEGER)",
    "CREATE TABLE trans_cmdline (tid INTEGER NOT NULL, cmdline TEXT NOT NULL)",
    "CREATE TABLE trans_data_pkgs (tid INTEGER NOT NULL, pkgtupid INTEGER NOT NULL,"
    " state TEXT NOT NULL)",
    "CREATE TABLE pkgtups (pkgtupid INTEGER PRIMARY KEY, name TEXT NOT NULL, arch TEXT NOT"
    " NULL, epoch TEXT NOT NULL, version TEXT NOT NULL, release TEXT NOT NULL)",
)
_DNF_CODES = {v: k for k, v in DNF_ACTIONS.items()}
_YUM_CODES = {
    "install": "Install",
    "upgrade": "Update",
    "downgrade": "Downgrade",
    "remove": "Erase",
    "reinstall": "Reinstall",
    "obsolete": "Obsoleting",
}


def _split_nevra(nevra: str) -> Tuple[str, str, str, str, str]:
    rest, _, arch = nevra.rpartition(".")
    rest, _, release = rest.rpartition("-")
    name, _, evr = rest.rpartition("-")
    epoch, _, version = evr.rpartition(":") if ":" in evr else ("0", "", evr)
    return name, epoch or "0", version, release, arch


def bundle_copy(
    transactions: Sequence[Transaction], path: str, scrub: Callable[[str], str]
) -> bytes:
    """The bytes of a new SQLite database of ``transactions`` in the layout of ``path``'s kind
    (dnf or yum), every text passed through ``scrub`` (redaction)."""
    conn = sqlite3.connect(":memory:")
    try:
        dnf = path == DNF_HISTORY
        for ddl in _DNF_DDL if dnf else _YUM_DDL:
            conn.execute(ddl)
        item = 0
        for tid, t in enumerate(sorted(transactions, key=lambda x: x.at), start=1):
            ts = int(t.at.timestamp())
            if dnf:
                state = 2 if t.failed else 1
                conn.execute(
                    "INSERT INTO trans VALUES (?, ?, ?, ?)", (tid, ts, scrub(t.cmdline), state)
                )
            else:
                conn.execute("INSERT INTO trans_beg VALUES (?, ?)", (tid, ts))
                code = None if t.failed is None else int(bool(t.failed))
                conn.execute("INSERT INTO trans_end VALUES (?, ?, ?)", (tid, ts, code))
                conn.execute("INSERT INTO trans_cmdline VALUES (?, ?)", (tid, scrub(t.cmdline)))
            for c in t.changes:
                item += 1
                fields = tuple(scrub(f) for f in _split_nevra(c.package))
                if dnf:
                    conn.execute("INSERT INTO rpm VALUES (?, ?, ?, ?, ?, ?)", (item, *fields))
                    conn.execute(
                        "INSERT INTO trans_item VALUES (?, ?, ?, ?)",
                        (item, tid, item, _DNF_CODES.get(c.action, 1)),
                    )
                else:
                    name, epoch, version, release, arch = fields
                    conn.execute(
                        "INSERT INTO pkgtups VALUES (?, ?, ?, ?, ?, ?)",
                        (item, name, arch, epoch, version, release),
                    )
                    conn.execute(
                        "INSERT INTO trans_data_pkgs VALUES (?, ?, ?)",
                        (tid, item, _YUM_CODES.get(c.action, "Install")),
                    )
        conn.commit()
        return _serialize(conn)
    finally:
        conn.close()


def _serialize(conn: sqlite3.Connection) -> bytes:
    serialize = getattr(conn, "serialize", None)  # Python 3.11+
    if callable(serialize):
        return bytes(serialize())
    # Python 3.9/3.10: through a file of a private temporary directory, removed at once
    with tempfile.TemporaryDirectory(prefix="gd-doctor-db-") as tmp:
        target = os.path.join(tmp, "db.sqlite")
        out = sqlite3.connect(target)
        try:
            conn.backup(out)
        finally:
            out.close()
        with open(target, "rb") as fh:
            return fh.read()
