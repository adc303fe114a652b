"""Checks of the SSM path: the SSM Agent's package, unit and registration, and the management type.

With automated agent configuration GuardDuty installs its agent through Systems Manager: a State
Manager association runs the document ``AmazonGuardDuty-ConfigureRuntimeMonitoringSsmPlugin``,
which installs the Distributor package ``AmazonGuardDuty-RuntimeMonitoringSsmPlugin``. These
checks show, from the instance, what SSM did and did not do. They read:

* the package: ``/var/lib/dpkg/status``, ``rpm -q amazon-ssm-agent`` (live), the snap's
  ``/snap/amazon-ssm-agent/current/meta/snap.yaml`` or ``snap list amazon-ssm-agent`` (live),
  the unit files and ``/usr/bin/amazon-ssm-agent``;
* the unit: ``systemctl show amazon-ssm-agent.service`` (or the snap's unit; live only);
* ``/var/lib/amazon/ssm/`` (root only): instance directories (``i-...`` for EC2, ``mi-...`` for
  a hybrid activation), ``registration`` and the names in ``Vault/Store`` (never their content:
  they hold the registration's private key).

The SSM Agent's logs and GuardDuty's traces on the SSM side are read by
:mod:`gd_doctor.checks.ssm_traces`, whose checks sit between registration and management type.
"""

from __future__ import annotations

from typing import Optional, Tuple

from gd_doctor.checks import ssm_traces
from gd_doctor.checks.base import Check, Context, check, judged, not_applicable, skip
from gd_doctor.checks.ssm_common import (
    GD_DOCUMENT,
    NOT_BLOCKING,
    PACKAGE,
    SNAP_UNIT,
    SSM_ROOT,
    UNIT,
    guardduty_agent,
    needs_root,
)
from gd_doctor.facts.agent import PackageFacts
from gd_doctor.facts.imds import ImdsIdentityFacts
from gd_doctor.facts.ssm import (
    GuardDutyTracesFacts,
    ManagementTypeFacts,
    SsmPackageFacts,
    SsmRegistrationFacts,
    SsmUnitFacts,
)
from gd_doctor.host import timeouts
from gd_doctor.model import Outcome, SkipReason, Status
from gd_doctor.parsers.ssm_state import (
    HybridRegistration,
    StateParseError,
    instance_dirs,
    parse_registration,
)
from gd_doctor.parsers.systemctl_show import parse_systemctl_show

__all__ = ["CHECKS", "GD_DOCUMENT", "SNAP_UNIT", "SNAP_YAML", "SYSTEMCTL_PROPS", "UNIT"]

SNAP_YAML = "/snap/amazon-ssm-agent/current/meta/snap.yaml"
RPM_DBS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
BINARY = "/usr/bin/amazon-ssm-agent"
SYSTEMCTL_PROPS = "LoadState,ActiveState,SubState,UnitFileState,MainPID,NRestarts,Result"

# What the rpm probe found: (found, version, what could not be read).
Probe = Tuple[Optional[bool], Optional[str], Optional[str]]


# --- 1. Is the SSM Agent installed, and how? ----------------------------------------------------


METHOD = {"dpkg": "deb", "rpm": "rpm", "snap": "snap"}


