"""Runs every rule over the results and decides the verdict.

Rules are isolated like checks: one that crashes yields a ``tool.rule-error`` finding (and
``--debug`` re-raises). Findings are sorted so the root cause comes first: by severity, then by
the rank the knowledge base gives each finding (platform prerequisites before identity, SSM and
network causes, before the agent's own symptoms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from gd_doctor.diagnosis.base import Results, Rule, finding
from gd_doctor.model import CheckResult, Finding, Severity, Status, Verdict

_SEVERITY_ORDER = {Severity.FAIL: 0, Severity.WARN: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class Diagnosis:
    """Findings (root cause first) and the verdict they add up to."""

    findings: Tuple[Finding, ...]
    verdict: Verdict


def _collect(rules: Sequence[Rule], results: Results, debug: bool) -> List[Finding]:
    found: List[Finding] = []
    for r in rules:
        try:
            out = r(results)
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
        merged[f.finding_id] = Finding(
            prev.finding_id,
            prev.title,
            prev.severity,
            prev.issue_id,
            evidence,
            prev.steps,
            prev.doc,
            prev.rank,
            checks,
        )
    return list(merged.values())


def verdict_for(findings: Sequence[Finding], results: Sequence[CheckResult]) -> Verdict:
    """unhealthy: a FAIL finding; unknown: a check crashed or timed out; else healthy."""
    if any(f.severity == Severity.FAIL for f in findings):
        return Verdict.UNHEALTHY
    if any(r.status == Status.ERROR or r.timed_out for r in results):
        return Verdict.UNKNOWN
    if any(f.finding_id == "tool.rule-error" for f in findings):
        return Verdict.UNKNOWN
    return Verdict.HEALTHY


def diagnose(
    results: Sequence[CheckResult], rules: Sequence[Rule], *, debug: bool = False
) -> Diagnosis:
    """Apply ``rules`` to ``results``."""
    view = Results(results)
    findings = _merge(_collect(rules, view, debug))
    findings.sort(key=lambda f: (_SEVERITY_ORDER[f.severity], f.rank, f.finding_id))
    return Diagnosis(tuple(findings), verdict_for(findings, results))
