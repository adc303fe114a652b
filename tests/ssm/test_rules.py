"""The SSM rules over hand-made results: which finding, which coverage row, which evidence."""

from __future__ import annotations

from typing import Any, List

from gd_doctor.diagnosis import ssm as rules
from gd_doctor.diagnosis.base import Results
from gd_doctor.diagnosis.engine import diagnose
from gd_doctor.model import CheckResult, Finding, Verdict
from tests.hostkit import result

DENIED_LINE = ("2026-11-30 10:14:03 ERROR [ssm-agent-worker] Health ping failed with error - "
               "AccessDeniedException: ... ssm:UpdateInstanceInformation ...")


def _ids(*results: CheckResult) -> List[str]:
    return [f.finding_id for f in _findings(*results)]


def _findings(*results: CheckResult) -> List[Finding]:
    return list(diagnose(results, rules.RULES).findings)


def _base(mgmt: str = "none", **over: Any) -> List[CheckResult]:
    return [
        result("imds.identity", "ok", instance_id="i-0abcd1234ef567890", region="eu-west-1"),
        result("ssm.agent_installed", "ok", installed=True, unit="amazon-ssm-agent.service"),
        result("ssm.agent_running", "ok", running=True),
        result("ssm.registration", "ok", registered=True, kind="ec2"),
        result("ssm.agent_log", "ok", signatures={}, health_ping_failing=False),
        result("ssm.guardduty_traces", "ok", has_traces=mgmt == "automated"),
        result("ssm.management_type", "ok", management_type=mgmt,
               gd_agent_installed=mgmt in ("manual", "automated")),
    ]


def _replace(base: List[CheckResult], *new: CheckResult) -> List[CheckResult]:
    ids = {n.check_id for n in new}
    return [b for b in base if b.check_id not in ids] + list(new)


def test_healthy_automated_host_has_no_ssm_finding() -> None:
    assert _ids(*_base("automated")) == []


def test_missing_agent_is_waiting_for_ssm() -> None:
    rs = _replace(_base(), result("ssm.agent_installed", "warn", installed=False))
    (f,) = [f for f in _findings(*rs) if f.finding_id == "ssm.agent-missing"]
    assert f.issue_id == "waiting-for-ssm" and f.severity.value == "fail"
    assert any("eu-west-1" in s for s in f.steps)


def test_manual_mode_silences_the_ssm_path() -> None:
    rs = _replace(_base("manual"), result("ssm.agent_installed", "warn", installed=False),
                  result("ssm.agent_log", "fail", signatures={"health-ping-access-denied": {
                      "line": DENIED_LINE, "count": 3, "last_at": "x"}}))
    assert _ids(*rs) == []


def test_stopped_agent() -> None:
    rs = _replace(_base(), result("ssm.agent_running", "fail", running=False,
                                  active_state="inactive", sub_state="dead",
                                  unit="amazon-ssm-agent.service"))
    (f,) = _findings(*rs)
    assert f.finding_id == "ssm.agent-stopped" and "inactive/dead" in f.title
    assert "sudo systemctl enable --now amazon-ssm-agent.service" in f.steps[0]


def test_denied_health_ping_quotes_the_line_and_fills_the_instance() -> None:
    rs = _replace(_base(), result("ssm.agent_log", "fail", health_ping_failing=True, signatures={
        "health-ping-access-denied": {"line": DENIED_LINE, "count": 3, "last_at": "2026-11-30"},
        "health-ping-failed": {"line": DENIED_LINE, "count": 3, "last_at": "2026-11-30"}}))
    ids = _ids(*rs)
    assert ids == ["ssm.health-ping-denied"]  # no control-plane note: the cause is on the host
    f = _findings(*rs)[0]
    assert f.evidence[0].startswith(DENIED_LINE) and "3x" in f.evidence[0]
    assert any("Values=i-0abcd1234ef567890" in s for s in f.steps)


def test_each_cause_has_its_finding() -> None:
    sigs = {k: {"line": k, "count": 1, "last_at": "t"} for k in (
        "no-instance-role", "clock-skew", "endpoint-unreachable")}
    sigs["endpoint-unreachable"]["addr"] = "52.46.145.233:443"
    rs = _replace(_base(), result("ssm.agent_log", "fail", signatures=sigs))
    found = {f.finding_id: f for f in _findings(*rs)}
    assert set(found) == {"ssm.no-credentials", "ssm.clock-skew", "ssm.endpoint-unreachable"}
    assert "52.46.145.233:443" in found["ssm.endpoint-unreachable"].title


