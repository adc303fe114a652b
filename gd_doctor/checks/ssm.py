"""Checks of the SSM path: the SSM Agent, its logs, and what GuardDuty's SSM plugin left behind.

With automated agent configuration GuardDuty installs its agent through Systems Manager: a State
Manager association runs the document ``AmazonGuardDuty-ConfigureRuntimeMonitoringSsmPlugin``,
which installs the Distributor package ``AmazonGuardDuty-RuntimeMonitoringSsmPlugin``. These
checks show, from the instance, what SSM did and did not do. They read:

* the package: ``/var/lib/dpkg/status``, ``rpm -q amazon-ssm-agent`` (live), the snap's
  ``/snap/amazon-ssm-agent/current/meta/snap.yaml`` or ``snap list amazon-ssm-agent`` (live),
  the unit files and ``/usr/bin/amazon-ssm-agent``;
* the unit: ``systemctl show amazon-ssm-agent.service`` (or the snap's unit; live only);
* ``/var/lib/amazon/ssm/`` (root only): instance directories (``i-...`` for EC2, ``mi-...`` for
  a hybrid activation), ``registration``, the names in ``Vault/Store`` (never their content:
  they hold the registration's private key), ``packages/<name>/installstate``,
  ``<id>/document/state/{pending,current,corrupt}/`` and ``<id>/document/orchestration/``;
* ``/var/log/amazon/ssm/amazon-ssm-agent.log`` and ``errors.log`` (their last megabytes), and the
  unit's journal, matched against ``knowledge/ssm_signatures.json``.

Layout facts: aws/amazon-ssm-agent at commit 1c217c89 (guardduty.md section 10). That GuardDuty's
package lands under ``packages/AmazonGuardDuty-RuntimeMonitoringSsmPlugin`` is seen in a public
script, not documented by AWS: its absence is reported as "no trace", never as proof.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from gd_doctor.checks import agent as agent_checks
from gd_doctor.checks import imds as imds_checks
from gd_doctor.checks import platform as platform_checks
from gd_doctor.checks.base import (
    Check,
    Context,
    check,
    not_applicable,
    ok,
    outcome,
    skip,
    warn,
)
from gd_doctor.host import timeouts
from gd_doctor.host.journal import JournalUnavailable
from gd_doctor.knowledge import load
from gd_doctor.model import JSONValue, Outcome, SkipReason, Status
from gd_doctor.parsers.dpkg_status import parse_dpkg_status_file
from gd_doctor.parsers.ssm_log import (
    Signature,
    SsmLogEntry,
    compile_signatures,
    match_signatures,
    parse_ssm_log,
)
from gd_doctor.parsers.ssm_state import (
    DocumentRun,
    StateParseError,
    instance_dirs,
    parse_document_state,
    parse_installstate,
    parse_registration,
    parse_snap_list,
    parse_snap_yaml_version,
)
from gd_doctor.parsers.systemctl_show import parse_properties
from gd_doctor.redact import redact

PACKAGE = "amazon-ssm-agent"
UNIT = "amazon-ssm-agent.service"
SNAP_UNIT = "snap.amazon-ssm-agent.amazon-ssm-agent.service"
UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
SNAP_YAML = "/snap/amazon-ssm-agent/current/meta/snap.yaml"
RPM_DBS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
SSM_ROOT = "/var/lib/amazon/ssm"
LOG_FILES = ("/var/log/amazon/ssm/amazon-ssm-agent.log", "/var/log/amazon/ssm/errors.log")
GD_DOCUMENT = "AmazonGuardDuty-ConfigureRuntimeMonitoringSsmPlugin"
GD_PACKAGE = "AmazonGuardDuty-RuntimeMonitoringSsmPlugin"
GD_AGENT_PACKAGE = "amazon-guardduty-agent"
GD_AGENT_UNIT = "amazon-guardduty-agent.service"

# Bounds: the state directory and the logs are the agent's, not ours, and may be huge.
LOG_TAIL_BYTES = 4 * 1024 * 1024
JOURNAL_MAX_ENTRIES = 5000
STATE_FILE_MAX_BYTES = 1024 * 1024
OUTPUT_TAIL_BYTES = 64 * 1024
MAX_STATE_FILES = 200  # per state directory
MAX_ORCHESTRATION_RUNS = 100
MAX_FILES_PER_RUN = 40
MAX_EVIDENCE = 8
EXCERPT = 1000  # a whole log line is the evidence; SDK errors run to ~400 characters
SYSTEMCTL_PROPS = "LoadState,ActiveState,SubState,UnitFileState,MainPID,NRestarts,Result"


def _registered(*ids: str) -> Tuple[str, ...]:
    """The ids among ``ids`` that other domains have registered (they land independently)."""
    known = {c.id for mod in (platform_checks, imds_checks, agent_checks) for c in mod.CHECKS}
    return tuple(i for i in ids if i in known)


def _excerpt(text: str, limit: int = EXCERPT) -> str:
    text = " ".join(text.split())
    return redact(text if len(text) <= limit else text[: limit - 1] + "…")


def _iso(dt: Optional[datetime]) -> Optional[str]:
    return dt.isoformat(timespec="seconds") if dt else None


def _platform_failure(
    last: Optional[Mapping[str, JSONValue]], log_failure: Any
) -> JSONValue:
    if last and last.get("platform"):
        return last.get("platform")
    if isinstance(log_failure, dict):
        return log_failure.get("platform")
    return None


def _needs_root(ctx: Context, problem: Optional[str]) -> bool:
    return problem == "permission denied" and ctx.host.euid != 0


# --- 1. Is the SSM Agent installed, and how? ----------------------------------------------------


def _deb_version(ctx: Context) -> Tuple[Optional[bool], Optional[str]]:
    read = ctx.host.fs.read("/var/lib/dpkg/status", max_bytes=32 * 1024 * 1024)
    if not read.ok or read.text is None:
        return None, None
    pkg = parse_dpkg_status_file(read.text, PACKAGE)
    if pkg is None:
        return False, None
    return pkg.installed, pkg.version


def _rpm_version(ctx: Context) -> Tuple[Optional[bool], Optional[str]]:
    if not any(ctx.host.fs.is_dir(p) for p in RPM_DBS):
        return False, None
    res = ctx.host.run.run(
        ["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", PACKAGE],
        timeout=ctx.timeout(timeouts.COMMAND),
    )
    if res.problem:  # no rpm binary, timed out, or --root: the rpm DB is not read
        return None, None
    if res.returncode == 0 and res.stdout.strip():
        return True, res.stdout.strip().splitlines()[0]
    return False, None


def _snap_version(ctx: Context) -> Tuple[Optional[bool], Optional[str]]:
    if not ctx.host.fs.exists("/snap/amazon-ssm-agent"):
        return False, None
    text = ctx.host.fs.read_text(SNAP_YAML, max_bytes=64 * 1024)
    version = parse_snap_yaml_version(text) if text else None
    if version is None and ctx.host.live:
        res = ctx.host.run.run(
            ["snap", "list", PACKAGE], timeout=ctx.timeout(timeouts.COMMAND)
        )
        if res.ok:
            version = parse_snap_list(res.stdout, PACKAGE)
    return True, version


def _unit_file(ctx: Context, unit: str) -> Optional[str]:
    for d in UNIT_DIRS:
        if ctx.host.fs.exists(f"{d}/{unit}"):
            return f"{d}/{unit}"
    return None


@check("ssm.agent_installed", title="SSM Agent (amazon-ssm-agent) is installed", category="ssm")
def agent_installed(ctx: Context) -> Outcome:
    """Finds amazon-ssm-agent as a deb (/var/lib/dpkg/status), an rpm (rpm -q, live), Ubuntu's
    snap (/snap/amazon-ssm-agent), or a bare binary and unit file; reports version and unit."""
    snap, snap_ver = _snap_version(ctx)
    if snap:
        ver = f" {snap_ver}" if snap_ver else ""
        return ok(f"amazon-ssm-agent{ver} installed as a snap", installed=True, method="snap",
                  version=snap_ver, unit=SNAP_UNIT)
    for method, probe in (("deb", _deb_version), ("rpm", _rpm_version)):
        found, version = probe(ctx)
        if found:
            return ok(f"amazon-ssm-agent {version or '(version unknown)'} installed ({method})",
                      installed=True, method=method, version=version, unit=UNIT)
    binary = ctx.host.fs.exists("/usr/bin/amazon-ssm-agent")
    unit_file = _unit_file(ctx, UNIT)
    if binary or unit_file:
        where = unit_file or "/usr/bin/amazon-ssm-agent"
        return ok(f"amazon-ssm-agent present ({where}); package database not readable here",
                  installed=True, method="files", version=None, unit=UNIT)
    return warn("amazon-ssm-agent is not installed: Systems Manager cannot manage this instance",
                installed=False, method=None, version=None, unit=None)


# --- 2. Is it running? --------------------------------------------------------------------------


@check("ssm.agent_running", title="SSM Agent service is running", category="ssm",
       after=("ssm.agent_installed",), needs=("live",))
def agent_running(ctx: Context) -> Outcome:
    """Reads `systemctl show <unit> -p LoadState,ActiveState,SubState,...` for
    amazon-ssm-agent.service, or snap.amazon-ssm-agent.amazon-ssm-agent.service for the snap."""
    if ctx.fact("ssm.agent_installed", "installed") is False:
        return not_applicable("amazon-ssm-agent is not installed")
    unit = str(ctx.fact("ssm.agent_installed", "unit") or UNIT)
    res = ctx.host.run.run(
        ["systemctl", "show", unit, "-p", SYSTEMCTL_PROPS], timeout=ctx.timeout(timeouts.COMMAND)
    )
    if res.problem == "not found":
        return skip(SkipReason.NOT_APPLICABLE, "no systemctl on this host (not systemd)")
    if res.problem:
        return warn(f"could not ask systemd about {unit}: {res.problem}", unit=unit, running=None)
    props = parse_properties(res.stdout)
    active, sub = props.get("ActiveState", "?"), props.get("SubState", "?")
    data: Dict[str, JSONValue] = {
        "unit": unit, "load_state": props.get("LoadState"), "active_state": active,
        "sub_state": sub, "unit_file_state": props.get("UnitFileState"),
        "result": props.get("Result"), "n_restarts": props.get("NRestarts"),
    }
    if props.get("LoadState") == "not-found":
        return outcome(Status.FAIL, f"{unit} is not a known unit", data, running=False)
    if active == "active":
        return outcome(Status.OK, f"{unit} is active ({sub})", data, running=True)
    line = f"{unit}: ActiveState={active} SubState={sub} Result={props.get('Result', '?')}"
    return outcome(Status.FAIL, f"{unit} is {active} ({sub})", data, (line,), running=False)


# --- 3. Registration: EC2 instance or hybrid node? ----------------------------------------------


def _vault_names(ctx: Context) -> List[str]:
    # Names only: the files hold the registration's private key and must never be read.
    return ctx.host.fs.listdir(f"{SSM_ROOT}/Vault/Store") or []


def _hybrid_id(ctx: Context) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """(managed instance id, region, problem) from the registration file."""
    read = ctx.host.fs.read(f"{SSM_ROOT}/registration", max_bytes=64 * 1024)
    if read.problem == "missing":
        return None, None, None
    if not read.ok or read.text is None:
        return None, None, read.problem
    try:
        reg = parse_registration(read.text)
    except StateParseError as exc:
        return None, None, f"registration file unreadable: {exc}"
    return reg.managed_instance_id, reg.region, None


@check("ssm.registration", title="SSM Agent is registered (EC2 instance or hybrid node)",
       category="ssm", after=("ssm.agent_installed", *_registered("imds.identity")),
       needs=("root-user",))
def registration(ctx: Context) -> Outcome:
    """Lists /var/lib/amazon/ssm: an i-... directory means the agent works as this EC2
    instance; mi-..., the registration file or Vault/Store/RegistrationKey mean a hybrid
    activation, which GuardDuty's EC2 coverage cannot use."""
    names = ctx.host.fs.listdir(SSM_ROOT)
    if names is None:
        problem = ctx.host.fs.listdir_problem(SSM_ROOT)
        if _needs_root(ctx, problem):
            return skip(SkipReason.NEEDS_ROOT, f"{SSM_ROOT} is readable by root only")
        if ctx.fact("ssm.agent_installed", "installed") is False:
            return not_applicable("amazon-ssm-agent is not installed")
        return warn(f"{SSM_ROOT} {problem or 'unreadable'}: the SSM Agent has never run here",
                    registered=False, kind=None, managed_instance_id=None)
    dirs = instance_dirs(names)
    hybrid_id, hybrid_region, reg_problem = _hybrid_id(ctx)
    vault = _vault_names(ctx)
    imds_id = ctx.fact("imds.identity", "instance_id")
    ec2_dirs = [d for d in dirs if d.startswith("i-")]
    mi_dirs = [d for d in dirs if d.startswith("mi-")]
    data: Dict[str, JSONValue] = {
        "instance_dirs": list(dirs), "vault_entries": list(vault),
        "hybrid_region": hybrid_region, "imds_instance_id": imds_id,
    }
    evidence = tuple(f"{SSM_ROOT}/{d}/" for d in dirs)
    if hybrid_id or mi_dirs or "RegistrationKey" in vault:
        mid = hybrid_id or (mi_dirs[0] if mi_dirs else None)
        summary = f"registered as a hybrid node ({mid or 'mi-?'})"
        if imds_id or ec2_dirs:
            summary += " although this is an EC2 instance"
            return outcome(Status.WARN, summary, data, evidence, registered=True,
                            kind="hybrid", managed_instance_id=mid)
        return outcome(Status.OK, summary, data, evidence, registered=True, kind="hybrid",
                        managed_instance_id=mid)
    if ec2_dirs:
        mine = imds_id if isinstance(imds_id, str) and imds_id in ec2_dirs else ec2_dirs[-1]
        summary = f"works as EC2 instance {mine}"
        if isinstance(imds_id, str) and imds_id not in ec2_dirs:
            summary += f" (state of another instance, not of {imds_id}: a copied image?)"
            return outcome(Status.WARN, summary, data, evidence, registered=None, kind="ec2",
                            managed_instance_id=mine)
        return outcome(Status.OK, summary, data, evidence, registered=True, kind="ec2",
                        managed_instance_id=mine)
    why = f" ({reg_problem})" if reg_problem else ""
    summary = f"no instance directory under {SSM_ROOT}: the SSM Agent has not registered{why}"
    return outcome(Status.WARN, summary, data, registered=False, kind=None,
                    managed_instance_id=None)