@check(
    "ssm.agent_installed",
    title="SSM Agent (amazon-ssm-agent) is installed",
    category="ssm",
    facts=SsmPackageFacts,
)
def agent_installed(ctx: Context) -> Outcome:
    """Asks the host's one package layer (host/packages.py: /var/lib/dpkg/status, the rpm
    database read read-only, Ubuntu's snap) about amazon-ssm-agent, else looks for a bare
    binary and unit file (host/units.py); reports version and unit."""
    info = ctx.host.packages.query(PACKAGE, ("dpkg", "rpm", "snap"))
    if info.installed and info.manager in METHOD:
        method = METHOD[info.manager]
        unit = SNAP_UNIT if method == "snap" else UNIT
        version = info.full_version if method == "rpm" else info.version
        facts = SsmPackageFacts.found(method, version, unit)
        if method == "snap":
            ver = f" {version}" if version else ""
            return judged(Status.OK, f"amazon-ssm-agent{ver} installed as a snap", facts)
        summary = f"amazon-ssm-agent {version or '(version unknown)'} installed ({method})"
        return judged(Status.OK, summary, facts)
    binary = ctx.host.fs.exists(BINARY)
    unit_path = ctx.host.units.resolve(UNIT).fragment_path
    if binary or unit_path:
        where = unit_path or BINARY
        summary = f"amazon-ssm-agent present ({where}); package database not readable here"
        return judged(Status.OK, summary, SsmPackageFacts.found("files", None, UNIT))
    looked = f"no {BINARY} and no {UNIT} unit file"
    if info.installed is None and info.consulted:
        problems = [info.problem or "package database unreadable"]
        summary = f"cannot tell whether amazon-ssm-agent is installed: {problems[0]}"
        return judged(Status.WARN, summary, SsmPackageFacts.unknown(problems), (*problems, looked))
    return judged(
        Status.WARN,
        "amazon-ssm-agent is not installed: Systems Manager cannot manage this instance",
        SsmPackageFacts.absent(),
        (looked,),
    )


# --- 2. Is it running? --------------------------------------------------------------------------


@check(
    "ssm.agent_running",
    title="SSM Agent service is running",
    category="ssm",
    facts=SsmUnitFacts,
    reads=(SsmPackageFacts, PackageFacts),
    needs=("live",),
)
def agent_running(ctx: Context) -> Outcome:
    """Reads `systemctl show <unit> -p LoadState,ActiveState,SubState,...` for
    amazon-ssm-agent.service, or snap.amazon-ssm-agent.amazon-ssm-agent.service for the snap."""
    pkg = ctx.facts(SsmPackageFacts)
    if pkg is not None and pkg.installed is False:
        return not_applicable("amazon-ssm-agent is not installed")
    unit = (pkg.unit if pkg else None) or UNIT
    res = ctx.host.run.run(
        ["systemctl", "show", unit, "-p", SYSTEMCTL_PROPS], timeout=ctx.timeout(timeouts.COMMAND)
    )
    if res.problem == "not found":
        return skip(SkipReason.NOT_APPLICABLE, "no systemctl on this host (not systemd)")
    if res.problem:
        problem = f"could not ask systemd about {unit}: {res.problem}"
        return judged(Status.WARN, problem, SsmUnitFacts.unknown(unit, problem))
    st = parse_systemctl_show(res.stdout)
    facts = SsmUnitFacts.from_show(unit, st)
    if facts.running:
        return judged(Status.OK, f"{unit} is active ({st.sub_state or '?'})", facts)
    evidence: Tuple[str, ...] = ()
    if st.load_state == "not-found":
        summary = f"{unit} is not a known unit"
    else:
        summary = f"{unit} is {st.active_state or '?'} ({st.sub_state or '?'})"
        evidence = (
            f"{unit}: ActiveState={st.active_state or '?'} SubState={st.sub_state or '?'} "
            f"Result={st.result or '?'}",
        )
    if guardduty_agent(ctx)[0] is True:
        return judged(Status.WARN, summary + NOT_BLOCKING, facts, evidence)
    return judged(Status.FAIL, summary, facts, evidence)


# --- 3. Registration: EC2 instance or hybrid node? ----------------------------------------------


def _hybrid_registration(ctx: Context) -> Tuple[Optional[HybridRegistration], Optional[str]]:
    """The registration file's record, and why it could not be read (None when absent)."""
    read = ctx.host.fs.read(f"{SSM_ROOT}/registration", max_bytes=64 * 1024)
    if read.problem == "missing":
        return None, None
    if not read.ok or read.text is None:
        return None, f"registration file {read.problem or 'unreadable'}"
    try:
        return parse_registration(read.text), None
    except StateParseError as exc:
        return None, f"registration file unreadable: {exc}"


