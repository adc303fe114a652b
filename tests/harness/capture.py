"""Capture real ``systemctl show`` and journal output of the stand-in agent as test fixtures.

Re-runnable (root, cached roots prepared, no network needed)::

    python -m tests.harness.capture [--suite SUITE ...] [--only systemctl|journal]

Writes:

* ``tests/fixtures/systemctl/<systemd major>/<state>.txt``: ``systemctl show
  amazon-guardduty-agent`` (all properties) and ``<state>.props.txt`` (``-p PROPS``).
* ``tests/fixtures/journal/<name>.export`` / ``<name>.json``: ``journalctl -u
  amazon-guardduty-agent -o export`` / ``-o json`` of a scenario, trimmed to the relevant entries
  (every field of the kept entries is kept).

See ``tests/fixtures/README.md`` for what each fixture shows and how it was made.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .container import (
    AGENT_UNIT,
    Container,
    FileSpec,
    HarnessError,
    Symlink,
    booted_container,
    prepared_root,
    root_info,
    standin_agent_files,
)
from .journal_files import format_export, parse_export

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
PROPS = (
    "LoadState,ActiveState,SubState,UnitFileState,Result,ExecMainStatus,ExecMainCode,NRestarts,"
    "ActiveEnterTimestamp,MainPID,MemoryMax,MemoryLimit,MemoryCurrent,CPUQuotaPerSecUSec,"
    "FragmentPath,DropInPaths,Environment,EnvironmentFiles"
)
PROXY_DROPIN = """\
# gd-doctor fixture: a proxy drop-in (the user:secret password must never be printed by gd-doctor)
[Service]
Environment=HTTPS_PROXY=http://user:secret@proxy.example:3128 NO_PROXY=localhost
EnvironmentFile=-/etc/default/amazon-guardduty-agent
CPUQuota=20%
"""
PROXY_ENVFILE = "https_proxy=http://user:secret@proxy.example:3128\nno_proxy=localhost\n"
START_LIMIT_DROPIN = """\
# gd-doctor fixture: reach the start limit quickly
[Unit]
StartLimitIntervalSec=60
StartLimitBurst=3
"""
OOM_CONTAINER_LIMIT = 160 * 1024 * 1024

Props = dict[str, str]


def _show(c: Container) -> Props:
    return c.systemctl_show()


@dataclass
class State:
    name: str
    files: dict[str, FileSpec]
    ready: Callable[[Props], bool]
    prepare: Callable[[Container], None] = lambda c: None
    memory_limit: int | None = None
    note: str = ""
    timeout: float = 40.0
    extra: dict[str, str] = field(default_factory=dict)


def _states() -> list[State]:
    masked = standin_agent_files("run", enabled=False)
    masked[f"/etc/systemd/system/{AGENT_UNIT}"] = Symlink("/dev/null")
    running = standin_agent_files("run", dropins={"50-proxy.conf": PROXY_DROPIN})
    running["/etc/default/amazon-guardduty-agent"] = PROXY_ENVFILE

    def start(c: Container) -> None:
        c.run(["systemctl", "start", "amazon-guardduty-agent"], timeout=30)

    def stop(c: Container) -> None:
        c.wait_for(lambda p: p.get("SubState") == "running", what="running")
        time.sleep(1)
        c.run(["systemctl", "stop", "amazon-guardduty-agent"], timeout=30)

    return [
        State(
            "not-found",
            {},
            lambda p: p.get("LoadState") == "not-found",
            note="no unit file installed",
        ),
        State(
            "masked",
            masked,
            lambda p: p.get("LoadState") == "masked",
            note="unit in /lib, /etc/systemd/system/amazon-guardduty-agent.service -> /dev/null",
        ),
        State(
            "disabled",
            standin_agent_files("run", enabled=False),
            lambda p: p.get("UnitFileState") == "disabled" and p.get("ActiveState") == "inactive",
            note="installed, never enabled or started",
        ),
        State(
            "failed",
            standin_agent_files(
                "exit-unreachable", dropins={"10-startlimit.conf": START_LIMIT_DROPIN}
            ),
            lambda p: p.get("ActiveState") == "failed",
            note="exit 1 each start; drop-in StartLimitBurst=3 in 60 s, so the start limit hits",
            timeout=60,
        ),
        State(
            "activating-auto-restart",
            standin_agent_files("exit-unreachable"),
            lambda p: p.get("SubState") == "auto-restart" and int(p.get("NRestarts", "0")) >= 2,
            note="exit 1 each start, Restart=always RestartSec=2: restart loop",
        ),
        State(
            "active-running",
            running,
            lambda p: p.get("SubState") == "running" and p.get("MemoryCurrent", "") not in ("",),
            note="mode run; drop-in 50-proxy.conf sets Environment=HTTPS_PROXY/NO_PROXY, "
            "EnvironmentFile=-/etc/default/amazon-guardduty-agent and CPUQuota=20%",
        ),
        State(
            "inactive-dead",
            standin_agent_files("run"),
            lambda p: p.get("ActiveState") == "inactive" and p.get("SubState") == "dead",
            prepare=stop,
            note="enabled, was running, then systemctl stop",
        ),
        State(
            "oom-kill-cgroup-v1",
            standin_agent_files("oom", enabled=False),
            lambda p: (
                p.get("SubState") == "auto-restart"
                and p.get("Result") != "exit-code"
                and int(p.get("NRestarts", "0")) >= 1
            ),
            prepare=start,
            memory_limit=OOM_CONTAINER_LIMIT,
            note="mode oom, MemoryMax=32M not enforceable here (cgroup v1 host, memory "
            "controller not delegated); the whole container sits in a 160M memory cgroup made "
            "by the harness, so the kernel OOM-kills the stand-in: Result=signal, status 9/KILL "
            "(what a cgroup-v1 host shows; systemd reports Result=oom-kill only on cgroup v2)",
        ),
    ]


def _systemd_major(suite: str) -> str:
    root = prepared_root(suite)
    if root is None:
        raise HarnessError(f"{suite} is not prepared")
    version = (root_info(root) or {}).get("systemd", "")
    return version.split(".")[0] or suite


def capture_systemctl(suite: str, out_root: Path = FIXTURES / "systemctl") -> list[str]:
    root = prepared_root(suite)
    if root is None:
        raise HarnessError(f"{suite} is not prepared")
    out = out_root / _systemd_major(suite)
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for st in _states():
        with booted_container(root, files=st.files, memory_limit=st.memory_limit) as c:
            st.prepare(c)
            try:
                c.wait_for(st.ready, timeout=st.timeout, interval=0.2, what=st.name)
            except HarnessError as exc:
                print(f"{suite}/{st.name}: {exc}", file=sys.stderr)
                continue
            full = c.run(["systemctl", "show", AGENT_UNIT], check=True).stdout
            props = c.run(["systemctl", "show", AGENT_UNIT, "-p", PROPS], check=True).stdout
            status = c.run(["systemctl", "status", "--no-pager", "-n", "0", AGENT_UNIT]).stdout
        (out / f"{st.name}.txt").write_text(full, encoding="utf-8")
        (out / f"{st.name}.props.txt").write_text(props, encoding="utf-8")
        (out / f"{st.name}.status.txt").write_text(status, encoding="utf-8")
        done.append(st.name)
        print(f"{suite}/{st.name}: ok")
    return done


# ----------------------------------------------------------------------------------------------
# Journal captures


def _read_kmsg() -> list[tuple[int, int, int, str]]:
    """All records of this machine's kernel log: (prio, seq, usec, message)."""
    records = []
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        while True:
            try:
                raw = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError:  # EPIPE: record overwritten, go on
                continue
            if not raw:
                break
            text = raw.decode("utf-8", "replace")
            head, _, rest = text.partition(";")
            fields = head.split(",")
            message = rest.split("\n", 1)[0]
            records.append((int(fields[0]), int(fields[1]), int(fields[2]), message))
    finally:
        os.close(fd)
    return records


