"""Network and IMDS rules over hand-made results: authorization from the agent's logs, the Region
mismatch, and failing checks that a rule must explain (never the generic finding)."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

from hypothesis import given, settings
from hypothesis import strategies as st

from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import UNEXPLAINED, diagnose
from gd_doctor.facts.agent_logs import LogFacts, SignatureHit
from gd_doctor.facts.imds import ImdsReachableFacts
from gd_doctor.facts.network import HttpsFacts, HttpsProbeResult, RegionFacts
from gd_doctor.facts.platform import Ec2Facts
from gd_doctor.host.imds import ImdsReply
from gd_doctor.model import CheckResult, Finding, Severity, Status
from tests.hostkit import result

HOST = "guardduty-data.eu-west-1.amazonaws.com"
# One signature as agent.logs reports it (knowledge/log_signatures.json "access-denied").
DENIED_LINE = (
    "ERROR send telemetry: AccessDeniedException: not authorized to perform "
    "guardduty:SendSecurityTelemetry with an explicit deny in a service control policy"
)
# the agent.logs signature hit as agent.logs produces it (LogFacts.signatures)
DENIED = SignatureHit(
    "access-denied",
    "agent.log-access-denied",
    "no-agent-reporting",
    "GuardDuty refused the agent's telemetry",
    12,
    None,
    None,
    (DENIED_LINE,),
)


def _logs(*hits: SignatureHit) -> CheckResult:
    return result(
        "agent.logs", "warn", facts=LogFacts("/var/log/amzn-guardduty-agent", True, signatures=hits)
    )


REGION = RegionFacts("eu-west-1", "instance identity document", "eu-west-1", None, host=HOST)
AWS_REFUSAL = HttpsProbeResult(
    "10.0.1.5",
    None,
    "ok",
    tls="ok",
    http_status=403,
    aws_shaped=True,
    request_id_present=True,
    issuer_o="Amazon",
    error_type="AccessDeniedException",
    amazon_issuer=True,
)


def _findings(*results: CheckResult) -> List[Finding]:
    found = list(diagnose(results, ALL_RULES, debug=True).findings)  # a rule crash raises
    return found


def _ids(*results: CheckResult) -> List[str]:
    return [f.finding_id for f in _findings(*results)]


def _https(status: str, *probes: HttpsProbeResult) -> CheckResult:
    facts = HttpsFacts.from_probes(HOST, probes, None, agent_path="direct")
    return result("network.guardduty_https", status, facts=facts)


def test_access_denied_when_the_path_is_healthy() -> None:
    found = _findings(
        _logs(DENIED),
        result("network.region", "ok", facts=REGION),
        _https("ok", AWS_REFUSAL),
    )
    # the line names a service control policy: its own finding (tests/network/test_denial_kinds.py)
    (denied,) = [f for f in found if f.finding_id.startswith("network.access-denied")]
    assert denied.finding_id == "network.access-denied-scp" and DENIED_LINE in denied.evidence
    generic_line = "ERROR send telemetry: AccessDeniedException: status code: 403"
    generic = _findings(
        _logs(replace(DENIED, lines=(generic_line,))),
        result("network.region", "ok", facts=REGION),
        _https("ok", AWS_REFUSAL),
    )
    (plain,) = [f for f in generic if f.finding_id.startswith("network.access-denied")]
    assert plain.finding_id == "network.access-denied" and HOST in plain.title


def test_the_denial_line_is_the_decisive_evidence_not_the_https_probes() -> None:
    """The HTTPS check's lines come first in the evidence (evidence_from), but what proves the
    denial is the agent's own line, which the rule quotes."""
    https = replace(
        _https("ok", AWS_REFUSAL), evidence=(f"https://{HOST}/: HTTP 403, x-amzn-RequestId",)
    )
    found = _findings(_logs(DENIED), result("network.region", "ok", facts=REGION), https)
    (denied,) = [f for f in found if f.finding_id.startswith("network.access-denied")]
    assert denied.evidence[0].startswith(f"https://{HOST}/")
    assert denied.decisive_evidence == DENIED_LINE


def test_access_denied_waits_for_a_working_path() -> None:
    html = HttpsProbeResult(
        "10.0.1.5",
        None,
        "ok",
        tls="ok",
        http_status=200,
        issuer_o="Amazon",
        amazon_issuer=True,
        server="corp-gateway",
    )
    ids = _ids(_logs(DENIED), _https("fail", html))
    assert "network.access-denied" not in ids and "network.not-the-service" in ids
    assert UNEXPLAINED not in ids


def test_unsigned_probe_refusal_is_never_a_denial() -> None:
    assert _ids(_https("ok", AWS_REFUSAL)) == []


def test_region_mismatch() -> None:
    region = RegionFacts("us-west-2", "agent", "eu-west-1", "us-west-2", host=HOST)
    assert _ids(result("network.region", "ok", facts=region)) == ["network.region-mismatch"]


