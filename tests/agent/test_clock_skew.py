"""SigV4 clock-skew refusals in the agent's logs are their own cause, not an access denial."""

from __future__ import annotations

import shutil
from pathlib import Path

from gd_doctor.checks import agent_logs
from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import UNEXPLAINED, diagnose
from gd_doctor.facts.agent_logs import LogFacts
from gd_doctor.model import CheckResult
from tests.hostkit import FIXTURES, make_host, run_one

LOG = FIXTURES / "agent-logs" / "clock-skew" / "agent.log"


def _logs(tmp_path: Path) -> CheckResult:
    target = tmp_path / "var/log/amzn-guardduty-agent"
    target.mkdir(parents=True)
    shutil.copy(LOG, target / "agent.log")
    out = run_one(agent_logs.logs, make_host(tmp_path, live=False))
    return CheckResult(
        "agent.logs", "t", "agent", out.status, out.summary, evidence=out.evidence, facts=out.facts
    )


def test_skew_refusals_are_clock_skew_not_access_denied(tmp_path: Path) -> None:
    res = _logs(tmp_path)
    assert isinstance(res.facts, LogFacts)
    ids = {h.id for h in res.facts.signatures}
    assert ids == {"clock-skew"}, ids
    diagnosis = diagnose([res], ALL_RULES)
    found = [f.finding_id for f in diagnosis.findings]
    assert "agent.log-clock-skew" in found and "agent.log-access-denied" not in found
    assert UNEXPLAINED not in found
    skew = next(f for f in diagnosis.findings if f.finding_id == "agent.log-clock-skew")
    assert "169.254.169.123" in " ".join(skew.steps)


def test_a_plain_access_denial_is_still_one() -> None:
    sigs = {s.id: s for s in agent_logs.signatures()}
    line = "SendSecurityTelemetry failed: AccessDeniedException: explicit deny in a service control policy"
    first = next(s for s in agent_logs.signatures() if s.pattern.search(line))
    assert first.id == "access-denied" and "clock-skew" in sigs


def test_a_btf_error_on_a_kernel_with_btf_says_update_the_agent() -> None:
    from gd_doctor.facts.agent_logs import SignatureHit
    from gd_doctor.facts.platform import BtfFacts
    from tests.hostkit import facts_with, result

    line = "libbpf: failed to find valid kernel BTF"  # containers-roadmap#1996's line
    hit = facts_with(SignatureHit, id="btf-missing", finding="agent.log-kernel-prerequisites")
    hit = type(hit)(**{**hit.__dict__, "lines": (line,), "show": "no BTF", "count": 1})
    logs = facts_with(LogFacts, directory="/var/log/amzn-guardduty-agent", exists=True)
    logs = type(logs)(**{**logs.__dict__, "signatures": (hit,)})
    for has_btf, expected in (
        (True, "agent.log-btf-agent-bug"),
        (False, "agent.log-kernel-prerequisites"),
    ):
        results = [
            result("agent.logs", "warn", facts=logs),
            result("platform.btf", "ok", facts=BtfFacts.from_sysfs(has_btf)),
        ]
        found = [f.finding_id for f in diagnose(results, ALL_RULES).findings]
        assert expected in found, (has_btf, found)
        other = {"agent.log-btf-agent-bug", "agent.log-kernel-prerequisites"} - {expected}
        assert not other & set(found)


def test_an_access_denial_is_the_same_finding_from_the_journal_or_the_log_files() -> None:
    from gd_doctor.facts.agent_logs import JournalFacts, SignatureHit
    from tests.hostkit import facts_with, result

    line = "SendSecurityTelemetry failed: AccessDeniedException: explicit deny"
    base = facts_with(SignatureHit, id="access-denied", finding="agent.log-access-denied")
    hit = type(base)(**{**base.__dict__, "lines": (line,), "show": "denied", "count": 1})
    journal = facts_with(JournalFacts)
    journal = type(journal)(**{**journal.__dict__, "signatures": (hit,)})
    logs = facts_with(LogFacts, directory="/var/log/amzn-guardduty-agent", exists=True)
    logs = type(logs)(**{**logs.__dict__, "signatures": (hit,)})
    seen = []
    for res in (
        result("agent.journal", "warn", facts=journal),
        result("agent.logs", "warn", facts=logs),
    ):
        found = diagnose([res], ALL_RULES).findings
        # the denial is the cause (the endpoint policy or SCP); the agent's log line folds in
        top = found[0]
        folded = [c.finding_id for c in top.consequences]
        seen.append((top.finding_id, top.severity, folded))
    assert seen[0] == seen[1]
    assert seen[0][0] == "network.access-denied" and "agent.log-access-denied" in seen[0][2]
