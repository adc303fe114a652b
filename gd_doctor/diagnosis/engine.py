"""Runs every rule over the results and decides the verdict.

Rules are isolated like checks: one that crashes yields a ``tool.rule-error`` finding (and
``--debug`` re-raises). Findings are sorted so the root cause comes first: by severity, then by
the rank the knowledge base gives each finding (platform prerequisites before identity, SSM and
network causes, before the agent's own symptoms).

The verdict is earned, never assumed:

* ``unhealthy`` when a FAIL finding explains the host's state. A FAIL check that no FAIL finding
  lists among its ``checks`` gets the generic ``tool.unexplained-failure`` finding, so a failing
  check can never sit under a healthy verdict;
* ``unknown`` when a check crashed or timed out, a rule crashed, or the health proof (see
  :mod:`gd_doctor.diagnosis.verdict`) could not be made from what was readable;
* ``healthy`` only when the health proof holds: positive evidence that the agent is installed
  and, on a live host, that its unit is active and running with no restart loop in the window.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

from gd_doctor.diagnosis.base import Rule, finding
from gd_doctor.diagnosis.verdict import HealthEvidence, Proof, ProofState, prove
from gd_doctor.limits import cut_lines
from gd_doctor.model import CheckResult, Finding, Severity, Status, Verdict

_SEVERITY_ORDER = {Severity.FAIL: 0, Severity.WARN: 1, Severity.INFO: 2}
UNEXPLAINED = "tool.unexplained-failure"


@dataclass(frozen=True)
class Diagnosis:
    """Findings (root cause first), the verdict they add up to, and why."""

    findings: Tuple[Finding, ...]
    verdict: Verdict
    reason: Optional[str] = None


def _collect(rules: Sequence[Rule], results: Sequence[CheckResult], debug: bool) -> List[Finding]:
    found: List[Finding] = []
    for r in rules:
        try:
            out = r.apply(results)
            if out is None:
                continue
            if isinstance(out, Finding):
                found.append(out)
            else:
                found.extend(out)
        except Exception as exc:
            if debug:
                raise
            found.append(
                finding("tool.rule-error", evidence=[f"{type(exc).__name__}: {exc}"], rule=r.id)
            )
    return found


def _with_evidence(f: Finding, by_id: Dict[str, CheckResult]) -> Finding:
    """Put the evidence of the checks the rule named in ``evidence_from`` before its own."""
    if not f.evidence_from:
        return f
    lines: List[str] = []
    for check_id in f.evidence_from:
        res = by_id.get(check_id)
        lines.extend(res.evidence if res else ())
    lines.extend(f.evidence)
    return replace(f, evidence=tuple(dict.fromkeys(lines)), evidence_from=())


def _merge(found: Sequence[Finding]) -> List[Finding]:
    """One finding per id; evidence and checks of duplicates are merged in order."""
    merged: Dict[str, Finding] = {}
    for f in found:
        prev = merged.get(f.finding_id)
        if prev is None:
            merged[f.finding_id] = f
            continue
        evidence = prev.evidence + tuple(e for e in f.evidence if e not in prev.evidence)
        checks = prev.checks + tuple(c for c in f.checks if c not in prev.checks)
        merged[f.finding_id] = replace(prev, evidence=evidence, checks=checks)
    return list(merged.values())


def unexplained_failures(
    findings: Sequence[Finding], results: Sequence[CheckResult]
) -> List[Finding]:
    """One generic FAIL finding per FAIL check that no FAIL finding explains."""
    explained = {c for f in findings if f.severity == Severity.FAIL for c in f.checks}
    return [
        finding(
            UNEXPLAINED,
            evidence=cut_lines((f"{res.check_id}: {res.summary}", *res.evidence)),
            checks=[res.check_id],
            check=res.check_id,
            summary=res.summary,
        )
        for res in results
        if res.status == Status.FAIL and res.check_id not in explained
    ]


def verdict_for(
    findings: Sequence[Finding], results: Sequence[CheckResult], proof: Proof
) -> Tuple[Verdict, Optional[str]]:
    """The verdict and its reason (see the module docstring)."""
    fails = [f for f in findings if f.severity == Severity.FAIL]
    if fails:
        return Verdict.UNHEALTHY, None
    if any(r.status == Status.FAIL for r in results):
        # Unreachable through diagnose(), which explains every failing check; kept so the
        # function alone can never call a failing host healthy.
        return Verdict.UNHEALTHY, "a check failed"
    broken = [r.check_id for r in results if r.status == Status.ERROR or r.timed_out]
    if broken:
        return Verdict.UNKNOWN, "could not finish: " + ", ".join(broken)
    if any(f.finding_id == "tool.rule-error" for f in findings):
        return Verdict.UNKNOWN, "a diagnosis rule crashed"
    if proof.state != ProofState.PROVEN:
        return Verdict.UNKNOWN, proof.reason
    return Verdict.HEALTHY, proof.reason


def diagnose(
    results: Sequence[CheckResult],
    rules: Sequence[Rule],
    *,
    live: bool = True,
    debug: bool = False,
) -> Diagnosis:
    """Apply ``rules`` to ``results`` and earn the verdict."""
    by_id = {r.check_id: r for r in results}
    found = [_with_evidence(f, by_id) for f in _collect(rules, results, debug)]
    findings = [replace(f, evidence=cut_lines(f.evidence)) for f in _merge(found)]
    findings.extend(unexplained_failures(findings, results))
    findings.sort(key=lambda f: (_SEVERITY_ORDER[f.severity], f.rank, f.finding_id))
    proof = prove(HealthEvidence.of(results), live=live)
    verdict, reason = verdict_for(findings, results, proof)
    return Diagnosis(tuple(findings), verdict, reason)
