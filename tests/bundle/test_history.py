"""The timeline's package history from dnf's and yum's SQLite databases: in order with the
agent's failures, read-only, bounded, safe against hostile databases, and through a bundle."""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List

import pytest

from gd_doctor.bundle import history, make_bundle, open_bundle, replay_host
from gd_doctor.bundle import timeline as tl
from gd_doctor.checks.base import Options
from gd_doctor.host import Host
from gd_doctor.host.settings import HostSettings
from tests.bundle.swdb import AGENT_180, AGENT_192, KERNEL_NEW, DnfTrans, write_dnf, write_yum
from tests.hostkit import FIXTURES, write_tree

T = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
PROXY_SECRET = "hunter2-Proxy-Pw"
AGENT_LOG = "/var/log/amzn-guardduty-agent/agent.log"


def _root(tmp: Path, *, yum: bool = False) -> Path:
    root = tmp / "root"
    write_tree(
        root,
        {
            "/etc/os-release": (FIXTURES / "roots/al2023-x86_64/root/etc/os-release").read_text(),
            AGENT_LOG: (
                f"{T + timedelta(minutes=5):%Y-%m-%dT%H:%M:%SZ} ERROR dispatch failure: "
                "Connection refused (os error 111)\n"
                f"{T + timedelta(minutes=6):%Y-%m-%dT%H:%M:%SZ} ERROR dispatch failure: "
                "Connection refused (os error 111)\n"
            ),
        },
    )
    transactions = [
        DnfTrans(T - timedelta(days=3), "install amazon-guardduty-agent", [(1, AGENT_180)]),
        DnfTrans(
            T,
            f"--setopt=proxy=http://bob:{PROXY_SECRET}@proxy.corp:3128 upgrade -y",
            [(6, AGENT_192), (7, AGENT_180), (1, KERNEL_NEW)],
        ),
        DnfTrans(T + timedelta(minutes=30), "remove -y nothing-here", [], failed=True),
    ]
    if yum:
        write_yum(root / "var/lib/yum/history/history-2026-11-27.sqlite", transactions)
    else:
        write_dnf(root / "var/lib/dnf/history.sqlite", transactions)
    return root


def _events(root: Path, since: datetime) -> List[tl.Event]:
    host = Host.from_root(root, HostSettings())
    try:
        events, notes = tl.build(host, since)
    finally:
        host.close()
    assert [n for n in notes if not n.startswith("journal:")] == []  # the root has no journal
    return events


@pytest.mark.parametrize("yum", [False, True], ids=["dnf", "yum"])
def test_upgrade_right_before_the_first_failure(tmp_path: Path, yum: bool) -> None:
    root = _root(tmp_path, yum=yum)
    events = _events(root, T - timedelta(hours=1))
    packages = [e for e in events if e.kind == "package"]
    assert len(packages) == 2  # the install 3 days earlier is outside the window
    upgrade = packages[0]
    assert "upgrade amazon-guardduty-agent-1.9.2-1.x86_64" in upgrade.text
    assert "install kernel-6.1.119-129.201.amzn2023.x86_64" in upgrade.text
    assert "amazon-guardduty-agent-1.8.0" not in upgrade.text  # the replaced side is not shown
    assert PROXY_SECRET not in upgrade.text and "[REDACTED]" in upgrade.text
    assert packages[1].failure and "failed transaction" in packages[1].text
    first = tl.first_failure(events)
    assert first is not None and events[first].kind == "agent-log"
    assert events[first - 1] is upgrade
    text = tl.render_text(events, [], T - timedelta(hours=1))
    lines = text.splitlines()
    marked = next(n for n, line in enumerate(lines) if line.startswith(">> 20"))
    assert "dispatch failure" in lines[marked] and lines[marked - 1].startswith(" ^")
    assert "upgrade amazon-guardduty-agent" in lines[marked - 1]
    assert PROXY_SECRET not in text


def test_dnf_log_is_not_counted_twice(tmp_path: Path) -> None:
    """dnf.rpm.log says what the database says: with a readable database, the log is left out."""
    root = _root(tmp_path)
    (root / "var/log/dnf.rpm.log").write_text(
        f"{T:%Y-%m-%dT%H:%M:%S}+0000 SUBDEBUG Upgrade: amazon-guardduty-agent-1.9.2-1.x86_64\n"
    )
    events = _events(root, T - timedelta(hours=1))
    assert [e.source for e in events if e.kind == "package"] == [history.DNF_HISTORY] * 2


def test_read_only_no_lock_no_journal(tmp_path: Path) -> None:
    root = _root(tmp_path)
    db = root / "var/lib/dnf/history.sqlite"
    before = (db.read_bytes(), db.stat().st_mtime_ns, sorted(os.listdir(db.parent)))
    db.chmod(0o444)
    (db.parent).chmod(0o555)  # a write would fail loudly (for root too: see the check below)
    try:
        _events(root, T - timedelta(hours=1))
    finally:
        db.parent.chmod(0o755)
    assert (db.read_bytes(), db.stat().st_mtime_ns, sorted(os.listdir(db.parent))) == before