# --- 4. Its logs --------------------------------------------------------------------------------


def _signatures() -> Tuple[List[Signature], Dict[str, Mapping[str, Any]]]:
    raw = load("ssm_signatures.json")["signatures"]
    sigs = compile_signatures([(s["id"], s["pattern"], s["cause"], s["levels"]) for s in raw])
    return sigs, {s["id"]: s for s in raw}


def _log_sources(
    ctx: Context, since: datetime
) -> Tuple[List[List[str]], List[Dict[str, JSONValue]]]:
    """The lines of each source (files, then journal) and what happened reading each."""
    texts: List[List[str]] = []
    report: List[Dict[str, JSONValue]] = []
    for path in LOG_FILES:
        read = ctx.host.fs.read_tail(path, LOG_TAIL_BYTES)
        if not read.ok or read.text is None:
            report.append({"source": path, "problem": read.problem})
            continue
        lines = read.text.replace("\x00", "").splitlines()
        texts.append(lines)
        report.append({"source": path, "lines": len(lines), "truncated": read.truncated,
                       "binary": read.binary})
    try:
        entries = ctx.host.journal.read(
            units=[UNIT, SNAP_UNIT], since=since, kernel=False,
            timeout=ctx.timeout(timeouts.JOURNAL), max_entries=JOURNAL_MAX_ENTRIES,
        )
    except JournalUnavailable as exc:
        report.append({"source": "journal", "problem": str(exc)})
    else:
        texts.append([e.message for e in entries])
        report.append({"source": "journal", "lines": len(entries)})
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


