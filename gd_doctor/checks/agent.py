"""Checks of the GuardDuty agent itself: package, systemd unit, journal, log files, process.

What they read (exact commands and paths):

* ``agent.package``: ``dpkg-query -W -f '${Status}|${Version}\\n' amazon-guardduty-agent`` or
  ``rpm -q --qf ... amazon-guardduty-agent`` and ``rpm -V amazon-guardduty-agent``; under
  ``--root`` the stanza in ``/var/lib/dpkg/status``. The SSM Distributor directory
  ``/var/lib/amazon/ssm/packages/AmazonGuardDuty-RuntimeMonitoringSsmPlugin`` marks an automated
  install.
* ``agent.unit`` (live): ``systemctl show amazon-guardduty-agent -p <PROPERTIES>``.
* ``agent.unit_file``: the unit file and its drop-ins, read as files (works with ``--root``).
* ``agent.journal``: the unit's entries and kernel OOM lines since ``--since``.
* ``agent.logs``: every file under ``/var/log/amzn-guardduty-agent/``, read from the end.
* ``agent.process`` (live): the MainPID through psutil, and ``/proc/<pid>/limits``.
* ``agent.memory_limit``: the unit's memory cap against the documented caps.
* ``agent.version_kernel``: the agent version against the kernel series it needs.

Data keys other checks and rules read:

* ``agent.package``: ``installed`` (bool or null), ``version``, ``manager`` (dpkg|rpm),
  ``state`` (dpkg letters, e.g. ``iF``), ``broken`` (bool), ``verify_problems`` (list of paths),
  ``install_method`` (``automated`` | ``manual-or-unknown``).
* ``agent.unit``: ``load_state``, ``active_state``, ``sub_state``, ``unit_file_state``,
  ``result``, ``exec_main_code``, ``exec_main_status``, ``n_restarts``, ``active_enter``,
  ``main_pid`` (int or null), ``memory_max``, ``memory_limit``, ``memory_current`` (bytes or null),
  ``cpu_quota_per_sec_usec``, ``fragment_path``, ``drop_in_paths``, ``environment``
  (NAME -> value, values REDACTED), ``environment_files``.
* ``agent.unit_file``: ``path``, ``drop_ins``, ``masked``, ``memory_max``, ``memory_limit``
  (bytes or null), ``cpu_quota``, ``restart``, ``environment`` (redacted), ``environment_files``,
  ``errors``.
* ``agent.journal`` / ``agent.logs``: ``signatures`` (list of ``{id, finding, issue, show, count,
  first, last}``); journal also ``starts``, ``failed_exits``, ``exit_codes``, ``signals``,
  ``failure_results``, ``restarts_scheduled``, ``restart_interval_s``, ``oom_kills``,
  ``start_limit_hit``, ``last_clean_run``, ``source``, ``unreadable``; logs also
  ``endpoint_hosts`` and ``region`` (the guardduty-data names the agent wrote, and their Region).
* ``agent.kernel_log``: ``oom_kills`` (paired with the unit's SIGKILL deaths in the journal when
  it was read), ``named_oom_kills``, ``paired_with_journal``, ``last_oom_kill``, ``since``.
* ``agent.process``: ``pid``, ``name``, ``uptime_s``, ``rss``, ``cpu_percent`` (of the whole
  machine), ``memlock_soft``/``memlock_hard`` (bytes or null = unlimited), ``proxy_env``
  (NAME -> redacted value), ``environ_problem``, ``total_memory``.
* ``agent.memory_limit``: ``limit``, ``documented``, ``total_memory``.
* ``agent.version_kernel``: ``kernel``, ``series``, ``version``, ``needed``.
"""

from __future__ import annotations

import re
import stat as stat_mod
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional, Pattern, Sequence, Tuple

from gd_doctor.checks.base import (
    Check,
    Context,
    check,
    error,
    fail,
    not_applicable,
    ok,
    skip,
    warn,
)
from gd_doctor.host import timeouts
from gd_doctor.host.journal import JournalUnavailable
from gd_doctor.host.logfiles import list_log_files, read_log_file
from gd_doctor.host.procs import ProcessUnavailable
from gd_doctor.knowledge import load
from gd_doctor.model import JSONValue, Outcome, SkipReason
from gd_doctor.parsers.agent_log import endpoint_host_in, parse_agent_log_line
from gd_doctor.parsers.dmesg import KernelLine, parse_dmesg_iso
from gd_doctor.parsers.dpkg_status import parse_dpkg_query, parse_dpkg_status_file
from gd_doctor.parsers.journal_events import kernel_oom_kill, summarise_unit
from gd_doctor.parsers.proc_limits import parse_proc_limits
from gd_doctor.parsers.rpm import RPM_QUERY_FORMAT, parse_rpm_query, parse_rpm_verify
from gd_doctor.parsers.systemctl_show import PROPERTIES, parse_systemctl_show
from gd_doctor.parsers.unit_file import merge_unit, parse_size, parse_unit_file
from gd_doctor.redact import redact

