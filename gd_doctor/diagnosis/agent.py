"""Diagnosis rules over the agent checks.

The agent's own state explains rows 2 ("No Agent Reporting" with the empty message: installed
but not running or not sending) and 3 ("Agent disconnected": it ran and stopped, or it keeps
crashing). Log and journal signatures name the cause behind a crash loop (DNS, TCP 443, TLS,
authorization, kernel prerequisites); the findings' ranks list those causes before the symptom.

Every rule reads typed facts of :mod:`gd_doctor.facts.agent` and
:mod:`gd_doctor.facts.agent_logs`; an argument is None when its check did not run or could not
judge.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from gd_doctor.diagnosis.base import Rule, RuleOutput, finding, rule
from gd_doctor.facts.agent import (
    MemoryLimitFacts,
    PackageFacts,
    ProcessFacts,
    UnitFacts,
    UnitFileFacts,
    VersionKernelFacts,
)
from gd_doctor.facts.agent_logs import (
    JournalFacts,
    KernelLogFacts,
    LogFacts,
    SignatureHit,
    merge_hits,
)
from gd_doctor.facts.platform import BtfFacts, MemlockFacts
from gd_doctor.knowledge.agent_limits import limits
from gd_doctor.knowledge.agent_versions import version_key
from gd_doctor.model import Finding

MiB = 1024 * 1024
GiB = 1024 * MiB
LOG_FACTS = (JournalFacts, LogFacts)


def _human(n: Optional[int]) -> str:
    if n is None:
        return "no limit"
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB}G"
    return f"{n / MiB:.0f}M"


def _hits(journal: Optional[JournalFacts], logs: Optional[LogFacts]) -> Tuple[SignatureHit, ...]:
    """Signature matches of the journal and the log files, one per signature id."""
    return merge_hits(journal.signatures if journal else (), logs.signatures if logs else ())


def _hit_lines(hits: Sequence[SignatureHit]) -> List[str]:
    return [line for hit in hits for line in hit.lines]


def _in_crash_loop(unit: Optional[UnitFacts], journal: Optional[JournalFacts]) -> bool:
    if unit is not None:
        if unit.auto_restarting:
            return True
        if unit.n_restarts is not None and unit.n_restarts >= 3 and unit.active_state != "active":
            return True
    return journal is not None and journal.restart_loop


def _no_unit_file(unit_file: Optional[UnitFileFacts]) -> bool:
    """The unit file was looked for in every unit directory and is not there."""
    return unit_file is not None and unit_file.path is None and not unit_file.masked


@rule("agent.not_installed", reads=(PackageFacts, UnitFacts, UnitFileFacts))
def not_installed(
    pkg: Optional[PackageFacts], unit: Optional[UnitFacts], unit_file: Optional[UnitFileFacts]
) -> RuleOutput:
    """No package and no unit: GuardDuty shows 'No Agent Reporting' with no message. Also when
    no package database could be read but the unit file the package ships is nowhere."""
    if pkg is None or pkg.installed is True:
        return None
    if unit is not None and unit.load_state not in (None, "not-found"):
        return None  # a unit exists: installed some other way (tarball, image)
    if pkg.installed is None and not _no_unit_file(unit_file):
        return None  # the database could not be read and the files do not settle it
    return finding(
        "agent.not-installed",
        evidence_from=(PackageFacts, UnitFileFacts),
        # no agent process is the consequence of no agent
        checks=(PackageFacts, UnitFacts, UnitFileFacts, ProcessFacts),
    )


@rule("agent.package_broken", reads=(PackageFacts,))
def package_broken(pkg: Optional[PackageFacts]) -> RuleOutput:
    """dpkg left the package half-installed or half-configured (iF, iU, iH, reinstreq)."""
    if pkg is None or not pkg.broken:
        return None
    return finding(
        "agent.package-broken",
        evidence_from=(PackageFacts,),
        checks=(PackageFacts,),
        state=pkg.dpkg_status or pkg.state,
    )


@rule("agent.package_files_changed", reads=(PackageFacts,))
def package_files_changed(pkg: Optional[PackageFacts]) -> RuleOutput:
    """rpm -V reports missing or modified binaries of the package."""
    if pkg is None or not pkg.verify_problems:
        return None
    return finding(
        "agent.package-files-changed",
        evidence_from=(PackageFacts,),
        checks=(PackageFacts,),
        count=len(pkg.verify_problems),
    )


@rule("agent.unit_missing", reads=(PackageFacts, UnitFacts))
def unit_missing(pkg: Optional[PackageFacts], unit: Optional[UnitFacts]) -> RuleOutput:
    """The package is installed but systemd knows no unit of that name."""
    if unit is None or unit.load_state != "not-found" or pkg is None or pkg.installed is not True:
        return None
    return finding(
        "agent.unit-missing",
        evidence_from=(UnitFacts,),
        checks=(PackageFacts, UnitFacts, UnitFileFacts, ProcessFacts),
    )


@rule("agent.unit_masked", reads=(UnitFacts, UnitFileFacts))
def unit_masked(unit: Optional[UnitFacts], unit_file: Optional[UnitFileFacts]) -> RuleOutput:
    """The unit is masked (live state, or a /dev/null link under --root)."""
    if not ((unit and unit.load_state == "masked") or (unit_file and unit_file.masked)):
        return None
    return finding(
        "agent.unit-masked",
        evidence_from=(UnitFacts,),
        checks=(UnitFacts, UnitFileFacts, ProcessFacts),
    )


def _oom_kills(journal: Optional[JournalFacts], kernel: Optional[KernelLogFacts]) -> int:
    """OOM kills of the agent in the window: the journal and the kernel ring buffer see the
    same kills when both keep them, so the larger count, not the sum."""
    counts = [journal.oom_kills if journal else 0, (kernel.oom_kills or 0) if kernel else 0]
    return max(counts)


@rule("agent.oom_killed", reads=(UnitFacts, JournalFacts, KernelLogFacts, MemoryLimitFacts))
def oom_killed(
    unit: Optional[UnitFacts],
    journal: Optional[JournalFacts],
    kernel: Optional[KernelLogFacts],
    memory: Optional[MemoryLimitFacts],
) -> RuleOutput:
    """The agent was killed by its memory cgroup (journal, ring buffer, or Result=oom-kill)."""
    n = _oom_kills(journal, kernel)
    if unit is not None and unit.result == "oom-kill":
        n = max(n, 1)
    if n == 0:
        return None
    limit = (unit.memory_cap if unit else None) or (memory.limit if memory else None)
    documented = memory.documented if memory else None
    smallest_cap = limits().memory_caps[0].cap
    suggested = max((limit or smallest_cap) * 2, documented or 0)
    evidence = list(journal.oom_lines if journal else ())
    seen = " ".join(evidence)
    # the ring buffer's lines are often the journal's kernel lines again
    evidence += [e for e in (kernel.lines if kernel else ()) if e.split(" ", 1)[-1] not in seen]
    return finding(
        "agent.oom-killed",
        evidence=evidence,
        checks=(JournalFacts, KernelLogFacts, UnitFacts, MemoryLimitFacts, ProcessFacts),
        count=n,
        limit=_human(limit),
        suggested=_human(suggested),
    )


def _likely_cause(hits: Sequence[SignatureHit]) -> str:
    if not hits:
        return ""
    top = max(hits, key=lambda h: h.count)
    return f"; its logs point at: {top.show.lower()}"


@rule(
    "agent.crash_loop",
    reads=(UnitFacts, JournalFacts, KernelLogFacts, LogFacts),
)
def crash_loop(
    unit: Optional[UnitFacts],
    journal: Optional[JournalFacts],
    kernel: Optional[KernelLogFacts],
    logs: Optional[LogFacts],
) -> RuleOutput:
    """The agent exits and systemd restarts it, over and over ('Agent disconnected')."""
    if not _in_crash_loop(unit, journal):
        return None
    if _oom_kills(journal, kernel):
        return None  # the OOM finding says it better
    restarts = unit.n_restarts if unit else None
    if restarts is None and journal is not None:
        restarts = journal.restarts_scheduled
    exits = journal.failed_exits if journal and journal.readable else None
    every = journal.restart_interval_s if journal else None
    hits = _hits(journal, logs)
    return finding(
        "agent.crash-loop",
        evidence=_hit_lines(hits),
        evidence_from=(UnitFacts, JournalFacts),
        # between two starts no process runs: that is the loop, not another problem
        checks=(UnitFacts, JournalFacts, LogFacts, ProcessFacts),
        restarts=restarts if restarts is not None else "?",
        exits=exits if exits is not None else "?",
        interval=f", about every {every:.0f} s" if every is not None else "",
        cause=_likely_cause(hits),
    )


@rule("agent.stopped", reads=(UnitFacts, JournalFacts))
def stopped(unit: Optional[UnitFacts], journal: Optional[JournalFacts]) -> RuleOutput:
    """Installed, loaded, not running and not restarting: 'Agent disconnected' when it ran in
    the window, else 'No Agent Reporting'."""
    if unit is None or unit.load_state != "loaded":
        return None
    if unit.active_state not in ("inactive", "failed", "deactivating"):
        return None
    if _in_crash_loop(unit, journal):
        return None
    state = f"{unit.active_state} ({unit.sub_state}), result {unit.result}"
    if journal is not None and journal.starts > 0:
        return finding(
            "agent.disconnected",
            evidence_from=(UnitFacts,),
            checks=(UnitFacts, JournalFacts, ProcessFacts),
            state=state,
        )
    return finding(
        "agent.not-running",
        evidence_from=(UnitFacts,),
        checks=(UnitFacts, ProcessFacts),
        state=state,
    )


@rule("agent.unit_disabled", reads=(UnitFacts,))
def unit_disabled(unit: Optional[UnitFacts]) -> RuleOutput:
    """The unit is not enabled: it would not come back after a reboot."""
    if unit is None or unit.unit_file_state != "disabled":
        return None
    return finding("agent.unit-disabled", checks=(UnitFacts,))


@rule("agent.log_signatures", reads=(JournalFacts, LogFacts, BtfFacts))
def log_signatures(
    journal: Optional[JournalFacts], logs: Optional[LogFacts], btf: Optional[BtfFacts]
) -> RuleOutput:
    """Known error lines in the journal or log files, one finding per cause. A BTF error on a
    kernel that has BTF is the agent's bug, fixed in a later release (containers-roadmap #1996):
    "update the agent", not "change the kernel"."""
    out: List[Finding] = []
    for hit in _hits(journal, logs):
        spec = hit.finding
        if hit.id == "btf-missing" and btf is not None and btf.btf is True:
            spec = "agent.log-btf-agent-bug"
        out.append(finding(spec, evidence=hit.lines, checks=LOG_FACTS, show=hit.show))
    return out


@rule("agent.memlock_low", reads=(ProcessFacts, VersionKernelFacts))
def memlock_low(process: Optional[ProcessFacts], vk: Optional[VersionKernelFacts]) -> RuleOutput:
    """MEMLOCK of the agent's process below 32 MiB on a kernel that needs it (5.10 and older)."""
    if process is None or not process.memlock_known or vk is None:
        return None
    try:
        major, minor = (int(x) for x in vk.series.split(".")[:2])
    except ValueError:
        return None
    lim = limits()
    if not lim.memlock_needed(major, minor):
        return None
    soft, hard = process.memlock_soft, process.memlock_hard
    low = [v for v in (soft, hard) if v is not None and v < lim.memlock_min_bytes]
    if not low:
        return None
    return finding(
        "agent.memlock-low",
        # platform.memlock's configuration failure is this cause too: its rule defers to the
        # measurement of the running process
        checks=(ProcessFacts, UnitFacts, MemlockFacts),
        evidence=[f"Max locked memory: soft {soft} hard {hard} bytes"],
        # the configuration lines behind the limit
        evidence_from=(MemlockFacts,),
        memlock=_human(min(low)),
        kernel=vk.series,
    )


