"""Diagnosis rules over the ssm checks: why GuardDuty's SSM path did not install the agent.

Coverage rows they explain: 1 "Waiting for SSM notification" (SSM Agent missing, stopped,
unregistered, health ping denied, no credentials, clock skew, endpoints unreachable), 12 "SSM
Instance Association Execution Failed" (what the plugin's run says), 2 "No Agent Reporting" in
manual mode, and, as context, the account-level rows 8-11, 13, 14 and 16 that only the AWS side
shows. On a host whose GuardDuty agent is managed manually the SSM path does not matter, so the
SSM rules stay quiet there.

Facts read from other domains, each optional: ``imds.identity`` (instance_id, region),
``network.ssm_endpoints`` (endpoints -> tcp), ``platform.os``/``platform.arch``/``platform.kernel``,
``agent.unit`` and the ``network.guardduty_*`` checks.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from gd_doctor.diagnosis.base import Results, Rule, RuleOutput, finding, rule
from gd_doctor.model import Finding, Status

# Log signature -> finding, most specific first (ssm_signatures.json ids).
_PING_FINDINGS: Tuple[Tuple[str, str], ...] = (
    ("health-ping-access-denied", "ssm.health-ping-denied"),
    ("no-instance-role", "ssm.no-credentials"),
    ("clock-skew", "ssm.clock-skew"),
    ("no-identity", "ssm.no-identity"),
    ("endpoint-dns-failed", "ssm.endpoint-unreachable"),
    ("endpoint-unreachable", "ssm.endpoint-unreachable"),
)
_SSM_ENDPOINTS = ("ssm", "ssmmessages", "ec2messages")


def _ids(r: Results) -> Dict[str, str]:
    """Placeholders every SSM finding may use; unknown values stay readable placeholders."""
    instance = r.data("imds.identity", "instance_id") or r.data(
        "ssm.registration", "managed_instance_id"
    )
    region = r.data("imds.identity", "region") or r.data("ssm.registration", "hybrid_region")
    return {"instance_id": str(instance or "<instance-id>"), "region": str(region or "<region>")}


def _mgmt(r: Results) -> Optional[str]:
    value = r.data("ssm.management_type", "management_type")
    return str(value) if value is not None else None


def _ssm_matters(r: Results) -> bool:
    """False when the GuardDuty agent is managed by hand: then SSM's health is not the cause."""
    return _mgmt(r) != "manual"


def _signatures(r: Results) -> Mapping[str, Any]:
    sigs = r.data("ssm.agent_log", "signatures", {})
    return sigs if isinstance(sigs, dict) else {}


@rule("ssm.agent_missing")
def agent_missing(r: Results) -> RuleOutput:
    """No SSM Agent, and the GuardDuty agent is not managed by hand."""
    if r.data("ssm.agent_installed", "installed") is not False or not _ssm_matters(r):
        return None
    return finding("ssm.agent-missing", evidence=[r.summary("ssm.agent_installed")],
                   checks=["ssm.agent_installed", "ssm.management_type"], **_ids(r))


@rule("ssm.agent_stopped")
def agent_stopped(r: Results) -> RuleOutput:
    """The SSM Agent's unit is not active."""
    if not r.failed("ssm.agent_running") or not _ssm_matters(r):
        return None
    active = r.data("ssm.agent_running", "active_state") or "?"
    sub = r.data("ssm.agent_running", "sub_state") or "?"
    unit = r.data("ssm.agent_running", "unit") or "amazon-ssm-agent"
    evidence = [*r.evidence("ssm.agent_running"), r.summary("ssm.agent_running")]
    return finding("ssm.agent-stopped", evidence=evidence, checks=["ssm.agent_running"],
                   state=f"{active}/{sub}", unit=unit, **_ids(r))


@rule("ssm.health_ping")
def health_ping(r: Results) -> RuleOutput:
    """The SSM Agent's log names why its health ping fails (IAM, credentials, clock, network)."""
    if not _ssm_matters(r):
        return None
    sigs = _signatures(r)
    out: List[Finding] = []
    for sig_id, finding_id in _PING_FINDINGS:
        hit = sigs.get(sig_id)
        if not isinstance(hit, dict):
            continue
        line = f"{hit.get('line', '')} ({hit.get('count', 1)}x, last {hit.get('last_at')})"
        params = dict(_ids(r))
        params["what"] = _what_unreachable(hit)
        out.append(finding(finding_id, evidence=[line], checks=["ssm.agent_log"], **params))
    return out


def _what_unreachable(hit: Mapping[str, Any]) -> str:
    if hit.get("host"):
        return f"cannot resolve {hit['host']}"
    if hit.get("addr"):
        return f"no TCP connection to {hit['addr']}"
    return "see the SSM Agent log"


