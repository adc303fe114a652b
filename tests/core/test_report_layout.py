"""The text report's layout rules (issue 12): the banner of run-changing conditions, one
symbol per fact, counts that match what is listed, honest marks, wrapping and fact bullets."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import List

from gd_doctor.facts.platform import ContainerFacts, Ec2Facts
from gd_doctor.model import CheckResult, Finding, Report, Severity, SkipReason, Status, Verdict
from gd_doctor.report.conditions import run_conditions
from gd_doctor.report.style import Style
from gd_doctor.report.text import render_text, short_cause
from tests.core.test_report import _report


def _with_checks(report: Report, *extra: CheckResult) -> Report:
    return replace(report, checks=(*report.checks, *extra))


def _keys(report: Report) -> List[str]:
    return [c.key for c in run_conditions(report)]


NEEDS_ROOT = CheckResult(
    "agent.journal",
    "journal",
    "agent",
    Status.SKIP,
    "cannot read the journal: permission denied",
    skip_reason=f"{SkipReason.NEEDS_ROOT}:journal",
)


def test_not_root_banner_names_the_partial_checks_and_only_then_hints_root() -> None:
    base = _with_checks(_report(), NEEDS_ROOT)
    user = replace(base, host=replace(base.host, euid=1000))
    text = render_text(user, Style(), verbose=True)
    flat = " ".join(text.split())
    assert (
        "Not running as root (uid 1000): 1 check could not read what it needs (agent.journal)"
        in flat
    )
    assert "skipped: cannot read the journal: permission denied (run as root)" in flat
    # the banner comes before the problems
    assert text.index("Not running as root") < text.index("Problems, most likely")
    root = replace(base, host=replace(base.host, euid=0))
    as_root = render_text(root, Style(), verbose=True)
    assert "Not running as root" not in as_root and "(run as root)" not in as_root


def test_no_region_banner_when_the_network_path_was_not_tested() -> None:
    blocked = CheckResult(
        "network.guardduty_dns",
        "dns",
        "network",
        Status.SKIP,
        "prerequisite network.region is fail",
        skip_reason="BLOCKED_BY:network.region",
    )
    base = _with_checks(_report(), blocked)
    no_region = replace(base, host=replace(base.host, region=None))
    assert "no-region" in _keys(no_region)
    assert "Re-run with --region REGION." in " ".join(render_text(no_region).split())
    assert "no-region" not in _keys(base)  # the identity document gave a Region


def _ec2(is_ec2: object) -> CheckResult:
    facts = Ec2Facts(is_ec2, (), ("sys_vendor is 'QEMU'",), {}, None, None)  # type: ignore[arg-type]
    return CheckResult("platform.ec2", "ec2", "platform", Status.FAIL, "not EC2", facts=facts)


def test_not_ec2_banner_unless_imds_gave_an_identity_document() -> None:
    base = _with_checks(_report(), _ec2(False))
    assert "not-ec2" not in _keys(base)  # the identity document is EC2 evidence
    no_imds = replace(base, host=replace(base.host, instance_id=None))
    assert "not-ec2" in _keys(no_imds)
    assert "Not an EC2 instance (sys_vendor is 'QEMU')" in render_text(no_imds)
    unknown = _with_checks(
        replace(_report(), host=replace(base.host, instance_id=None)), _ec2(None)
    )
    assert "not-ec2" not in _keys(unknown)  # cannot tell is not "not EC2"


def test_container_and_offline_banners() -> None:
    inside = ContainerFacts.from_signals(("/.dockerenv exists (docker)",))
    res = CheckResult("platform.container", "c", "platform", Status.WARN, "in", facts=inside)
    report = _with_checks(_report(), res)
    assert "container" in _keys(report)
    assert "Inside a container (/.dockerenv exists (docker))" in " ".join(
        render_text(report).split()
    )
    offline = replace(_report(), host=replace(_report().host, live=False, root="/mnt/x"))
    assert _keys(offline)[0] == "offline"


def test_a_check_and_the_finding_it_feeds_carry_the_same_symbol() -> None:
    warned = CheckResult("ssm.agent_log", "log", "ssm", Status.WARN, "health ping failed")
    base = _with_checks(_report(), warned)
    fed = Finding("ssm.ping", "Health ping denied", Severity.FAIL, None, checks=("ssm.agent_log",))
    report = replace(base, findings=(*base.findings, fed))
    text = render_text(report, Style())
    assert re.search(r"✗ ssm\.agent_log\s+health ping failed", text)
    assert "! ssm.agent_log" not in text


def test_counts_in_first_and_last_lines_match_the_listed_problems() -> None:
    report = _report()
    text = render_text(report, Style())
    problems = text.split("Problems, most likely root cause first:\n")[1].split("\nChecks:")[0]
    fails = len(re.findall(r"^✗ ", problems, re.M))
    warns = len(re.findall(r"^! ", problems, re.M))
    first = text.splitlines()[0]
    last = " ".join(text.strip().split("\n\n")[-1].split())
    assert f"{fails} problem" in first and f"{warns} warning" in first
    assert f"{fails} problem" in last and f"{warns} warning" in last


def test_unknown_is_never_a_tick_and_shows_its_reason() -> None:
    report = replace(_report(), verdict=Verdict.UNKNOWN, verdict_reason="agent.package did not run")
    text = render_text(report, Style())
    assert text.startswith("? UNKNOWN — not proven healthy: agent.package did not run")
    assert (
        text.strip().split("\n\n")[-1].startswith("? UNKNOWN — not proven healthy: agent.package")
    )
    assert re.search(r"\? network\.tls", text)  # an ERROR check has its own mark
    assert "✓ network" not in text


def test_wrapping_keeps_words_whole_and_fits_the_width() -> None:
    long = Finding(
        "network.long",
        "guardduty-data.us-east-1.amazonaws.com resolves to public addresses "
        "(54.239.28.85, 52.94.133.131): no guardduty-data VPC endpoint with private DNS serves it",
        Severity.FAIL,
        "private-dns-attributes",
        ("getent hosts guardduty-data.us-east-1.amazonaws.com -> 54.239.28.85",),
        ("aws ec2 modify-vpc-attribute --vpc-id vpc-0a1b2c3d --enable-dns-support",),
    )
    report = replace(_report(), findings=(long,))
    for width in (50, 80, 120):
        text = render_text(report, Style(), width=width)
        for line in text.splitlines():
            assert len(line) <= width or len(line) - len(line.split()[-1]) <= 12, (width, line)
        words = set(text.split())
        for word in (*long.title.split(), *long.steps[0].split()):
            assert word in words, (width, word)  # never broken inside a word


def test_verbose_lists_facts_as_bullets_never_raw_json() -> None:
    inside = ContainerFacts.from_signals(("/.dockerenv exists (docker)",))
    res = CheckResult("platform.container", "c", "platform", Status.WARN, "in", facts=inside)
    text = render_text(_with_checks(_report(), res), Style(), verbose=True)
    assert "• in container: yes" in text
    assert "• signals: /.dockerenv exists (docker)" in text
    assert "data: {" not in text and '{"' not in text


def test_short_cause_is_a_few_words() -> None:
    assert short_cause("The SSM Agent is not installed, so GuardDuty's automated agent") == (
        "The SSM Agent is not installed"
    )
    assert len(short_cause("word " * 40)) <= 61
