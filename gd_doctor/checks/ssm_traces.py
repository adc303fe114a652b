"""Checks of what the SSM side recorded: the SSM Agent's logs and GuardDuty's SSM plugin traces.

They read (root only):

* ``/var/log/amazon/ssm/amazon-ssm-agent.log`` and ``errors.log`` (their last megabytes), and the
  unit's journal, matched against ``knowledge/ssm_signatures.json``;
* ``/var/lib/amazon/ssm/packages/<name>/installstate``,
  ``<id>/document/state/{pending,current,corrupt}/``, ``<id>/document/orchestration/`` and the
  association documents the agent stored.

Layout facts: aws/amazon-ssm-agent at commit 1c217c89 (guardduty.md section 10). That GuardDuty's
package lands under ``packages/AmazonGuardDuty-RuntimeMonitoringSsmPlugin`` is seen in a public
script, not documented by AWS: its absence is reported as "no trace", never as proof.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from gd_doctor.checks.base import Check, Context, check, judged, not_applicable, skip
from gd_doctor.checks.ssm_common import (
    GD_DOCUMENT,
    GD_PACKAGE,
    NOT_BLOCKING,
    SNAP_UNIT,
    SSM_ROOT,
    UNIT,
    excerpt,
    guardduty_agent,
    iso,
    needs_root,
)
from gd_doctor.facts.agent import PackageFacts
from gd_doctor.facts.ssm import (
    DistributorPackage,
    DocumentTrace,
    GuardDutyTracesFacts,
    LogSource,
    SignatureCount,
    SignatureHit,
    SsmLogFacts,
    SsmPackageFacts,
)
from gd_doctor.host import timeouts
from gd_doctor.host.journal import JournalUnavailable
from gd_doctor.knowledge import load
from gd_doctor.model import Outcome, SkipReason, Status
from gd_doctor.parsers.ssm_log import (
    Signature,
    SsmLogEntry,
    compile_signatures,
    match_signatures,
    parse_ssm_log,
)
from gd_doctor.parsers.ssm_state import (
    StateParseError,
    instance_dirs,
    parse_document_state,
    parse_installstate,
)
from gd_doctor.redact import redact

LOG_FILES = ("/var/log/amazon/ssm/amazon-ssm-agent.log", "/var/log/amazon/ssm/errors.log")

# Bounds: the state directory and the logs are the agent's, not ours, and may be huge.
LOG_TAIL_BYTES = 4 * 1024 * 1024
JOURNAL_MAX_ENTRIES = 5000
STATE_FILE_MAX_BYTES = 1024 * 1024
OUTPUT_TAIL_BYTES = 64 * 1024
MAX_STATE_FILES = 200  # per state directory
MAX_ORCHESTRATION_RUNS = 100
MAX_FILES_PER_RUN = 40
MAX_EVIDENCE = 8

# The most specific cause first: a denied ping also logs the generic "Health ping failed".
_PING_ORDER = (
    "health-ping-access-denied",
    "no-instance-role",
    "no-identity",
    "clock-skew",
    "endpoint-dns-failed",
    "endpoint-unreachable",
    "health-ping-failed",
)


# --- 4. The SSM Agent's logs --------------------------------------------------------------------


def _signatures() -> Tuple[List[Signature], Dict[str, Mapping[str, Any]]]:
    raw = load("ssm_signatures.json")["signatures"]
    sigs = compile_signatures([(s["id"], s["pattern"], s["cause"], s["levels"]) for s in raw])
    return sigs, {s["id"]: s for s in raw}


def _log_sources(ctx: Context, since: datetime) -> Tuple[List[List[str]], List[LogSource]]:
    """The lines of each source (files, then journal) and what happened reading each."""
    texts: List[List[str]] = []
    report: List[LogSource] = []
    for path in LOG_FILES:
        read = ctx.host.fs.read_tail(path, LOG_TAIL_BYTES)
        if not read.ok or read.text is None:
            report.append(LogSource(path, problem=read.problem or "unreadable"))
            continue
        lines = read.text.replace("\x00", "").splitlines()
        texts.append(lines)
        report.append(LogSource(path, len(lines), read.truncated, read.binary))
    try:
        entries = ctx.host.journal.read(
            units=[UNIT, SNAP_UNIT],
            since=since,
            kernel=False,
            timeout=ctx.timeout(timeouts.JOURNAL),
            max_entries=JOURNAL_MAX_ENTRIES,
        )
    except JournalUnavailable as exc:
        report.append(LogSource("journal", problem=redact(str(exc))))
    else:
        texts.append([e.message for e in entries])
        report.append(LogSource("journal", len(entries)))
    return texts, report


def _unique_entries(texts: Iterable[List[str]]) -> List[SsmLogEntry]:
    """Entries of all sources, the same line seen in the log, errors.log and journal once."""
    seen: Set[Tuple[Optional[datetime], str, str]] = set()
    out: List[SsmLogEntry] = []
    for lines in texts:
        for e in parse_ssm_log(lines):
            key = (e.timestamp, e.level, e.message[:200])
            if key not in seen:
                seen.add(key)
                out.append(e)
    return out


def _hit(entries: Sequence[SsmLogEntry], sig: Signature, meta: Mapping[str, Any]) -> SignatureHit:
    last = max(entries, key=lambda e: e.timestamp or datetime.min.replace(tzinfo=timezone.utc))
    # The first line as written plus the folded continuation (where the cause often is).
    tail = last.message[len(last.message.split(" | ")[0]) :] if " | " in last.message else ""
    m = sig.pattern.search(last.message)
    groups = {k: redact(v) for k, v in m.groupdict().items() if v} if m else {}
    return SignatureHit(
        id=sig.id,
        cause=str(meta["cause"]),
        count=len(entries),
        last_at=iso(last.timestamp),
        line=excerpt(last.line + tail),
        health_ping=bool(meta.get("health_ping")),
        host=groups.get("host"),
        addr=groups.get("addr"),
        platform=groups.get("platform"),
        action=groups.get("action"),
    )


def _in_window(e: SsmLogEntry, since: datetime) -> bool:
    return e.timestamp is None or e.timestamp >= since


def _log_facts(
    entries: Sequence[SsmLogEntry], sources: Sequence[LogSource], since: datetime
) -> SsmLogFacts:
    sigs, meta = _signatures()
    hits: Dict[str, List[SsmLogEntry]] = {}
    older: Dict[str, int] = {}
    for e in entries:
        for sig in match_signatures(e, sigs):
            if _in_window(e, since):
                hits.setdefault(sig.id, []).append(e)
            else:
                older[sig.id] = older.get(sig.id, 0) + 1
    found = tuple(
        _hit(es, next(s for s in sigs if s.id == sid), meta[sid]) for sid, es in hits.items()
    )
    stamps = [e.timestamp for e in entries if e.timestamp]
    errors = [e.timestamp for e in entries if e.timestamp and e.level in ("ERROR", "CRITICAL")]
    ping = sorted({h.cause for h in found if h.health_ping})
    return SsmLogFacts(
        sources=tuple(sources),
        health_ping_failing=bool(ping),
        entries=len(entries),
        signatures=found,
        older_signatures=tuple(SignatureCount(k, v) for k, v in older.items()),
        last_entry_at=iso(max(stamps) if stamps else None),
        last_error_at=iso(max(errors) if errors else None),
        causes=tuple(ping),
        guardduty_lines=len(hits.get("guardduty-trace", [])) + older.get("guardduty-trace", 0),
        since=iso(since),
    )


@check(
    "ssm.agent_log",
    title="SSM Agent logs show no health-ping failure",
    category="ssm",
    facts=SsmLogFacts,
    reads=(SsmPackageFacts, PackageFacts),
    needs=("root-user",),
)
def agent_log(ctx: Context) -> Outcome:
    """Reads the last megabytes of /var/log/amazon/ssm/amazon-ssm-agent.log and errors.log and
    the unit's journal; matches knowledge/ssm_signatures.json (health ping denied, no
    credentials, endpoint unreachable, clock skew, ...) within the --since window."""
    since = ctx.host.clock.now() - ctx.options.since
    texts, sources = _log_sources(ctx, since)
    if not texts:
        return _no_logs(ctx, sources)
    facts = _log_facts(_unique_entries(texts), sources, since)
    return _log_outcome(ctx, facts)


def _no_logs(ctx: Context, sources: List[LogSource]) -> Outcome:
    files = [s for s in sources if s.source != "journal"]
    if any(needs_root(ctx, s.problem) for s in files):
        summary = "the SSM Agent's logs are readable by root only"
        return skip(SkipReason.NEEDS_ROOT, summary, facts=SsmLogFacts.unread(sources))
    pkg = ctx.facts(SsmPackageFacts)
    if pkg is not None and pkg.installed is False:
        return not_applicable("amazon-ssm-agent is not installed")
    facts = SsmLogFacts.unread(sources)
    if facts.unreadable:
        what = ", ".join(f"{s.source} ({s.problem})" for s in facts.unreadable)
        return judged(Status.WARN, f"cannot read the SSM Agent's logs: {what}", facts)
    return judged(Status.WARN, "no SSM Agent log found (files and journal)", facts)


def _log_outcome(ctx: Context, facts: SsmLogFacts) -> Outcome:
    evidence = tuple(h.line for h in facts.signatures if h.id != "guardduty-trace")
    evidence = evidence[:MAX_EVIDENCE]
    if facts.health_ping_failing:
        worst = next(
            (h for sid in _PING_ORDER for h in (facts.hit(sid),) if h), facts.signatures[0]
        )
        summary = (
            f"health ping failing ({', '.join(facts.causes)}): {worst.count} time(s), last "
            f"{worst.last_at or 'at an unknown time'}"
        )
        if guardduty_agent(ctx)[0] is True:
            return judged(Status.WARN, summary + NOT_BLOCKING, facts, evidence)
        return judged(Status.FAIL, summary, facts, evidence)
    other = sorted(h.id for h in facts.signatures if h.id != "guardduty-trace")
    if other:
        return judged(Status.WARN, f"SSM Agent logged: {', '.join(other)}", facts, evidence)
    if facts.unreadable:
        # What was read is clean, but an unread file is not "no errors".
        what = ", ".join(f"{s.source} ({s.problem})" for s in facts.unreadable)
        return judged(Status.WARN, f"no known SSM Agent error in what was readable; {what}", facts)
    last = facts.last_entry_at or "never"
    summary = f"no known SSM Agent error since {facts.since} (last entry {last})"
    return judged(Status.OK, summary, facts)


# --- 5. GuardDuty's traces on the SSM side -------------------------------------------------------


def _package_state(ctx: Context) -> Optional[DistributorPackage]:
    base = f"{SSM_ROOT}/packages/{GD_PACKAGE}"
    if not ctx.host.fs.is_dir(base):
        return None
    versions = [n for n in (ctx.host.fs.listdir(base) or []) if n != "installstate"]
    read = ctx.host.fs.read(f"{base}/installstate", max_bytes=STATE_FILE_MAX_BYTES)
    if not read.ok or read.text is None:
        problem = f"installstate {read.problem or 'unreadable'}"
        return DistributorPackage(base, tuple(versions), problem=problem)
    try:
        st = parse_installstate(read.text)
    except StateParseError as exc:
        return DistributorPackage(
            base,
            tuple(versions),
            problem=f"installstate corrupt ({exc})",
            raw=excerpt(read.text, 120),
        )
    return DistributorPackage.from_installstate(base, versions, st)


def _state_runs(ctx: Context, inst: str, corrupt: List[str]) -> List[DocumentTrace]:
    runs: List[DocumentTrace] = []
    for sub in ("pending", "current", "corrupt"):
        folder = f"{SSM_ROOT}/{inst}/document/state/{sub}"
        for path in ctx.host.fs.glob(folder, "*")[:MAX_STATE_FILES]:
            read = ctx.host.fs.read(path, max_bytes=STATE_FILE_MAX_BYTES)
            if not read.ok or read.text is None:
                continue
            if GD_DOCUMENT not in read.text and GD_PACKAGE not in read.text:
                continue
            try:
                run = parse_document_state(read.text)
            except StateParseError as exc:
                corrupt.append(f"{path}: {exc}")
                continue
            runs.append(DocumentTrace.from_run(path, run, excerpt(run.output)))
    return runs


def _association_docs(ctx: Context, inst: str) -> List[DocumentTrace]:
    """GuardDuty's document as the agent stored it for an association (it may not have run)."""
    found: List[DocumentTrace] = []
    for folder in (f"{SSM_ROOT}/{inst}/document/association", f"{SSM_ROOT}/{inst}/association"):
        for path in _walk_files(ctx, folder, depth=2):
            read = ctx.host.fs.read(path, max_bytes=STATE_FILE_MAX_BYTES)
            if read.ok and read.text is not None and GD_DOCUMENT in read.text:
                st = ctx.host.fs.stat(path)
                when = datetime.fromtimestamp(st.st_mtime, timezone.utc) if st else None
                found.append(
                    DocumentTrace(
                        source=path,
                        kind="association-document",
                        document=GD_DOCUMENT,
                        status="associated",
                        when=iso(when),
                        failed=False,
                    )
                )
    return found