def _registration_outcome(facts: SsmRegistrationFacts) -> Outcome:
    evidence = tuple(f"{SSM_ROOT}/{d}/" for d in facts.instance_dirs)
    mid = facts.managed_instance_id
    if facts.kind == "hybrid":
        summary = f"registered as a hybrid node ({mid or 'mi-?'})"
        if facts.hybrid_on_ec2:
            return judged(
                Status.WARN, summary + " although this is an EC2 instance", facts, evidence
            )
        return judged(Status.OK, summary, facts, evidence)
    if facts.kind == "ec2":
        summary = f"works as EC2 instance {mid}"
        if facts.foreign_state:
            summary += (
                f" (state of another instance, not of {facts.imds_instance_id}: a copied image?)"
            )
            return judged(Status.WARN, summary, facts, evidence)
        return judged(Status.OK, summary, facts, evidence)
    why = f" ({facts.problem})" if facts.problem else ""
    summary = f"no instance directory under {SSM_ROOT}: the SSM Agent has not registered{why}"
    return judged(Status.WARN, summary, facts)


@check(
    "ssm.registration",
    title="SSM Agent is registered (EC2 instance or hybrid node)",
    category="ssm",
    facts=SsmRegistrationFacts,
    reads=(SsmPackageFacts, ImdsIdentityFacts),
    needs=("root-user",),
)
def registration(ctx: Context) -> Outcome:
    """Lists /var/lib/amazon/ssm: an i-... directory means the agent works as this EC2
    instance; mi-..., the registration file or Vault/Store/RegistrationKey mean a hybrid
    activation, which GuardDuty's EC2 coverage cannot use."""
    names = ctx.host.fs.listdir(SSM_ROOT)
    if names is None:
        problem = ctx.host.fs.listdir_problem(SSM_ROOT) or "unreadable"
        if needs_root(ctx, problem):
            return skip(SkipReason.NEEDS_ROOT, f"{SSM_ROOT} is readable by root only")
        pkg = ctx.facts(SsmPackageFacts)
        if pkg is not None and pkg.installed is False:
            return not_applicable("amazon-ssm-agent is not installed")
        if problem == "missing":
            facts = SsmRegistrationFacts(registered=False)
            return judged(
                Status.WARN, f"{SSM_ROOT} missing: the SSM Agent has never run here", facts
            )
        summary = f"cannot read {SSM_ROOT} ({problem}): registration unknown"
        return judged(Status.WARN, summary, SsmRegistrationFacts.unreadable(problem))
    hybrid, reg_problem = _hybrid_registration(ctx)
    # Names only: the vault's files hold the registration's private key and are never read.
    vault = ctx.host.fs.listdir(f"{SSM_ROOT}/Vault/Store") or []
    identity = ctx.facts(ImdsIdentityFacts)
    facts = SsmRegistrationFacts.from_state_dir(
        instance_dirs(names),
        vault,
        hybrid,
        identity.instance_id if identity is not None else None,
        reg_problem,
    )
    return _registration_outcome(facts)


# --- 6. Management type as the host sees it (4 and 5 are in ssm_traces) -------------------------


@check(
    "ssm.management_type",
    title="GuardDuty agent management type as the host sees it",
    category="ssm",
    facts=ManagementTypeFacts,
    reads=(GuardDutyTracesFacts, PackageFacts),
)
def management_type(ctx: Context) -> Outcome:
    """automated: GuardDuty's SSM plugin left traces; manual: the agent package is installed
    without them; none: neither; unknown: the SSM state could not be read."""
    traces = ctx.facts(GuardDutyTracesFacts)
    gd_installed, source = guardduty_agent(ctx)
    facts = ManagementTypeFacts.classify(
        traces.has_traces if traces else None, gd_installed, source
    )
    summaries = {
        "automated": "automated: GuardDuty's SSM plugin has run here",
        "manual": "manual: the GuardDuty agent is installed without SSM traces",
        "none": "none: no GuardDuty agent and no GuardDuty SSM trace",
    }
    if facts.ssm_traces is None:
        why = "unknown: the SSM state could not be read (run as root)"
    else:
        why = "unknown: cannot tell whether the GuardDuty agent is installed"
    return judged(Status.OK, summaries.get(facts.management_type, why), facts)


# Registry order: package, unit, registration, then the log and traces, then management type.
CHECKS: Tuple[Check, ...] = (
    agent_installed,
    agent_running,
    registration,
    *ssm_traces.CHECKS,
    management_type,
)