@rule("agent.memory_limit_low", reads=(MemoryLimitFacts,))
def memory_limit_low(memory: Optional[MemoryLimitFacts]) -> RuleOutput:
    """The unit's memory cap is below what AWS documents for the instance's memory."""
    if memory is None or not memory.below_documented:
        return None
    return finding(
        "agent.memory-limit-low",
        checks=(MemoryLimitFacts,),
        evidence=[
            f"memory limit {_human(memory.limit)}, documented {_human(memory.documented)} for "
            f"{(memory.total_memory or 0) / GiB:.1f} GiB of memory"
        ],
        limit=_human(memory.limit),
        documented=_human(memory.documented),
    )


@rule("agent.too_old_for_kernel", reads=(VersionKernelFacts,))
def too_old_for_kernel(vk: Optional[VersionKernelFacts]) -> RuleOutput:
    """The installed agent predates support for the running kernel series."""
    if vk is None or vk.needed is None or version_key(vk.version) >= version_key(vk.needed):
        return None
    return finding(
        "agent.too-old-for-kernel",
        evidence=[
            f"agent {vk.version}, kernel {vk.kernel}: kernel {vk.series} needs agent "
            f"{vk.needed} (support matrix of {vk.table_date})"
        ],
        checks=(PackageFacts, VersionKernelFacts),
        version=vk.version,
        kernel=vk.kernel,
        series=vk.series,
        needed=vk.needed,
    )


@rule("agent.journal_unreadable", reads=(JournalFacts,))
def journal_unreadable(journal: Optional[JournalFacts]) -> RuleOutput:
    """The journal could not be read (permissions, format newer than libsystemd)."""
    if journal is None or journal.unreadable is None:
        return None
    return finding("agent.journal-unreadable", checks=(JournalFacts,), reason=journal.unreadable)


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