def _hostile(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "not-sqlite":
        path.write_bytes(b"\x7fELF" + os.urandom(4096))
        return
    if kind == "empty":
        path.write_bytes(b"")
        return
    if kind == "truncated":
        write_dnf(path, [DnfTrans(T, "upgrade", [(6, AGENT_192)])])
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        return
    conn = sqlite3.connect(path)
    if kind == "other-schema":
        conn.execute("CREATE TABLE trans (id INTEGER PRIMARY KEY, when_ TEXT)")
    elif kind == "endless-view":
        # a view where the table should be: a recursive query that never ends
        conn.execute(
            "CREATE VIEW trans AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n)"
            " SELECT x AS id, x AS dt_begin, 'c' AS cmdline, 1 AS state FROM n WHERE x < 0"
        )
    elif kind == "huge":
        write_dnf(path, [])
        conn = sqlite3.connect(path)
        conn.executemany(
            "INSERT INTO trans (dt_begin, releasever, user_id, cmdline, state)"
            " VALUES (?, '2023', 0, 'upgrade', 1)",
            [(int((T + timedelta(seconds=n)).timestamp()),) for n in range(20000)],
        )
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "kind", ["not-sqlite", "empty", "truncated", "other-schema", "endless-view", "huge"]
)
def test_hostile_database(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "root"
    _hostile(root / "var/lib/dnf/history.sqlite", kind)
    host = Host.from_root(root, HostSettings())
    t0 = time.monotonic()
    events, notes = tl.build(host, T - timedelta(hours=1))
    host.close()
    assert time.monotonic() - t0 < 3 * history.QUERY_SECONDS + 5
    packages = [e for e in events if e.kind == "package"]
    notes = [n for n in notes if not n.startswith("journal:")]
    if kind == "huge":
        assert len(packages) == history.MAX_TRANSACTIONS and notes == []
    elif kind == "empty":
        assert packages == []  # SQLite reads an empty file as an empty database
    else:
        assert packages == [] and any("history.sqlite" in n for n in notes), notes


def test_bundle_holds_a_redacted_window_copy_and_replays_the_timeline(tmp_path: Path) -> None:
    root = _root(tmp_path)
    out = tmp_path / "b.tar.gz"
    since = T - timedelta(hours=1)
    live = [e for e in _events(root, since) if e.kind == "package"]
    at = T + timedelta(hours=2)
    from gd_doctor.host.clock import FixedClock

    host = Host.from_root(root, HostSettings())
    from dataclasses import replace

    made = make_bundle(replace(host, clock=FixedClock(at)), out, options=Options(since=at - since))
    item = {i["name"]: i for i in made.manifest["items"]}["root" + history.DNF_HISTORY]
    assert "transaction(s) of the window" in item["note"] and item["redactions"]["secret"] == 1
    with open_bundle(out) as b:
        copy = b.root / history.DNF_HISTORY.lstrip("/")
        assert PROXY_SECRET.encode() not in copy.read_bytes()
        assert b"Running scriptlet" not in copy.read_bytes()  # console output stays home
        events, _ = tl.build(replay_host(b), since)
    assert [(e.at, e.text, e.failure) for e in events if e.kind == "package"] == [
        (e.at, e.text, e.failure) for e in live
    ]


def test_earlier_runs_from_inventory_report_and_bundles(tmp_path: Path) -> None:
    """gd-doctor's own records, as its integrations and the Run Command document write them:
    the SSM inventory item, the document's last report, a bundle the document left."""
    from gd_doctor.integrations.inventory import write_inventory
    from gd_doctor.pipeline import run_doctor
    from gd_doctor.report.json import render_json

    fixture = FIXTURES / "roots" / "ubuntu2204" / "root"
    run = run_doctor(Host.from_root(fixture, HostSettings()), budget_s=20.0)
    root = tmp_path / "root"
    inv = root / "var/lib/amazon/ssm/i-0123456789abcdef0/inventory/custom"
    inv.mkdir(parents=True)
    assert write_inventory(run.report, inv).problem is None
    state = root / "var/lib/gd-doctor"
    state.mkdir(parents=True)
    (state / "ssm-report.json").write_text(render_json(run.report))
    made = make_bundle(Host.from_root(fixture, HostSettings()), None, directory=state)
    host = Host.from_root(root, HostSettings())
    started = datetime.fromisoformat(run.report.started_at)
    events, _ = tl.build(host, started - timedelta(minutes=5))
    host.close()
    ours = [e for e in events if e.kind == "gd-doctor"]
    verdict = run.report.verdict.value
    assert [e.source for e in ours if "inventory" in e.source] == [
        "/var/lib/amazon/ssm/i-0123456789abcdef0/inventory/custom/GdDoctor.json"
    ]
    assert all(verdict in e.text for e in ours if "bundle" not in e.text)
    assert any(e.source.endswith("ssm-report.json") for e in ours)
    assert any(made.path.name in e.text for e in ours)
    assert len(ours) == 3