KMSG_KEEP = (
    "invoked oom-killer",
    "oom-kill:constraint=",
    "Memory cgroup out of memory: Killed process",
    "memory: usage",
)


def _kernel_entries(
    since_seq: int, boot_id: bytes, machine_id: bytes, hostname: bytes
) -> list[dict[str, bytes]]:
    """Kernel OOM records about the stand-in, in the field layout journald gives kernel entries.

    systemd-journald does not read /dev/kmsg inside a container, so these entries are composed
    here from the real kernel records (message text, priority and timestamp are the kernel's).
    """
    mono_now = time.clock_gettime(time.CLOCK_MONOTONIC)
    real_now = time.time()
    out = []
    for prio, seq, usec, message in _read_kmsg():
        if seq <= since_seq or not any(k in message for k in KMSG_KEEP):
            continue
        if (
            "oom" in message.lower()
            and "amazon-guarddut" not in message
            and ("memory: usage" not in message)
        ):
            continue
        realtime = int((real_now - mono_now) * 1_000_000) + usec
        out.append(
            {
                "__REALTIME_TIMESTAMP": str(realtime).encode(),
                "__MONOTONIC_TIMESTAMP": str(usec).encode(),
                "_BOOT_ID": boot_id,
                "_SOURCE_MONOTONIC_TIMESTAMP": str(usec).encode(),
                "_TRANSPORT": b"kernel",
                "PRIORITY": str(prio & 7).encode(),
                "SYSLOG_FACILITY": str(prio >> 3).encode(),
                "SYSLOG_IDENTIFIER": b"kernel",
                "MESSAGE": message.encode(),
                "_MACHINE_ID": machine_id,
                "_HOSTNAME": hostname,
                "_RUNTIME_SCOPE": b"system",
            }
        )
    return out