def _hit_record(
    entries: Sequence[SsmLogEntry], sig: Signature, meta: Mapping[str, Any]
) -> Dict[str, JSONValue]:
    last = max(entries, key=lambda e: e.timestamp or datetime.min.replace(tzinfo=timezone.utc))
    rec: Dict[str, JSONValue] = {
        "count": len(entries), "last_at": _iso(last.timestamp), "cause": meta["cause"],
        "health_ping": bool(meta.get("health_ping")), "line": _excerpt(last.line + (
            last.message[len(last.message.split(" | ")[0]):] if " | " in last.message else "")),
    }
    m = sig.pattern.search(last.message)
    if m:
        rec.update({k: redact(v) for k, v in m.groupdict().items() if v})
    return rec


def _in_window(e: SsmLogEntry, since: datetime) -> bool:
    return e.timestamp is None or e.timestamp >= since


@check("ssm.agent_log", title="SSM Agent logs show no health-ping failure", category="ssm",
       after=("ssm.agent_installed",), needs=("root-user",))
def agent_log(ctx: Context) -> Outcome:
    """Reads the last megabytes of /var/log/amazon/ssm/amazon-ssm-agent.log and errors.log and
    the unit's journal; matches knowledge/ssm_signatures.json (health ping denied, no
    credentials, endpoint unreachable, clock skew, ...) within the --since window."""
    now = ctx.host.clock.now()
    since = now - ctx.options.since
    texts, sources = _log_sources(ctx, since)
    if not texts:
        return _no_logs(ctx, sources)
    entries = _unique_entries(texts)
    sigs, meta = _signatures()
    hits: Dict[str, List[SsmLogEntry]] = {}
    older: Dict[str, int] = {}
    for e in entries:
        for sig in match_signatures(e, sigs):
            if _in_window(e, since):
                hits.setdefault(sig.id, []).append(e)
            else:
                older[sig.id] = older.get(sig.id, 0) + 1
    found = {sid: _hit_record(es, next(s for s in sigs if s.id == sid), meta[sid])
             for sid, es in hits.items()}
    stamps = [e.timestamp for e in entries if e.timestamp]
    errors = [e.timestamp for e in entries if e.timestamp and e.level in ("ERROR", "CRITICAL")]
    ping = sorted({str(meta[s]["cause"]) for s in found if meta[s].get("health_ping")})
    data: Dict[str, JSONValue] = {
        "sources": sources, "entries": len(entries), "signatures": found,
        "older_signatures": older, "last_entry_at": _iso(max(stamps) if stamps else None),
        "last_error_at": _iso(max(errors) if errors else None),
        "health_ping_failing": bool(ping), "causes": ping,
        "guardduty_lines": len(hits.get("guardduty-trace", [])) + older.get("guardduty-trace", 0),
        "since": _iso(since), "timestamps_assumed_utc": True,
    }
    evidence = tuple(str(r["line"]) for sid, r in found.items() if sid != "guardduty-trace")
    return _log_outcome(found, ping, evidence[:MAX_EVIDENCE], data)


