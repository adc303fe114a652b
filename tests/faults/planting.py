"""Fake hosts with a credential planted in one input source, and every output of a run.

Used by ``test_secrets.py`` and by ``summary.py`` (``secrets_summary()``). A source is where a
check reads host text: the agent's log files, its unit file's ``Environment=`` (and a drop-in),
an ``EnvironmentFile=``, ``systemctl show``'s Environment, the journal, the SSM Agent's log, the
SSM document state, and the agent process's environment (``/proc/PID/environ`` and psutil).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from gd_doctor.host import Host
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.commands import CommandResult
from gd_doctor.host.journal import JournalEntry
from gd_doctor.host.procs import FakeProcesses, ProcessInfo
from gd_doctor.pipeline import run_doctor
from gd_doctor.report.json import render_json
from gd_doctor.report.ssm import render_ssm
from gd_doctor.report.style import Style
from gd_doctor.report.text import render_text
from tests.faults.secret_formats import ROWS, Planted
from tests.harness.journal_files import (
    format_export,
    journal_from_export,
    journal_remote_unavailable_reason,
)
from tests.hostkit import FIXTURES, make_host, write_tree

UNIT = "amazon-guardduty-agent.service"
UNIT_FILE = f"/lib/systemd/system/{UNIT}"
DROP_IN = f"/etc/systemd/system/{UNIT}.d/50-planted.conf"
ENV_FILE = "/etc/default/amazon-guardduty-agent"
AGENT_LOG = "/var/log/amzn-guardduty-agent/agent.log"
SSM_LOG = "/var/log/amazon/ssm/amazon-ssm-agent.log"
INSTANCE = "i-0abcd1234ef567890"
SSM_STATE_DIR = f"/var/lib/amazon/ssm/{INSTANCE}/document/state/current"
PID = 31

SOURCES = (
    "agent-log", "unit-environment", "environment-file", "systemctl-show", "journal", "ssm-log",
    "ssm-state", "process-environ",
)  # fmt: skip
# Sources that hold one line per record: a multi-line secret cannot be planted there as such
LINE_SOURCES = frozenset(SOURCES) - {"journal", "ssm-state"}

DPKG_STATUS = """\
Package: amazon-guardduty-agent
Status: install ok installed
Priority: optional
Section: admin
Architecture: amd64
Version: 1.9.2

Package: amazon-ssm-agent
Status: install ok installed
Priority: optional
Section: admin
Architecture: amd64
Version: 3.3.1142.0
"""
UNIT_TEXT = """\
[Unit]
Description=Amazon GuardDuty Runtime Monitoring agent
After=network-online.target

[Service]
Type=simple
ExecStart=/opt/aws/amazon-guardduty-agent/bin/amazon-guardduty-agent
EnvironmentFile=-/etc/default/amazon-guardduty-agent
MemoryMax=128M
CPUQuota=10%
Restart=on-failure
{environment}

[Install]
WantedBy=multi-user.target
"""
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def now() -> datetime:
    """The run's clock: the real time, so --root runs (system clock) see the lines in --since."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def assignment(line: str) -> str:
    """``line`` as an environment assignment: itself when it is one, else a planted variable."""
    return line if _ASSIGNMENT.match(line) else f"GD_PLANTED={line}"


def systemd_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _stamp(at: datetime, sep: str = "T") -> str:
    return at.strftime(f"%Y-%m-%d{sep}%H:%M:%S.%f")


def agent_log_text(line: str, at: datetime) -> str:
    return (
        f"{_stamp(at)}Z  INFO amazon_guardduty_agent: starting agent version=1.9.2\n"
        f"{_stamp(at)}Z ERROR amazon_guardduty_agent::sender: proxy connect error: {line}\n"
    )


def ssm_log_text(line: str, at: datetime) -> str:
    stamp = _stamp(at, " ")[:-2]
    return (
        f"{stamp} INFO [ssm-agent-worker] Starting health ping\n"
        f"{stamp} ERROR [ssm-agent-worker] Health ping failed with error - {line}\n"
    )


def ssm_state_text(line: str) -> str:
    doc = json.loads((FIXTURES / "ssm/state/docstate-failed.json").read_text())
    result = doc["InstancePluginsInformation"][0]["Result"]
    result["Output"] = f"{line}\n{result['Output']}"
    result["StandardError"] = f"{line}\n{result['StandardError']}"
    return json.dumps(doc, indent=2)


def environ_of(line: str) -> Dict[str, str]:
    """The agent's environment: the line as a proxy value and as its own assignment."""
    name, _, value = assignment(line).partition("=")
    return {"HTTPS_PROXY": line, name: value, "NO_PROXY": "localhost,169.254.169.254"}


