"""Typed facts of the SSM checks (:mod:`gd_doctor.checks.ssm`, :mod:`gd_doctor.checks.ssm_traces`).

One frozen dataclass per check, built from the parsers' typed values. "Could not read" is its
own value everywhere: ``installed=None`` with a ``problem``, ``health_ping_failing=None``,
``has_traces=None``; a rule never mistakes an unreadable file for an absent thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from gd_doctor.model import Facts
from gd_doctor.parsers.dpkg_status import DpkgPackage
from gd_doctor.parsers.ssm_state import DocumentRun, HybridRegistration, InstallState
from gd_doctor.parsers.systemctl_show import UnitState

# --- ssm.agent_installed -------------------------------------------------------------------------


@dataclass(frozen=True)
class SsmPackageFacts(Facts):
    """Whether and how amazon-ssm-agent is installed.

    ``installed`` is None when a package database could not be read (unreadable, cut at its
    size cap, rpm not runnable) and nothing else showed the agent; ``problem`` says which.
    """

    installed: Optional[bool]
    method: Optional[str] = None  # "snap" | "deb" | "rpm" | "files"
    version: Optional[str] = None
    unit: Optional[str] = None  # the systemd unit that runs it
    problem: Optional[str] = None

    @classmethod
    def from_dpkg(cls, pkg: DpkgPackage, unit: str) -> SsmPackageFacts:
        return cls(installed=pkg.installed, method="deb", version=pkg.version, unit=unit)

    @classmethod
    def found(cls, method: str, version: Optional[str], unit: str) -> SsmPackageFacts:
        return cls(installed=True, method=method, version=version, unit=unit)

    @classmethod
    def absent(cls) -> SsmPackageFacts:
        return cls(installed=False)

    @classmethod
    def unknown(cls, problems: Sequence[str]) -> SsmPackageFacts:
        return cls(installed=None, problem="; ".join(problems))


# --- ssm.agent_running ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SsmUnitFacts(Facts):
    """The SSM Agent's unit as systemd reports it; ``running`` None when systemd was not asked."""

    unit: str
    running: Optional[bool]
    load_state: Optional[str] = None
    active_state: Optional[str] = None
    sub_state: Optional[str] = None
    unit_file_state: Optional[str] = None
    result: Optional[str] = None
    n_restarts: Optional[int] = None
    problem: Optional[str] = None

    @classmethod
    def from_show(cls, unit: str, st: UnitState) -> SsmUnitFacts:
        return cls(
            unit=unit,
            running=st.load_state != "not-found" and st.active_state == "active",
            load_state=st.load_state,
            active_state=st.active_state,
            sub_state=st.sub_state,
            unit_file_state=st.unit_file_state,
            result=st.result,
            n_restarts=st.n_restarts,
        )

    @classmethod
    def unknown(cls, unit: str, problem: str) -> SsmUnitFacts:
        return cls(unit=unit, running=None, problem=problem)

    @property
    def state(self) -> str:
        return f"{self.active_state or '?'}/{self.sub_state or '?'}"


# --- ssm.registration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SsmRegistrationFacts(Facts):
    """How the SSM Agent is registered: as this EC2 instance (``i-...``) or a hybrid node.

    ``registered`` is None when the state directory could not be read, or when it holds another
    instance's state (a copied image): registered, but not as this instance.
    """

    registered: Optional[bool]
    kind: Optional[str] = None  # "ec2" | "hybrid"
    managed_instance_id: Optional[str] = None
    instance_dirs: Tuple[str, ...] = ()
    vault_entries: Tuple[str, ...] = ()  # names only: the files hold a private key
    hybrid_region: Optional[str] = None
    imds_instance_id: Optional[str] = None
    problem: Optional[str] = None

    @classmethod
    def from_state_dir(
        cls,
        dirs: Sequence[str],
        vault: Sequence[str],
        hybrid: Optional[HybridRegistration],
        imds_instance_id: Optional[str],
        problem: Optional[str] = None,
    ) -> SsmRegistrationFacts:
        """Classify the instance directories, the registration file and the vault's names."""
        ec2 = [d for d in dirs if d.startswith("i-")]
        mi = [d for d in dirs if d.startswith("mi-")]
        hybrid_id = hybrid.managed_instance_id if hybrid else None
        registered: Optional[bool] = False
        kind: Optional[str] = None
        mid: Optional[str] = None
        if hybrid_id or mi or "RegistrationKey" in vault:
            registered, kind, mid = True, "hybrid", hybrid_id or (mi[0] if mi else None)
        elif ec2:
            mid = imds_instance_id if imds_instance_id in ec2 else ec2[-1]
            foreign = imds_instance_id is not None and imds_instance_id not in ec2
            registered, kind = (None if foreign else True), "ec2"
        return cls(
            registered=registered,
            kind=kind,
            managed_instance_id=mid,
            instance_dirs=tuple(dirs),
            vault_entries=tuple(vault),
            hybrid_region=hybrid.region if hybrid else None,
            imds_instance_id=imds_instance_id,
            problem=problem,
        )

    @classmethod
    def unreadable(cls, problem: str) -> SsmRegistrationFacts:
        return cls(registered=None, problem=problem)

    @property
    def ec2_dirs(self) -> Tuple[str, ...]:
        return tuple(d for d in self.instance_dirs if d.startswith("i-"))

    @property
    def hybrid_on_ec2(self) -> bool:
        """Registered as a hybrid node on what is an EC2 instance."""
        return self.kind == "hybrid" and bool(self.imds_instance_id or self.ec2_dirs)

    @property
    def foreign_state(self) -> bool:
        """The only EC2 state here is another instance's (the image was copied)."""
        return (
            self.kind == "ec2"
            and self.imds_instance_id is not None
            and self.imds_instance_id not in self.ec2_dirs
        )