def _walk_files(ctx: Context, top: str, depth: int = 3) -> List[str]:
    """Files under ``top`` up to ``depth`` levels, at most MAX_FILES_PER_RUN."""
    out: List[str] = []
    stack = [(top, 0)]
    while stack and len(out) < MAX_FILES_PER_RUN:
        folder, level = stack.pop()
        for name in ctx.host.fs.listdir(folder) or []:
            path = f"{folder}/{name}"
            if ctx.host.fs.is_file(path):
                out.append(path)
            elif level < depth and ctx.host.fs.is_dir(path):
                stack.append((path, level + 1))
    return out[:MAX_FILES_PER_RUN]


def _orchestration_runs(ctx: Context, inst: str, sigs: Sequence[Signature]) -> List[DocumentTrace]:
    top = f"{SSM_ROOT}/{inst}/document/orchestration"
    dated = []
    for name in ctx.host.fs.listdir(top) or []:
        st = ctx.host.fs.stat(f"{top}/{name}")
        dated.append((st.st_mtime if st else 0.0, name))
    runs: List[DocumentTrace] = []
    for mtime, name in sorted(dated, reverse=True)[:MAX_ORCHESTRATION_RUNS]:
        run = _orchestration_run(ctx, f"{top}/{name}", mtime, sigs)
        if run is not None:
            runs.append(run)
    return runs


