"""Renderers: text (golden), JSON (schema), SSM-compact (2,500 characters), and no secrets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gd_doctor.diagnosis.engine import Diagnosis, verdict_for
from gd_doctor.diagnosis.verdict import Proof, ProofState
from gd_doctor.facts.imds import ImdsIdentityFacts
from gd_doctor.facts.platform import ArchFacts, KernelFacts, OsFacts
from gd_doctor.model import CheckResult, Finding, Severity, Status, Verdict
from gd_doctor.report.build import build_report
from gd_doctor.report.json import render_json, report_to_dict
from gd_doctor.report.ssm import LIMIT, render_ssm
from gd_doctor.report.style import Style
from gd_doctor.report.text import render_text
from gd_doctor.runner import RunOutcome
from tests.hostkit import NOW, facts_with, validate_report

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("GD_DOCTOR_UPDATE_GOLDEN") == "1"


def _results() -> Tuple[CheckResult, ...]:
    return (
        CheckResult(
            "platform.os",
            "OS distribution is verified",
            "platform",
            Status.OK,
            "Amazon Linux 2023.6.20241010 is verified",
            facts=facts_with(
                OsFacts, pretty_name="Amazon Linux 2023.6.20241010", hostname="ip-10-0-1-5"
            ),
        ),
        CheckResult(
            "platform.kernel",
            "Kernel version is supported",
            "platform",
            Status.OK,
            "6.1 is verified for Amazon Linux 2023",
            facts=facts_with(KernelFacts, release="6.1.112-124.190.amzn2023.x86_64"),
        ),
        CheckResult(
            "platform.arch",
            "CPU architecture",
            "platform",
            Status.OK,
            "x86_64",
            facts=facts_with(ArchFacts, machine="x86_64"),
        ),
        CheckResult(
            "imds.identity",
            "Instance identity document",
            "imds",
            Status.OK,
            "i-0abc12345def67890 in us-east-1",
            facts=facts_with(
                ImdsIdentityFacts,
                available=True,
                instance_id="i-0abc12345def67890",
                region="us-east-1",
            ),
        ),
        CheckResult(
            "ssm.agent",
            "SSM Agent",
            "ssm",
            Status.FAIL,
            "amazon-ssm-agent is inactive (dead)",
            evidence=("ActiveState=inactive", "SubState=dead"),
        ),
        CheckResult(
            "network.dns",
            "guardduty-data resolves",
            "network",
            Status.SKIP,
            "prerequisite imds.token is fail",
            skip_reason="BLOCKED_BY:imds.token",
        ),
        CheckResult(
            "network.tls",
            "TLS to guardduty-data",
            "network",
            Status.ERROR,
            "did not finish within the time budget",
            timed_out=True,
        ),
    )


def _findings() -> Tuple[Finding, ...]:
    return (
        Finding(
            "ssm.agent-stopped",
            "The SSM Agent is not running",
            Severity.FAIL,
            "waiting-for-ssm",
            ("amazon-ssm-agent.service: inactive (dead)",),
            ("sudo systemctl enable --now amazon-ssm-agent",),
            "https://docs.aws.amazon.com/systems-manager/latest/userguide/ssm-agent.html",
            300,
            ("ssm.agent",),
        ),
        Finding(
            "network.proxy-no-imds-exemption",
            "HTTPS_PROXY=http://bob:hunter2@proxy.corp:3128 without no_proxy for IMDS",
            Severity.WARN,
            None,
            ("Environment=HTTPS_PROXY=http://bob:hunter2@proxy:3128",),
            ("Add NO_PROXY=169.254.169.254",),
            None,
            450,
            (),
        ),
    )


PROVEN = Proof(ProofState.PROVEN, "the agent is installed, active and running")


def _report(report_path: str = "/var/log/gd-doctor/report.json"):  # type: ignore[no-untyped-def]
    results = _results()
    findings = _findings()
    run = RunOutcome(results, True, 20.01)
    verdict, reason = verdict_for(findings, results, PROVEN)
    diagnosis = Diagnosis(findings, verdict, reason)
    return build_report(
        run, diagnosis, started_at=NOW, root="/", live=True, budget_s=20.0, report_path=report_path
    )


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; GD_DOCTOR_UPDATE_GOLDEN=1"


def test_text_report_matches_golden() -> None:
    _golden("report.txt", render_text(_report(), Style(unicode=True, color=False)))


def test_verbose_ascii_text_report_matches_golden() -> None:
    _golden(
        "report-verbose-ascii.txt",
        render_text(_report(), Style(unicode=False, color=False), verbose=True),
    )


def test_text_puts_verdict_first_and_problems_before_checks() -> None:
    text = render_text(_report(), Style())
    lines = text.splitlines()
    assert lines[0].startswith("✗ UNHEALTHY")
    assert text.index("The SSM Agent is not running") < text.index("Checks:")
    assert text.index("✗ ssm.agent") < text.index("✓ platform (3 checks)")
    assert "✓ imds (1 check)" in text and "✓ platform.os" not in text
    assert 'Coverage issue: No Agent Reporting "Waiting for SSM notification" (row 1' in text
    # The last line holds the verdict, the counts and the top cause, so the last screen acts.
    last = " ".join(text.strip().split("\n\n")[-1].split())
    assert last.startswith("✗ UNHEALTHY — 1 problem, 1 warning. Top cause: The SSM Agent is not")
    assert "[row 1 waiting-for-ssm]" in last and "gd-doctor explain 1" in last


def test_colour_only_when_asked() -> None:
    assert "\x1b[" not in render_text(_report(), Style(color=False))
    assert "\x1b[31m" in render_text(_report(), Style(color=True))


def test_json_report_validates_and_carries_the_row() -> None:
    doc = validate_report(render_json(_report()))
    assert doc["verdict"] == "unhealthy"
    first = doc["findings"][0]
    assert (first["issue_id"], first["issue_type"], first["issue_message"]) == (
        "waiting-for-ssm",
        "No Agent Reporting",
        "Waiting for SSM notification",
    )
    assert doc["host"]["instance_id"] == "i-0abc12345def67890"
    assert doc["summary"] == {"ok": 4, "warn": 0, "fail": 1, "skip": 1, "error": 1}
    assert [c["id"] for c in doc["checks"] if c["timed_out"]] == ["network.tls"]
    assert {r["number"] for r in doc["control_plane_issues"]} == {8, 9, 10, 11, 13, 14, 16}


def test_the_schema_rejects_a_broken_report() -> None:
    import jsonschema

    doc = report_to_dict(_report())
    doc["verdict"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        validate_report(doc)


def test_ssm_output_starts_with_the_verdict_and_ends_with_the_report_path() -> None:
    text = render_ssm(_report())
    assert text.startswith(
        "gd-doctor: UNHEALTHY row=1 waiting-for-ssm i-0abc12345def67890 - us-east-1\n"
    )
    assert text.rstrip().endswith("full report: /var/log/gd-doctor/report.json")
    assert "1. FAIL The SSM Agent is not running [row 1 waiting-for-ssm]" in text
    assert "   evidence: amazon-ssm-agent.service: inactive (dead)" in text
    assert "   fix: sudo systemctl enable --now amazon-ssm-agent" in text


def test_ssm_output_stays_within_the_console_limit_with_many_findings() -> None:
    base = _report()
    many = tuple(
        Finding(
            f"agent.f{n}",
            "x" * 150 + str(n),
            Severity.FAIL,
            "agent-disconnected",
            ("evidence " * 60,),
            ("step " * 80,),
            None,
            500 + n,
        )
        for n in range(60)
    )
    from dataclasses import replace

    text = render_ssm(replace(base, findings=many))
    assert len(text) <= LIMIT
    assert text.startswith("gd-doctor: UNHEALTHY row=3 agent-disconnected ")
    assert "more finding(s) in the full report" in text
    assert text.rstrip().endswith("full report: /var/log/gd-doctor/report.json")


SECRETS = st.sampled_from(
    [
        "http://{u}:{p}@proxy.example:3128",
        '"SecretAccessKey": "{p}"',
        "X-aws-ec2-metadata-token: {p}",
        "aws_session_token={p}",
        "password={p}",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    template=SECRETS,
    user=st.text("abcdefghij", min_size=3, max_size=8),
    secret=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=12, max_size=30),
)
def test_no_secret_reaches_any_output(template: str, user: str, secret: str) -> None:
    line = template.format(u=user, p=secret)
    from dataclasses import replace

    base = _report()
    leak = Finding("network.leak", f"seen: {line}", Severity.FAIL, None, (line,), (line,))
    check = CheckResult(
        "network.proxy",
        "proxy",
        "network",
        Status.WARN,
        line,
        {"raw": line, "nested": [line]},
        (line,),
        (line,),
        error=line,
    )
    report = replace(base, findings=(leak,), checks=(*base.checks, check))
    for text in (
        render_text(report, Style(), verbose=True),
        render_json(report),
        render_ssm(report),
        json.dumps(report_to_dict(report)),
    ):
        assert secret not in text


def test_verdicts() -> None:
    ok = CheckResult("platform.os", "t", "platform", Status.OK, "s")
    err = CheckResult("platform.os", "t", "platform", Status.ERROR, "s")
    warn = Finding("platform.x", "t", Severity.WARN, None)
    fail = Finding("platform.y", "t", Severity.FAIL, None)
    unread = Proof(ProofState.UNKNOWN, "cannot read the package database")
    assert verdict_for((), (ok,), PROVEN)[0] == Verdict.HEALTHY
    assert verdict_for((warn,), (ok,), PROVEN)[0] == Verdict.HEALTHY
    assert verdict_for((warn,), (err,), PROVEN)[0] == Verdict.UNKNOWN
    assert verdict_for((fail,), (err,), PROVEN)[0] == Verdict.UNHEALTHY
    # Healthy needs the proof: without it the verdict is unknown, with the proof's reason.
    assert verdict_for((), (ok,), unread) == (Verdict.UNKNOWN, unread.reason)
    assert verdict_for((), (ok,), Proof(ProofState.DISPROVEN, "x"))[0] == Verdict.UNKNOWN
