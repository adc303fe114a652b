"""The check ``platform.bpf_restrictions``: kernel lockdown and SELinux denials of bpf.

A kernel with BTF and every eBPF option may still refuse the agent: lockdown in confidentiality
mode restricts bpf reads of kernel memory, kprobes and perf (kernel_lockdown(7)), and an SELinux
policy may deny ``prog_load``/``map_create`` (class bpf) or the ``bpf`` capability. Both are
known from other eBPF agents (analogues, phrased "may" in the findings). Read, all bounded:

* ``/sys/kernel/security/lockdown``, ``/sys/fs/selinux/enforce`` (live state; absent in most
  captured roots);
* the audit log, ``/var/log/audit/audit.log`` (its last 2 MiB), and the kernel log: live,
  ``dmesg --time-format=iso --kernel --nopager`` (read-only, with a timeout), else the last
  2 MiB of ``/var/log/kern.log``, ``/var/log/messages`` and ``/var/log/syslog``.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from gd_doctor.checks.base import Check, Context, check, judged, skip
from gd_doctor.checks.ring_buffer import read_ring_buffer
from gd_doctor.facts.security import BpfRestrictionFacts
from gd_doctor.model import Outcome, SkipReason, Status
from gd_doctor.parsers.lsm import bpf_avc_denials, lockdown_mode, lockdown_refusals
from gd_doctor.redact import redact

LOCKDOWN = "/sys/kernel/security/lockdown"
SELINUX_ENFORCE = "/sys/fs/selinux/enforce"
AUDIT_LOG = "/var/log/audit/audit.log"
KERNEL_LOGS = ("/var/log/kern.log", "/var/log/messages", "/var/log/syslog")
TAIL = 2 * 1024 * 1024
# The kernel cuts a process name (comm) to 15 characters: amazon-guardduty-agent's.
AGENT_COMM = "amazon-guarddut"
SHOWN = 5


def _texts(ctx: Context, problems: List[str]) -> List[Tuple[str, str]]:
    """(source, text) of the audit log and the kernel log, as far as they could be read."""
    out: List[Tuple[str, str]] = []
    audit = ctx.host.fs.read_tail(AUDIT_LOG, TAIL)
    if audit.ok and audit.text:
        out.append((AUDIT_LOG, audit.text))
    elif audit.problem and ctx.host.fs.exists(AUDIT_LOG):
        problems.append(f"{AUDIT_LOG}: {audit.problem}")
    if ctx.host.live and any(ctx.host.fs.exists(f"{d}/dmesg") for d in ("/usr/bin", "/bin")):
        res = read_ring_buffer(ctx)
        if res.ok:
            out.append(("dmesg", res.stdout))
            return out
        if res.problem != "not found":
            problems.append(f"dmesg: {res.problem or redact(res.stderr.strip()[:200])}")
    for path in KERNEL_LOGS:
        fr = ctx.host.fs.read_tail(path, TAIL)
        if fr.ok and fr.text:
            out.append((path, fr.text))
    return out


def _selinux(ctx: Context) -> Optional[str]:
    text = ctx.host.fs.read_text(SELINUX_ENFORCE, 64)
    value = (text or "").strip()
    return {"1": "enforcing", "0": "permissive"}.get(value)


def _facts(ctx: Context) -> BpfRestrictionFacts:
    problems: List[str] = []
    mode_text = ctx.host.fs.read_text(LOCKDOWN, 4096)
    texts = _texts(ctx, problems)
    refusals = [
        r for _, text in texts for r in lockdown_refusals(text) if r.comm.startswith(AGENT_COMM)
    ]
    denials = [d for _, text in texts for d in bpf_avc_denials(text) if d.comm == AGENT_COMM]
    perms = tuple(dict.fromkeys(d.perms for d in denials))[:SHOWN]
    sources = tuple(
        [LOCKDOWN] * (mode_text is not None)
        + [SELINUX_ENFORCE] * ctx.host.fs.exists(SELINUX_ENFORCE)
        + [source for source, _ in texts]
    )
    return BpfRestrictionFacts(
        lockdown=lockdown_mode(mode_text) if mode_text is not None else None,
        selinux=_selinux(ctx),
        lockdown_refusals=tuple(redact(r.line) for r in refusals[-SHOWN:]),
        lockdown_count=len(refusals),
        avc_denials=tuple(redact(d.line) for d in denials[-SHOWN:]),
        avc_count=len(denials),
        avc_perms=perms,
        avc_enforced=any(not d.permissive for d in denials),
        sources=sources,
        problems=tuple(problems),
    )


@check(
    "platform.bpf_restrictions",
    title="Neither kernel lockdown nor SELinux refuses the agent's eBPF programs",
    category="platform",
    facts=BpfRestrictionFacts,
)
def bpf_restrictions(ctx: Context) -> Outcome:
    """Reads the lockdown mode, SELinux's mode, and the audit and kernel logs for lockdown
    refusals and SELinux AVC denials of bpf naming the agent's process."""
    facts = _facts(ctx)
    evidence: List[str] = []
    if facts.lockdown:
        evidence.append(f"{LOCKDOWN}: [{facts.lockdown}]")
    if facts.selinux:
        evidence.append(f"{SELINUX_ENFORCE}: SELinux {facts.selinux}")
    evidence += [*facts.lockdown_refusals, *facts.avc_denials, *facts.problems]
    issues: List[str] = []
    if facts.lockdown == "confidentiality" or facts.lockdown_count:
        issues.append(f"kernel lockdown ({facts.lockdown or 'refusals logged'})")
    if facts.avc_enforced:
        issues.append(f"SELinux denied the agent {', '.join(facts.avc_perms)}")
    if issues:
        summary = "; ".join(issues) + ": may refuse the agent's eBPF programs"
        return judged(Status.WARN, summary, facts, evidence)
    if not facts.sources:
        if not ctx.host.live:
            summary = "no lockdown state, audit log or kernel log in this root"
            return skip(SkipReason.UNAVAILABLE_WITH_ROOT, summary, facts=facts)
        summary = "could not read the lockdown state, the audit log or the kernel log"
        return judged(Status.WARN, summary, facts, evidence)
    summary = "no lockdown or SELinux refusal of bpf seen in " + ", ".join(facts.sources[:4])
    return judged(Status.OK, summary, facts, evidence)


CHECKS: Tuple[Check, ...] = (bpf_restrictions,)
