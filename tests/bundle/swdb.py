"""Package history databases in the layouts dnf and yum write, for the timeline tests.

dnf 4's ``history.sqlite`` is built from libdnf's own schema (libdnf/transaction/sql/
create_tables.sql, swdb version 1.1, then its migrations 1.2 ``trans.comment`` and 1.3
``trans.persistence``: what Amazon Linux 2023's dnf 4.14 / libdnf 0.69 leaves on disk), with
the rows ``dnf install``/``dnf upgrade`` write: a ``trans`` row, one ``item`` + ``rpm`` row per
package version, ``trans_item`` rows with libdnf's TransactionItemAction codes (1 install,
6 upgrade, 7 upgraded, 8 remove), reason 2 (user) / 1 (dependency), state 1 (done) / 2 (error).
yum 3's ``history-YYYY-MM-DD.sqlite`` (Amazon Linux 2) follows yum's history.py tables.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Sequence, Tuple

DNF_SCHEMA = """
CREATE TABLE trans (
    id INTEGER PRIMARY KEY AUTOINCREMENT, dt_begin INTEGER NOT NULL, dt_end INTEGER,
    rpmdb_version_begin TEXT, rpmdb_version_end TEXT, releasever TEXT NOT NULL,
    user_id INTEGER NOT NULL, cmdline TEXT, state INTEGER NOT NULL);
CREATE TABLE repo (id INTEGER PRIMARY KEY, repoid TEXT NOT NULL);
CREATE TABLE console_output (
    id INTEGER PRIMARY KEY, trans_id INTEGER REFERENCES trans(id),
    file_descriptor INTEGER NOT NULL, line TEXT NOT NULL);
CREATE TABLE item (id INTEGER PRIMARY KEY, item_type INTEGER NOT NULL);
CREATE TABLE trans_item (
    id INTEGER PRIMARY KEY AUTOINCREMENT, trans_id INTEGER REFERENCES trans(id),
    item_id INTEGER REFERENCES item(id), repo_id INTEGER REFERENCES repo(id),
    action INTEGER NOT NULL, reason INTEGER NOT NULL, state INTEGER NOT NULL);
CREATE TABLE item_replaced_by (
    trans_item_id INTEGER REFERENCES trans_item(id),
    by_trans_item_id INTEGER REFERENCES trans_item(id),
    PRIMARY KEY (trans_item_id, by_trans_item_id));
CREATE TABLE trans_with (
    id INTEGER PRIMARY KEY AUTOINCREMENT, trans_id INTEGER REFERENCES trans(id),
    item_id INTEGER REFERENCES item(id),
    CONSTRAINT trans_with_unique_trans_item UNIQUE (trans_id, item_id));
CREATE TABLE rpm (
    item_id INTEGER UNIQUE NOT NULL, name TEXT NOT NULL, epoch INTEGER NOT NULL,
    version TEXT NOT NULL, release TEXT NOT NULL, arch TEXT NOT NULL,
    FOREIGN KEY(item_id) REFERENCES item(id),
    CONSTRAINT rpm_unique_nevra UNIQUE (name, epoch, version, release, arch));
CREATE INDEX rpm_name ON rpm(name);
CREATE INDEX trans_item_item_id ON trans_item(item_id);
CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO config VALUES ('version', '1.1');
ALTER TABLE trans ADD comment TEXT DEFAULT '';
UPDATE config SET value = '1.2' WHERE key = 'version';
ALTER TABLE trans ADD persistence INTEGER DEFAULT 0;
UPDATE config SET value = '1.3' WHERE key = 'version';
"""

YUM_SCHEMA = """
CREATE TABLE trans_beg (
    tid INTEGER PRIMARY KEY, timestamp INTEGER NOT NULL, rpmdb_version TEXT NOT NULL,
    loginuid INTEGER);
CREATE TABLE trans_end (
    tid INTEGER PRIMARY KEY REFERENCES trans_beg, timestamp INTEGER NOT NULL,
    rpmdb_version TEXT NOT NULL, return_code INTEGER NOT NULL);
CREATE TABLE trans_cmdline (tid INTEGER NOT NULL REFERENCES trans_beg, cmdline TEXT NOT NULL);
CREATE TABLE pkgtups (
    pkgtupid INTEGER PRIMARY KEY, name TEXT NOT NULL, arch TEXT NOT NULL, epoch TEXT NOT NULL,
    version TEXT NOT NULL, release TEXT NOT NULL, checksum TEXT);