def _kmsg_last_seq() -> int:
    records = _read_kmsg()
    return records[-1][1] if records else 0


@dataclass
class JournalScenario:
    name: str
    files: dict[str, FileSpec]
    ready: Callable[[Props], bool]
    keep: Callable[[list[dict[str, bytes]]], list[dict[str, bytes]]]
    start_after_boot: bool = False
    memory_limit: int | None = None
    kernel: bool = False
    match_unit: str = AGENT_UNIT


def _first_cycles(n_restarts: int) -> Callable[[list[dict[str, bytes]]], list[dict[str, bytes]]]:
    def keep(entries: list[dict[str, bytes]]) -> list[dict[str, bytes]]:
        out = []
        for e in entries:
            out.append(e)
            msg = e.get("MESSAGE", b"")
            if msg.endswith(f"restart counter is at {n_restarts}.".encode()):
                break
        return out

    return keep


def _drop_allocations(entries: list[dict[str, bytes]]) -> list[dict[str, bytes]]:
    """Keep the last "allocated N MiB" line of each process, drop the others; two cycles."""
    out: list[dict[str, bytes]] = []
    for i, e in enumerate(entries):
        msg = e.get("MESSAGE", b"")
        if msg.startswith(b"INFO allocated"):
            nxt = entries[i + 1] if i + 1 < len(entries) else {}
            if nxt.get("MESSAGE", b"").startswith(b"INFO allocated") and nxt.get("_PID") == e.get(
                "_PID"
            ):
                continue
        out.append(e)
        if msg.endswith(b"restart counter is at 2."):
            break
    return out


def _all(entries: list[dict[str, bytes]]) -> list[dict[str, bytes]]:
    return entries