def show_text(line: Optional[str]) -> str:
    text = (FIXTURES / "systemctl/252/active-running.props.txt").read_text()
    env = "NO_PROXY=localhost" if line is None else systemd_quote(assignment(line))
    return re.sub(r"(?m)^Environment=.*$", lambda _m: f"Environment={env}", text)


def base_files(at: datetime) -> Dict[str, str]:
    """A healthy-looking Ubuntu host with the agent and the SSM Agent installed."""
    return {
        "/etc/os-release": (FIXTURES / "os-release/ubuntu2204/os-release").read_text(),
        "/etc/hostname": "ip-10-0-1-17\n",
        "/var/lib/dpkg/status": DPKG_STATUS,
        UNIT_FILE: UNIT_TEXT.format(environment="Environment=NO_PROXY=localhost"),
        ENV_FILE: "NO_PROXY=localhost\n",
        AGENT_LOG: agent_log_text("connected", at).replace("ERROR", " INFO"),
    }


def planted_files(row: Planted, source: str, at: datetime) -> Dict[str, str]:
    """The files that carry ``row`` in ``source`` (over :func:`base_files`)."""
    line = row.line
    if source == "agent-log":
        return {AGENT_LOG: agent_log_text(line, at)}
    if source == "unit-environment":
        env = (
            f"Environment={systemd_quote(assignment(line))}\n"
            f"Environment={systemd_quote('HTTPS_PROXY=' + line)}"
        )
        return {
            UNIT_FILE: UNIT_TEXT.format(environment=env),
            DROP_IN: f"[Service]\nEnvironment={systemd_quote(assignment(line))}\n",
        }
    if source == "environment-file":
        return {ENV_FILE: f"{assignment(line)}\nHTTPS_PROXY={line}\nNO_PROXY=localhost\n"}
    if source == "ssm-log":
        return {SSM_LOG: ssm_log_text(line, at)}
    if source == "ssm-state":
        return {f"{SSM_STATE_DIR}/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111": ssm_state_text(line)}
    if source == "process-environ":
        environ = "\0".join(f"{k}={v}" for k, v in environ_of(line).items()) + "\0"
        return {f"/proc/{PID}/environ": environ}
    return {}


class FakeJournal:
    """The agent unit's journal: a start, then one error entry carrying the planted line."""

    description = "fake journal (planted entries)"

    def __init__(self, messages: Sequence[str], at: datetime) -> None:
        self.entries = [
            JournalEntry(at - timedelta(seconds=30), "Started amazon-guardduty-agent.service.",
                         {"UNIT": UNIT, "_PID": "1", "_COMM": "systemd", "PRIORITY": "6"}),
        ] + [
            JournalEntry(at - timedelta(seconds=20 - n), f"ERROR proxy connect error: {m}",
                         {"_SYSTEMD_UNIT": UNIT, "_PID": str(PID), "PRIORITY": "3",
                          "SYSLOG_IDENTIFIER": "amazon-guardduty-agent"})
            for n, m in enumerate(messages)
        ]  # fmt: skip

    def read(
        self,
        *,
        units: Sequence[str],
        since: datetime,
        kernel: bool,
        timeout: float,
        max_entries: int,
    ) -> List[JournalEntry]:
        return [e for e in self.entries if e.timestamp >= since][-max_entries:]


class LiveRunner:
    """A live host's commands: ``systemctl show`` of the agent answers, nothing else is there."""

    def __init__(self, show: str) -> None:
        self.show = show

    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        if tuple(argv[:3]) == ("systemctl", "show", "amazon-guardduty-agent"):
            return CommandResult(tuple(argv), 0, self.show, "")
        return CommandResult(tuple(argv), None, problem="not found")


def planted_host(root: Path, row: Planted, source: str) -> Host:
    """A live fake host (fixed clock, recorded commands) with ``row`` planted in ``source``."""
    at = now()
    files = {**base_files(at), **planted_files(row, source, at)}
    write_tree(root, files)
    environ = environ_of(row.line) if source == "process-environ" else {"NO_PROXY": "localhost"}
    procs = FakeProcesses([ProcessInfo(
        pid=PID, name="amazon-guarddut", exe="/opt/aws/amazon-guardduty-agent/bin/amazon-guard"
        "duty-agent", create_time=at.timestamp() - 3600, rss=60 << 20, cpu_percent=1.0,
        num_threads=12, environ=environ, cpu_count=2, total_memory=4 << 30)])  # fmt: skip
    journal = FakeJournal([row.line] if source == "journal" else [], at)
    show = show_text(row.line if source == "systemctl-show" else None)
    return make_host(root, run=LiveRunner(show), journal=journal, procs=procs, clock=FixedClock(at))


