"""The timeline of a staged incident: a package upgrade, then a restart loop, then an OOM kill
(real systemd 252 journal captures, rebuilt into journal files), in order, the first failure
marked; the same timeline from the incident's bundle."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List

import pytest

from gd_doctor.bundle import make_bundle, open_bundle, replay_host
from gd_doctor.bundle import timeline as tl
from gd_doctor.checks.base import Options
from gd_doctor.cli import app
from gd_doctor.host import Host
from gd_doctor.host.settings import HostSettings
from tests.harness.journal_files import (
    format_export,
    journal_from_export,
    journal_remote_unavailable_reason,
    parse_export,
)
from tests.hostkit import FIXTURES, cli_runner, write_tree

pytestmark = pytest.mark.skipif(
    journal_remote_unavailable_reason() is not None, reason=str(journal_remote_unavailable_reason())
)
BOOT = b"c0332795f6f8475c817c805df24babc5"


def _usec(e: Dict[str, bytes]) -> int:
    return int(e["__REALTIME_TIMESTAMP"])


def _stage(root: Path) -> datetime:
    """Upgrade at T, restart loop from T+5 min, OOM kills from T+30 min (one boot)."""
    loop = list(parse_export((FIXTURES / "journal/restart-loop.export").read_bytes()))
    oom = list(parse_export((FIXTURES / "journal/oom-kill.export").read_bytes()))
    t0 = _usec(loop[0]) - 5 * 60 * 1_000_000
    shift = _usec(loop[0]) + 30 * 60 * 1_000_000 - _usec(oom[0])
    for e in oom:
        e["__REALTIME_TIMESTAMP"] = str(_usec(e) + shift).encode()
        e["_BOOT_ID"] = BOOT
    start = datetime.fromtimestamp(t0 / 1e6, timezone.utc)
    write_tree(
        root,
        {
            "/etc/os-release": (FIXTURES / "os-release/ubuntu2204/os-release").read_text(),
            "/var/log/dpkg.log": (
                f"{(start - timedelta(days=3)):%Y-%m-%d %H:%M:%S} install amazon-ssm-agent:amd64 <none> 3.3.1142.0\n"
                f"{start:%Y-%m-%d %H:%M:%S} upgrade amazon-guardduty-agent:amd64 1.8.0 1.9.2\n"
                f"{start:%Y-%m-%d %H:%M:%S} status installed amazon-guardduty-agent:amd64 1.9.2\n"
            ),
        },
    )
    journal_from_export(format_export(loop + oom), root / "var/log/journal" / ("0" * 32))
    return start


def _check_order(events: List[tl.Event], start: datetime) -> None:
    kinds = [e.kind for e in events]
    assert "package" in kinds and "failure" in kinds and "oom" in kinds
    upgrade = next(n for n, e in enumerate(events) if "upgrade amazon-guardduty-agent" in e.text)
    first_fail = tl.first_failure(events)
    assert first_fail is not None and upgrade < first_fail
    assert "status=1/FAILURE" in events[first_fail].text
    first_oom = kinds.index("oom")
    last_loop_fail = max(n for n, e in enumerate(events) if "status=1/FAILURE" in e.text)
    assert last_loop_fail < first_oom
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert all(e.at >= start - timedelta(hours=1) for e in events)  # the 3-day-old install is out


def test_staged_incident_in_order_with_the_first_failure_marked(tmp_path: Path) -> None:
    root = tmp_path / "root"
    start = _stage(root)
    host = Host.from_root(root, HostSettings())
    events, notes = tl.build(host, start - timedelta(hours=1))
    host.close()
    _check_order(events, start)
    text = tl.render_text(events, notes, start)
    marked = [line for line in text.splitlines() if line.startswith(">> 20")]
    assert len(marked) == 1 and "status=1/FAILURE" in marked[0]
    before = text.splitlines()[text.splitlines().index(marked[0]) - 1]
    assert before.startswith(" ^") and "Started amazon-guardduty-agent" in before
    assert "first failure:" in text


def test_staged_incident_from_its_bundle_and_through_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "root"
    start = _stage(root)
    out = tmp_path / "b.tar.gz"
    make_bundle(
        Host.from_root(root, HostSettings()), out, options=Options(since=timedelta(days=400))
    )
    with open_bundle(out) as b:
        host = replay_host(b)
        events, _ = tl.build(host, start - timedelta(hours=1))
    _check_order(events, start)
    res = cli_runner().invoke(
        app, ["timeline", "--bundle", str(out), "--since", "400d", "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["first_failure"] is not None
    assert "status=1/FAILURE" in doc["events"][doc["first_failure"]]["text"]
    res = cli_runner().invoke(app, ["timeline", "--root", str(root), "--since", "400d"])
    assert res.exit_code == 0 and ">> " in res.stdout
