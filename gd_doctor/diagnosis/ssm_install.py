"""Diagnosis rules over GuardDuty's own install path through SSM: what the plugin's runs say
(row 12 "SSM Instance Association Execution Failed": platform mismatch, the recorded failure and
its cause), the manual install's missing steps (row 2 in manual mode), and the account-level rows
8-11, 13, 14 and 16 that only the AWS side shows. The SSM Agent's own health is in
:mod:`gd_doctor.diagnosis.ssm`."""

from __future__ import annotations

from typing import List, Optional, Tuple

from gd_doctor.diagnosis.base import (
    CheckRef,
    Rule,
    RuleOutput,
    RunResults,
    finding,
    rule,
)
from gd_doctor.diagnosis.ssm import ping_cause_known, ssm_ids
from gd_doctor.facts import producer_of
from gd_doctor.facts.imds import ImdsIdentityFacts
from gd_doctor.facts.network import RegionFacts
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
from gd_doctor.model import Status


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
            **ssm_ids(reg, identity),
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
        **ssm_ids(reg, identity),
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
        **ssm_ids(reg, identity),
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
    if ping_cause_known(log):
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
        **ssm_ids(reg, identity),
    )


def _yes_no(value: Optional[bool]) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


RULES: Tuple[Rule, ...] = (
    plugin_failure_cause,
    plugin_failed,
    manual_incomplete,
    control_plane_rows,
)