def _no_logs(ctx: Context, sources: List[Dict[str, JSONValue]]) -> Outcome:
    problems = [s.get("problem") for s in sources if s["source"] != "journal"]
    if any(_needs_root(ctx, str(p)) for p in problems):
        return skip(SkipReason.NEEDS_ROOT, "the SSM Agent's logs are readable by root only",
                    sources=sources)
    if ctx.fact("ssm.agent_installed", "installed") is False:
        return not_applicable("amazon-ssm-agent is not installed", sources=sources)
    return warn("no SSM Agent log found (files and journal)", sources=sources,
                health_ping_failing=None, signatures={}, causes=[], guardduty_lines=0)


def _log_outcome(found: Mapping[str, Mapping[str, JSONValue]], ping: List[str],
                 evidence: Tuple[str, ...], data: Dict[str, JSONValue]) -> Outcome:
    if ping:
        worst = next((s for s in _PING_ORDER if s in found), next(iter(found)))
        rec = found[worst]
        return outcome(Status.FAIL, f"health ping failing ({', '.join(ping)}): "
                        f"{rec['count']} time(s), last {rec['last_at'] or 'at an unknown time'}",
                        data, evidence)
    other = [s for s in found if s != "guardduty-trace"]
    if other:
        return outcome(Status.WARN, f"SSM Agent logged: {', '.join(sorted(other))}", data,
                        evidence)
    last = data.get("last_entry_at") or "never"
    return outcome(Status.OK, f"no known SSM Agent error since {data['since']} (last entry "
                    f"{last})", data)