def _orchestration_run(
    ctx: Context, folder: str, mtime: float, sigs: Sequence[Signature]
) -> Optional[DocumentTrace]:
    texts: List[Tuple[str, str]] = []
    for path in _walk_files(ctx, folder):
        read = ctx.host.fs.read_tail(path, OUTPUT_TAIL_BYTES)
        if read.ok and read.text is not None:
            texts.append((path, read.text.replace("\x00", "")))
    blob = "\n".join(t for _, t in texts)
    if GD_DOCUMENT not in blob and GD_PACKAGE not in blob and "AmazonGuardDuty" not in folder:
        return None
    no_manifest = [s for s in sigs if s.id == "distributor-no-manifest"]
    failure = next((m for m in (s.pattern.search(blob) for s in no_manifest) if m), None)
    stderr = "\n".join(t for p, t in texts if p.endswith("stderr") and t.strip())
    failed = failure is not None or bool(re.search(r"(?i)\b(fail|error)", stderr))
    last_line = ((stderr or blob).strip().splitlines() or [""])[-1]
    return DocumentTrace(
        source=folder,
        kind="orchestration",
        document=GD_DOCUMENT,
        status="Failed" if failed else "output",
        when=iso(datetime.fromtimestamp(mtime, timezone.utc)) if mtime else None,
        failed=failed,
        output=excerpt(failure.group(0) if failure else last_line),
        platform=redact(failure.group("platform")) if failure else None,
    )


