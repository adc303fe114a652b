"""The typed values every layer shares: check outcomes, results, findings and the report.

All of them are frozen dataclasses whose fields are JSON-safe, so the JSON renderer can build a
report from them without any per-type code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

JSONValue = Union[None, bool, int, float, str, List[Any], Dict[str, Any]]


@dataclass(frozen=True)
class Facts:
    """Base of every check's typed facts (see :mod:`gd_doctor.facts`)."""


class Status(str, Enum):
    """The state of one check, in the order a reader cares about them."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


class Severity(str, Enum):
    """How much a finding matters: a FAIL explains Unhealthy, a WARN may, INFO is context."""

    FAIL = "fail"
    WARN = "warn"
    INFO = "info"


class Verdict(str, Enum):
    """The one-word answer at the top of every report."""

    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class SkipReason:
    """The fixed vocabulary of reasons a check did not run (prefixes of ``skip_reason``)."""

    BLOCKED_BY = "BLOCKED_BY"  # a prerequisite check did not pass: "BLOCKED_BY:<check id>"
    UNAVAILABLE_WITH_ROOT = "UNAVAILABLE_WITH_ROOT"  # needs the live host, --root was given
    NEEDS_ROOT = "NEEDS_ROOT"  # needs superuser rights to read what it reads
    NOT_APPLICABLE = "NOT_APPLICABLE"  # the host is not one the check is about
    NOT_SELECTED = "NOT_SELECTED"  # removed by --skip
    TIMED_OUT = "TIMED_OUT"  # the run's time budget ran out before the check started


@dataclass(frozen=True)
class Outcome:
    """What a check function returns; the runner stamps it into a :class:`CheckResult`."""

    status: Status
    summary: str
    evidence: Tuple[str, ...] = ()
    skip_reason: Optional[str] = None
    facts: Optional[Facts] = None


@dataclass(frozen=True)
class CheckResult:
    """One check's result as it appears in the report."""

    check_id: str
    title: str
    category: str
    status: Status
    summary: str
    data: Mapping[str, JSONValue] = field(default_factory=dict)
    evidence: Tuple[str, ...] = ()
    skip_reason: Optional[str] = None
    error: Optional[str] = None
    duration_s: float = 0.0
    timed_out: bool = False
    facts: Optional[Facts] = None

    @property
    def passed(self) -> bool:
        """True when dependants may build on this result (ok or warn)."""
        return self.status in (Status.OK, Status.WARN)


@dataclass(frozen=True)
class Finding:
    """A diagnosis: one cause, the coverage-issue row it explains, its evidence and its fix."""

    finding_id: str
    title: str
    severity: Severity
    issue_id: Optional[str]
    evidence: Tuple[str, ...] = ()
    steps: Tuple[str, ...] = ()
    doc: Optional[str] = None
    rank: int = 500
    checks: Tuple[str, ...] = ()
    # Check ids whose evidence the engine prepends (resolved from facts types by the rule).
    evidence_from: Tuple[str, ...] = field(default=(), compare=False, repr=False)
    # Findings this cause explains (the knowledge base's ``folds``): listed under it, not as
    # problems of their own; their checks are in ``checks`` and their evidence in ``evidence``.
    consequences: Tuple["Finding", ...] = ()
    # The step that fixes the cause (the others diagnose), and the evidence line that proves it.
    fix_step: Optional[str] = None
    decisive_evidence: Optional[str] = None
    # How each step applies (knowledge.StepSpec, parallel to ``steps``): the engine tailors the
    # steps to the host with them. Empty: steps not built from the knowledge base.
    step_specs: Tuple[Any, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class HostFacts:
    """What the report says about the machine it looked at."""

    hostname: Optional[str] = None
    root: str = "/"
    live: bool = True
    os: Optional[str] = None
    kernel: Optional[str] = None
    arch: Optional[str] = None
    instance_id: Optional[str] = None
    region: Optional[str] = None
    is_ec2: Optional[bool] = None
    account_id: Optional[str] = None
    agent_version: Optional[str] = None
    agent_state: Optional[str] = None  # the unit's ActiveState (SubState), live only
    management_type: Optional[str] = None  # automated | manual | none | unknown
    ssm_agent_version: Optional[str] = None
    # The effective uid gd-doctor ran as: checks that need root are partial below 0.
    euid: Optional[int] = None

    @property
    def is_root(self) -> Optional[bool]:
        """True when gd-doctor ran as root; None when the report does not say."""
        return None if self.euid is None else self.euid == 0


@dataclass(frozen=True)
class Report:
    """Everything a renderer needs; renderers never look at the host."""

    tool_version: str
    knowledge_date: str
    started_at: str
    duration_s: float
    verdict: Verdict
    host: HostFacts
    findings: Tuple[Finding, ...]
    checks: Tuple[CheckResult, ...]
    budget_s: float
    budget_exhausted: bool = False
    report_path: Optional[str] = None
    control_plane_issues: Tuple[str, ...] = ()
    verdict_reason: Optional[str] = None