# The most specific cause first: a denied ping also logs the generic "Health ping failed".
_PING_ORDER = ("health-ping-access-denied", "no-instance-role", "no-identity", "clock-skew",
               "endpoint-dns-failed", "endpoint-unreachable", "health-ping-failed")


# --- 5. GuardDuty's traces on the SSM side -------------------------------------------------------


def _package_state(ctx: Context) -> Dict[str, JSONValue]:
    base = f"{SSM_ROOT}/packages/{GD_PACKAGE}"
    if not ctx.host.fs.is_dir(base):
        return {"present": False}
    info: Dict[str, JSONValue] = {"present": True, "path": base,
                                  "versions": [n for n in (ctx.host.fs.listdir(base) or [])
                                               if n != "installstate"]}
    read = ctx.host.fs.read(f"{base}/installstate", max_bytes=STATE_FILE_MAX_BYTES)
    if not read.ok or read.text is None:
        info["problem"] = f"installstate {read.problem or 'unreadable'}"
        return info
    try:
        st = parse_installstate(read.text)
    except StateParseError as exc:
        info["problem"] = f"installstate corrupt ({exc})"
        info["raw"] = _excerpt(read.text, 120)
        return info
    info.update(version=st.version, state=st.state, state_code=st.state_code, time=st.time,
                retry_count=st.retry_count, last_installed_version=st.last_installed_version)
    return info


