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

A host outside the EC2 table's ordinary case (:mod:`gd_doctor.diagnosis.scope`: an EKS node
without the EC2 agent, Bottlerocket) demotes the findings that are no fault there, counts the
checks that do not apply as explained, and takes its health proof from the scope.

Folding: a finding spec may list the findings it ``folds`` (knowledge/findings/*.json). When a
cause and its consequence are both found, the consequence is listed under the cause
(``Finding.consequences``), its evidence becomes "consequence:" lines of the cause, its checks
join the cause's (so the unexplained-failure logic still holds) and the cause takes the more
severe of the two severities (a WARN cause that explains a FAIL symptom is what makes the host
fail). Chains fold to the outermost cause.

Steps are tailored to the host: a step marked with ``distros`` is kept only on those
distributions (when the distribution is known), every ``aws`` command gets the detected
Region, a step's ``where`` becomes a prefix, and the step marked ``fix`` is ``fix_step``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from gd_doctor.diagnosis.base import Rule, finding
from gd_doctor.diagnosis.scope import node_scope
from gd_doctor.diagnosis.verdict import HealthEvidence, Proof, ProofState, prove
from gd_doctor.facts.imds import ImdsIdentityFacts
from gd_doctor.facts.network import RegionFacts
from gd_doctor.facts.platform import OsFacts
from gd_doctor.frozen import dataclass
from gd_doctor.knowledge import FindingSpec, StepSpec, finding_specs
from gd_doctor.limits import cut_lines
from gd_doctor.model import CheckResult, Finding, Severity, Status, Verdict
from gd_doctor.patterns import lazy

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


def _spec(f: Finding) -> Optional[FindingSpec]:
    return finding_specs().get(f.finding_id)


def _decisive(f: Finding, by_id: Dict[str, CheckResult], own: Sequence[str] = ()) -> Optional[str]:
    """The spec's decisive check's first evidence line the finding shows; when that check's
    evidence is not among them, the first line the rule quoted itself (``own``: it quotes what
    it decided on, e.g. the denial line of the agent's log); else the finding's first line."""
    spec = _spec(f)
    res = by_id.get(spec.decisive) if spec and spec.decisive else None
    for line in res.evidence if res else ():
        if line in f.evidence:
            return line
    if spec is not None and spec.decisive and own:
        return own[0]
    return f.evidence[0] if f.evidence else None


def _with_evidence(f: Finding, by_id: Dict[str, CheckResult]) -> Finding:
    """Put the evidence of the checks the rule named in ``evidence_from`` before its own."""
    own = tuple(line for line in f.evidence if line)
    if f.evidence_from:
        lines: List[str] = []
        for check_id in f.evidence_from:
            res = by_id.get(check_id)
            lines.extend(res.evidence if res else ())
        lines.extend(f.evidence)
        f = replace(f, evidence=tuple(dict.fromkeys(lines)), evidence_from=())
    return replace(f, decisive_evidence=_decisive(f, by_id, own))


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


def _key(f: Finding) -> Tuple[int, int, str]:
    return (_SEVERITY_ORDER[f.severity], f.rank, f.finding_id)


def _causes(findings: Sequence[Finding]) -> Dict[str, str]:
    """Each folded finding's outermost cause among ``findings`` (ids); cycles end at the
    member that sorts first."""
    present = {f.finding_id: f for f in findings}
    parent: Dict[str, str] = {}
    for f in sorted(findings, key=_key):
        spec = _spec(f)
        for folded in spec.folds if spec else ():
            if folded in present and folded != f.finding_id:
                parent.setdefault(folded, f.finding_id)
    root: Dict[str, str] = {}
    for fid in parent:
        seen: List[str] = [fid]
        cur = fid
        while cur in parent and parent[cur] not in seen:
            cur = parent[cur]
            seen.append(cur)
        if cur in parent:  # a cycle: the member that sorts first is the cause
            cur = min(seen, key=lambda i: _key(present[i]))
        if cur != fid:
            root[fid] = cur
    return root


def _most_severe(a: Severity, b: Severity) -> Severity:
    return a if _SEVERITY_ORDER[a] <= _SEVERITY_ORDER[b] else b


def _absorb(cause: Finding, consequence: Finding) -> Finding:
    lines = [f"consequence: {line}" for line in consequence.evidence] or [
        f"consequence: {consequence.title}"
    ]
    evidence = cause.evidence + tuple(e for e in lines if e not in cause.evidence)
    checks = cause.checks + tuple(c for c in consequence.checks if c not in cause.checks)
    return replace(
        cause,
        severity=_most_severe(cause.severity, consequence.severity),
        evidence=cut_lines(evidence),
        checks=checks,
        consequences=(*cause.consequences, replace(consequence, consequences=())),
    )


def fold(findings: Sequence[Finding]) -> List[Finding]:
    """Fold every consequence into its cause (see the module docstring)."""
    root = _causes(findings)
    if not root:
        return list(findings)
    by_id = {f.finding_id: f for f in findings}
    for f in sorted(findings, key=_key):
        if f.finding_id in root:
            cause = root[f.finding_id]
            by_id[cause] = _absorb(by_id[cause], f)
            # a consequence that had consequences of its own passes them on (flattened)
            for sub in f.consequences:
                by_id[cause] = _absorb(by_id[cause], sub)
    return [by_id[f.finding_id] for f in findings if f.finding_id not in root]


# ----------------------------------------------------------------------------------------------
# steps tailored to the host

_WHERE = {
    "instance": "On the instance: ",
    "workstation": "From a workstation (AWS CLI with credentials): ",
}
_AWS_COMMAND = lazy(r"\baws ([a-z0-9-]+) ([a-z0-9-]+)")
_REGION = lazy(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
_COMMAND_END = lazy(r" ; | && | \|\| | \| |$")


@dataclass(frozen=True)
class HostContext:
    """What step tailoring knows about the host: its distribution and Region."""

    distros: Tuple[str, ...] = ()  # os-release ID first, then ID_LIKE; empty: unknown
    region: Optional[str] = None

    @classmethod
    def of(cls, results: Sequence[CheckResult]) -> "HostContext":
        distros: Tuple[str, ...] = ()
        region: Optional[str] = None
        for res in results:
            facts = res.facts
            if isinstance(facts, OsFacts) and facts.id:
                # "amzn:2" tells Amazon Linux 2 from AL2023 (both ID=amzn)
                distros = (facts.id, f"{facts.id}:{facts.version_id}", *facts.id_like)
            elif isinstance(facts, ImdsIdentityFacts) and facts.region:
                region = region or facts.region
            elif isinstance(facts, RegionFacts) and facts.region and facts.problem is None:
                region = facts.region  # --region wins over the identity document
        if region is not None and not _REGION.match(region):
            region = None
        return cls(distros=distros, region=region)


def with_region(step: str, region: Optional[str]) -> str:
    """Add ``--region`` to every ``aws <service> <operation>`` of ``step`` that has none."""
    if region is None:
        return step
    out: List[str] = []
    pos = 0
    for m in _AWS_COMMAND.finditer(step):
        end = _COMMAND_END.search(step, m.end())
        command_end = end.start() if end else len(step)
        out.append(step[pos : m.end()])
        if "--region" not in step[m.end() : command_end]:
            out.append(f" --region {region}")
        pos = m.end()
    out.append(step[pos:])
    return "".join(out)


def _applies(meta: StepSpec, host: HostContext) -> bool:
    return not meta.distros or not host.distros or any(d in meta.distros for d in host.distros)


def tailor(f: Finding, host: HostContext) -> Finding:
    """``f``'s steps for this host (see the module docstring), its fix step, and the same for
    its consequences."""
    consequences = tuple(tailor(c, host) for c in f.consequences)
    metas = [m for m in f.step_specs if isinstance(m, StepSpec)]
    if len(metas) != len(f.steps):  # not built from its spec's steps: leave them alone
        metas = [StepSpec()] * len(f.steps)
    steps: List[str] = []
    fix: Optional[str] = None
    for text, meta in zip(f.steps, metas):
        if not _applies(meta, host):
            continue
        text = _WHERE.get(meta.where or "", "") + with_region(text, host.region)
        steps.append(text)
        if meta.fix and fix is None:
            fix = text
    return replace(f, steps=tuple(steps), fix_step=fix, consequences=consequences)


def unexplained_failures(
    findings: Sequence[Finding],
    results: Sequence[CheckResult],
    not_applicable: Callable[[str], bool] = lambda _check_id: False,
) -> List[Finding]:
    """One generic FAIL finding per FAIL check that no FAIL finding explains (checks the host's
    scope says do not apply are explained by it)."""
    explained = {c for f in findings if f.severity == Severity.FAIL for c in f.checks}
    explained |= {r.check_id for r in results if not_applicable(r.check_id)}
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
    findings: Sequence[Finding],
    results: Sequence[CheckResult],
    proof: Proof,
    not_applicable: Callable[[str], bool] = lambda _check_id: False,
) -> Tuple[Verdict, Optional[str]]:
    """The verdict and its reason (see the module docstring)."""
    fails = [f for f in findings if f.severity == Severity.FAIL]
    if fails:
        return Verdict.UNHEALTHY, None
    if any(r.status == Status.FAIL and not not_applicable(r.check_id) for r in results):
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
    findings = fold([replace(f, evidence=cut_lines(f.evidence)) for f in _merge(found)])
    scope = node_scope(results)
    if scope is not None:
        findings = list(scope.apply(findings))
        findings.extend(unexplained_failures(findings, results, scope.explains))
    else:
        findings.extend(unexplained_failures(findings, results))
    host = HostContext.of(results)
    findings = [tailor(f, host) for f in findings]
    findings.sort(key=_key)
    proof = scope.proof if scope is not None else prove(HealthEvidence.of(results), live=live)
    applies = scope.explains if scope is not None else (lambda _check_id: False)
    verdict, reason = verdict_for(findings, results, proof, applies)
    return Diagnosis(tuple(findings), verdict, reason)