@rule("ssm.endpoints_from_network")
def endpoints_from_network(r: Results) -> RuleOutput:
    """The network checks could not reach ssm, ssmmessages or ec2messages on TCP 443."""
    endpoints = r.data("network.ssm_endpoints", "endpoints")
    if not isinstance(endpoints, dict) or not _ssm_matters(r):
        return None
    if r.data("ssm.agent_installed", "installed") is False:
        return None  # agent-missing is the cause to fix first
    bad = []
    for name in _SSM_ENDPOINTS:
        ep = endpoints.get(name)
        if isinstance(ep, dict) and ep.get("tcp") not in (None, "ok"):
            addrs = ", ".join(str(a) for a in ep.get("addresses") or []) or "no address"
            bad.append(f"{ep.get('host') or name}: {ep.get('tcp')} ({addrs})")
    if not bad:
        return None
    what = "; ".join(b.split(" (")[0] for b in bad)
    return finding("ssm.endpoint-unreachable", evidence=bad,
                   checks=["network.ssm_endpoints", "ssm.agent_log"], what=what, **_ids(r))


@rule("ssm.hybrid_registration")
def hybrid_registration(r: Results) -> RuleOutput:
    """The SSM Agent works as a hybrid node on what is an EC2 instance."""
    if r.data("ssm.registration", "kind") != "hybrid" or not r.warned("ssm.registration"):
        return None
    return finding("ssm.hybrid-registration",
                   evidence=[r.summary("ssm.registration"), *r.evidence("ssm.registration")],
                   checks=["ssm.registration"],
                   managed_instance_id=r.data("ssm.registration", "managed_instance_id") or "mi-?")


@rule("ssm.not_registered")
def not_registered(r: Results) -> RuleOutput:
    """The agent is installed but left no registration, and its log does not say why."""
    if r.data("ssm.registration", "registered") is not False or not _ssm_matters(r):
        return None
    if r.data("ssm.agent_installed", "installed") is not True:
        return None
    if any(sig in _signatures(r) for sig, _ in _PING_FINDINGS):
        return None  # the health-ping finding already names the cause
    return finding("ssm.not-registered", evidence=[r.summary("ssm.registration")],
                   checks=["ssm.registration"], **_ids(r))


def _platform_evidence(r: Results) -> List[str]:
    facts = [
        ("platform.os", "pretty_name"), ("platform.kernel", "release"),
        ("platform.arch", "machine"),
    ]
    lines = [f"{cid}: {r.data(cid, key)}" for cid, key in facts if r.data(cid, key)]
    lines += [f"{res.check_id}: {res.summary}" for res in r.all()
              if res.check_id.startswith("platform.") and res.status == Status.FAIL]
    return lines


@rule("ssm.plugin_failed")
def plugin_failed(r: Results) -> RuleOutput:
    """GuardDuty's SSM plugin ran and failed: platform mismatch, or another recorded failure."""
    if not r.failed("ssm.guardduty_traces"):
        return None
    evidence = [*r.evidence("ssm.guardduty_traces")]
    platform = r.data("ssm.guardduty_traces", "platform_failure")
    if platform:
        return finding("ssm.plugin-platform-unsupported",
                       evidence=evidence + _platform_evidence(r),
                       checks=["ssm.guardduty_traces", "ssm.agent_log"],
                       platform=platform, **_ids(r))
    when = r.data("ssm.guardduty_traces", "last_run_at") or "time unknown"
    return finding("ssm.plugin-run-failed", evidence=evidence + _platform_evidence(r),
                   checks=["ssm.guardduty_traces"], when=when, **_ids(r))


def _missing_manual_steps(r: Results) -> List[str]:
    missing = []
    for unit_check in ("agent.unit", "agent.unit_state"):
        unit = r.get(unit_check)
        if unit is not None and unit.status == Status.FAIL:
            missing.append(f"agent service not active ({unit.summary})")
    for res in r.all():
        if (res.check_id.startswith("network.") and "guardduty" in res.check_id
                and res.status == Status.FAIL):
            missing.append(f"GuardDuty endpoint not reachable ({res.summary})")
    return missing


@rule("ssm.manual_incomplete")
def manual_incomplete(r: Results) -> RuleOutput:
    """Manual mode (agent package, no SSM traces) with a documented manual step evidently undone."""
    if _mgmt(r) != "manual":
        return None
    missing = _missing_manual_steps(r)
    if not missing:
        return None
    return finding("ssm.manual-incomplete", evidence=missing, checks=["ssm.management_type"],
                   missing="; ".join(m.split(" (")[0] for m in missing), **_ids(r))


@rule("ssm.control_plane_rows")
def control_plane_rows(r: Results) -> RuleOutput:
    """SSM-managed host, no GuardDuty agent, no GuardDuty SSM trace: the cause is account-side."""
    if _mgmt(r) not in ("none", "unknown"):
        return None
    if r.data("ssm.management_type", "gd_agent_installed") is True:
        return None
    if r.data("ssm.agent_installed", "installed") is not True or r.failed("ssm.agent_running"):
        return None
    if r.data("ssm.agent_log", "health_ping_failing") is True or any(
        sig in _signatures(r) for sig, _ in _PING_FINDINGS
    ):
        return None  # the health-ping finding explains why SSM never delivered the document
    evidence = [r.summary("ssm.guardduty_traces"), r.summary("ssm.management_type")]
    return finding("ssm.control-plane-rows", evidence=[e for e in evidence if e],
                   checks=["ssm.guardduty_traces", "ssm.management_type"], **_ids(r))


RULES: Tuple[Rule, ...] = (
    agent_missing,
    agent_stopped,
    health_ping,
    endpoints_from_network,
    hybrid_registration,
    not_registered,
    plugin_failed,
    manual_incomplete,
    control_plane_rows,
)
