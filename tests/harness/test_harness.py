"""Tests of the real-systemd harness itself: a booted container and real journal files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .container import booted_container, container_unavailable_reason, standin_agent_files
from .journal_files import (
    journal_from_export,
    journal_remote_unavailable_reason,
    journalctl_messages,
    parse_export,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
JOURNAL_FIXTURES = sorted((FIXTURES / "journal").glob("*.export"))

_container_reason = container_unavailable_reason("bookworm")
_journal_reason = journal_remote_unavailable_reason()


@pytest.mark.container
@pytest.mark.skipif(_container_reason is not None, reason=_container_reason or "")
def test_restart_loop_is_real() -> None:
    with booted_container(files=standin_agent_files("exit-unreachable")) as c:
        props = c.wait_for(
            lambda p: p.get("SubState") == "auto-restart" and int(p.get("NRestarts", "0")) > 0,
            timeout=40,
            interval=0.2,
            what="restart loop",
        )
        assert props["ActiveState"] == "activating"
        assert props["SubState"] == "auto-restart"
        assert int(props["NRestarts"]) > 0
        assert props["Result"] == "exit-code"
        assert props["ExecMainStatus"] == "1"
        assert props["FragmentPath"] == "/lib/systemd/system/amazon-guardduty-agent.service"
        assert props["MemoryMax"] == str(128 * 1024 * 1024)
        journal = c.run(
            ["journalctl", "-u", "amazon-guardduty-agent", "-o", "json", "--no-pager"]
        ).stdout
        entries = [json.loads(line) for line in journal.splitlines() if line.strip()]
        units = {e.get("_SYSTEMD_UNIT") for e in entries}
        assert "init.scope" in units  # PID 1's lines about the unit (UNIT=...)
        assert "amazon-guardduty-agent.service" in units
        messages = [e.get("MESSAGE") for e in entries]
        assert any("guardduty-data" in str(m) for m in messages)
        log = c.path("/var/log/amzn-guardduty-agent/agent.log").read_text(encoding="utf-8")
        assert "failed to connect" in log
    # after the context: nothing left of the container
    assert not c.root.exists()


@pytest.mark.skipif(_journal_reason is not None, reason=_journal_reason or "")
@pytest.mark.parametrize("export", JOURNAL_FIXTURES, ids=lambda p: p.stem)
def test_journal_file_from_export(export: Path, tmp_path: Path) -> None:
    journal = journal_from_export(export, tmp_path)
    expected = [e["MESSAGE"].decode("utf-8", "replace") for e in parse_export(export.read_bytes())]
    assert journalctl_messages(journal) == expected
    assert journal.name == "system.journal"


@pytest.mark.skipif(_journal_reason is not None, reason=_journal_reason or "")
@pytest.mark.parametrize(
    "export", [p for p in JOURNAL_FIXTURES if p.stem != "no-entries"], ids=lambda p: p.stem
)
def test_unit_match_equals_captured_json(export: Path, tmp_path: Path) -> None:
    """journalctl -u on the rebuilt file gives the entries journalctl -u gave in the container."""
    journal = journal_from_export(export, tmp_path)
    out = journalctl_messages(journal, "-u", "amazon-guardduty-agent")
    captured = [
        json.loads(line)["MESSAGE"]
        for line in export.with_suffix(".json").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert out == captured
