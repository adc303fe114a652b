"""The renderers show what the engine decided (issue 12 sections 2 and 3): the step the
knowledge base marks as the fix (``Finding.fix_step``), the evidence line its ``decisive`` check
proves (``Finding.decisive_evidence``) and the consequences folded into a cause, never a guess
from the wording of the steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path
from typing import List

import pytest

from gd_doctor.host import Host
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.settings import HostSettings
from gd_doctor.model import CheckResult, Finding, Report, Severity, Status
from gd_doctor.pipeline import run_doctor
from gd_doctor.report.ssm import decisive_evidence, fix_step, render_ssm
from gd_doctor.report.style import Style
from gd_doctor.report.text import render_text
from tests.core.test_report import _report
from tests.hostkit import NOW

TOP = Path(__file__).resolve().parents[2]

# Steps worded so that a word-based guess would pick another one than the marked fix.
STEPS = (
    "Confirm the endpoint: dig guardduty-data.us-east-1.amazonaws.com",
    "Restart the agent: sudo systemctl restart amazon-guardduty-agent",
    "Set enableDnsSupport on the VPC: aws ec2 modify-vpc-attribute --enable-dns-support",
)
EVIDENCE = ("resolv.conf: nameserver 10.0.0.2", "guardduty-data resolves to 52.94.1.10 (public)")


def _finding(**changes: object) -> Finding:
    f = Finding(
        "network.endpoint-public",
        "guardduty-data resolves to a public address",
        Severity.FAIL,
        "private-dns-attributes",
        EVIDENCE,
        STEPS,
        None,
        100,
        ("network.guardduty_dns",),
    )
    return replace(f, **changes)  # type: ignore[arg-type]


def _with(*findings: Finding) -> Report:
    return replace(_report(), findings=findings)


def test_ssm_shows_the_marked_fix_and_the_decisive_line() -> None:
    f = _finding(fix_step=STEPS[2], decisive_evidence=EVIDENCE[1])
    text = render_ssm(_with(f))
    assert f"   fix: {STEPS[2]}" in text
    assert f"   evidence: {EVIDENCE[1]}" in text
    assert STEPS[1] not in text and EVIDENCE[0] not in text


def test_ssm_falls_back_to_the_first_step_and_line_only_when_the_engine_set_none() -> None:
    f = _finding()
    assert (fix_step(f), decisive_evidence(f)) == (STEPS[0], EVIDENCE[0])
    bare = _finding(steps=(), evidence=())
    assert (fix_step(bare), decisive_evidence(bare)) == (None, None)
    text = render_ssm(_with(bare))
    assert "   fix:" not in text and "   evidence:" not in text


def _consequence() -> Finding:
    return Finding(
        "network.tcp-blocked",
        "TCP 443 to guardduty-data times out",
        Severity.FAIL,
        "agent-disconnected",
        ("52.94.1.10:443: timeout",),
        ("Allow outbound 443 in the security group",),
        checks=("network.guardduty_tcp",),
    )


def _cause_with_consequence() -> Finding:
    c = _consequence()
    return _finding(
        evidence=(*EVIDENCE, "consequence: 52.94.1.10:443: timeout"),
        consequences=(c,),
        checks=("network.guardduty_dns", "network.guardduty_tcp"),
        fix_step=STEPS[2],
    )


def test_text_lists_a_consequence_under_its_cause_not_as_evidence_or_a_problem() -> None:
    text = render_text(_with(_cause_with_consequence()), Style(color=False))
    block = text[text.index("guardduty-data resolves to a public") : text.index("Checks:")]
    assert "consequence:" not in block
    head = "Consequences (explained by this cause, not separate problems):"
    assert block.index("Evidence:") < block.index(head) < block.index("Fix")
    under = block[block.index(head) :]
    assert "• TCP 443 to guardduty-data times out (row 3, agent-disconnected)" in under
    assert "52.94.1.10:443: timeout" in under
    # not a problem of its own: not counted, not listed with a mark of its own
    assert "✗ TCP 443" not in text
    assert text.splitlines()[0] == "✗ UNHEALTHY — 1 problem found"


def test_text_marks_the_fix_step_and_only_it() -> None:
    lines = render_text(_with(_cause_with_consequence()), Style(color=False)).splitlines()
    assert "  Fix (→ marks the step that fixes it):" in lines
    arrows = [line for line in lines if line.startswith("  → ")]
    assert arrows == ["  → 3. Set enableDnsSupport on the VPC: aws ec2 modify-vpc-attribute"]
    ascii_lines = render_text(_with(_cause_with_consequence()), Style(unicode=False)).splitlines()
    assert [line for line in ascii_lines if line.startswith("  > ")] == [
        "  > 3. Set enableDnsSupport on the VPC: aws ec2 modify-vpc-attribute"
    ]
    # no marked fix: no arrow and no legend
    plain = render_text(_with(_finding()), Style(color=False))
    assert "→" not in plain and "  Fix:\n" in plain


def test_ssm_names_the_rows_a_cause_explains() -> None:
    text = render_ssm(_with(_cause_with_consequence()))
    assert "   explains: [row 3 agent-disconnected]" in text
    assert "TCP 443 to guardduty-data times out" not in text  # a label, not a second finding


def _root_report(name: str, monkeypatch: pytest.MonkeyPatch) -> Report:
    monkeypatch.chdir(TOP)
    host = Host.from_root(Path("tests/fixtures/roots") / name / "root", HostSettings())
    host = dataclasses.replace(host, euid=0, clock=FixedClock(NOW))
    return run_doctor(host, budget_s=30.0, started_at=NOW).report


def _blocks(ssm: str) -> List[List[str]]:
    blocks: List[List[str]] = []
    for line in ssm.splitlines()[1:]:
        if line[:1].isdigit():
            blocks.append([line])
        elif line.startswith("   ") and blocks:
            blocks[-1].append(line)
    return blocks


@pytest.mark.parametrize("name", ["centos7-unsupported", "al2-kernel-5.10-low-memlock"])
def test_a_real_run_renders_the_engines_fields(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    report = _root_report(name, monkeypatch)
    problems = [f for f in report.findings if f.severity != Severity.INFO]
    assert any(f.fix_step for f in problems), "no marked fix: the test would prove nothing"
    for f, block in zip(problems, _blocks(render_ssm(report))):
        fix = next(line for line in block if line.startswith("   fix: "))[len("   fix: ") :]
        # a long step is cut with "..."
        assert f.fix_step is None or f.fix_step.startswith(fix.removesuffix("...")), fix
        if f.decisive_evidence:
            shown = next(line for line in block if line.startswith("   evidence: "))
            shown = shown[len("   evidence: ") :]
            assert f.decisive_evidence.startswith(shown.removesuffix("...")), shown
    text = render_text(report, Style(color=False), width=80)
    for f in problems:
        if f.fix_step:
            n = f.steps.index(f.fix_step) + 1
            assert f"  → {n}. {f.fix_step.split()[0]}" in text, f.finding_id


def _untested_dns() -> CheckResult:
    return CheckResult(
        "network.guardduty_dns",
        "dns",
        "network",
        Status.SKIP,
        "prerequisite network.region is fail",
        skip_reason="BLOCKED_BY:network.region",
    )


def _imds_down() -> Finding:
    return Finding(
        "imds.unreachable",
        "IMDS does not answer",
        Severity.FAIL,
        "identity-document",
        ("PUT http://169.254.169.254/latest/api/token: timeout",),
        ("Check the instance's metadata options",),
        checks=("imds.reachable",),
    )


def test_an_untested_network_path_is_part_of_the_imds_finding() -> None:
    base = _with(_imds_down())
    report = replace(
        base,
        checks=(*base.checks, _untested_dns()),
        host=replace(base.host, region=None),
    )
    text = render_text(report, Style(color=False), width=80)
    flat = " ".join(text.split())
    block = flat[flat.index("✗ IMDS does not answer") : flat.index("Checks:")]
    assert (
        "Consequences (explained by this cause, not separate problems): • The network path to "
        "GuardDuty was not tested (network.dns, network.guardduty_dns): without IMDS there is "
        "no Region."
    ) in block
    assert "Re-run with --region REGION." in flat  # the banner stays
    assert text.splitlines()[0] == "✗ UNHEALTHY — 1 problem found"  # not a second problem
    # with a Region (the identity document or --region), nothing is untested
    assert "was not tested" not in render_text(replace(report, host=base.host))
    # without an IMDS failure the banner alone says it
    other = replace(report, findings=(_finding(),))
    assert "without IMDS there is no Region" not in render_text(other)