def test_network_endpoints_feed_the_endpoint_finding() -> None:
    endpoints = {
        "ssm": {"host": "ssm.eu-west-1.amazonaws.com", "addresses": ["10.0.1.5"], "tcp": "timeout"},
        "ssmmessages": {"host": "ssmmessages.eu-west-1.amazonaws.com", "addresses": [],
                        "tcp": "dns-failed"},
        "ec2messages": {"host": "ec2messages.eu-west-1.amazonaws.com", "addresses": ["10.0.1.6"],
                        "tcp": "ok"},
    }
    rs = [*_base(), result("network.ssm_endpoints", "fail", endpoints=endpoints)]
    (f,) = [f for f in _findings(*rs) if f.finding_id == "ssm.endpoint-unreachable"]
    assert f.evidence == ("ssm.eu-west-1.amazonaws.com: timeout (10.0.1.5)",
                          "ssmmessages.eu-west-1.amazonaws.com: dns-failed (no address)")


def test_network_facts_absent_or_malformed_are_tolerated() -> None:
    rs = [*_base("automated"), result("network.ssm_endpoints", "error", endpoints="garbage")]
    assert _ids(*rs) == []


def test_hybrid_registration_is_tied_to_the_identity_row() -> None:
    rs = _replace(_base(), result("ssm.registration", "warn", registered=True, kind="hybrid",
                                  managed_instance_id="mi-0123456789abcdef0"))
    f = next(f for f in _findings(*rs) if f.finding_id == "ssm.hybrid-registration")
    assert f.issue_id == "identity-document" and "mi-0123456789abcdef0" in f.title


def test_not_registered_only_without_a_known_cause() -> None:
    rs = _replace(_base(), result("ssm.registration", "warn", registered=False))
    assert "ssm.not-registered" in _ids(*rs)


def test_platform_failure_is_row_12_with_platform_facts() -> None:
    rs = _replace(
        _base("automated"),
        result("ssm.guardduty_traces", "fail", has_traces=True, last_run_failed=True,
               platform_failure="ubuntu, version 22.04, architecture arm64"),
        result("platform.os", "ok", pretty_name="Ubuntu 22.04.5 LTS"),
        result("platform.arch", "fail", "aarch64 not verified for this agent", machine="aarch64"),
    )
    (f,) = _findings(*rs)
    assert f.finding_id == "ssm.plugin-platform-unsupported"
    assert f.issue_id == "association-execution-failed"
    assert "ubuntu, version 22.04, architecture arm64" in f.title
    assert "platform.os: Ubuntu 22.04.5 LTS" in f.evidence
    assert "platform.arch: aarch64 not verified for this agent" in f.evidence


def test_other_plugin_failure() -> None:
    rs = _replace(_base("automated"), result("ssm.guardduty_traces", "fail", has_traces=True,
                                             last_run_at="2026-11-30T06:10:12Z"))
    (f,) = _findings(*rs)
    assert f.finding_id == "ssm.plugin-run-failed" and "2026-11-30T06:10:12Z" in f.title


def test_manual_mode_lists_the_missing_steps() -> None:
    rs = [*_base("manual"), result("agent.unit", "fail", "inactive (dead)"),
          result("network.guardduty_endpoint", "fail", "guardduty-data: timeout")]
    (f,) = _findings(*rs)
    assert f.finding_id == "ssm.manual-incomplete" and f.issue_id == "no-agent-reporting"
    assert "agent service not active; GuardDuty endpoint not reachable" in f.title


def test_control_plane_rows_when_ssm_is_healthy_but_guardduty_never_came() -> None:
    findings = _findings(*_base("none"))
    (f,) = findings
    assert f.finding_id == "ssm.control-plane-rows" and f.severity.value == "info"
    text = "\n".join(f.steps)
    assert "aws ssm list-associations --association-filter-list key=Name,value=" \
           "AmazonGuardDuty-ConfigureRuntimeMonitoringSsmPlugin" in text
    assert "describe-instance-associations-status --instance-id i-0abcd1234ef567890" in text
    assert '"Equals":["i-0abcd1234ef567890"]' in text
    assert diagnose(_base("none"), rules.RULES).verdict == Verdict.HEALTHY  # info only


def test_rules_survive_missing_results() -> None:
    view = Results([])
    for r in rules.RULES:
        out = r(view)
        assert out is None or list(out) == []


def test_no_identity_is_a_failing_ssm_cause_that_outranks_a_missing_agent() -> None:
    from gd_doctor.diagnosis import ALL_RULES
    from gd_doctor.diagnosis.engine import diagnose

    line = "2026-11-30 09:58:03 ERROR Agent failed to assume any identity"
    results = [
        result("ssm.agent_installed", "ok", installed=True),
        result("ssm.registration", "warn", registered=False, kind=None),
        result("ssm.agent_log", "fail", signatures={"no-identity": {
            "line": line, "count": 2, "last_at": "2026-11-30T09:58:03+00:00"}}),
        result("ssm.management_type", "ok", management_type="none"),
        result("agent.package", "fail", installed=False),
    ]
    found = diagnose(results, ALL_RULES).findings
    ids = [f.finding_id for f in found]
    assert "ssm.no-identity" in ids and "ssm.not-registered" not in ids
    top = found[0]
    assert top.finding_id == "ssm.no-identity" and top.issue_id == "waiting-for-ssm"
    assert any("Agent failed to assume any identity" in e for e in top.evidence)