def test_failed_tls_handshake_is_explained() -> None:
    reset = HttpsProbeResult(
        "10.0.1.5", None, "ok", tls="failed", tls_detail="[SSL: UNEXPECTED_EOF_WHILE_READING] EOF"
    )
    (f,) = _findings(_https("fail", reset))
    assert f.finding_id == "network.tls-failed" and "UNEXPECTED_EOF" in f.title
    assert f.checks == ("network.guardduty_https",)


def test_no_tls_answer_in_time_is_explained() -> None:
    (f,) = _findings(_https("fail"))
    assert f.finding_id == "network.tls-failed" and "no TLS answer in time" in f.title


def test_a_bad_region_name_is_explained() -> None:
    bad = RegionFacts(
        None,
        "instance identity document",
        "x; rm -rf",
        None,
        problem="'x; rm -rf' is not a Region name",
    )
    (f,) = _findings(result("network.region", "fail", facts=bad))
    assert f.finding_id == "network.endpoint-name-invalid" and "rm -rf" in f.title


def test_imds_failing_off_ec2_is_the_platform_finding() -> None:
    silent = ImdsReachableFacts(
        "http://169.254.169.254",
        "unknown",
        None,
        "timeout",
        None,
        "timeout",
        reachable=False,
        disabled=False,
        usable=False,
    )
    found = _findings(
        result(
            "platform.ec2",
            "fail",
            facts=Ec2Facts(
                is_ec2=False,
                evidence_for=(),
                evidence_against=("sys_vendor is 'QEMU'",),
                sources={},
                hybrid_id=None,
                instance_id=None,
            ),
        ),
        result("imds.reachable", "fail", facts=silent),
    )
    assert [f.finding_id for f in found] == ["platform.not-ec2"]
    assert set(found[0].checks) >= {"platform.ec2", "imds.reachable"}


# --- property: every failing outcome of these checks is explained by a real rule -------------

_TLS = st.sampled_from(["ok", "untrusted", "name-mismatch", "expired", "failed", None])


@st.composite
def _probe(draw: st.DrawFn) -> HttpsProbeResult:
    tls = draw(_TLS)
    verified = tls == "ok"
    return HttpsProbeResult(
        f"10.0.1.{draw(st.integers(1, 254))}",
        None,
        "ok" if tls is not None else draw(st.sampled_from(["refused", "timeout"])),
        tls=tls,
        tls_detail="" if verified else draw(st.sampled_from(["", "handshake timed out"])),
        issuer_o=draw(st.sampled_from(["Amazon", "Corp TLS Inspection"])) if verified else None,
        amazon_issuer=draw(st.booleans()) if verified else None,
        http_status=draw(st.sampled_from([403, 200, None])) if verified else None,
        aws_shaped=draw(st.booleans()) if verified else False,
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(_probe(), max_size=4))
def test_every_failing_https_outcome_is_explained(probes: List[HttpsProbeResult]) -> None:
    from gd_doctor.checks.network_tls import _https_summary

    facts = HttpsFacts.from_probes(HOST, probes, None, agent_path="direct")
    status, summary = _https_summary(facts)
    res = result("network.guardduty_https", status.value, summary, facts=facts)
    found = _findings(res)
    assert UNEXPLAINED not in [f.finding_id for f in found]
    if status == Status.FAIL:
        assert any(f.severity == Severity.FAIL and res.check_id in f.checks for f in found)


_REPLY = st.builds(
    lambda method, status, problem: ImdsReply(method, "/", status, problem=problem),
    st.just("GET"),
    st.sampled_from([200, 401, 403, 404, 405, 503, None]),
    st.sampled_from([None, "timeout", "refused"]),
)


@settings(max_examples=200, deadline=None)
@given(_REPLY, _REPLY, st.sampled_from([True, False, None]))
def test_every_failing_imds_reachable_outcome_is_explained(
    put: ImdsReply, get: ImdsReply, is_ec2: Optional[bool]
) -> None:
    from gd_doctor.checks.imds import imds_reachable
    from tests.hostkit import make_host, run_one

    class Fixed:
        endpoint = "http://169.254.169.254"

        def fetch_token(self, *, timeout: float) -> ImdsReply:
            return ImdsReply("PUT", "/latest/api/token", put.status, problem=put.problem)

        def get(self, path: str, *, timeout: float, use_token: bool = True) -> ImdsReply:
            return ImdsReply("GET", path, get.status, problem=get.problem)

    with tempfile.TemporaryDirectory() as tmp:
        out = run_one(imds_reachable, make_host(Path(tmp), imds=Fixed()))
    assert isinstance(out.facts, ImdsReachableFacts)
    res = result("imds.reachable", out.status.value, out.summary, facts=out.facts)
    ec2_facts = Ec2Facts(is_ec2, (), ("dmi",) if is_ec2 is False else (), {}, None, None)
    ec2 = [] if is_ec2 is None else [result("platform.ec2", "ok", facts=ec2_facts)]
    found = _findings(res, *ec2)
    assert UNEXPLAINED not in [f.finding_id for f in found]
    if out.status == Status.FAIL:
        assert any(f.severity == Severity.FAIL and res.check_id in f.checks for f in found)