CREATE TABLE trans_data_pkgs (
    tid INTEGER NOT NULL REFERENCES trans_beg, pkgtupid INTEGER NOT NULL REFERENCES pkgtups,
    done BOOL NOT NULL DEFAULT FALSE, state TEXT NOT NULL);
"""

# (name, epoch, version, release, arch)
Nevra = Tuple[str, int, str, str, str]
AGENT_180: Nevra = ("amazon-guardduty-agent", 0, "1.8.0", "1", "x86_64")
AGENT_192: Nevra = ("amazon-guardduty-agent", 0, "1.9.2", "1", "x86_64")
KERNEL_NEW: Nevra = ("kernel", 0, "6.1.119", "129.201.amzn2023", "x86_64")


@dataclass(frozen=True)
class DnfTrans:
    at: datetime
    cmdline: str
    items: Sequence[Tuple[int, Nevra]]  # (action, package)
    failed: bool = False


def write_dnf(path: Path, transactions: Sequence[DnfTrans]) -> Path:
    """``/var/lib/dnf/history.sqlite`` holding ``transactions`` as dnf records them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(DNF_SCHEMA)
        conn.execute("INSERT INTO repo (id, repoid) VALUES (1, 'amazonlinux'), (2, '@commandline')")
        items: dict = {}
        for t in transactions:
            begin = int(t.at.timestamp())
            cur = conn.execute(
                "INSERT INTO trans (dt_begin, dt_end, rpmdb_version_begin, rpmdb_version_end,"
                " releasever, user_id, cmdline, state) VALUES (?, ?, ?, ?, '2023.6.20241212',"
                " 0, ?, ?)",
                (begin, begin + 7, "412:4f1c", "413:9a0e", t.cmdline, 2 if t.failed else 1),
            )
            tid = cur.lastrowid
            for action, nevra in t.items:
                if nevra not in items:
                    iid = conn.execute("INSERT INTO item (item_type) VALUES (1)").lastrowid
                    conn.execute("INSERT INTO rpm VALUES (?, ?, ?, ?, ?, ?)", (iid, *nevra))
                    items[nevra] = iid
                conn.execute(
                    "INSERT INTO trans_item (trans_id, item_id, repo_id, action, reason, state)"
                    " VALUES (?, ?, 1, ?, 2, ?)",
                    (tid, items[nevra], action, 2 if t.failed else 1),
                )
            conn.execute(
                "INSERT INTO console_output (trans_id, file_descriptor, line) VALUES (?, 1, ?)",
                (tid, "Running scriptlet: amazon-guardduty-agent-1.9.2-1.x86_64 1/2"),
            )
        conn.commit()
    finally:
        conn.close()
    return path


def write_yum(path: Path, transactions: Sequence[DnfTrans]) -> Path:
    """A yum 3 ``history-YYYY-MM-DD.sqlite``; actions 1/6/8 become Install/Update/Erase."""
    state = {1: "Install", 6: "Update", 7: "Updated", 8: "Erase"}
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(YUM_SCHEMA)
        tups: dict = {}
        for tid, t in enumerate(transactions, start=1):
            ts = int(t.at.timestamp())
            conn.execute("INSERT INTO trans_beg VALUES (?, ?, '412:4f1c', 1000)", (tid, ts))
            conn.execute(
                "INSERT INTO trans_end VALUES (?, ?, '413:9a0e', ?)", (tid, ts + 5, int(t.failed))
            )
            conn.execute("INSERT INTO trans_cmdline VALUES (?, ?)", (tid, t.cmdline))
            for action, (name, epoch, version, release, arch) in t.items:
                key = (name, epoch, version, release, arch)
                if key not in tups:
                    tups[key] = conn.execute(
                        "INSERT INTO pkgtups (name, arch, epoch, version, release, checksum)"
                        " VALUES (?, ?, ?, ?, ?, 'sha256:00')",
                        (name, arch, str(epoch), version, release),
                    ).lastrowid
                conn.execute(
                    "INSERT INTO trans_data_pkgs VALUES (?, ?, 'TRUE', ?)",
                    (tid, tups[key], state[action]),
                )
        conn.commit()
    finally:
        conn.close()
    return path
