"""SigV4 clock-skew refusals in the agent's logs are their own cause, not an access denial."""

from __future__ import annotations

import shutil
from pathlib import Path

from gd_doctor.checks import agent_logs
from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import UNEXPLAINED, diagnose
from gd_doctor.facts.agent import LogFacts
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
