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
    DPKG_STATUS,
    DPKG_STATUS_MAX_BYTES,
    GD_DOCUMENT,
    NOT_BLOCKING,
    PACKAGE,
    SNAP_UNIT,
    SSM_ROOT,
    UNIT,
    guardduty_agent,
    needs_root,
    unit_file,
)
from gd_doctor.facts.ssm import (
    GuardDutyTracesFacts,
    ManagementTypeFacts,
    SsmPackageFacts,
    SsmRegistrationFacts,
    SsmUnitFacts,
)
from gd_doctor.host import timeouts
from gd_doctor.model import Outcome, SkipReason, Status
from gd_doctor.parsers.dpkg_status import DpkgPackage, parse_dpkg_status_file
from gd_doctor.parsers.ssm_state import (
    HybridRegistration,
    StateParseError,
    instance_dirs,
    parse_registration,
    parse_snap_list,
    parse_snap_yaml_version,
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


def _deb_probe(ctx: Context) -> Tuple[Optional[DpkgPackage], Optional[str]]:
    """The agent's dpkg record, or why the status file could not answer (both None: no record)."""
    read = ctx.host.fs.read(DPKG_STATUS, max_bytes=DPKG_STATUS_MAX_BYTES)
    if read.problem == "missing":
        return None, None
    if not read.ok or read.text is None:
        return None, f"{DPKG_STATUS}: {read.problem or 'unreadable'}"
    pkg = parse_dpkg_status_file(read.text, PACKAGE)
    if pkg is None and read.truncated:
        # The stanza may lie beyond the cap: the part read is no proof of absence.
        cap = DPKG_STATUS_MAX_BYTES // (1024 * 1024)
        return None, f"{DPKG_STATUS} is larger than {cap} MiB: only its start was read"
    return pkg, None


def _rpm_probe(ctx: Context) -> Probe:
    if not any(ctx.host.fs.is_dir(p) for p in RPM_DBS):
        return False, None, None
    res = ctx.host.run.run(
        ["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", PACKAGE],
        timeout=ctx.timeout(timeouts.COMMAND),
    )
    if res.problem:  # no rpm binary, timed out, or --root: the rpm database is not read
        return None, None, f"the rpm database was not read (rpm -q: {res.problem})"
    if res.returncode == 0 and res.stdout.strip():
        return True, res.stdout.strip().splitlines()[0], None
    if "is not installed" in res.stdout:
        return False, None, None
    why = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
    return None, None, f"rpm -q {PACKAGE} failed: {why}"


def _snap_version(ctx: Context) -> Tuple[bool, Optional[str]]:
    if not ctx.host.fs.exists("/snap/amazon-ssm-agent"):
        return False, None
    text = ctx.host.fs.read_text(SNAP_YAML, max_bytes=64 * 1024)
    version = parse_snap_yaml_version(text) if text else None
    if version is None and ctx.host.live:
        res = ctx.host.run.run(["snap", "list", PACKAGE], timeout=ctx.timeout(timeouts.COMMAND))
        if res.ok:
            version = parse_snap_list(res.stdout, PACKAGE)
    return True, version


@check(
    "ssm.agent_installed",
    title="SSM Agent (amazon-ssm-agent) is installed",
    category="ssm",
    facts=SsmPackageFacts,
)
def agent_installed(ctx: Context) -> Outcome:
    """Finds amazon-ssm-agent as a deb (/var/lib/dpkg/status), an rpm (rpm -q, live), Ubuntu's
    snap (/snap/amazon-ssm-agent), or a bare binary and unit file; reports version and unit."""
    snap, snap_ver = _snap_version(ctx)
    if snap:
        ver = f" {snap_ver}" if snap_ver else ""
        facts = SsmPackageFacts.found("snap", snap_ver, SNAP_UNIT)
        return judged(Status.OK, f"amazon-ssm-agent{ver} installed as a snap", facts)
    pkg, deb_problem = _deb_probe(ctx)
    if pkg is not None and pkg.installed:
        summary = f"amazon-ssm-agent {pkg.version or '(version unknown)'} installed (deb)"
        return judged(Status.OK, summary, SsmPackageFacts.from_dpkg(pkg, UNIT))
    rpm, rpm_ver, rpm_problem = _rpm_probe(ctx)
    if rpm:
        summary = f"amazon-ssm-agent {rpm_ver or '(version unknown)'} installed (rpm)"
        return judged(Status.OK, summary, SsmPackageFacts.found("rpm", rpm_ver, UNIT))
    binary = ctx.host.fs.exists(BINARY)
    unit_path = unit_file(ctx, UNIT)
    if binary or unit_path:
        where = unit_path or BINARY
        summary = f"amazon-ssm-agent present ({where}); package database not readable here"
        return judged(Status.OK, summary, SsmPackageFacts.found("files", None, UNIT))
    problems = [p for p in (deb_problem, rpm_problem) if p]
    looked = f"no {BINARY} and no {UNIT} unit file"
    if problems:
        summary = f"cannot tell whether amazon-ssm-agent is installed: {'; '.join(problems)}"
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
    reads=(SsmPackageFacts,),
    after=("agent.package",),  # TODO(facts): cross-domain agent.package.installed
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
    reads=(SsmPackageFacts,),
    after=("imds.identity",),  # TODO(facts): cross-domain imds.identity.instance_id
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
    # TODO(facts): cross-domain imds.identity.instance_id
    imds_id = ctx.fact("imds.identity", "instance_id")
    facts = SsmRegistrationFacts.from_state_dir(
        instance_dirs(names),
        vault,
        hybrid,
        imds_id if isinstance(imds_id, str) else None,
        reg_problem,
    )
    return _registration_outcome(facts)


# --- 6. Management type as the host sees it (4 and 5 are in ssm_traces) -------------------------


@check(
    "ssm.management_type",
    title="GuardDuty agent management type as the host sees it",
    category="ssm",
    facts=ManagementTypeFacts,
    reads=(GuardDutyTracesFacts,),
    after=("agent.package",),  # TODO(facts): cross-domain agent.package.installed
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
