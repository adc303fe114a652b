"""Diagnosis rules over the ssm checks: why GuardDuty's SSM path did not install the agent.

Coverage rows they explain: 1 "Waiting for SSM notification" (SSM Agent missing, stopped,
unregistered, health ping denied, no credentials, clock skew, endpoints unreachable), 12 "SSM
Instance Association Execution Failed" (what the plugin's run says), 2 "No Agent Reporting" in
manual mode, and, as context, the account-level rows 8-11, 13, 14 and 16 that only the AWS side
shows. On a host whose GuardDuty agent is managed manually the SSM path does not matter, so the
SSM rules stay quiet there (and the SSM checks do not fail: see ``NOT_BLOCKING``).

Facts read from other domains, typed and each optional: :class:`ImdsIdentityFacts` (instance id,
Region), :class:`SsmEndpointsFacts` and the platform facts; the status of ``agent.unit``, of the
``network.guardduty_*`` checks and of the platform checks comes from :class:`RunResults` (rules
about the run itself).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from gd_doctor.diagnosis.base import (
    Rule,
    RuleOutput,
    finding,
    rule,
)
from gd_doctor.facts.imds import ImdsIdentityFacts
from gd_doctor.facts.network import SsmEndpointsFacts
from gd_doctor.facts.ssm import (
    ManagementTypeFacts,
    SignatureHit,
    SsmLogFacts,
    SsmPackageFacts,
    SsmRegistrationFacts,
    SsmUnitFacts,
)
from gd_doctor.model import Finding

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


def ssm_ids(
    reg: Optional[SsmRegistrationFacts], identity: Optional[ImdsIdentityFacts]
) -> Dict[str, str]:
    """Placeholders every SSM finding may use; unknown values stay readable placeholders."""
    instance = identity.instance_id if identity is not None else None
    region = identity.region if identity is not None else None
    instance = instance or (reg.managed_instance_id if reg else None)
    region = region or (reg.hybrid_region if reg else None)
    return {"instance_id": str(instance or "<instance-id>"), "region": str(region or "<region>")}


def ssm_matters(mgmt: Optional[ManagementTypeFacts]) -> bool:
    """False when the GuardDuty agent is managed by hand: then SSM's health is not the cause."""
    return mgmt is None or mgmt.management_type != "manual"


def ping_cause_known(log: Optional[SsmLogFacts]) -> bool:
    """The log shows the health ping failing (a finding of its own explains it)."""
    if log is None:
        return False
    return log.health_ping_failing is True or any(log.hit(sig) for sig, _ in _PING_FINDINGS)