PACKAGE = "amazon-guardduty-agent"
UNIT = "amazon-guardduty-agent.service"
LOG_DIR = "/var/log/amzn-guardduty-agent"
PROCESS_PREFIX = "amazon-guardduty"  # the documented name; comm shows its first 15 characters
SSM_PACKAGE_DIR = "/var/lib/amazon/ssm/packages/AmazonGuardDuty-RuntimeMonitoringSsmPlugin"
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system",
             "/usr/lib/systemd/system")  # fmt: skip
MiB = 1024 * 1024
GiB = 1024 * MiB
MAX_JOURNAL_ENTRIES = 20_000
LOG_BYTES_PER_FILE = 8 * MiB  # plain files are read backwards and stop at --since first
LOG_GZ_BYTES_PER_FILE = 64 * MiB  # uncompressed bytes streamed per .gz file
LOG_BYTES_TOTAL = 64 * MiB
MAX_LOG_LINE = 8192
MAX_LINES_PER_FILE = 50_000
EVIDENCE_PER_SIGNATURE = 3
CPU_SAMPLE_S = 0.3
CPU_BUDGET_PERCENT = 10.0  # of the instance's total vCPU capacity (AWS documents 10 %)
MEMLOCK_MIN = 32 * MiB


# --------------------------------------------------------------------------------------------
# Shared helpers


@dataclass(frozen=True)
class Signature:
    id: str
    pattern: Pattern[str]
    finding: str
    issue: Optional[str]
    show: str


def signatures() -> Tuple[Signature, ...]:
    """The log signatures of ``knowledge/log_signatures.json``, in matching order."""
    return tuple(
        Signature(s["id"], re.compile(s["pattern"], re.IGNORECASE), s["finding"], s["issue"],
                  s["show"])
        for s in load("log_signatures.json")["signatures"]
    )  # fmt: skip


class SignatureMatches:
    """Counts matches per signature and keeps a few redacted lines of each as evidence."""

    def __init__(self) -> None:
        self.sigs = signatures()
        self.hits: Dict[str, Dict[str, JSONValue]] = {}
        self.lines: Dict[str, List[str]] = {}

    def feed(self, when: Optional[datetime], message: str, where: str) -> None:
        for sig in self.sigs:
            if sig.pattern.search(message):
                stamp = when.isoformat() if when else None
                hit = self.hits.setdefault(
                    sig.id,
                    {"id": sig.id, "finding": sig.finding, "issue": sig.issue, "show": sig.show,
                     "count": 0, "first": stamp, "last": stamp},
                )  # fmt: skip
                hit["count"] = int(str(hit["count"] or 0)) + 1
                if stamp:
                    hit["first"] = hit["first"] or stamp
                    hit["last"] = stamp
                kept = self.lines.setdefault(sig.id, [])
                text = f"{where}: {stamp + ' ' if stamp else ''}{message[:400]}"
                if len(kept) < EVIDENCE_PER_SIGNATURE:
                    kept.append(redact(text))
                else:  # keep the first and the latest ones
                    kept[-1] = redact(text)
                return

    def data(self) -> List[JSONValue]:
        return [dict(h) for h in self.hits.values()]

    def evidence(self) -> Tuple[str, ...]:
        return tuple(line for lines in self.lines.values() for line in lines)


def redacted_env(pairs: Sequence[Tuple[str, str]]) -> Dict[str, JSONValue]:
    """NAME -> value with credentials masked (proxy URLs often carry user:password@)."""
    return {name: redact(f"{name}={value}").split("=", 1)[1] for name, value in pairs}


def _human(n: Optional[int]) -> str:
    if n is None:
        return "no limit"
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB}G"
    if n >= MiB:
        return f"{n / MiB:.0f}M"
    return f"{n}B"


def documented_memory_cap(total_memory: int) -> int:
    """AWS's agent memory cap for an instance with this much memory (GB read as GiB).

    >>> _human(documented_memory_cap(4 * GiB)), _human(documented_memory_cap(16 * GiB))
    ('128M', '256M')
    >>> _human(documented_memory_cap(64 * GiB))
    '1G'
    """
    if total_memory < 8 * GiB:
        return 128 * MiB
    if total_memory < 32 * GiB:
        return 256 * MiB
    return 1 * GiB


def _version_tuple(version: str) -> Tuple[int, ...]:
    """Numeric parts of a version (``1.9.2-1.amzn2023`` -> (1, 9, 2)), for ordering.

    >>> _version_tuple("1.16.0") > _version_tuple("1.9.2")
    True
    """
    head = re.split(r"[-~+]", version.strip(), maxsplit=1)[0]
    return tuple(int(p) for p in re.findall(r"\d+", head))


def _kernel_release(ctx: Context) -> Optional[str]:
    if not ctx.host.live:
        return None
    text = ctx.host.fs.read_text("/proc/sys/kernel/osrelease", max_bytes=256)
    return text.strip() if text else None