# --- ssm.agent_log -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogSource:
    """One place the SSM Agent logs to, and what reading it gave."""

    source: str  # a file path, or "journal"
    lines: Optional[int] = None
    truncated: bool = False
    binary: bool = False
    problem: Optional[str] = None


@dataclass(frozen=True)
class SignatureHit:
    """A known SSM Agent message (knowledge/ssm_signatures.json) seen within the window."""

    id: str
    cause: str
    count: int
    last_at: Optional[str]
    line: str  # the newest matching entry, redacted
    health_ping: bool = False
    host: Optional[str] = None  # named groups of the signature, redacted
    addr: Optional[str] = None
    platform: Optional[str] = None
    action: Optional[str] = None  # the denied IAM action (plugin-access-denied)


@dataclass(frozen=True)
class SignatureCount:
    """A known message seen only before the window."""

    id: str
    count: int


@dataclass(frozen=True)
class SsmLogFacts(Facts):
    """What the SSM Agent's log files and journal say within the window.

    ``health_ping_failing`` is None when no log could be read: unread is not "no errors".
    """

    sources: Tuple[LogSource, ...]
    health_ping_failing: Optional[bool]
    entries: int = 0
    signatures: Tuple[SignatureHit, ...] = ()
    older_signatures: Tuple[SignatureCount, ...] = ()
    last_entry_at: Optional[str] = None
    last_error_at: Optional[str] = None
    causes: Tuple[str, ...] = ()
    guardduty_lines: int = 0
    since: Optional[str] = None
    timestamps_assumed_utc: bool = True

    @classmethod
    def unread(cls, sources: Sequence[LogSource]) -> SsmLogFacts:
        return cls(sources=tuple(sources), health_ping_failing=None)

    def hit(self, signature_id: str) -> Optional[SignatureHit]:
        return next((h for h in self.signatures if h.id == signature_id), None)

    def older(self, signature_id: str) -> int:
        return next((c.count for c in self.older_signatures if c.id == signature_id), 0)

    @property
    def unreadable(self) -> Tuple[LogSource, ...]:
        """Log files that exist but could not be read (a missing file is not unreadable)."""
        return tuple(
            s
            for s in self.sources
            if s.problem and s.problem != "missing" and s.source != "journal"
        )


# --- ssm.guardduty_traces ------------------------------------------------------------------------


@dataclass(frozen=True)
class DistributorPackage:
    """GuardDuty's Distributor package directory and its ``installstate``."""

    path: str
    versions: Tuple[str, ...] = ()
    version: Optional[str] = None
    state: Optional[str] = None
    state_code: Optional[int] = None
    time: Optional[str] = None
    retry_count: Optional[int] = None
    last_installed_version: Optional[str] = None
    problem: Optional[str] = None  # installstate unreadable or corrupt
    raw: Optional[str] = None  # an excerpt of a corrupt installstate

    @classmethod
    def from_installstate(
        cls, path: str, versions: Sequence[str], st: InstallState
    ) -> DistributorPackage:
        return cls(
            path=path,
            versions=tuple(versions),
            version=st.version,
            state=st.state,
            state_code=st.state_code,
            time=st.time,
            retry_count=st.retry_count,
            last_installed_version=st.last_installed_version,
        )

    @property
    def failed(self) -> bool:
        return self.state == "Failed"


