"""The verdict is earned: invariants over random combinations of check outcomes.

Hypothesis draws a status for every registered check, and for the checks that declare a facts
type, random facts of that type (``st.from_type`` builds the frozen dataclasses from their
annotations). Whatever the combination, the diagnosis must keep these promises:

* no FAIL check under a healthy verdict, and every FAIL check is listed by a FAIL finding;
* no healthy verdict without the health proof (agent-installed evidence);
* the text report's Problems and Checks agree: every ✗ check is named by a listed problem, and
  the count in the first line is the number of problems listed.
"""

from __future__ import annotations

import re
from typing import Any, List, Optional

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gd_doctor.checks import ALL_CHECKS
from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import diagnose
from gd_doctor.diagnosis.scope import Scope, node_scope
from gd_doctor.diagnosis.verdict import ProofState, prove_health
from gd_doctor.model import CheckResult, Severity, Status, Verdict
from gd_doctor.report.build import build_report
from gd_doctor.report.style import Style
from gd_doctor.report.text import render_text
from gd_doctor.runner import RunOutcome
from tests.hostkit import NOW


def _facts_strategy(chk: Any) -> Any:
    if chk.facts is None:
        return st.none()
    return st.one_of(st.none(), st.from_type(chk.facts))


@st.composite
def check_results(draw: Any) -> List[CheckResult]:
    out = []
    for chk in ALL_CHECKS:
        status = draw(st.sampled_from(list(Status)))
        facts = draw(_facts_strategy(chk)) if status != Status.SKIP else None
        out.append(
            CheckResult(chk.id, chk.title, chk.category, status, f"{chk.id} {status.value}",
                        facts=facts)
        )  # fmt: skip
    return out


def _na(scope: Optional[Scope], res: CheckResult) -> bool:
    """The check does not apply in the host's scope (diagnosis/scope.py)."""
    return scope is not None and scope.explains(res.check_id)


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(check_results(), st.booleans())
def test_no_failing_check_under_a_healthy_verdict(results: List[CheckResult], live: bool) -> None:
    diagnosis = diagnose(results, ALL_RULES, live=live)
    scope = node_scope(results)  # EKS node / Bottlerocket: checks that do not apply there
    failing = {r.check_id for r in results if r.status == Status.FAIL and not _na(scope, r)}
    explained = {c for f in diagnosis.findings if f.severity == Severity.FAIL for c in f.checks}
    assert failing <= explained
    if failing:
        assert diagnosis.verdict == Verdict.UNHEALTHY
    if diagnosis.verdict == Verdict.HEALTHY:
        assert not failing
        proof = scope.proof if scope is not None else prove_health(results, live=live)
        assert proof.state == ProofState.PROVEN


@SETTINGS
@given(check_results(), st.booleans())
def test_text_report_problems_and_checks_agree(results: List[CheckResult], live: bool) -> None:
    diagnosis = diagnose(results, ALL_RULES, live=live)
    report = build_report(
        RunOutcome(tuple(results), False, 1.0), diagnosis, started_at=NOW, root="/", live=live,
        budget_s=20.0,
    )  # fmt: skip
    text = render_text(report, Style(unicode=True, color=False))
    problems = [f for f in diagnosis.findings if f.severity == Severity.FAIL]
    first = text.splitlines()[0]
    if problems:
        m = re.search(r"(\d+) problems? found", first)
        assert m and int(m.group(1)) == len(problems), first
    scope = node_scope(results)
    for res in results:
        if res.status == Status.FAIL and not _na(scope, res):
            assert any(res.check_id in f.checks for f in problems), res.check_id


def test_an_empty_run_is_not_healthy() -> None:
    """Nothing ran, nothing failed: still not healthy, since nothing proves the agent runs."""
    diagnosis = diagnose([], ALL_RULES, live=True)
    assert diagnosis.verdict == Verdict.UNKNOWN
    assert diagnosis.reason and "installed" in diagnosis.reason