def _doc_run_record(path: str, run: DocumentRun) -> Dict[str, JSONValue]:
    return {"source": path, "kind": "document-state", "document": run.document_name,
            "association_id": run.association_id, "status": run.status, "when": run.created,
            "failed": run.failed, "output": _excerpt(run.output)}


def _state_runs(ctx: Context, inst: str, corrupt: List[str]) -> List[Dict[str, JSONValue]]:
    runs: List[Dict[str, JSONValue]] = []
    for sub in ("pending", "current", "corrupt"):
        folder = f"{SSM_ROOT}/{inst}/document/state/{sub}"
        for path in ctx.host.fs.glob(folder, "*")[:MAX_STATE_FILES]:
            read = ctx.host.fs.read(path, max_bytes=STATE_FILE_MAX_BYTES)
            if not read.ok or read.text is None:
                continue
            if GD_DOCUMENT not in read.text and GD_PACKAGE not in read.text:
                continue
            try:
                runs.append(_doc_run_record(path, parse_document_state(read.text)))
            except StateParseError as exc:
                corrupt.append(f"{path}: {exc}")
    return runs


def _association_docs(ctx: Context, inst: str) -> List[Dict[str, JSONValue]]:
    """GuardDuty's document as the agent stored it for an association (it may not have run)."""
    found: List[Dict[str, JSONValue]] = []
    for folder in (f"{SSM_ROOT}/{inst}/document/association", f"{SSM_ROOT}/{inst}/association"):
        for path in _walk_files(ctx, folder, depth=2):
            read = ctx.host.fs.read(path, max_bytes=STATE_FILE_MAX_BYTES)
            if read.ok and read.text is not None and GD_DOCUMENT in read.text:
                st = ctx.host.fs.stat(path)
                when = datetime.fromtimestamp(st.st_mtime, timezone.utc) if st else None
                found.append({"source": path, "kind": "association-document",
                              "document": GD_DOCUMENT, "status": "associated", "failed": False,
                              "when": _iso(when), "output": ""})
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


def _orchestration_runs(
    ctx: Context, inst: str, sigs: Sequence[Signature]
) -> List[Dict[str, JSONValue]]:
    top = f"{SSM_ROOT}/{inst}/document/orchestration"
    names = ctx.host.fs.listdir(top) or []
    dated = []
    for name in names:
        st = ctx.host.fs.stat(f"{top}/{name}")
        dated.append((st.st_mtime if st else 0.0, name))
    runs: List[Dict[str, JSONValue]] = []
    for mtime, name in sorted(dated, reverse=True)[:MAX_ORCHESTRATION_RUNS]:
        run = _orchestration_run(ctx, f"{top}/{name}", mtime, sigs)
        if run is not None:
            runs.append(run)
    return runs


