"""Network rules over hand-made results: authorization from the agent's logs, Region mismatch."""

from __future__ import annotations

from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import diagnose
from tests.hostkit import result

HOST = "guardduty-data.eu-west-1.amazonaws.com"
DENIED = {"id": "access-denied", "cause": "...", "issue": "no-agent-reporting", "count": 12,
          "last_line": "ERROR send telemetry: AccessDeniedException: not authorized to perform "
                       "guardduty:SendSecurityTelemetry with an explicit deny in a service "
                       "control policy", "last_time": "2026-11-30T11:00:00Z"}


def _ids(*results: object) -> list:  # type: ignore[type-arg]
    return [f.finding_id for f in diagnose(results, ALL_RULES).findings]  # type: ignore[arg-type]


def test_access_denied_when_the_path_is_healthy() -> None:
    ids = _ids(result("agent.logs", "warn", signatures=[DENIED]),
               result("network.region", "ok", host=HOST, region="eu-west-1"),
               result("network.guardduty_https", "ok", service_answered=True, probes=[]))
    assert "network.access-denied" in ids


def test_access_denied_waits_for_a_working_path() -> None:
    ids = _ids(result("agent.logs", "warn", signatures=[DENIED]),
               result("network.guardduty_https", "fail", service_answered=False,
                      not_the_service=True, probes=[]))
    assert "network.access-denied" not in ids and "network.not-the-service" in ids


def test_unsigned_probe_refusal_is_never_a_denial() -> None:
    probe = {"address": "10.0.1.5", "tls": "ok", "http_status": 403, "aws_shaped": True,
             "error_type": "AccessDeniedException", "amazon_issuer": True}
    ids = _ids(result("network.guardduty_https", "ok", service_answered=True, probes=[probe]))
    assert ids == []


def test_region_mismatch() -> None:
    ids = _ids(result("network.region", "ok", agent_region="us-west-2",
                      instance_region="eu-west-1", host=HOST))
    assert ids == ["network.region-mismatch"]
