"""Diagnosis rules over the agent checks.

The agent's own state explains rows 2 ("No Agent Reporting" with the empty message: installed
but not running or not sending) and 3 ("Agent disconnected": it ran and stopped, or it keeps
crashing). Log and journal signatures name the cause behind a crash loop (DNS, TCP 443, TLS,
authorization, kernel prerequisites); the findings' ranks list those causes before the symptom.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

from gd_doctor.diagnosis.base import Results, Rule, RuleOutput, finding, rule
from gd_doctor.knowledge import load
from gd_doctor.model import Finding

MiB = 1024 * 1024
GiB = 1024 * MiB
MEMLOCK_MIN = 32 * MiB
LOG_CHECKS = ("agent.journal", "agent.logs")


def _human(n: Any) -> str:
    if not isinstance(n, int):
        return "no limit"
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB}G"
    return f"{n / MiB:.0f}M"


def _signature_hits(r: Results) -> List[Dict[str, Any]]:
    """Signature matches of the journal and the log files, one entry per signature id."""
    merged: Dict[str, Dict[str, Any]] = {}
    for check_id in LOG_CHECKS:
        hits = r.data(check_id, "signatures") or []
        for hit in hits if isinstance(hits, list) else []:
            if not isinstance(hit, dict):
                continue
            prev = merged.get(str(hit.get("id")))
            if prev is None:
                merged[str(hit.get("id"))] = dict(hit)
            else:
                prev["count"] = int(prev.get("count") or 0) + int(hit.get("count") or 0)
    return list(merged.values())


def _log_evidence(r: Results) -> Tuple[str, ...]:
    return tuple(
        e for c in LOG_CHECKS for e in r.evidence(c) if not e.startswith(("/", "rpm"))
    )


def _unit_state(r: Results) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    load = r.data("agent.unit", "load_state")
    active = r.data("agent.unit", "active_state")
    sub = r.data("agent.unit", "sub_state")
    return (
        load if isinstance(load, str) else None,
        active if isinstance(active, str) else None,
        sub if isinstance(sub, str) else None,
    )


def _in_crash_loop(r: Results) -> bool:
    _, active, sub = _unit_state(r)
    if active == "activating" and sub == "auto-restart":
        return True
    restarts = r.data("agent.unit", "n_restarts")
    if isinstance(restarts, int) and restarts >= 3 and active != "active":
        return True
    failed = r.data("agent.journal", "failed_exits")
    return (isinstance(failed, int) and failed >= 3) or bool(
        r.data("agent.journal", "start_limit_hit")
    )


@rule("agent.not_installed")
def not_installed(r: Results) -> RuleOutput:
    """No package and no unit: GuardDuty shows 'No Agent Reporting' with no message."""
    if r.data("agent.package", "installed") is not False:
        return None
    load, _, _ = _unit_state(r)
    if load not in (None, "not-found"):
        return None  # a unit exists: installed some other way (tarball, image)
    return finding("agent.not-installed", evidence=r.evidence("agent.package"),
                   checks=["agent.package", "agent.unit"])  # fmt: skip


@rule("agent.package_broken")
def package_broken(r: Results) -> RuleOutput:
    """dpkg left the package half-installed or half-configured (iF, iU, iH, reinstreq)."""
    if r.data("agent.package", "broken") is not True:
        return None
    state = r.data("agent.package", "dpkg_status") or r.data("agent.package", "state")
    return finding("agent.package-broken", evidence=r.evidence("agent.package"),
                   checks=["agent.package"], state=state)  # fmt: skip


@rule("agent.package_files_changed")
def package_files_changed(r: Results) -> RuleOutput:
    """rpm -V reports missing or modified binaries of the package."""
    problems = r.data("agent.package", "verify_problems") or []
    if not isinstance(problems, list) or not problems:
        return None
    return finding("agent.package-files-changed", evidence=r.evidence("agent.package"),
                   checks=["agent.package"], count=len(problems))  # fmt: skip


@rule("agent.unit_missing")
def unit_missing(r: Results) -> RuleOutput:
    """The package is installed but systemd knows no unit of that name."""
    load, _, _ = _unit_state(r)
    if load != "not-found" or r.data("agent.package", "installed") is not True:
        return None
    return finding("agent.unit-missing", evidence=r.evidence("agent.unit"),
                   checks=["agent.package", "agent.unit", "agent.unit_file"])  # fmt: skip


@rule("agent.unit_masked")
def unit_masked(r: Results) -> RuleOutput:
    """The unit is masked (live state, or a /dev/null link under --root)."""
    load, _, _ = _unit_state(r)
    if load != "masked" and r.data("agent.unit_file", "masked") is not True:
        return None
    return finding("agent.unit-masked", evidence=r.evidence("agent.unit"),
                   checks=["agent.unit", "agent.unit_file"])  # fmt: skip


def _oom_kills(r: Results) -> int:
    """OOM kills of the agent in the window: the journal and the kernel ring buffer see the
    same kills when both keep them, so the larger count, not the sum."""
    counts = [r.data(cid, "oom_kills") for cid in ("agent.journal", "agent.kernel_log")]
    return max((c for c in counts if isinstance(c, int)), default=0)


@rule("agent.oom_killed")
def oom_killed(r: Results) -> RuleOutput:
    """The agent was killed by its memory cgroup (journal, or Result=oom-kill)."""
    n = _oom_kills(r)
    if r.data("agent.unit", "result") == "oom-kill":
        n = max(n, 1)
    if n == 0:
        return None
    limit = r.data("agent.unit", "memory_cap") or r.data("agent.memory_limit", "limit")
    documented = r.data("agent.memory_limit", "documented")
    base = limit if isinstance(limit, int) else 128 * MiB
    suggested = max(base * 2, documented if isinstance(documented, int) else 0)
    evidence = [e for e in r.evidence("agent.journal") if "oom" in e.lower() or "memory" in e]
    evidence += [e for e in r.evidence("agent.kernel_log")
                 if e.split(" ", 1)[-1] not in " ".join(evidence)]  # the journal's twin lines
    return finding("agent.oom-killed", evidence=evidence,
                   checks=["agent.journal", "agent.kernel_log", "agent.unit",
                           "agent.memory_limit"], count=n,
                   limit=_human(limit), suggested=_human(suggested))  # fmt: skip


def _likely_cause(hits: List[Dict[str, Any]]) -> str:
    if not hits:
        return ""
    top = max(hits, key=lambda h: int(h.get("count") or 0))
    return f"; its logs point at: {str(top.get('show', '')).lower()}"


@rule("agent.crash_loop")
def crash_loop(r: Results) -> RuleOutput:
    """The agent exits and systemd restarts it, over and over ('Agent disconnected')."""
    if not _in_crash_loop(r):
        return None
    if _oom_kills(r):
        return None  # the OOM finding says it better
    restarts = r.data("agent.unit", "n_restarts")
    if not isinstance(restarts, int):
        restarts = r.data("agent.journal", "restarts_scheduled")
    exits = r.data("agent.journal", "failed_exits")
    every = r.data("agent.journal", "restart_interval_s")
    interval = f", about every {every:.0f} s" if isinstance(every, (int, float)) else ""
    evidence = list(r.evidence("agent.unit")) + list(_log_evidence(r))
    return finding("agent.crash-loop", evidence=evidence,
                   checks=["agent.unit", "agent.journal", "agent.logs"],
                   restarts=restarts if restarts is not None else "?",
                   exits=exits if exits is not None else "?", interval=interval,
                   cause=_likely_cause(_signature_hits(r)))  # fmt: skip


@rule("agent.stopped")
def stopped(r: Results) -> RuleOutput:
    """Installed, loaded, not running and not restarting: 'Agent disconnected' when it ran in
    the window, else 'No Agent Reporting'."""
    load, active, sub = _unit_state(r)
    if load != "loaded" or active not in ("inactive", "failed", "deactivating"):
        return None
    if _in_crash_loop(r):
        return None
    state = f"{active} ({sub}), result {r.data('agent.unit', 'result')}"
    ran = r.data("agent.journal", "starts")
    evidence = r.evidence("agent.unit")
    if isinstance(ran, int) and ran > 0:
        return finding("agent.disconnected", evidence=evidence,
                       checks=["agent.unit", "agent.journal"], state=state)  # fmt: skip
    return finding("agent.not-running", evidence=evidence, checks=["agent.unit", "agent.process"],
                   state=state)  # fmt: skip


@rule("agent.unit_disabled")
def unit_disabled(r: Results) -> RuleOutput:
    """The unit is not enabled: it would not come back after a reboot."""
    if r.data("agent.unit", "unit_file_state") != "disabled":
        return None
    return finding("agent.unit-disabled", checks=["agent.unit"])


@rule("agent.log_signatures")
def log_signatures(r: Results) -> RuleOutput:
    """Known error lines in the journal or log files, one finding per cause."""
    out: List[Finding] = []
    lines = _log_evidence(r)
    for hit in _signature_hits(r):
        evidence = [e for e in lines if _evidence_of(e, hit)] or list(lines[:3])
        out.append(finding(str(hit.get("finding")), evidence=evidence, checks=list(LOG_CHECKS),
                           show=hit.get("show", "")))  # fmt: skip
    return out


def _evidence_of(line: str, hit: Dict[str, Any]) -> bool:
    for sig in load("log_signatures.json")["signatures"]:
        if sig["id"] == hit.get("id"):
            return re.search(sig["pattern"], line, re.IGNORECASE) is not None
    return False


@rule("agent.memlock_low")
def memlock_low(r: Results) -> RuleOutput:
    """MEMLOCK of the agent's process below 32 MB on a 5.10-or-older kernel."""
    soft = r.data("agent.process", "memlock_soft", "missing")
    hard = r.data("agent.process", "memlock_hard", "missing")
    kernel = r.data("agent.version_kernel", "series")
    if not isinstance(kernel, str):
        return None
    try:
        major, minor = (int(x) for x in kernel.split(".")[:2])
    except ValueError:
        return None
    if (major, minor) > (5, 10):
        return None
    low = [v for v in (soft, hard) if isinstance(v, int) and v < MEMLOCK_MIN]
    if not low:
        return None
    return finding("agent.memlock-low", checks=["agent.process", "agent.unit"],
                   evidence=[f"Max locked memory: soft {soft} hard {hard} bytes",
                             *r.evidence("platform.memlock")],
                   memlock=_human(min(low)), kernel=kernel)  # fmt: skip