def _orchestration_run(ctx: Context, folder: str, mtime: float,
                       sigs: Sequence[Signature]) -> Optional[Dict[str, JSONValue]]:
    texts: List[Tuple[str, str]] = []
    for path in _walk_files(ctx, folder):
        read = ctx.host.fs.read_tail(path, OUTPUT_TAIL_BYTES)
        if read.ok and read.text is not None:
            texts.append((path, read.text.replace("\x00", "")))
    blob = "\n".join(t for _, t in texts)
    if GD_DOCUMENT not in blob and GD_PACKAGE not in blob and "AmazonGuardDuty" not in folder:
        return None
    failure = next((m for m in (s.pattern.search(blob) for s in sigs
                                if s.id == "distributor-no-manifest") if m), None)
    stderr = "\n".join(t for p, t in texts if p.endswith("stderr") and t.strip())
    failed = failure is not None or bool(re.search(r"(?i)\b(fail|error)", stderr))
    shown = failure.group(0) if failure else (stderr or blob).strip().splitlines()[-1:] or [""]
    return {"source": folder, "kind": "orchestration", "document": GD_DOCUMENT,
            "status": "Failed" if failed else "output", "failed": failed,
            "when": _iso(datetime.fromtimestamp(mtime, timezone.utc)) if mtime else None,
            "output": _excerpt(shown if isinstance(shown, str) else shown[0]),
            "platform": redact(failure.group("platform")) if failure else None}


def _sort_key(run: Mapping[str, JSONValue]) -> str:
    when = run.get("when")
    return str(when).replace("T", " ") if when else ""


@check("ssm.guardduty_traces", title="GuardDuty's SSM plugin ran and installed the agent",
       category="ssm", after=("ssm.registration", "ssm.agent_log"), needs=("root-user",))
def guardduty_traces(ctx: Context) -> Outcome:
    """Looks for the Distributor package AmazonGuardDuty-RuntimeMonitoringSsmPlugin
    (packages/<name>/installstate), runs of AmazonGuardDuty-ConfigureRuntimeMonitoringSsmPlugin
    in document/state and document/orchestration, and AmazonGuardDuty lines in the SSM log."""
    log_lines = ctx.fact("ssm.agent_log", "guardduty_lines", 0) or 0
    names = ctx.host.fs.listdir(SSM_ROOT)
    if names is None:
        return _traces_unreadable(ctx, int(str(log_lines)))
    sigs, _ = _signatures()
    corrupt: List[str] = []
    runs: List[Dict[str, JSONValue]] = []
    associations: List[Dict[str, JSONValue]] = []
    for inst in instance_dirs(names):
        runs.extend(_state_runs(ctx, inst, corrupt))
        runs.extend(_orchestration_runs(ctx, inst, sigs))
        associations.extend(_association_docs(ctx, inst))
    runs.sort(key=_sort_key, reverse=True)
    package = _package_state(ctx)
    traces = _traces_outcome(ctx, package, runs, corrupt, int(str(log_lines)))
    if not associations:
        return traces
    data = {**traces.data, "associations": associations[:5], "has_traces": True}  # type: ignore[dict-item]
    summary = traces.summary
    if not (runs or package.get("present") or log_lines):
        summary = "GuardDuty's association document is here but no run of it was found"
    return Outcome(traces.status, summary, data, traces.evidence)


def _traces_unreadable(ctx: Context, log_lines: int) -> Outcome:
    problem = ctx.host.fs.listdir_problem(SSM_ROOT)
    data: Dict[str, JSONValue] = {"has_traces": True if log_lines else None,
                                  "log_lines": log_lines, "state_readable": False}
    if _needs_root(ctx, problem):
        if log_lines:
            return outcome(Status.WARN, f"{SSM_ROOT} needs root; the SSM log names GuardDuty "
                            f"{log_lines} time(s)", data)
        return Outcome(Status.SKIP, f"{SSM_ROOT} is readable by root only", data,
                       skip_reason=SkipReason.NEEDS_ROOT)
    data["has_traces"] = bool(log_lines)
    return outcome(Status.OK, f"{SSM_ROOT} {problem or 'unreadable'}: no GuardDuty trace on the "
                    "SSM side", data)