def _sort_key(run: DocumentTrace) -> str:
    return run.when.replace("T", " ") if run.when else ""


@check(
    "ssm.guardduty_traces",
    title="GuardDuty's SSM plugin ran and installed the agent",
    category="ssm",
    facts=GuardDutyTracesFacts,
    reads=(SsmLogFacts,),
    needs=("root-user",),
)
def guardduty_traces(ctx: Context) -> Outcome:
    """Looks for the Distributor package AmazonGuardDuty-RuntimeMonitoringSsmPlugin
    (packages/<name>/installstate), runs of AmazonGuardDuty-ConfigureRuntimeMonitoringSsmPlugin
    in document/state and document/orchestration, and AmazonGuardDuty lines in the SSM log."""
    log = ctx.facts(SsmLogFacts)
    log_lines = log.guardduty_lines if log else 0
    names = ctx.host.fs.listdir(SSM_ROOT)
    if names is None:
        return _traces_unreadable(ctx, log_lines)
    sigs, _ = _signatures()
    corrupt: List[str] = []
    runs: List[DocumentTrace] = []
    associations: List[DocumentTrace] = []
    for inst in instance_dirs(names):
        runs.extend(_state_runs(ctx, inst, corrupt))
        runs.extend(_orchestration_runs(ctx, inst, sigs))
        associations.extend(_association_docs(ctx, inst))
    runs.sort(key=_sort_key, reverse=True)
    facts = GuardDutyTracesFacts.from_state(
        _package_state(ctx),
        runs,
        associations,
        corrupt,
        log_lines,
        log.hit("distributor-no-manifest") if log else None,
    )
    return _traces_outcome(facts)