@rule(
    "ssm.agent_missing",
    reads=(SsmPackageFacts, ManagementTypeFacts, SsmRegistrationFacts, ImdsIdentityFacts),
)
def agent_missing(
    pkg: Optional[SsmPackageFacts],
    mgmt: Optional[ManagementTypeFacts],
    reg: Optional[SsmRegistrationFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """No SSM Agent, and the GuardDuty agent is not managed by hand."""
    if pkg is None or pkg.installed is not False or not ssm_matters(mgmt):
        return None
    return finding(
        "ssm.agent-missing",
        evidence=["amazon-ssm-agent is not installed"],
        checks=(SsmPackageFacts, ManagementTypeFacts),
        evidence_from=(SsmPackageFacts,),
        **ssm_ids(reg, identity),
    )


@rule(
    "ssm.agent_stopped",
    reads=(SsmUnitFacts, ManagementTypeFacts, SsmRegistrationFacts, ImdsIdentityFacts),
)
def agent_stopped(
    unit: Optional[SsmUnitFacts],
    mgmt: Optional[ManagementTypeFacts],
    reg: Optional[SsmRegistrationFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """The SSM Agent's unit is not active."""
    if unit is None or unit.running is not False or not ssm_matters(mgmt):
        return None
    return finding(
        "ssm.agent-stopped",
        evidence=[f"{unit.unit} is {unit.active_state or '?'} ({unit.sub_state or '?'})"],
        checks=(SsmUnitFacts,),
        evidence_from=(SsmUnitFacts,),
        state=unit.state,
        unit=unit.unit,
        **ssm_ids(reg, identity),
    )


def _what_unreachable(hit: SignatureHit) -> str:
    if hit.host:
        return f"cannot resolve {hit.host}"
    if hit.addr:
        return f"no TCP connection to {hit.addr}"
    return "see the SSM Agent log"


@rule(
    "ssm.health_ping",
    reads=(SsmLogFacts, ManagementTypeFacts, SsmRegistrationFacts, ImdsIdentityFacts),
)
def health_ping(
    log: Optional[SsmLogFacts],
    mgmt: Optional[ManagementTypeFacts],
    reg: Optional[SsmRegistrationFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """The SSM Agent's log names why its health ping fails (IAM, credentials, clock, network)."""
    if log is None or not ssm_matters(mgmt):
        return None
    out: List[Finding] = []
    for sig_id, finding_id in _PING_FINDINGS:
        hit = log.hit(sig_id)
        if hit is None:
            continue
        line = f"{hit.line} ({hit.count}x, last {hit.last_at})"
        out.append(
            finding(
                finding_id,
                evidence=[line],
                checks=(SsmLogFacts,),
                what=_what_unreachable(hit),
                **ssm_ids(reg, identity),
            )
        )
    generic = log.hit("health-ping-failed")
    if not out and log.health_ping_failing and generic is not None:
        # A failing ping whose cause no signature names still fails the check: say so.
        line = f"{generic.line} ({generic.count}x, last {generic.last_at})"
        out.append(
            finding(
                "ssm.health-ping-failed",
                evidence=[line],
                checks=(SsmLogFacts,),
                **ssm_ids(reg, identity),
            )
        )
    return out


def _bad_endpoints(endpoints: SsmEndpointsFacts) -> List[str]:
    bad = []
    for name in _SSM_ENDPOINTS:
        ep = endpoints.get(name)
        if ep is not None and ep.tcp != "ok":
            addrs = ", ".join(ep.addresses) or "no address"
            bad.append(f"{ep.host or name}: {ep.tcp} ({addrs})")
    return bad


@rule(
    "ssm.endpoints_from_network",
    reads=(
        SsmPackageFacts,
        ManagementTypeFacts,
        SsmRegistrationFacts,
        ImdsIdentityFacts,
        SsmEndpointsFacts,
    ),
)
def endpoints_from_network(
    pkg: Optional[SsmPackageFacts],
    mgmt: Optional[ManagementTypeFacts],
    reg: Optional[SsmRegistrationFacts],
    identity: Optional[ImdsIdentityFacts],
    endpoints: Optional[SsmEndpointsFacts],
) -> RuleOutput:
    """The network checks could not reach ssm, ssmmessages or ec2messages on TCP 443."""
    if endpoints is None or not ssm_matters(mgmt):
        return None
    if pkg is not None and pkg.installed is False:
        return None  # agent-missing is the cause to fix first
    bad = _bad_endpoints(endpoints)
    if not bad:
        return None
    what = "; ".join(b.split(" (")[0] for b in bad)
    return finding(
        "ssm.endpoint-unreachable",
        evidence=bad,
        checks=("network.ssm_endpoints", SsmLogFacts),
        what=what,
        **ssm_ids(reg, identity),
    )


@rule("ssm.hybrid_registration", reads=(SsmRegistrationFacts,))
def hybrid_registration(reg: Optional[SsmRegistrationFacts]) -> RuleOutput:
    """The SSM Agent works as a hybrid node on what is an EC2 instance."""
    if reg is None or not reg.hybrid_on_ec2:
        return None
    mid = reg.managed_instance_id or "mi-?"
    return finding(
        "ssm.hybrid-registration",
        evidence=[f"registered as a hybrid node ({mid}) although this is an EC2 instance"],
        checks=(SsmRegistrationFacts,),
        evidence_from=(SsmRegistrationFacts,),
        managed_instance_id=mid,
    )


@rule(
    "ssm.not_registered",
    reads=(
        SsmRegistrationFacts,
        SsmPackageFacts,
        SsmLogFacts,
        ManagementTypeFacts,
        ImdsIdentityFacts,
    ),
)
def not_registered(
    reg: Optional[SsmRegistrationFacts],
    pkg: Optional[SsmPackageFacts],
    log: Optional[SsmLogFacts],
    mgmt: Optional[ManagementTypeFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """The agent is installed but left no registration, and its log does not say why."""
    if reg is None or reg.registered is not False or not ssm_matters(mgmt):
        return None
    if pkg is None or pkg.installed is not True:
        return None
    if ping_cause_known(log):
        return None  # the health-ping finding already names the cause
    why = f" ({reg.problem})" if reg.problem else ""
    return finding(
        "ssm.not-registered",
        evidence=[f"no instance directory under /var/lib/amazon/ssm{why}"],
        checks=(SsmRegistrationFacts,),
        **ssm_ids(reg, identity),
    )


RULES: Tuple[Rule, ...] = (
    agent_missing,
    agent_stopped,
    health_ping,
    endpoints_from_network,
    hybrid_registration,
    not_registered,
)