def _journal_scenarios() -> list[JournalScenario]:
    return [
        JournalScenario(
            "restart-loop",
            standin_agent_files("exit-unreachable"),
            lambda p: int(p.get("NRestarts", "0")) >= 3,
            _first_cycles(3),
        ),
        JournalScenario(
            "oom-kill",
            standin_agent_files("oom", enabled=False),
            lambda p: int(p.get("NRestarts", "0")) >= 2,
            _drop_allocations,
            start_after_boot=True,
            memory_limit=OOM_CONTAINER_LIMIT,
            kernel=True,
        ),
        JournalScenario(
            "crash-signal",
            standin_agent_files("crash-signal"),
            lambda p: int(p.get("NRestarts", "0")) >= 2,
            _first_cycles(2),
        ),
        JournalScenario(
            "clean-run",
            {
                **standin_agent_files("run"),
                "/etc/systemd/system/amazon-guardduty-agent.service.d/"
                "20-interval.conf": "[Service]\nEnvironment=GD_STANDIN_INTERVAL=2\n",
            },
            lambda p: p.get("SubState") == "running",
            _all,
        ),
        JournalScenario(
            "no-entries",
            {},
            lambda p: p.get("LoadState") == "not-found",
            _all,
            match_unit="systemd-journald.service",
        ),
    ]


def _journal_lines(c: Container, unit: str, fmt: str) -> bytes:
    proc = c.run(
        ["journalctl", "-u", unit, "-o", fmt, "--no-pager"], timeout=60, text=False, check=True
    )
    return proc.stdout


def capture_journal(suite: str = "bookworm", out: Path = FIXTURES / "journal") -> list[str]:
    root = prepared_root(suite)
    if root is None:
        raise HarnessError(f"{suite} is not prepared")
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for sc in _journal_scenarios():
        seq = _kmsg_last_seq() if sc.kernel else 0
        with booted_container(root, files=sc.files, memory_limit=sc.memory_limit) as c:
            if sc.start_after_boot:
                c.run(["systemctl", "start", AGENT_UNIT], timeout=30)
            c.wait_for(sc.ready, timeout=60, interval=0.3, what=sc.name)
            if sc.name == "clean-run":
                time.sleep(5)  # a few heartbeats
            c.run(["journalctl", "--sync"], timeout=30)
            export = _journal_lines(c, sc.match_unit, "export")
            js = _journal_lines(c, AGENT_UNIT, "json")
            hostname = c.run(["hostname"]).stdout.strip().encode()
            mid = c.machine_id.encode()
        entries = sc.keep(list(parse_export(export)))
        if sc.name == "no-entries":
            entries = entries[:5]
        cursors = {e.get("__CURSOR") for e in entries}
        json_lines = [
            line
            for line in js.splitlines()
            if line.strip() and json.loads(line).get("__CURSOR", "").encode() in cursors
        ]
        if sc.kernel:
            boot_id = entries[0].get("_BOOT_ID", b"") if entries else b""
            kernel = _kernel_entries(seq, boot_id, mid, hostname)
            entries = sorted(
                entries + kernel, key=lambda e: int(e.get("__MONOTONIC_TIMESTAMP", b"0"))
            )
        (out / f"{sc.name}.export").write_bytes(format_export(entries))
        (out / f"{sc.name}.json").write_bytes(b"".join(line + b"\n" for line in json_lines))
        done.append(sc.name)
        print(f"journal/{sc.name}: {len(entries)} entries")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.capture")
    parser.add_argument("--suite", action="append", help="suites for systemctl captures")
    parser.add_argument("--journal-suite", default="bookworm")
    parser.add_argument("--only", choices=("systemctl", "journal"))
    args = parser.parse_args(argv)
    suites = args.suite or [s for s in ("bullseye", "bookworm", "trixie") if prepared_root(s)]
    if args.only in (None, "systemctl"):
        for suite in suites:
            capture_systemctl(suite)
    if args.only in (None, "journal"):
        capture_journal(args.journal_suite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
