"""``gd-doctor timeline``: one chronological view of what happened to the agent and around it.

Sources, each read through the Host's ports (so it works live, on ``--root`` and on a bundle):
package installs/upgrades/removals (dpkg.log; dnf's and yum's history databases, their
dnf.rpm.log and yum.log where a database cannot be read), the agent's and the SSM
Agent's unit events and kernel OOM kills from the journal, boots (a new boot id) and kernel
changes (``Linux version``), agent log errors grouped by signature, SSM Agent log lines about
the GuardDuty document, gd-doctor's earlier runs (inventory items, a bundle's report), the
clock's skew against the HTTPS probes' Date headers (a bundle's recorded answers). The text
marks the first failure and what came right before it: "what changed just before it broke".
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from gd_doctor.bundle import history
from gd_doctor.bundle.history import Transaction
from gd_doctor.host import Host
from gd_doctor.host.journal import JournalEntry, JournalUnavailable
from gd_doctor.host.logfiles import list_log_files
from gd_doctor.parsers.agent_log import parse_agent_log_line, parse_time
from gd_doctor.patterns import lazy
from gd_doctor.redact import redact, terminal_safe

AGENT_UNIT = "amazon-guardduty-agent.service"
SSM_UNITS = ("amazon-ssm-agent.service", "snap.amazon-ssm-agent.amazon-ssm-agent.service")
AGENT_LOG_DIR = "/var/log/amzn-guardduty-agent"
SSM_LOG = "/var/log/amazon/ssm/amazon-ssm-agent.log"
PACKAGE_LOGS = (
    "/var/log/dpkg.log",
    "/var/log/dpkg.log.1",
    "/var/log/dnf.rpm.log",
    "/var/log/yum.log",
)
INVENTORY_GLOB = ("/var/lib/amazon/ssm", "inventory/custom/GdDoctor.json")
MAX_EVENTS = 2000
MAX_TEXT = 240
READ_CAP = 4 << 20
JOURNAL_MAX = 5000

_DPKG = lazy(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?P<op>install|upgrade|remove|purge) "
    r"(?P<pkg>\S+) (?P<old>\S+) (?P<new>\S+)"
)
_DNF = lazy(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*) \w+ (?P<op>Installed|Upgrade|Upgraded|Erase|"
    r"Reinstall|Downgrade|Install): (?P<pkg>\S+)"
)
_YUM = lazy(
    r"^(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<op>Installed|Updated|Erased): (?P<pkg>\S+)"
)
_NUMBERS = lazy(r"\b0x[0-9a-f]+\b|\d+")
_LINUX_VERSION = lazy(r"^Linux version (\S+)")
_GD_DOCUMENT = lazy(r"AmazonGuardDuty|GuardDuty-ConfigureRuntimeMonitoring|guardduty", re.I)
_UNIT_FAIL = lazy(
    r"Main process exited, code=(?P<code>\w+), status=(?P<status>\S+)"
    r"|Failed with result '(?P<result>[\w-]+)'"
    r"|Start request repeated too quickly|killed by the OOM killer"
)
_UNIT_OTHER = lazy(
    r"^(Started|Stopped|Starting|Stopping)\b|Scheduled restart job|Deactivated successfully"
)
_KERNEL_OOM = lazy(r"Out of memory: Killed process|oom-kill:|invoked oom-killer", re.I)


@dataclass(frozen=True)
class Event:
    """One line of the timeline."""

    at: datetime
    source: str
    kind: str  # package, unit, failure, oom, boot, kernel, agent-log, ssm, gd-doctor, skew
    text: str
    failure: bool = False


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _short(text: str) -> str:
    text = " ".join(redact(text).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def history_events(transactions: Sequence[Transaction]) -> List[Event]:
    """One event per dnf/yum transaction: what it changed (the first few packages), its
    command line, and whether it failed."""
    out: List[Event] = []
    for t in transactions:
        shown = ", ".join(f"{c.action} {c.package}" for c in t.changes[:3]) or "no package change"
        more = f" (+{len(t.changes) - 3} more)" if len(t.changes) > 3 else ""
        tool = "dnf" if t.source == history.DNF_HISTORY else "yum"
        cmd = f" [{tool} {t.cmdline}]" if t.cmdline else ""
        verb = "failed transaction" if t.failed else "transaction"
        text = f"{tool} {verb}: {shown}{more}{cmd}"
        out.append(Event(t.at, t.source, "package", _short(text), failure=bool(t.failed)))
    return out


def package_events(host: Host, since: datetime) -> Tuple[List[Event], List[str]]:
    """Package changes: dpkg's log, dnf's and yum's history databases (their logs where the
    database could not be read), and the databases that could not be read."""
    transactions, problems = history.read_history(host.fs, since)
    out = history_events(transactions)
    from_db = {t.source for t in transactions} | {
        p for p in (history.DNF_HISTORY, *history.yum_files(host.fs)) if host.fs.is_file(p)
    }
    skip = set()
    if history.DNF_HISTORY in from_db and not any(history.DNF_HISTORY in p for p in problems):
        skip.add("/var/log/dnf.rpm.log")  # the same changes as the database's
    if any(s.startswith(history.YUM_HISTORY_DIR) for s in from_db) and not problems:
        skip.add("/var/log/yum.log")
    for path in PACKAGE_LOGS:
        if path in skip:
            continue
        res = host.fs.read_tail(path, READ_CAP)
        if not res.ok or not res.text:
            continue
        year = since.year
        for line in res.text.splitlines():
            ev = _package_line(line, path, year)
            if ev is not None and ev.at >= since:
                out.append(ev)
    return out, problems


def _package_line(line: str, path: str, year: int) -> Optional[Event]:
    m = _DPKG.match(line)
    if m:
        at = datetime.strptime(m["ts"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        old, new = m["old"], m["new"]
        detail = {"install": f"{new}", "upgrade": f"{old} -> {new}"}.get(m["op"], old)
        return Event(at, path, "package", f"{m['op']} {m['pkg']} {detail}")
    for rx in (_DNF, _YUM):
        m = rx.match(line)
        if m:
            at2 = parse_time(m["ts"], year)
            if at2 is not None:
                return Event(_utc(at2), path, "package", f"{m['op'].lower()} {m['pkg']}")
    return None


def _journal_entries(
    host: Host, since: datetime, timeout: float
) -> Tuple[List[JournalEntry], Optional[str]]:
    """The agent's, the SSM Agent's and the kernel's entries. On a bundle, every recorded
    answer (the replay journal answers the checks' own queries only)."""
    recorded = getattr(host.journal, "all_entries", None)
    if callable(recorded):
        return [e for e in recorded() if _utc(e.timestamp) >= since], None
    entries: List[JournalEntry] = []
    problem = None
    for units, kernel in (([AGENT_UNIT], True), (list(SSM_UNITS), False)):
        try:
            entries += host.journal.read(
                units=units, since=since, kernel=kernel, timeout=timeout, max_entries=JOURNAL_MAX
            )
        except JournalUnavailable as exc:
            problem = str(exc)
    return entries, problem


def journal_events(entries: Sequence[JournalEntry]) -> List[Event]:
    out: List[Event] = []
    boots: Dict[str, datetime] = {}
    for e in sorted(entries, key=lambda x: _utc(x.timestamp)):
        at = _utc(e.timestamp)
        boot = e.fields.get("_BOOT_ID")
        if boot and boot not in boots:
            boots[boot] = at
            if len(boots) > 1:
                out.append(Event(at, "journal", "boot", f"reboot (boot {boot[:8]})"))
        unit = e.fields.get("UNIT") or e.fields.get("_SYSTEMD_UNIT") or ""
        msg = e.message
        kv = _LINUX_VERSION.match(msg)
        if kv:
            out.append(Event(at, "journal (kernel)", "kernel", f"kernel {kv.group(1)} booted"))
        elif _KERNEL_OOM.search(msg) and (e.fields.get("_TRANSPORT") == "kernel" or not unit):
            out.append(Event(at, "journal (kernel)", "oom", _short(msg), failure=True))
        elif unit and "killed by the OOM killer" in msg:
            out.append(Event(at, f"journal {unit}", "oom", _short(msg), failure=True))
        elif unit and _UNIT_FAIL.search(msg):
            out.append(Event(at, f"journal {unit}", "failure", _short(msg), failure=True))
        elif unit and _UNIT_OTHER.search(msg):
            out.append(Event(at, f"journal {unit}", "unit", _short(msg)))
    return out


def _signature(message: str) -> str:
    return _NUMBERS.sub("N", message)[:120]


def agent_log_events(host: Host, since: datetime) -> List[Event]:
    """Errors of the agent's logs, one event per signature at its first time, with a count."""
    first: Dict[str, Tuple[datetime, str, str, int]] = {}
    for path in list_log_files(host.fs, AGENT_LOG_DIR)[:20]:
        if path.endswith(".gz"):
            continue
        res = host.fs.read_tail(path, READ_CAP)
        for line in (res.text or "").splitlines() if res.ok else ():
            parsed = parse_agent_log_line(line, since.year)
            if parsed.timestamp is None or (parsed.level or "").upper() not in (
                "ERROR",
                "ERR",
                "CRITICAL",
                "CRIT",
                "FATAL",
                "PANIC",
            ):
                continue
            at = _utc(parsed.timestamp)
            if at < since:
                continue
            sig = _signature(parsed.message)
            seen = first.get(sig)
            if seen is None:
                first[sig] = (at, path, parsed.message, 1)
            else:
                first[sig] = (seen[0], seen[1], seen[2], seen[3] + 1)
    return [
        Event(at, path, "agent-log", _short(msg) + (f" (x{n})" if n > 1 else ""), failure=True)
        for at, path, msg, n in first.values()
    ]


def ssm_events(host: Host, since: datetime) -> List[Event]:
    res = host.fs.read_tail(SSM_LOG, READ_CAP)
    out: List[Event] = []
    for line in (res.text or "").splitlines() if res.ok else ():
        if not _GD_DOCUMENT.search(line):
            continue
        parsed = parse_agent_log_line(line, since.year)
        if parsed.timestamp is None or _utc(parsed.timestamp) < since:
            continue
        bad = (parsed.level or "").upper().startswith("ERR") or "failed" in line.lower()
        out.append(
            Event(_utc(parsed.timestamp), SSM_LOG, "ssm", _short(parsed.message), failure=bad)
        )
    return out


GD_DOCTOR_STATE = "/var/lib/gd-doctor"  # the Run Command document's report and bundles
_BUNDLE_NAME = lazy(r"^gd-doctor-bundle-.*-(\d{8}T\d{6}Z)\.tar\.gz$")


def _inventory_run(doc: Any) -> Tuple[Optional[datetime], str]:
    """When and what an inventory item ``Custom:GdDoctor`` says (integrations/inventory.py:
    ``Content`` is one entry of flat attributes; SSM's own copies hold a list of them)."""
    if not isinstance(doc, dict):
        return None, ""
    content = doc.get("Content")
    entry = content[0] if isinstance(content, list) and content else content
    entry = entry if isinstance(entry, dict) else {}
    at = parse_time(str(entry.get("checked_at") or doc.get("CaptureTime") or ""))
    top = entry.get("top_finding")
    verdict = str(entry.get("verdict") or "?")
    return at, verdict + (f" ({top})" if top else "")


def _json_file(host: Host, path: str) -> Any:
    text = host.fs.read_text(path, 1 << 20)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def earlier_runs(host: Host, since: datetime) -> List[Event]:
    """gd-doctor's own records: the SSM inventory items it wrote, the Run Command document's
    last report, the bundles the document's optional step left on the host."""
    out: List[Event] = []
    base, tail = INVENTORY_GLOB
    for name in (host.fs.listdir(base) or [])[:50]:
        path = f"{base}/{name}/{tail}"
        at, what = _inventory_run(_json_file(host, path))
        if at is not None and _utc(at) >= since:
            out.append(Event(_utc(at), path, "gd-doctor", _short(f"earlier gd-doctor run: {what}")))
    report_path = f"{GD_DOCTOR_STATE}/ssm-report.json"
    report = _json_file(host, report_path)
    if isinstance(report, dict):
        for ev in bundle_run(report, source=report_path, label="earlier gd-doctor run"):
            if ev.at >= since:
                out.append(ev)
    for name in (host.fs.listdir(GD_DOCTOR_STATE) or [])[:200]:
        m = _BUNDLE_NAME.match(name)
        at2 = datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ") if m else None
        if at2 is not None and _utc(at2) >= since:
            path = f"{GD_DOCTOR_STATE}/{name}"
            out.append(
                Event(_utc(at2), path, "gd-doctor", _short(f"support bundle written: {name}"))
            )
    return out


def bundle_run(
    report: Dict[str, Any], source: str = "bundle report.json", label: str = "gd-doctor run"
) -> List[Event]:
    """The run a report records (a bundle's own, or the Run Command document's last one)."""
    at = parse_time(str(report.get("started_at", "")))
    if at is None:
        return []
    findings = report.get("findings")
    top = (
        findings[0].get("id")
        if isinstance(findings, list) and findings and isinstance(findings[0], dict)
        else None
    )
    what = f"{report.get('verdict')}" + (f" ({top})" if top else "")
    suffix = " (the bundle's)" if source == "bundle report.json" else ""
    return [Event(_utc(at), source, "gd-doctor", _short(f"{label}{suffix}: {what}"))]


SKEW_NOISE_S = 2.0  # a Date header has whole seconds, and the answer took its time
SKEW_FAIL_S = 300.0  # SigV4 refuses requests signed more than 5 minutes off


def clock_skew(answers: Dict[str, Any]) -> List[Event]:
    """The host clock against the servers' ``Date`` headers of the HTTPS probes a bundle
    recorded (the time each answer came is in the recording): one event, at the first probe."""
    offsets: List[Tuple[float, datetime, str]] = []
    calls = answers.get("calls")
    for c in calls if isinstance(calls, list) else []:
        if not isinstance(c, dict) or c.get("kind") != "https" or not isinstance(c.get("at"), str):
            continue
        answer = c.get("answer")
        headers = answer.get("headers") if isinstance(answer, dict) else None
        date = headers.get("date") if isinstance(headers, dict) else None
        try:
            at = _utc(datetime.fromisoformat(c["at"]))
            server = parsedate_to_datetime(str(date)) if date else None
        except (TypeError, ValueError, IndexError):
            continue
        if server is None or server.tzinfo is None or not isinstance(answer, dict):
            continue
        name = str(answer.get("server_name") or answer.get("address") or "?")[:100]
        offsets.append(((server - at).total_seconds(), at, name))
    if not offsets:
        return []
    offsets.sort()
    offset, at, name = offsets[len(offsets) // 2]  # the median probe
    if abs(offset) <= SKEW_NOISE_S:
        text = f"clock: within {SKEW_NOISE_S:.0f} s of {name}'s Date header"
    else:
        side = "behind" if offset > 0 else "ahead of"
        text = f"clock skew: this host's clock is {abs(offset):.0f} s {side} {name}'s Date header"
    return [
        Event(
            at,
            "bundle answers.json (HTTPS Date)",
            "skew",
            _short(text),
            failure=abs(offset) > SKEW_FAIL_S,
        )
    ]


def clock_state(host: Host, *, timeout: float = 5.0) -> List[Event]:
    """The clock as the clock check sees it now (chronyd's offset, timedatectl, timesyncd's
    state file; under ``--root`` the files only): one event at the present, a failure when
    the offset is beyond what SigV4 accepts."""
    from gd_doctor.checks.base import Options
    from gd_doctor.checks.clock import clock
    from gd_doctor.facts.clock import ClockFacts, thresholds
    from gd_doctor.runner import run_checks

    run = run_checks(host, [clock], Options(), budget_s=timeout)
    facts = run.results[0].facts if run.results else None
    if not isinstance(facts, ClockFacts) or facts.synchronized is None:
        return []
    max_skew, _ = thresholds()
    by = f" ({facts.decided_by})" if facts.decided_by else ""
    if facts.offset_s is not None:
        text = f"clock skew: {abs(facts.offset_s):.3f} s from the time source{by}"
    else:
        text = "clock: synchronised" if facts.synchronized else "clock: not synchronised"
        text += by
    far = facts.offset_s is not None and abs(facts.offset_s) > max_skew
    return [Event(_utc(host.clock.now()), "platform.clock", "skew", _short(text), failure=far)]


def build(
    host: Host, since: datetime, extra: Iterable[Event] = (), *, timeout: float = 10.0
) -> Tuple[List[Event], List[str]]:
    """Every event since ``since``, oldest first (capped), and the sources that could not be
    read."""
    notes: List[str] = []
    entries, problem = _journal_entries(host, since, timeout / 2)  # two units' queries
    if problem:
        notes.append(f"journal: {redact(problem)}")
    packages, problems = package_events(host, since)
    notes += [redact(p) for p in problems]
    events = (
        packages
        + journal_events(entries)
        + agent_log_events(host, since)
        + ssm_events(host, since)
        + earlier_runs(host, since)
        + list(extra)
    )
    events.sort(key=lambda e: (e.at, e.source))
    if len(events) > MAX_EVENTS:
        notes.append(f"{len(events) - MAX_EVENTS} older events left out")
        events = events[-MAX_EVENTS:]
    return events, notes


def first_failure(events: Sequence[Event]) -> Optional[int]:
    return next((n for n, e in enumerate(events) if e.failure), None)


def render_text(events: Sequence[Event], notes: Sequence[str], since: datetime) -> str:
    lines = [f"Timeline since {since.isoformat(timespec='seconds')} ({len(events)} events)"]
    ff = first_failure(events)
    for n, e in enumerate(events):
        mark = "  "
        if ff is not None and n == ff:
            mark = ">>"
        elif ff is not None and n == ff - 1:
            mark = " ^"
        lines.append(
            f"{mark} {e.at.isoformat(timespec='seconds')}  {e.kind:<9}  {e.text}  [{e.source}]"
        )
    if ff is not None:
        before = f"; right before it: {events[ff - 1].text}" if ff > 0 else ""
        lines.append(f">> first failure: {events[ff].text}{before}")
    elif events:
        lines.append("No failure in the window.")
    else:
        lines.append(f"No event in the window since {since.isoformat(timespec='seconds')}.")
    lines += [f"note: {n}" for n in notes]
    return str(terminal_safe("\n".join(lines))) + "\n"


def render_json(events: Sequence[Event], notes: Sequence[str], since: datetime) -> str:
    doc = {
        "since": since.isoformat(),
        "events": [{**asdict(e), "at": e.at.isoformat()} for e in events],
        "first_failure": first_failure(events),
        "notes": list(notes),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