def _traces_unreadable(ctx: Context, log_lines: int) -> Outcome:
    problem = ctx.host.fs.listdir_problem(SSM_ROOT) or "unreadable"
    facts = GuardDutyTracesFacts.unreadable(problem, log_lines, missing=problem == "missing")
    if needs_root(ctx, problem):
        if log_lines:
            summary = f"{SSM_ROOT} needs root; the SSM log names GuardDuty {log_lines} time(s)"
            return judged(Status.WARN, summary, facts)
        return Outcome(
            Status.SKIP,
            f"{SSM_ROOT} is readable by root only",
            skip_reason=SkipReason.NEEDS_ROOT,
            facts=facts,
        )
    if problem == "missing":
        summary = f"{SSM_ROOT} missing: no GuardDuty trace on the SSM side"
        if log_lines:
            summary = f"{SSM_ROOT} missing; the SSM log names GuardDuty {log_lines} time(s)"
        return judged(Status.OK, summary, facts)
    return judged(
        Status.WARN, f"cannot read {SSM_ROOT} ({problem}): GuardDuty traces unknown", facts
    )


def _traces_evidence(facts: GuardDutyTracesFacts) -> Tuple[str, ...]:
    lines = [f"{r.source}: {r.status} {r.output}".strip() for r in facts.runs[:3]]
    pkg = facts.package
    if pkg is not None:
        lines.insert(
            0,
            f"{pkg.path}/installstate: state {pkg.state or '?'} version {pkg.version or '?'}"
            f" ({pkg.problem or pkg.time or ''})",
        )
    if facts.log_failure:
        lines.append(facts.log_failure)
    return tuple(e for e in lines if e)[:MAX_EVIDENCE]


def _traces_outcome(facts: GuardDutyTracesFacts) -> Outcome:
    ev = _traces_evidence(facts)
    pkg = facts.package
    if facts.failed:
        if pkg is not None and pkg.failed:
            what = "Distributor install Failed"
        elif facts.last_run_failed:
            what = f"last run failed ({facts.last_run_at or 'time unknown'})"
        else:
            what = "the SSM log shows a platform mismatch"
        return judged(Status.FAIL, f"GuardDuty's SSM plugin: {what}", facts, ev)
    if facts.corrupt or (pkg is not None and pkg.problem):
        extra = f", {pkg.problem}" if pkg is not None and pkg.problem else ""
        summary = (
            f"GuardDuty's SSM state is partly unreadable ({len(facts.corrupt)} corrupt file(s)"
            f"{extra})"
        )
        return judged(Status.WARN, summary, facts, ev + facts.corrupt[:3])
    if pkg is not None:
        version = f" {pkg.version}" if pkg.version else ""
        return judged(Status.OK, f"{GD_PACKAGE}{version} {pkg.state}", facts, ev)
    if facts.runs or facts.log_lines:
        summary = (
            f"GuardDuty's SSM document ran here ({facts.run_count} run(s), "
            f"{facts.log_lines} log line(s))"
        )
        return judged(Status.OK, summary, facts, ev)
    if facts.associations:
        summary = "GuardDuty's association document is here but no run of it was found"
        return judged(Status.OK, summary, facts)
    return judged(Status.OK, "no trace of GuardDuty's SSM plugin on this host", facts)


CHECKS: Tuple[Check, ...] = (agent_log, guardduty_traces)