@rule("agent.memory_limit_low")
def memory_limit_low(r: Results) -> RuleOutput:
    """The unit's memory cap is below what AWS documents for the instance's memory."""
    if not r.warned("agent.memory_limit"):
        return None
    return finding("agent.memory-limit-low", checks=["agent.memory_limit"],
                   evidence=[r.summary("agent.memory_limit")],
                   limit=_human(r.data("agent.memory_limit", "limit")),
                   documented=_human(r.data("agent.memory_limit", "documented")))  # fmt: skip


@rule("agent.too_old_for_kernel")
def too_old_for_kernel(r: Results) -> RuleOutput:
    """The installed agent predates support for the running kernel series."""
    if not r.failed("agent.version_kernel"):
        return None
    d = {k: r.data("agent.version_kernel", k) for k in ("version", "kernel", "series", "needed")}
    return finding("agent.too-old-for-kernel", evidence=[r.summary("agent.version_kernel")],
                   checks=["agent.package", "agent.version_kernel"], **d)  # fmt: skip


@rule("agent.journal_unreadable")
def journal_unreadable(r: Results) -> RuleOutput:
    """The journal could not be read (permissions, format newer than libsystemd)."""
    reason = r.data("agent.journal", "unreadable")
    if not reason:
        return None
    return finding("agent.journal-unreadable", checks=["agent.journal"], reason=reason)


RULES: Tuple[Rule, ...] = (
    not_installed,
    package_broken,
    package_files_changed,
    unit_missing,
    unit_masked,
    oom_killed,
    crash_loop,
    stopped,
    unit_disabled,
    log_signatures,
    memlock_low,
    memory_limit_low,
    too_old_for_kernel,
    journal_unreadable,
)