def _traces_outcome(ctx: Context, package: Dict[str, JSONValue], runs: List[Dict[str, JSONValue]],
                    corrupt: List[str], log_lines: int) -> Outcome:
    last = runs[0] if runs else None
    log_sigs = ctx.fact("ssm.agent_log", "signatures", {}) or {}
    log_failure = log_sigs.get("distributor-no-manifest") if isinstance(log_sigs, dict) else None
    data: Dict[str, JSONValue] = {
        "has_traces": bool(package.get("present") or runs or log_lines),
        "package": package, "runs": runs[:10], "run_count": len(runs), "corrupt": corrupt,
        "log_lines": log_lines, "state_readable": True,
        "last_run_at": last.get("when") if last else None,
        "last_run_status": last.get("status") if last else None,
        "last_run_failed": bool(last.get("failed")) if last else None,
        "platform_failure": _platform_failure(last, log_failure),
    }
    evidence = [f"{r['source']}: {r['status']} {r['output']}".strip() for r in runs[:3]]
    if package.get("present"):
        evidence.insert(0, f"{package['path']}/installstate: state {package.get('state', '?')}"
                        f" version {package.get('version') or '?'}"
                        f" ({package.get('problem') or package.get('time') or ''})")
    if isinstance(log_failure, dict):
        evidence.append(str(log_failure.get("line", "")))
    ev = tuple(redact(e) for e in evidence if e)[:MAX_EVIDENCE]
    if package.get("state") == "Failed" or (last and last.get("failed")) or log_failure:
        what = "Distributor install Failed" if package.get("state") == "Failed" else (
            f"last run failed ({last.get('when') or 'time unknown'})" if last and last.get("failed")
            else "the SSM log shows a platform mismatch")
        return outcome(Status.FAIL, f"GuardDuty's SSM plugin: {what}", data, ev)
    if corrupt or package.get("problem"):
        extra = f", {package['problem']}" if package.get("problem") else ""
        return outcome(Status.WARN, f"GuardDuty's SSM state is partly unreadable "
                        f"({len(corrupt)} corrupt file(s){extra})", data,
                        ev + tuple(redact(c) for c in corrupt[:3]))
    if package.get("present"):
        version = f" {package['version']}" if package.get("version") else ""
        return outcome(Status.OK, f"{GD_PACKAGE}{version} {package.get('state')}", data, ev)
    if runs or log_lines:
        return outcome(Status.OK, f"GuardDuty's SSM document ran here ({len(runs)} run(s), "
                        f"{log_lines} log line(s))", data, ev)
    return outcome(Status.OK, "no trace of GuardDuty's SSM plugin on this host", data)


# --- 6. Management type as the host sees it -----------------------------------------------------


def _gd_agent_from_files(ctx: Context) -> Optional[bool]:
    """Fallback when agent.package did not run: the deb record or the unit file."""
    read = ctx.host.fs.read("/var/lib/dpkg/status", max_bytes=32 * 1024 * 1024)
    if read.ok and read.text is not None:
        pkg = parse_dpkg_status_file(read.text, GD_AGENT_PACKAGE)
        if pkg is not None:
            return pkg.installed
    if _unit_file(ctx, GD_AGENT_UNIT):
        return True
    if ctx.host.fs.is_dir("/opt/aws/amazon-guardduty-agent"):
        return True
    return False if read.ok else None


@check("ssm.management_type", title="GuardDuty agent management type as the host sees it",
       category="ssm", after=("ssm.guardduty_traces", *_registered("agent.package")))
def management_type(ctx: Context) -> Outcome:
    """automated: GuardDuty's SSM plugin left traces; manual: the agent package is installed
    without them; none: neither; unknown: the SSM state could not be read."""
    traces = ctx.fact("ssm.guardduty_traces", "has_traces")
    res = ctx.result("agent.package")
    if res is not None and isinstance(res.data.get("installed"), bool):
        gd_installed = res.data.get("installed")
        source = "agent.package"
    else:
        gd_installed = _gd_agent_from_files(ctx)
        source = "files"
    data: Dict[str, JSONValue] = {"gd_agent_installed": gd_installed, "agent_source": source,
                                  "ssm_traces": traces}
    if traces is True:
        return outcome(Status.OK, "automated: GuardDuty's SSM plugin has run here", data,
                        management_type="automated")
    if traces is False and gd_installed is True:
        return outcome(Status.OK, "manual: the GuardDuty agent is installed without SSM traces",
                        data, management_type="manual")
    if traces is False and gd_installed is False:
        return outcome(Status.OK, "none: no GuardDuty agent and no GuardDuty SSM trace", data,
                        management_type="none")
    return outcome(Status.OK, "unknown: the SSM state could not be read (run as root)", data,
                    management_type="unknown")


CHECKS: Tuple[Check, ...] = (
    agent_installed,
    agent_running,
    registration,
    agent_log,
    guardduty_traces,
    management_type,
)
