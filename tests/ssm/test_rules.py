"""The SSM rules over hand-made facts: which finding, which coverage row, which evidence."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, List

from gd_doctor.diagnosis import ssm, ssm_install
from gd_doctor.diagnosis.engine import UNEXPLAINED, diagnose
from gd_doctor.facts.agent import PackageFacts
from gd_doctor.facts.imds import ImdsIdentityFacts
from gd_doctor.facts.network import SsmEndpoint, SsmEndpointsFacts
from gd_doctor.facts.platform import ArchFacts, OsFacts
from gd_doctor.facts.ssm import (
    GuardDutyTracesFacts,
    ManagementTypeFacts,
    SignatureHit,
    SsmLogFacts,
    SsmPackageFacts,
    SsmRegistrationFacts,
    SsmUnitFacts,
)
from gd_doctor.model import CheckResult, Finding, Verdict
from tests.hostkit import result
from tests.ssm.conftest import INSTANCE, fresult

DENIED_LINE = (
    "2026-11-30 10:14:03 ERROR [ssm-agent-worker] Health ping failed with error - "
    "AccessDeniedException: ... ssm:UpdateInstanceInformation ..."
)


# the SSM Agent's rules and those of GuardDuty's install path through SSM
SSM_RULES = (*ssm.RULES, *ssm_install.RULES)


def _ids(*results: CheckResult) -> List[str]:
    return [f.finding_id for f in _findings(*results)]


def _findings(*results: CheckResult) -> List[Finding]:
    return list(diagnose(results, SSM_RULES).findings)


def _hit(
    sig: str, line: str = "", count: int = 1, last_at: str = "t", **groups: Any
) -> SignatureHit:
    return SignatureHit(
        id=sig,
        cause="x",
        count=count,
        last_at=last_at,
        line=line or sig,
        health_ping=True,
        **groups,
    )


def _log(*hits: SignatureHit) -> SsmLogFacts:
    return SsmLogFacts(
        sources=(), health_ping_failing=bool(hits), signatures=hits, causes=("x",) if hits else ()
    )


def _mgmt(kind: str) -> ManagementTypeFacts:
    gd = kind in ("manual", "automated")
    return ManagementTypeFacts(kind, gd, "agent.package", kind == "automated")


def _base(mgmt: str = "none") -> List[CheckResult]:
    return [
        result(
            "imds.identity",
            "ok",
            facts=ImdsIdentityFacts(True, 200, None, instance_id=INSTANCE, region="eu-west-1"),
        ),
        fresult(SsmPackageFacts.found("deb", "3.3.1142.0-1", "amazon-ssm-agent.service")),
        fresult(
            SsmUnitFacts(
                unit="amazon-ssm-agent.service",
                running=True,
                active_state="active",
                sub_state="running",
            )
        ),
        fresult(SsmRegistrationFacts.from_state_dir([INSTANCE], [], None, INSTANCE)),
        fresult(_log()),
        fresult(GuardDutyTracesFacts(has_traces=mgmt == "automated", state_readable=True)),
        fresult(_mgmt(mgmt)),
    ]


def _replace(base: List[CheckResult], *new: CheckResult) -> List[CheckResult]:
    ids = {n.check_id for n in new}
    return [b for b in base if b.check_id not in ids] + list(new)


def test_healthy_automated_host_has_no_ssm_finding() -> None:
    assert _ids(*_base("automated")) == []


def test_missing_agent_is_waiting_for_ssm() -> None:
    rs = _replace(
        _base(),
        fresult(SsmPackageFacts.absent(), "warn", evidence=["no /usr/bin/amazon-ssm-agent"]),
    )
    (f,) = [f for f in _findings(*rs) if f.finding_id == "ssm.agent-missing"]
    assert f.issue_id == "waiting-for-ssm" and f.severity.value == "fail"
    assert any("eu-west-1" in s for s in f.steps)
    assert f.checks == ("ssm.agent_installed", "ssm.management_type")
    assert f.evidence[0] == "no /usr/bin/amazon-ssm-agent"


def test_unknown_install_is_not_a_missing_agent() -> None:
    unknown = SsmPackageFacts.unknown(["/var/lib/dpkg/status: permission denied"])
    rs = _replace(_base(), fresult(unknown, "warn"))
    assert "ssm.agent-missing" not in _ids(*rs)


def test_manual_mode_silences_the_ssm_path() -> None:
    # On a manual host the SSM checks warn instead of failing (the GuardDuty agent is installed,
    # see ssm_common.NOT_BLOCKING), and no SSM rule speaks.
    rs = _replace(
        _base("manual"),
        fresult(SsmPackageFacts.absent(), "warn"),
        fresult(_log(_hit("health-ping-access-denied", DENIED_LINE, 3)), "warn"),
        fresult(SsmUnitFacts(unit="amazon-ssm-agent.service", running=False), "warn"),
    )
    assert _ids(*rs) == []


def test_stopped_agent() -> None:
    unit = SsmUnitFacts(
        unit="amazon-ssm-agent.service", running=False, active_state="inactive", sub_state="dead"
    )
    rs = _replace(
        _base(), fresult(unit, "fail", evidence=["amazon-ssm-agent.service: ActiveState=inactive"])
    )
    (f,) = _findings(*rs)
    assert f.finding_id == "ssm.agent-stopped" and "inactive/dead" in f.title
    assert "sudo systemctl enable --now amazon-ssm-agent.service" in f.steps[0]
    assert f.checks == ("ssm.agent_running",)
    assert f.evidence == (
        "amazon-ssm-agent.service: ActiveState=inactive",
        "amazon-ssm-agent.service is inactive (dead)",
    )


def test_unknown_unit_state_is_not_a_stopped_agent() -> None:
    rs = _replace(
        _base(), fresult(SsmUnitFacts.unknown("amazon-ssm-agent.service", "timed out"), "warn")
    )
    assert _ids(*rs) == ["ssm.control-plane-rows"]


def test_denied_health_ping_quotes_the_line_and_fills_the_instance() -> None:
    log = _log(
        _hit("health-ping-access-denied", DENIED_LINE, 3, "2026-11-30"),
        _hit("health-ping-failed", DENIED_LINE, 3, "2026-11-30"),
    )
    rs = _replace(_base(), fresult(log, "fail"))
    ids = _ids(*rs)
    assert ids == ["ssm.health-ping-denied"]  # no control-plane note: the cause is on the host
    f = _findings(*rs)[0]
    assert f.evidence[0].startswith(DENIED_LINE) and "3x" in f.evidence[0]
    assert any(f"Values={INSTANCE}" in s for s in f.steps)


def test_each_cause_has_its_finding() -> None:
    log = _log(
        _hit("no-instance-role"),
        _hit("clock-skew"),
        _hit("endpoint-unreachable", addr="52.46.145.233:443"),
    )
    rs = _replace(_base(), fresult(log, "fail"))
    found = {f.finding_id: f for f in _findings(*rs)}
    assert set(found) == {"ssm.no-credentials", "ssm.clock-skew", "ssm.endpoint-unreachable"}
    assert "52.46.145.233:443" in found["ssm.endpoint-unreachable"].title


def test_network_endpoints_feed_the_endpoint_finding() -> None:
    # what network.ssm_endpoints produces (the rule read a dict shape it never had)
    endpoints = SsmEndpointsFacts(
        "eu-west-1",
        (
            SsmEndpoint("ssm", "ssm.eu-west-1.amazonaws.com", ("10.0.1.5",), "timeout"),
            SsmEndpoint("ssmmessages", "ssmmessages.eu-west-1.amazonaws.com", (), "dns-failed"),
            SsmEndpoint("ec2messages", "ec2messages.eu-west-1.amazonaws.com", ("10.0.1.6",), "ok"),
        ),
    )
    rs = [*_base(), result("network.ssm_endpoints", "fail", facts=endpoints)]
    (f,) = [f for f in _findings(*rs) if f.finding_id == "ssm.endpoint-unreachable"]
    assert f.evidence == (
        "ssm.eu-west-1.amazonaws.com: timeout (10.0.1.5)",
        "ssmmessages.eu-west-1.amazonaws.com: dns-failed (no address)",
    )
    assert "network.ssm_endpoints" in f.checks


def test_network_facts_absent_or_malformed_are_tolerated() -> None:
    rs = [*_base("automated"), result("network.ssm_endpoints", "error")]  # no facts
    assert _ids(*rs) == []


def test_hybrid_registration_is_tied_to_the_identity_row() -> None:
    reg = SsmRegistrationFacts.from_state_dir(
        ["mi-0123456789abcdef0"], ["RegistrationKey"], None, INSTANCE
    )
    rs = _replace(_base(), fresult(reg, "warn"))
    f = next(f for f in _findings(*rs) if f.finding_id == "ssm.hybrid-registration")
    assert f.issue_id == "identity-document" and "mi-0123456789abcdef0" in f.title


def test_hybrid_node_off_ec2_is_no_finding() -> None:
    reg = SsmRegistrationFacts.from_state_dir(["mi-0123456789abcdef0"], [], None, None)
    rs = _replace(_base("automated"), fresult(reg))
    assert _ids(*rs) == []


def test_not_registered_only_without_a_known_cause() -> None:
    rs = _replace(_base(), fresult(SsmRegistrationFacts(registered=False), "warn"))
    assert "ssm.not-registered" in _ids(*rs)
    unread = SsmRegistrationFacts.unreadable("not a directory")
    assert "ssm.not-registered" not in _ids(*_replace(_base(), fresult(unread, "warn")))


def test_platform_failure_is_row_12_with_platform_facts() -> None:
    traces = GuardDutyTracesFacts(
        has_traces=True,
        state_readable=True,
        last_run_failed=True,
        platform_failure="ubuntu, version 22.04, architecture arm64",
    )
    rs = _replace(
        _base("automated"),
        fresult(traces, "fail"),
        fresult(
            replace(
                OsFacts.unknown(hostname=None, matrix_date="2026-11-30", problems=()),
                pretty_name="Ubuntu 22.04.5 LTS",
            )
        ),
        fresult(
            ArchFacts(
                machine="aarch64",
                source="uname",
                supported=False,
                cpu_part="0xd0c",
                graviton="Graviton2",
                first_generation_graviton=False,
            ),
            "fail",
            "aarch64 not verified for this agent",
        ),
    )
    (f,) = _findings(*rs)
    assert f.finding_id == "ssm.plugin-platform-unsupported"
    assert f.issue_id == "association-execution-failed"
    assert "ubuntu, version 22.04, architecture arm64" in f.title
    assert "platform.os: Ubuntu 22.04.5 LTS" in f.evidence
    assert "platform.arch: aarch64" in f.evidence
    assert "platform.arch: aarch64 not verified for this agent" in f.evidence
    # Same cause: the finding explains the failing platform check it quotes.
    assert {"ssm.guardduty_traces", "platform.arch"} <= set(f.checks)


def test_other_plugin_failure() -> None:
    traces = GuardDutyTracesFacts(
        has_traces=True,
        state_readable=True,
        last_run_failed=True,
        last_run_at="2026-11-30T06:10:12Z",
    )
    rs = _replace(_base("automated"), fresult(traces, "fail"))
    (f,) = _findings(*rs)
    assert f.finding_id == "ssm.plugin-run-failed" and "2026-11-30T06:10:12Z" in f.title


def test_manual_mode_lists_the_missing_steps() -> None:
    rs = [
        *_base("manual"),
        result("agent.unit", "fail", "inactive (dead)"),
        result("network.guardduty_endpoint", "fail", "guardduty-data: timeout"),
    ]
    found = _findings(*rs)
    # A warning gives context, it explains no failure: the agent and network rules (not run
    # here) explain those two checks, so the SSM rules alone leave them to the generic finding.
    assert sorted(c for g in found if g.finding_id == UNEXPLAINED for c in g.checks) == [
        "agent.unit",
        "network.guardduty_endpoint",
    ]
    (f,) = [g for g in found if g.finding_id != UNEXPLAINED]
    assert f.finding_id == "ssm.manual-incomplete" and f.issue_id == "no-agent-reporting"
    assert "agent service not active; GuardDuty endpoint not reachable" in f.title
    assert f.checks == ("ssm.management_type", "agent.unit", "network.guardduty_endpoint")


def test_control_plane_rows_when_ssm_is_healthy_but_guardduty_never_came() -> None:
    findings = _findings(*_base("none"))
    (f,) = findings
    assert f.finding_id == "ssm.control-plane-rows" and f.severity.value == "info"
    text = "\n".join(f.steps)
    # the detected Region is filled into every aws command
    assert (
        "aws ssm list-associations --region eu-west-1 --association-filter-list key=Name,value="
        "AmazonGuardDuty-ConfigureRuntimeMonitoringSsmPlugin" in text
    )
    assert (
        f"describe-instance-associations-status --region eu-west-1 --instance-id {INSTANCE}" in text
    )
    assert f'"Equals":["{INSTANCE}"]' in text
    # Info only, but these results hold no agent.* evidence: the health proof cannot be made.
    diag = diagnose(_base("none"), SSM_RULES)
    assert diag.verdict == Verdict.UNKNOWN and "agent" in (diag.reason or "")


def test_no_control_plane_note_while_the_ssm_agent_is_stopped() -> None:
    unit = SsmUnitFacts(unit="amazon-ssm-agent.service", running=False)
    assert "ssm.control-plane-rows" not in _ids(*_replace(_base(), fresult(unit, "fail")))


def test_rules_survive_missing_results() -> None:
    for r in SSM_RULES:
        out = r.apply([])
        assert out is None or list(out) == []


def test_every_failing_ssm_check_is_explained() -> None:
    """No SSM FAIL check the SSM rules produce for reaches the generic unexplained finding."""
    unit = SsmUnitFacts(unit="amazon-ssm-agent.service", running=False, active_state="failed")
    traces = GuardDutyTracesFacts(has_traces=True, state_readable=True, last_run_failed=True)
    for new in (
        fresult(unit, "fail"),
        fresult(_log(_hit("health-ping-access-denied", DENIED_LINE)), "fail"),
        fresult(_log(_hit("no-identity")), "fail"),
        fresult(_log(_hit("health-ping-failed")), "fail"),
        fresult(traces, "fail"),
    ):
        ids = _ids(*_replace(_base("automated"), new))
        assert UNEXPLAINED not in ids and ids, new.check_id


def test_no_identity_is_a_failing_ssm_cause_that_outranks_a_missing_agent() -> None:
    from gd_doctor.diagnosis import ALL_RULES

    line = "2026-11-30 09:58:03 ERROR Agent failed to assume any identity"
    results = [
        fresult(SsmPackageFacts.found("deb", None, "amazon-ssm-agent.service")),
        fresult(SsmRegistrationFacts(registered=False), "warn"),
        fresult(_log(_hit("no-identity", line, 2, "2026-11-30T09:58:03+00:00")), "fail"),
        fresult(ManagementTypeFacts("none", False, "agent.package", False)),
        result("agent.package", "fail", facts=PackageFacts(False)),
    ]
    found = diagnose(results, ALL_RULES).findings
    ids = [f.finding_id for f in found]
    assert "ssm.no-identity" in ids and "ssm.not-registered" not in ids
    top = found[0]
    assert top.finding_id == "ssm.no-identity" and top.issue_id == "waiting-for-ssm"
    assert any("Agent failed to assume any identity" in e for e in top.evidence)