def render_all(host: Host) -> Dict[str, str]:
    """Every output a run renders: text, verbose text (plain and in colour), JSON, SSM."""
    report = run_doctor(host, budget_s=20.0).report
    plain, fancy = Style(unicode=False, color=False), Style(unicode=True, color=True)
    return {
        "text": render_text(report, plain),
        "text-color": render_text(report, fancy, verbose=True),
        "verbose": render_text(report, plain, verbose=True),
        "json": render_json(report),
        "ssm": render_ssm(report),
    }


def leaks(row: Planted, outputs: Mapping[str, str]) -> List[Tuple[str, str]]:
    """(output name, secret) for every secret of ``row`` found in an output."""
    return [(name, s) for name, text in outputs.items() for s in row.secrets if s in text]


def applicable(row: Planted, source: str) -> bool:
    return not (row.multiline and source in LINE_SOURCES)


@contextlib.contextmanager
def redaction_disabled() -> Iterator[None]:
    """The control: every module's ``redact``/``redact_value`` replaced by the identity, to
    prove a planted secret does reach the outputs when nothing masks it."""
    import gd_doctor.redact as red

    originals: List[Tuple[Any, str, Any]] = []
    fakes = {"redact": lambda text: text, "redact_value": lambda value: value}
    real = {attr: getattr(red, attr) for attr in fakes}
    for name, module in list(sys.modules.items()):
        if not (name == "gd_doctor" or name.startswith("gd_doctor.")) or module is None:
            continue
        for attr, fake in fakes.items():
            if getattr(module, attr, None) is real[attr]:
                originals.append((module, attr, getattr(module, attr)))
                setattr(module, attr, fake)
    try:
        yield
    finally:
        for module, attr, value in reversed(originals):
            setattr(module, attr, value)


ENV_SOURCES = frozenset({"unit-environment", "environment-file", "systemctl-show",
                         "process-environ"})  # fmt: skip


def with_canary(row: Planted, n: int, source: str) -> Tuple[str, Planted]:
    """``row`` with a canary no rule masks, where the source shows the planted record: a prefix
    of the variable's name in environments, a word before the line elsewhere."""
    if source in ENV_SOURCES:
        canary = f"GDCANARY{n}_"
        return canary, replace(row, line=canary + assignment(row.line))
    canary = f"gdcanary{n} "
    return canary, replace(row, line=canary + row.line)


def journal_export(rows: List[Planted], unit: str) -> bytes:
    at = now()
    usec = str(int(at.timestamp() * 1_000_000) - 60_000_000).encode()
    entries: List[Dict[str, bytes]] = []
    for n, row in enumerate(rows):
        stamp = str(int(usec) + n * 1000).encode()
        entries.append({
            "__CURSOR": f"s=0;i={n + 1}".encode(), "__REALTIME_TIMESTAMP": stamp,
            "__MONOTONIC_TIMESTAMP": str(1000 + n).encode(), "_BOOT_ID": b"0" * 32,
            "_TRANSPORT": b"stdout", "PRIORITY": b"3", "_PID": b"31",
            "SYSLOG_IDENTIFIER": b"amazon-guardduty-agent", "_SYSTEMD_UNIT": unit.encode(),
            "MESSAGE": f"ERROR proxy connect error: {row.line}".encode(),
        })  # fmt: skip
    return format_export(entries)


def capture_root(root: Path) -> Path:
    """A captured root with every format in every file source at once."""
    at = now()
    files = base_files(at)
    lines = [r for r in ROWS if not r.multiline]
    files[AGENT_LOG] = "".join(agent_log_text(r.line, at) for r in lines)
    files[SSM_LOG] = "".join(ssm_log_text(r.line, at) for r in lines)
    env = "\n".join(f"Environment={systemd_quote(assignment(r.line))}" for r in lines)
    files[UNIT_FILE] = UNIT_TEXT.format(environment=env)
    files[DROP_IN] = "[Service]\n" + env + "\n"
    files[ENV_FILE] = "".join(f"{assignment(r.line)}\nHTTPS_PROXY={r.line}\n" for r in lines)
    for n, row in enumerate(ROWS):
        files[f"{SSM_STATE_DIR}/doc-{n}"] = ssm_state_text(row.line)
    write_tree(root, files)
    if journal_remote_unavailable_reason() is None:
        journal_from_export(journal_export(list(ROWS), UNIT), root / "var/log/journal" / ("0" * 32))
    return root
