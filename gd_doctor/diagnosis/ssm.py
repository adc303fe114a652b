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
    CheckRef,
    Rule,
    RuleOutput,
    RunResults,
    finding,
    rule,
)
from gd_doctor.facts import producer_of
from gd_doctor.facts.imds import ImdsIdentityFacts
from gd_doctor.facts.network import RegionFacts, SsmEndpointsFacts
from gd_doctor.facts.platform import ArchFacts, KernelFacts, OsFacts
from gd_doctor.facts.ssm import (
    GuardDutyTracesFacts,
    ManagementTypeFacts,
    SignatureHit,
    SsmLogFacts,
    SsmPackageFacts,
    SsmRegistrationFacts,
    SsmUnitFacts,
)
from gd_doctor.knowledge import load
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


def _ids(
    reg: Optional[SsmRegistrationFacts], identity: Optional[ImdsIdentityFacts]
) -> Dict[str, str]:
    """Placeholders every SSM finding may use; unknown values stay readable placeholders."""
    instance = identity.instance_id if identity is not None else None
    region = identity.region if identity is not None else None
    instance = instance or (reg.managed_instance_id if reg else None)
    region = region or (reg.hybrid_region if reg else None)
    return {"instance_id": str(instance or "<instance-id>"), "region": str(region or "<region>")}


def _ssm_matters(mgmt: Optional[ManagementTypeFacts]) -> bool:
    """False when the GuardDuty agent is managed by hand: then SSM's health is not the cause."""
    return mgmt is None or mgmt.management_type != "manual"