def _total_memory(ctx: Context) -> Optional[int]:
    if not ctx.host.live:
        return None
    text = ctx.host.fs.read_text("/proc/meminfo", max_bytes=64 * 1024) or ""
    m = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


# --------------------------------------------------------------------------------------------
# agent.package


def _install_method(ctx: Context) -> str:
    return "automated" if ctx.host.fs.is_dir(SSM_PACKAGE_DIR) else "manual-or-unknown"


def _package_from_dpkg_file(ctx: Context) -> Optional[Outcome]:
    read = ctx.host.fs.read("/var/lib/dpkg/status", max_bytes=64 * MiB)
    if read.problem == "missing":
        return None
    if not read.ok or read.text is None:
        return warn(f"cannot read /var/lib/dpkg/status: {read.problem}", installed=None)
    pkg = parse_dpkg_status_file(read.text, PACKAGE)
    return _dpkg_outcome(ctx, pkg, "/var/lib/dpkg/status")


def _dpkg_outcome(ctx: Context, pkg: object, source: str) -> Outcome:
    from gd_doctor.parsers.dpkg_status import DpkgPackage

    method = _install_method(ctx)
    if not isinstance(pkg, DpkgPackage) or not pkg.installed:
        state = pkg.abbrev if isinstance(pkg, DpkgPackage) else None
        return fail(f"{PACKAGE} is not installed (dpkg)", installed=False, manager="dpkg",
                    state=state, install_method=method, source=source)  # fmt: skip
    data: Dict[str, Any] = {
        "installed": True, "version": pkg.version, "manager": "dpkg", "state": pkg.abbrev,
        "dpkg_status": f"{pkg.want} {pkg.error} {pkg.state}", "broken": pkg.broken,
        "install_method": method, "source": source, "verify_problems": [],
    }  # fmt: skip
    if pkg.broken:
        return fail(
            f"{PACKAGE} {pkg.version} is {pkg.state} (dpkg state {pkg.abbrev}): the install did "
            "not finish",
            evidence=(f"{source}: Status: {pkg.want} {pkg.error} {pkg.state}",),
            **data,
        )
    return ok(f"{PACKAGE} {pkg.version} is installed (dpkg {pkg.abbrev}, {method})", **data)


def _package_live(ctx: Context) -> Outcome:
    run = ctx.host.run
    dq = run.run(
        ["dpkg-query", "-W", "-f", "${Status}|${Version}\\n", PACKAGE],
        timeout=ctx.timeout(timeouts.COMMAND),
    )
    if dq.problem is None:
        if dq.returncode == 0:
            return _dpkg_outcome(ctx, parse_dpkg_query(dq.stdout), "dpkg-query")
        if "no packages found" in dq.stderr or dq.returncode == 1:
            # dpkg exists; on an RPM system dpkg-query may be installed too: ask rpm next
            pass
    rq = run.run(["rpm", "-q", "--qf", RPM_QUERY_FORMAT, PACKAGE],
                 timeout=ctx.timeout(timeouts.COMMAND))  # fmt: skip
    if rq.problem is not None:
        if dq.problem is None:
            return _dpkg_outcome(ctx, None, "dpkg-query")
        return error(f"neither dpkg-query nor rpm could run ({dq.problem}; {rq.problem})",
                     installed=None)  # fmt: skip
    pkg = parse_rpm_query(rq.stdout)
    method = _install_method(ctx)
    if pkg is None:
        # Both databases exist on some hosts (rpm on Debian): name every one that was asked.
        asked = "dpkg and rpm" if dq.problem is None else "rpm"
        return fail(f"{PACKAGE} is not installed ({asked})", installed=False,
                    manager="dpkg" if dq.problem is None else "rpm",
                    install_method=method)  # fmt: skip
    vq = run.run(["rpm", "-V", PACKAGE], timeout=ctx.timeout(timeouts.COMMAND_SLOW))
    problems, _ = parse_rpm_verify(vq.stdout if vq.problem is None else "")
    serious = [p for p in problems if p.serious]
    data: Dict[str, Any] = {
        "installed": True, "version": pkg.version, "release": pkg.release, "manager": "rpm",
        "broken": False, "install_method": method,
        "verify_problems": [f"{p.flags} {p.path}" for p in serious],
        "verify_ran": vq.problem is None,
    }  # fmt: skip
    if serious:
        return warn(
            f"{PACKAGE} {pkg.version}-{pkg.release}: rpm -V reports {len(serious)} missing or "
            "changed file(s)",
            evidence=tuple(redact(f"rpm -V: {p.flags} {p.path}") for p in serious[:10]),
            **data,
        )
    return ok(f"{PACKAGE} {pkg.version}-{pkg.release} is installed (rpm, {method})", **data)


@check("agent.package", title="amazon-guardduty-agent package is installed and intact",
       category="agent")  # fmt: skip
