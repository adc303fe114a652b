"""The policy type AWS's AccessDenied message names picks the finding and its fix; a denial that
names none keeps the generic one. The same from the log files and from the journal."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import List

import pytest

from gd_doctor.checks import agent_logs
from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import UNEXPLAINED, diagnose
from gd_doctor.diagnosis.network import denial_kinds
from gd_doctor.facts.agent_logs import JournalFacts, LogFacts
from gd_doctor.knowledge import finding_specs
from gd_doctor.model import CheckResult, Finding
from tests.hostkit import FIXTURES, facts_with, make_host, result, run_one

KINDS = FIXTURES / "agent-logs" / "access-denied-kinds"
EXPECTED = {
    "scp": "network.access-denied-scp",
    "permissions-boundary": "network.access-denied-permissions-boundary",
    "identity-based-deny": "network.access-denied-identity-policy",
    "vpc-endpoint-policy": "network.access-denied-vpc-endpoint-policy",
    "no-identity-based-allow": "network.access-denied-no-identity-allow",
    "generic": "network.access-denied",
}


def _logs(tmp_path: Path, name: str) -> CheckResult:
    target = tmp_path / "var/log/amzn-guardduty-agent"
    target.mkdir(parents=True)
    shutil.copy(KINDS / f"{name}.log", target / "agent.log")
    out = run_one(agent_logs.logs, make_host(tmp_path, live=False))
    return CheckResult(
        "agent.logs", "t", "agent", out.status, out.summary, evidence=out.evidence, facts=out.facts
    )


def _denials(findings: List[Finding]) -> List[Finding]:
    return [f for f in findings if f.finding_id.startswith("network.access-denied")]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_policy_type_gets_its_own_finding(tmp_path: Path, name: str) -> None:
    logs = _logs(tmp_path, name)
    assert isinstance(logs.facts, LogFacts)
    assert [s.id for s in logs.facts.signatures] == ["access-denied"]
    diagnosis = diagnose([logs], ALL_RULES)
    ids = [f.finding_id for f in diagnosis.findings]
    denied = _denials(list(diagnosis.findings))
    assert [f.finding_id for f in denied] == [EXPECTED[name]], ids
    assert "agent.log-access-denied" not in ids and UNEXPLAINED not in ids
    top = denied[0]
    assert [c.finding_id for c in top.consequences] == ["agent.log-access-denied"]
    # the decisive line is the agent's denial the rule quoted, not another check's line
    assert top.decisive_evidence and "AccessDenied" in top.decisive_evidence, top.evidence
    if name == "generic":
        assert "SCP, permissions boundary or the VPC endpoint policy" in top.title
    else:
        # AWS's message names the principal; the finding shows it and its own fix
        assert "arn:aws:sts::123456789012:assumed-role/ec2-app" in " ".join(top.evidence)
        assert top.fix_step and top.fix_step != finding_specs()["network.access-denied"].fix


def test_the_kinds_fixes_differ_from_each_other() -> None:
    fixes = {k.finding: finding_specs()[k.finding].fix for k in denial_kinds()}
    assert len(set(fixes.values())) == len(fixes) == 5


def test_the_journal_carries_the_kind_as_the_log_files_do(tmp_path: Path) -> None:
    logs = _logs(tmp_path, "permissions-boundary")
    assert isinstance(logs.facts, LogFacts)
    hit = logs.facts.signatures[0]
    journal = facts_with(JournalFacts)
    journal = type(journal)(**{**journal.__dict__, "signatures": (hit,)})
    from_journal = diagnose([result("agent.journal", "warn", facts=journal)], ALL_RULES)
    denied = _denials(list(from_journal.findings))
    assert [f.finding_id for f in denied] == ["network.access-denied-permissions-boundary"]
    assert "agent.journal" in denied[0].checks


def test_an_scp_deny_written_as_aws_notes_it_is_still_an_scp() -> None:
    """'due to an explicit deny in a Service Control Policy' (capitalised), which AWS says an SCP
    denial may print even when the deny is implicit."""
    from gd_doctor.diagnosis.network import denial_kind

    line = (
        "AccessDeniedException: User: arn:aws:iam::123456789012:role/r is not authorized to "
        "perform: guardduty:SendSecurityTelemetry due to an explicit deny in a Service Control "
        "Policy"
    )
    kind, principal, _ = denial_kind([line])
    assert kind is not None and kind.id == "service-control-policy"
    assert principal == "arn:aws:iam::123456789012:role/r"
    assert denial_kind(["AccessDenied: 403"])[0] is None
    # the instance's own identity: a role name with a colon (the simulator's server says so)
    ec2 = (
        "AccessDeniedException: User: arn:aws:sts::111122223333:assumed-role/aws:ec2-instance/"
        "i-0abc1234def567890 is not authorized to perform: guardduty:SendSecurityTelemetry with "
        "an explicit deny in a service control policy"
    )
    assert denial_kind([ec2])[1] == (
        "arn:aws:sts::111122223333:assumed-role/aws:ec2-instance/i-0abc1234def567890"
    )