def _ping_cause_known(log: Optional[SsmLogFacts]) -> bool:
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
    if pkg is None or pkg.installed is not False or not _ssm_matters(mgmt):
        return None
    return finding(
        "ssm.agent-missing",
        evidence=["amazon-ssm-agent is not installed"],
        checks=(SsmPackageFacts, ManagementTypeFacts),
        evidence_from=(SsmPackageFacts,),
        **_ids(reg, identity),
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
    if unit is None or unit.running is not False or not _ssm_matters(mgmt):
        return None
    return finding(
        "ssm.agent-stopped",
        evidence=[f"{unit.unit} is {unit.active_state or '?'} ({unit.sub_state or '?'})"],
        checks=(SsmUnitFacts,),
        evidence_from=(SsmUnitFacts,),
        state=unit.state,
        unit=unit.unit,
        **_ids(reg, identity),
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
    if log is None or not _ssm_matters(mgmt):
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
                **_ids(reg, identity),
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
                **_ids(reg, identity),
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
    if endpoints is None or not _ssm_matters(mgmt):
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
        **_ids(reg, identity),
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
    if reg is None or reg.registered is not False or not _ssm_matters(mgmt):
        return None
    if pkg is None or pkg.installed is not True:
        return None
    if _ping_cause_known(log):
        return None  # the health-ping finding already names the cause
    why = f" ({reg.problem})" if reg.problem else ""
    return finding(
        "ssm.not-registered",
        evidence=[f"no instance directory under /var/lib/amazon/ssm{why}"],
        checks=(SsmRegistrationFacts,),
        **_ids(reg, identity),
    )


def _platform_context(
    os_: Optional[OsFacts],
    kernel: Optional[KernelFacts],
    arch: Optional[ArchFacts],
    run: RunResults,
) -> Tuple[List[str], List[str]]:
    """Platform facts worth quoting next to a plugin failure, and the failing platform checks
    (the same cause: the plugin has no package for this platform)."""
    quoted = [
        (OsFacts, os_.pretty_name if os_ else None),
        (KernelFacts, kernel.release if kernel else None),
        (ArchFacts, arch.machine if arch else None),
    ]
    lines = [f"{producer_of(t)}: {value}" for t, value in quoted if value]
    failing = [
        res for res in run.results if res.category == "platform" and res.status == Status.FAIL
    ]
    lines += [f"{res.check_id}: {res.summary}" for res in failing]
    return lines, [res.check_id for res in failing]


# Signatures of the SSM Agent's log that name why GuardDuty's install failed (ssm_signatures.json
# id -> finding id), most specific first; one of them replaces the generic plugin-run-failed.
_PLUGIN_CAUSES: Tuple[Tuple[str, str], ...] = (
    ("plugin-access-denied", "ssm.plugin-access-denied"),
    ("distributor-document-name-regression", "ssm.distributor-document-name-regression"),
    ("distributor-locked", "ssm.distributor-locked"),
    ("package-manager-locked", "ssm.package-manager-locked"),
)


def distributor_buckets(region: Optional[str]) -> str:
    """The S3 buckets Distributor downloads from in ``region`` (endpoints.json)."""
    conf = load("endpoints.json")["s3_distributor"]["buckets"]
    name = region or "<region>"
    picked = [
        str(b["bucket"]).format(region=name)
        for b in conf
        if name not in b.get("except_regions", ())
        and ("only_regions" not in b or name in b["only_regions"])
    ]
    return ", ".join(picked)


def _plugin_cause(log: Optional[SsmLogFacts]) -> Optional[Tuple[SignatureHit, str]]:
    for sig, finding_id in _PLUGIN_CAUSES:
        hit = log.hit(sig) if log is not None else None
        if hit is not None:
            return hit, finding_id
    return None


@rule("ssm.plugin_failure_cause", reads=(SsmLogFacts, GuardDutyTracesFacts))
def plugin_failure_cause(
    log: Optional[SsmLogFacts], traces: Optional[GuardDutyTracesFacts]
) -> RuleOutput:
    """The SSM Agent's log names why the install failed: Distributor regression or lock, a
    package-manager lock (analogue), or a least-privilege denial of GuardDuty's document."""
    found = _plugin_cause(log)
    if found is None:
        return None
    hit, finding_id = found
    explains: Tuple[CheckRef, ...] = (SsmLogFacts,)
    if traces is not None and traces.failed:
        explains += (GuardDutyTracesFacts,)
    return finding(
        finding_id,
        evidence=[hit.line],
        checks=explains,
        evidence_from=(GuardDutyTracesFacts,),
        action=hit.action or "ssm:GetManifest",
    )


@rule(
    "ssm.plugin_failed",
    reads=(
        GuardDutyTracesFacts,
        SsmRegistrationFacts,
        OsFacts,
        KernelFacts,
        ArchFacts,
        RunResults,
        ImdsIdentityFacts,
        SsmLogFacts,
        RegionFacts,
    ),
)
def plugin_failed(
    traces: Optional[GuardDutyTracesFacts],
    reg: Optional[SsmRegistrationFacts],
    os_: Optional[OsFacts],
    kernel: Optional[KernelFacts],
    arch: Optional[ArchFacts],
    run: RunResults,
    identity: Optional[ImdsIdentityFacts],
    log: Optional[SsmLogFacts] = None,
    region: Optional[RegionFacts] = None,
) -> RuleOutput:
    """GuardDuty's SSM plugin ran and failed: platform mismatch, or another recorded failure."""
    if traces is None or not traces.failed:
        return None
    platform_lines, platform_checks = _platform_context(os_, kernel, arch, run)
    if traces.platform_failure:
        explains: Tuple[CheckRef, ...] = (GuardDutyTracesFacts, SsmLogFacts, *platform_checks)
        return finding(
            "ssm.plugin-platform-unsupported",
            evidence=platform_lines,
            checks=explains,
            evidence_from=(GuardDutyTracesFacts,),
            platform=traces.platform_failure,
            **_ids(reg, identity),
        )
    cause = _plugin_cause(log)
    if cause is not None and cause[1] != "ssm.package-manager-locked":
        return None  # ssm.plugin_failure_cause names the failure (a lock is only an analogue)
    return finding(
        "ssm.plugin-run-failed",
        evidence=platform_lines,
        checks=(GuardDutyTracesFacts, *platform_checks),
        evidence_from=(GuardDutyTracesFacts,),
        when=traces.last_run_at or "time unknown",
        s3_buckets=distributor_buckets(region.region if region is not None else None),
        **_ids(reg, identity),
    )


def _missing_manual_steps(run: RunResults) -> List[Tuple[str, str]]:
    """(check id, what is undone) for each documented manual step a failing check shows (the
    run's statuses and summaries: a rule about the run itself)."""
    missing = []
    unit = next((res for res in run.results if res.check_id == "agent.unit"), None)
    if unit is not None and unit.status == Status.FAIL:
        missing.append((unit.check_id, f"agent service not active ({unit.summary})"))
    for res in run.results:
        if (
            res.check_id.startswith("network.")
            and "guardduty" in res.check_id
            and res.status == Status.FAIL
        ):
            missing.append((res.check_id, f"GuardDuty endpoint not reachable ({res.summary})"))
    return missing


@rule(
    "ssm.manual_incomplete",
    reads=(ManagementTypeFacts, SsmRegistrationFacts, ImdsIdentityFacts, RunResults),
)
def manual_incomplete(
    mgmt: Optional[ManagementTypeFacts],
    reg: Optional[SsmRegistrationFacts],
    identity: Optional[ImdsIdentityFacts],
    run: RunResults,
) -> RuleOutput:
    """Manual mode (agent package, no SSM traces) with a documented manual step evidently undone."""
    if mgmt is None or mgmt.management_type != "manual":
        return None
    missing = _missing_manual_steps(run)
    if not missing:
        return None
    # The finding explains the failing checks it lists as undone steps.
    return finding(
        "ssm.manual-incomplete",
        evidence=[what for _, what in missing],
        checks=(ManagementTypeFacts, *(cid for cid, _ in missing)),
        missing="; ".join(what.split(" (")[0] for _, what in missing),
        **_ids(reg, identity),
    )


def _traces_line(traces: Optional[GuardDutyTracesFacts]) -> str:
    if traces is None:
        return "GuardDuty's SSM traces: not looked at"
    if traces.has_traces is None:
        return f"GuardDuty's SSM traces: unknown ({traces.problem or 'state unreadable'})"
    return "no trace of GuardDuty's SSM plugin on this host"


@rule(
    "ssm.control_plane_rows",
    reads=(
        ManagementTypeFacts,
        SsmPackageFacts,
        SsmUnitFacts,
        SsmLogFacts,
        GuardDutyTracesFacts,
        SsmRegistrationFacts,
        ImdsIdentityFacts,
    ),
)
def control_plane_rows(
    mgmt: Optional[ManagementTypeFacts],
    pkg: Optional[SsmPackageFacts],
    unit: Optional[SsmUnitFacts],
    log: Optional[SsmLogFacts],
    traces: Optional[GuardDutyTracesFacts],
    reg: Optional[SsmRegistrationFacts],
    identity: Optional[ImdsIdentityFacts],
) -> RuleOutput:
    """SSM-managed host, no GuardDuty agent, no GuardDuty SSM trace: the cause is account-side."""
    if mgmt is None or mgmt.management_type not in ("none", "unknown"):
        return None
    if mgmt.gd_agent_installed is True:
        return None
    if pkg is None or pkg.installed is not True or (unit is not None and unit.running is False):
        return None
    if _ping_cause_known(log):
        return None  # the health-ping finding explains why SSM never delivered the document
    evidence = [
        _traces_line(traces),
        f"management type: {mgmt.management_type} (GuardDuty agent installed: "
        f"{_yes_no(mgmt.gd_agent_installed)})",
    ]
    return finding(
        "ssm.control-plane-rows",
        evidence=evidence,
        checks=(GuardDutyTracesFacts, ManagementTypeFacts),
        **_ids(reg, identity),
    )


def _yes_no(value: Optional[bool]) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


RULES: Tuple[Rule, ...] = (
    agent_missing,
    agent_stopped,
    health_ping,
    endpoints_from_network,
    hybrid_registration,
    not_registered,
    plugin_failure_cause,
    plugin_failed,
    manual_incomplete,
    control_plane_rows,
)