def package(ctx: Context) -> Outcome:
    """Asks dpkg-query (then rpm, with rpm -V) about amazon-guardduty-agent; under --root reads
    /var/lib/dpkg/status."""
    if ctx.host.live:
        return _package_live(ctx)
    from_file = _package_from_dpkg_file(ctx)
    if from_file is not None:
        return from_file
    return warn(
        "package state unknown: no /var/lib/dpkg/status under the root and the rpm database is "
        "not read with --root",
        installed=None, install_method=_install_method(ctx),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# agent.unit


@check("agent.unit", title="amazon-guardduty-agent unit is active", category="agent",
       after=("agent.package",), needs=("live",))  # fmt: skip
def unit(ctx: Context) -> Outcome:
    """Reads `systemctl show amazon-guardduty-agent -p LoadState,ActiveState,...`."""
    res = ctx.host.run.run(
        ["systemctl", "show", PACKAGE, "-p", ",".join(PROPERTIES)],
        timeout=ctx.timeout(timeouts.COMMAND),
    )
    if res.problem == "not found":
        return not_applicable("systemctl is not installed: no systemd on this host")
    if res.problem is not None:
        return error(f"systemctl show failed: {res.problem}")
    if res.returncode != 0 or "LoadState=" not in res.stdout:
        msg = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
        if "not been booted with systemd" in msg or "Failed to connect to bus" in msg:
            return not_applicable(f"systemd is not running: {msg}")
        return error(f"systemctl show failed: {redact(msg)}")
    st = parse_systemctl_show(res.stdout)
    data: Dict[str, Any] = {
        "load_state": st.load_state, "active_state": st.active_state, "sub_state": st.sub_state,
        "unit_file_state": st.unit_file_state, "result": st.result,
        "exec_main_code": st.exec_main_code, "exec_main_status": st.exec_main_status,
        "n_restarts": st.n_restarts, "active_enter": st.active_enter, "main_pid": st.main_pid,
        "memory_max": st.memory_max, "memory_limit": st.memory_limit,
        "memory_current": st.memory_current, "memory_cap": st.memory_cap,
        "cpu_quota_per_sec_usec": st.cpu_quota_per_sec_usec, "fragment_path": st.fragment_path,
        "drop_in_paths": list(st.drop_in_paths), "environment": redacted_env(st.environment),
        "environment_files": list(st.environment_files),
    }  # fmt: skip
    state = f"{st.active_state} ({st.sub_state})"
    ev = tuple(redact(f"{k}={st.props[k]}") for k in PROPERTIES if st.props.get(k))
    if st.load_state == "not-found":
        return fail(f"systemd has no unit {UNIT} (LoadState=not-found)", evidence=ev, **data)
    if st.load_state == "masked":
        return fail(f"{UNIT} is masked: it cannot start", evidence=ev, **data)
    if st.load_state not in (None, "loaded"):
        return fail(f"{UNIT} did not load (LoadState={st.load_state})", evidence=ev, **data)
    if st.active_state == "activating" and st.sub_state == "auto-restart":
        return fail(
            f"{UNIT} is {state}: its process exited ({st.result}, status "
            f"{st.exec_main_status}) and systemd restarts it ({st.n_restarts} restarts so far)",
            evidence=ev, **data,
        )  # fmt: skip
    if st.active_state == "failed":
        return fail(f"{UNIT} failed (Result={st.result}, {st.exec_main_code} "
                    f"{st.exec_main_status})", evidence=ev, **data)  # fmt: skip
    if st.active_state in ("inactive", "deactivating"):
        return fail(f"{UNIT} is not running: {state}, unit file {st.unit_file_state}",
                    evidence=ev, **data)  # fmt: skip
    if st.active_state != "active":
        return warn(f"{UNIT} is {state}", evidence=ev, **data)
    if st.unit_file_state not in ("enabled", "static", "enabled-runtime", "generated", None):
        return warn(f"{UNIT} is running since {st.active_enter} but {st.unit_file_state}: it "
                    "will not start at boot", evidence=ev, **data)  # fmt: skip
    restarts = f", {st.n_restarts} restarts" if st.n_restarts else ""
    return ok(f"{UNIT} is active (running) since {st.active_enter}, MainPID {st.main_pid}"
              f"{restarts}", evidence=ev, **data)  # fmt: skip


# --------------------------------------------------------------------------------------------
# agent.unit_file


def _find_unit_file(ctx: Context, fragment: Optional[str]) -> Tuple[Optional[str], bool]:
    """The unit file's path and whether it is masked (a link to /dev/null or empty)."""
    candidates = ([fragment] if fragment else []) + [f"{d}/{UNIT}" for d in UNIT_DIRS]
    for path in candidates:
        st = ctx.host.fs.stat(path)
        if st is None:
            continue
        if stat_mod.S_ISCHR(st.st_mode) or (stat_mod.S_ISREG(st.st_mode) and st.st_size == 0):
            return path, True
        if stat_mod.S_ISREG(st.st_mode):
            return path, False
    return None, False


def _drop_ins(ctx: Context) -> List[str]:
    by_name: Dict[str, str] = {}
    for d in reversed(UNIT_DIRS):  # /etc wins over /run over /lib for the same file name
        for path in ctx.host.fs.glob(f"{d}/{UNIT}.d", "*.conf"):
            by_name[path.rsplit("/", 1)[1]] = path
    return [by_name[name] for name in sorted(by_name)]


@check("agent.unit_file", title="amazon-guardduty-agent unit file and drop-ins are readable",
       category="agent", after=("agent.unit",))  # fmt: skip
def unit_file(ctx: Context) -> Outcome:
    """Reads /lib/systemd/system/amazon-guardduty-agent.service (or the FragmentPath systemd
    reports) and /etc/systemd/system/amazon-guardduty-agent.service.d/*.conf as files."""
    fragment = ctx.fact("agent.unit", "fragment_path")
    path, masked = _find_unit_file(ctx, fragment if isinstance(fragment, str) else None)
    if masked:
        return fail(f"{UNIT} is masked ({path} is empty or a link to /dev/null)", path=path,
                    masked=True)  # fmt: skip
    if path is None:
        return fail(f"no unit file {UNIT} in {', '.join(UNIT_DIRS)}", path=None, masked=False)
    files = []
    unreadable = []
    for p in [path, *_drop_ins(ctx)]:
        read = ctx.host.fs.read(p, max_bytes=256 * 1024)
        if not read.ok or read.text is None:
            unreadable.append(f"{p}: {read.problem}")
            continue
        files.append(parse_unit_file(read.text, p))
    if not files:
        return warn(f"cannot read {path}: {unreadable[0]}", path=path, masked=False,
                    unreadable=unreadable)  # fmt: skip
    merged = merge_unit(files)
    total = _total_memory(ctx)
    data: Dict[str, Any] = {
        "path": path, "drop_ins": [f.path for f in files[1:]], "masked": False,
        "memory_max": parse_size(merged.memory_max, total),
        "memory_limit": parse_size(merged.memory_limit, total),
        "cpu_quota": merged.cpu_quota, "restart": merged.restart,
        "limit_memlock": merged.limit_memlock,
        "environment": redacted_env(merged.environment),
        "environment_files": list(merged.environment_files), "errors": list(merged.errors),
        "unreadable": unreadable,
    }  # fmt: skip
    if merged.errors or unreadable:
        return warn(
            f"{path}: {len(merged.errors)} line(s) systemd would ignore, "
            f"{len(unreadable)} unreadable file(s)",
            evidence=tuple(redact(e) for e in (merged.errors + tuple(unreadable))[:10]),
            **data,
        )
    limits = f"MemoryMax={merged.memory_max or '-'}, MemoryLimit={merged.memory_limit or '-'}"
    return ok(f"{path} ({len(files) - 1} drop-in(s)): {limits}", **data)


# --------------------------------------------------------------------------------------------
# agent.journal


@check("agent.journal", title="the agent's journal shows no crashes, restarts or OOM kills",
       category="agent", after=("agent.unit",))  # fmt: skip
def journal(ctx: Context) -> Outcome:
    """Reads the unit's journal entries (and kernel OOM lines) since --since, through
    systemd-python's journal.Reader or `journalctl -o json`."""
    since = ctx.host.clock.now() - ctx.options.since
    try:
        entries = ctx.host.journal.read(
            units=[UNIT], since=since, kernel=True, timeout=ctx.timeout(timeouts.JOURNAL),
            max_entries=MAX_JOURNAL_ENTRIES,
        )  # fmt: skip
    except JournalUnavailable as exc:
        reason = redact(str(exc))
        if ctx.host.euid != 0 and "ermission" in reason:
            return skip(SkipReason.NEEDS_ROOT, f"cannot read the journal: {reason}",
                        unreadable=reason)  # fmt: skip
        return warn(f"cannot read the journal: {reason}", unreadable=reason,
                    source=ctx.host.journal.description)  # fmt: skip
    hist = summarise_unit(entries, UNIT)
    matches = SignatureMatches()
    for when, message in hist.agent_lines:
        matches.feed(when, message, "journal")
    data: Dict[str, Any] = dict(hist.as_data())
    data.update(
        entries=len(entries), signatures=matches.data(), source=ctx.host.journal.description,
        since=since.isoformat(), unreadable=None,
    )  # fmt: skip
    evidence = tuple(redact(e) for e in hist.evidence[-6:]) + matches.evidence()
    failed = hist.failed_exits()
    if not entries:
        return ok(f"no journal entries for {UNIT} since {since:%Y-%m-%d %H:%M} UTC", **data)
    if hist.oom_count():
        return fail(f"the agent was killed for lack of memory {hist.oom_count()} time(s) since "
                    f"{since:%Y-%m-%d %H:%M}", evidence=evidence, **data)  # fmt: skip
    if len(failed) >= 3 or hist.start_limit_hit:
        every = hist.restart_interval_s()
        how_often = f", about every {every:.0f} s" if every else ""
        return fail(f"restart loop: {len(hist.starts)} starts and {len(failed)} failed exits"
                    f"{how_often}", evidence=evidence, **data)  # fmt: skip
    if failed or matches.hits:
        return warn(f"{len(failed)} failed exit(s) and {len(matches.hits)} kind(s) of error "
                    "lines in the window", evidence=evidence, **data)  # fmt: skip
    return ok(f"{len(entries)} entries, {len(hist.starts)} start(s), no failures", **data)


COMM = UNIT.replace(".service", "")[:15]  # the kernel cuts comm to 15 characters


@check("agent.kernel_log", title="the kernel's ring buffer shows no OOM kill of the agent",
       category="agent", after=("agent.journal",), needs=("live",))  # fmt: skip
def kernel_log(ctx: Context) -> Outcome:
    """Reads `dmesg --time-format=iso --kernel` for cgroup OOM kills of the agent since --since:
    the ring buffer keeps them when the journal does not (volatile storage, a container)."""
    res = ctx.host.run.run(["dmesg", "--time-format=iso", "--kernel", "--nopager"],
                           timeout=ctx.timeout(timeouts.COMMAND))  # fmt: skip
    if res.problem == "not found":
        return not_applicable("dmesg is not installed")
    if res.problem:
        return warn(f"dmesg: {res.problem}", oom_kills=None)
    if res.returncode != 0:
        err = res.stderr.strip().splitlines()
        reason = err[-1] if err else f"exit code {res.returncode}"
        if "not permitted" in reason or "ermission" in reason:
            # kernel.dmesg_restrict=1: only root (CAP_SYSLOG) reads the ring buffer
            return skip(SkipReason.NEEDS_ROOT, f"the kernel ring buffer needs root: {reason}")
        return warn(f"dmesg failed: {reason}", oom_kills=None)
    since = ctx.host.clock.now() - ctx.options.since
    named = [line for line in parse_dmesg_iso(res.stdout)
             if line.timestamp >= since and kernel_oom_kill(line.message, COMM)]  # fmt: skip
    # The ring buffer is the whole kernel's (containers share it), so a kill of a process with
    # the agent's name counts only when the unit's main process died of SIGKILL at that moment.
    # Without a readable journal there is nothing to pair with: then the name has to do.
    sigkills = ctx.fact("agent.journal", "sigkill_exits")
    correlated = isinstance(sigkills, list)
    kills = _paired_with(named, sigkills) if isinstance(sigkills, list) else named
    shown = kills or named
    evidence = tuple(redact(f"{k.timestamp.isoformat()} kernel: {k.message[:300]}")
                     for k in shown[-5:])  # fmt: skip
    data: Dict[str, Any] = {
        "oom_kills": len(kills), "named_oom_kills": len(named), "paired_with_journal": correlated,
        "since": since.isoformat(),
        "last_oom_kill": kills[-1].timestamp.isoformat() if kills else None,
    }
    if kills:
        return fail(f"the kernel killed the agent's process for lack of memory {len(kills)} "
                    f"time(s) since {since:%Y-%m-%d %H:%M} UTC", evidence=evidence, **data)
    if named:
        return warn(f"{len(named)} OOM kill(s) of a process named {COMM} since "
                    f"{since:%Y-%m-%d %H:%M} UTC, none of them the unit's main process",
                    evidence=evidence, **data)  # fmt: skip
    return ok(f"no OOM kill of {COMM} in the kernel ring buffer since {since:%Y-%m-%d %H:%M} UTC",
              **data)  # fmt: skip


def _paired_with(kills: List[KernelLine], sigkill_exits: List[Any]) -> List[KernelLine]:
    """The kernel kills that the journal shows as the unit's main process dying of SIGKILL
    within a few seconds (systemd notices the death right after the kernel's line)."""
    times = []
    for raw in sigkill_exits:
        try:
            times.append(datetime.fromisoformat(str(raw)))
        except ValueError:
            continue
    return [k for k in kills if any(abs((k.timestamp - t).total_seconds()) <= 5 for t in times)]


# --------------------------------------------------------------------------------------------
# agent.logs


@check("agent.logs", title="the agent's log files show no known errors", category="agent",
       needs=("root-user",))  # fmt: skip
def logs(ctx: Context) -> Outcome:
    """Reads every file under /var/log/amzn-guardduty-agent/ (rotated and .gz too) from the end,
    back to --since, and matches each line against knowledge/log_signatures.json."""
    fs = ctx.host.fs
    if not fs.is_dir(LOG_DIR):
        problem = fs.listdir_problem(LOG_DIR)
        if problem == "permission denied":
            return skip(SkipReason.NEEDS_ROOT, f"{LOG_DIR} is not readable")
        return not_applicable(f"{LOG_DIR} does not exist", files=[])
    since = ctx.host.clock.now() - ctx.options.since
    year = ctx.host.clock.now().year

    def too_old(line: str) -> bool:
        at = parse_agent_log_line(line, year).timestamp
        return at is not None and at < since

    matches = SignatureMatches()
    endpoints: List[Tuple[str, str]] = []  # (host, region) of every endpoint name the agent wrote
    files: List[JSONValue] = []
    problems: List[str] = []
    last_lines: List[str] = []
    budget = LOG_BYTES_TOTAL
    for path in list_log_files(fs, LOG_DIR):
        st = fs.stat(path)
        if st is not None and st.st_mtime < since.timestamp():
            files.append({"path": path, "size": st.st_size, "skipped": "older than --since"})
            continue
        if budget <= 0 or ctx.remaining() < 0.5:
            files.append({"path": path, "skipped": "read budget spent"})
            continue
        cap = LOG_GZ_BYTES_PER_FILE if path.endswith(".gz") else LOG_BYTES_PER_FILE
        res = read_log_file(
            fs, path, too_old, max_bytes=min(cap, budget), max_line=MAX_LOG_LINE,
            max_lines=MAX_LINES_PER_FILE, timeout=ctx.timeout(timeouts.LOG_FILE),
        )  # fmt: skip
        budget -= res.bytes_read
        files.append({"path": path, "size": res.size, "lines": len(res.lines),
                      "problem": res.problem, "capped": res.capped})  # fmt: skip
        if res.problem:
            problems.append(f"{path}: {res.problem}")
        for line in res.lines:
            parsed = parse_agent_log_line(line, year)
            matches.feed(parsed.timestamp, parsed.message, path.rsplit("/", 1)[1])
            host = endpoint_host_in(parsed.message)
            if host is not None:
                endpoints.append(host)
        if res.lines and not last_lines:
            last_lines = [redact(x[:300]) for x in res.lines[-5:]]
    data: Dict[str, Any] = {
        "files": files, "signatures": matches.data(), "problems": problems,
        "since": since.isoformat(), "last_lines": last_lines,
        # The Region of the endpoint the agent itself talks to, as its own lines name it: the
        # region-mismatch rule compares it with the instance's.
        "endpoint_hosts": sorted({h for h, _ in endpoints}),
        "region": Counter(r for _, r in endpoints).most_common(1)[0][0] if endpoints else None,
    }
    if problems and all("permission denied" in p for p in problems) and ctx.host.euid != 0:
        return skip(SkipReason.NEEDS_ROOT, f"{len(problems)} log file(s) not readable without "
                    "root", **data)  # fmt: skip
    if matches.hits:
        shown = "; ".join(str(h["show"]) for h in matches.hits.values())
        return warn(f"known error lines in the agent's logs: {shown}",
                    evidence=matches.evidence(), **data)  # fmt: skip
    if problems:
        return warn(f"{len(problems)} log file(s) could not be read fully",
                    evidence=tuple(problems[:5]), **data)  # fmt: skip
    read = sum(1 for f in files if isinstance(f, dict) and "lines" in f)
    return ok(f"{read} log file(s) read, no known error lines since {since:%Y-%m-%d %H:%M} UTC",
              **data)  # fmt: skip


# --------------------------------------------------------------------------------------------
# agent.process


def _memlock(ctx: Context, pid: int) -> Mapping[str, JSONValue]:
    read = ctx.host.fs.read(f"/proc/{pid}/limits", max_bytes=16 * 1024)
    if not read.ok or read.text is None:
        return {"memlock_problem": read.problem}
    row = parse_proc_limits(read.text).get("Max locked memory")
    if row is None:
        return {"memlock_problem": "no 'Max locked memory' row"}
    return {"memlock_soft": row.soft, "memlock_hard": row.hard, "memlock_problem": None}


@check("agent.process", title="the agent's process runs within its limits", category="agent",
       after=("agent.unit",), needs=("live",))  # fmt: skip
def process(ctx: Context) -> Outcome:
    """Finds the agent through the unit's MainPID (else by name prefix) with psutil: uptime, RSS,
    CPU, proxy variables in /proc/PID/environ, and MEMLOCK in /proc/PID/limits."""
    pid = ctx.fact("agent.unit", "main_pid")
    try:
        if not isinstance(pid, int) or pid <= 0:
            found = ctx.host.procs.find(PROCESS_PREFIX)
            if not found:
                return fail("no amazon-guardduty process is running", pid=None, running=False)
            pid = found[0]
        info = ctx.host.procs.get(pid, cpu_interval=min(CPU_SAMPLE_S, ctx.remaining() / 4))
    except ProcessUnavailable as exc:
        return skip(SkipReason.UNAVAILABLE_WITH_ROOT, f"process table unavailable: {exc}")
    if info is None:
        return fail(f"process {pid} is gone", pid=pid, running=False)
    now = ctx.host.clock.now().timestamp()
    cpus = info.cpu_count or 1
    machine_cpu = round(info.cpu_percent / cpus, 1) if info.cpu_percent is not None else None
    cap = ctx.fact("agent.unit", "memory_cap")
    data: Dict[str, Any] = {
        "pid": info.pid, "name": info.name, "running": True, "exe": info.exe,
        "uptime_s": round(now - info.create_time) if info.create_time else None,
        "rss": info.rss, "memory_cap": cap, "cpu_percent": machine_cpu, "cpu_count": cpus,
        "cpu_budget_percent": CPU_BUDGET_PERCENT, "threads": info.num_threads,
        "proxy_env": redacted_env(sorted((info.environ or {}).items())),
        "environ_problem": info.environ_problem, "total_memory": info.total_memory,
    }  # fmt: skip
    data.update(_memlock(ctx, info.pid))
    notes = []
    if isinstance(cap, int) and info.rss and info.rss > 0.9 * cap:
        notes.append(f"RSS {_human(info.rss)} is over 90% of its {_human(cap)} limit")
    if machine_cpu is not None and machine_cpu > CPU_BUDGET_PERCENT:
        notes.append(f"CPU {machine_cpu}% of the machine is over the {CPU_BUDGET_PERCENT:.0f}% "
                     "budget")  # fmt: skip
    summary = (f"{info.name or '?'} pid {info.pid}, up {data['uptime_s']} s, RSS "
               f"{_human(info.rss)}, CPU {machine_cpu}%")  # fmt: skip
    if notes:
        return warn(f"{summary}: {'; '.join(notes)}", **data)
    return ok(summary, **data)


# --------------------------------------------------------------------------------------------
# agent.memory_limit


@check("agent.memory_limit", title="the agent's memory limit matches AWS's documented cap",
       category="agent", after=("agent.unit", "agent.unit_file"))  # fmt: skip
def memory_limit(ctx: Context) -> Outcome:
    """Compares MemoryMax/MemoryLimit of the unit with the cap AWS documents for the instance's
    memory (128 MB under 8 GB, 256 MB under 32 GB, 1 GB above)."""
    cap = ctx.fact("agent.unit", "memory_cap")
    if cap is None:
        caps = [ctx.fact("agent.unit_file", k) for k in ("memory_max", "memory_limit")]
        ints = [c for c in caps if isinstance(c, int)]
        cap = min(ints) if ints else None
    total = _total_memory(ctx)
    if total is None:
        return not_applicable("the machine's memory is unknown (analysing a root)", limit=cap)
    documented = documented_memory_cap(total)
    data: Dict[str, Any] = {"limit": cap, "documented": documented, "total_memory": total}
    if not isinstance(cap, int):
        return ok(f"the unit sets no memory limit (AWS documents {_human(documented)} for "
                  f"{total / GiB:.1f} GiB of memory)", **data)  # fmt: skip
    if cap < documented:
        return warn(f"memory limit {_human(cap)} is below the documented {_human(documented)} for "
                    f"{total / GiB:.1f} GiB of memory", **data)  # fmt: skip
    return ok(f"memory limit {_human(cap)} (documented {_human(documented)})", **data)


# --------------------------------------------------------------------------------------------
# agent.version_kernel


@check("agent.version_kernel", title="the agent version supports this kernel", category="agent",
       requires=("agent.package",), needs=("live",))  # fmt: skip
def version_kernel(ctx: Context) -> Outcome:
    """Compares the installed agent version with the oldest agent that supports the running
    kernel's series (knowledge/agent_kernels.json, from AWS's release history)."""
    version = ctx.fact("agent.package", "version")
    release = _kernel_release(ctx)
    if not isinstance(version, str) or not release:
        return not_applicable("agent version or kernel release unknown")
    m = re.match(r"(\d+)\.(\d+)", release)
    if not m:
        return error(f"cannot read the kernel release {release!r}")
    series = f"{m.group(1)}.{m.group(2)}"
    table = {row["kernel"]: row["agent"] for row in load("agent_kernels.json")["min_agent"]}
    needed = table.get(series)
    data: Dict[str, Any] = {"kernel": release, "series": series, "version": version,
                                  "needed": needed}  # fmt: skip
    if needed is None:
        newest = max(table, key=_version_tuple)
        if _version_tuple(series) > _version_tuple(newest):
            return warn(f"kernel {series} is newer than any kernel in the release history "
                        f"(newest {newest})", **data)  # fmt: skip
        return ok(f"agent {version} on kernel {series}", **data)
    if _version_tuple(version) < _version_tuple(needed):
        return fail(f"agent {version} is older than {needed}, the first to support kernel "
                    f"{series}", **data)  # fmt: skip
    return ok(f"agent {version} supports kernel {series} (needs {needed})", **data)


CHECKS: Tuple[Check, ...] = (
    package,
    unit,
    unit_file,
    journal,
    kernel_log,
    logs,
    process,
    memory_limit,
    version_kernel,
)