@dataclass(frozen=True)
class DocumentTrace:
    """One run (or stored copy) of GuardDuty's SSM document on this host."""

    source: str
    kind: str  # "document-state" | "orchestration" | "association-document"
    document: Optional[str]
    status: Optional[str]
    when: Optional[str]
    failed: bool
    output: str = ""  # redacted excerpt
    association_id: Optional[str] = None
    platform: Optional[str] = None  # the platform a "no manifest found" failure names

    @classmethod
    def from_run(cls, source: str, run: DocumentRun, output: str) -> DocumentTrace:
        """A document state file; ``output`` is the run's output as the check excerpted it."""
        return cls(
            source=source,
            kind="document-state",
            document=run.document_name,
            status=run.status,
            when=run.created,
            failed=run.failed,
            output=output,
            association_id=run.association_id,
        )


@dataclass(frozen=True)
class GuardDutyTracesFacts(Facts):
    """What GuardDuty's SSM plugin left on the host: its Distributor package, document runs,
    stored association documents, and lines in the SSM log.

    ``has_traces`` is None when the SSM state could not be read and the log names no trace.
    """

    has_traces: Optional[bool]
    state_readable: bool
    package: Optional[DistributorPackage] = None
    runs: Tuple[DocumentTrace, ...] = ()  # newest first, at most 10
    run_count: int = 0
    associations: Tuple[DocumentTrace, ...] = ()
    corrupt: Tuple[str, ...] = ()
    log_lines: int = 0
    log_failure: Optional[str] = None  # the SSM log line of a platform mismatch
    last_run_at: Optional[str] = None
    last_run_status: Optional[str] = None
    last_run_failed: Optional[bool] = None
    platform_failure: Optional[str] = None
    problem: Optional[str] = None

    @classmethod
    def from_state(
        cls,
        package: Optional[DistributorPackage],
        runs: Sequence[DocumentTrace],
        associations: Sequence[DocumentTrace],
        corrupt: Sequence[str],
        log_lines: int,
        log_hit: Optional[SignatureHit],
    ) -> GuardDutyTracesFacts:
        """From the readable SSM state; ``runs`` newest first, ``log_hit`` the log's
        "no manifest found" entry."""
        last = runs[0] if runs else None
        platform = (last.platform if last else None) or (log_hit.platform if log_hit else None)
        return cls(
            has_traces=bool(package or runs or log_lines or associations),
            state_readable=True,
            package=package,
            runs=tuple(runs[:10]),
            run_count=len(runs),
            associations=tuple(associations[:5]),
            corrupt=tuple(corrupt),
            log_lines=log_lines,
            log_failure=log_hit.line if log_hit else None,
            last_run_at=last.when if last else None,
            last_run_status=last.status if last else None,
            last_run_failed=last.failed if last else None,
            platform_failure=platform,
        )

    @classmethod
    def unreadable(cls, problem: str, log_lines: int, missing: bool) -> GuardDutyTracesFacts:
        """The SSM state directory could not be listed. Missing: no state, so no trace unless
        the log names one; otherwise unknown unless the log names one."""
        has: Optional[bool] = True if log_lines else (False if missing else None)
        return cls(has_traces=has, state_readable=False, log_lines=log_lines, problem=problem)

    @property
    def failed(self) -> bool:
        """The plugin's install failed: Distributor says so, the last run failed, or the SSM log
        shows the platform mismatch."""
        return bool(
            (self.package and self.package.failed) or self.last_run_failed or self.log_failure
        )


# --- ssm.management_type -------------------------------------------------------------------------


@dataclass(frozen=True)
class ManagementTypeFacts(Facts):
    """How the GuardDuty agent is managed, as the host sees it."""

    management_type: str  # "automated" | "manual" | "none" | "unknown"
    gd_agent_installed: Optional[bool]
    agent_source: str  # "agent.package" or "files": where gd_agent_installed came from
    ssm_traces: Optional[bool]

    @classmethod
    def classify(
        cls, traces: Optional[bool], gd_installed: Optional[bool], source: str
    ) -> ManagementTypeFacts:
        if traces is True:
            kind = "automated"
        elif traces is False and gd_installed is True:
            kind = "manual"
        elif traces is False and gd_installed is False:
            kind = "none"
        else:
            kind = "unknown"
        return cls(kind, gd_installed, source, traces)
