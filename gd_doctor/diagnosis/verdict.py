"""The health proof: the positive evidence a ``healthy`` verdict needs.

No FAIL finding is not enough: a host where nothing could be read, or where the agent was never
installed, must not pass. :func:`prove` says, from the agent's typed facts, whether they show

* that the agent is installed: the package database lists it, or its unit file is there and
  the program the unit's ``ExecStart=`` runs exists;
* live, that its unit is active and running, and that the journal (readable) shows no restart
  loop and no OOM kill in the window;
* offline (``--root``), the install alone: live state cannot be seen in a root.

It answers PROVEN, DISPROVEN (the evidence shows the opposite) or UNKNOWN (could not be read),
with a reason the report prints. Hosts outside the EC2 table's ordinary case (EKS nodes without
the EC2 agent, Bottlerocket's host container) get their proof from
:mod:`gd_doctor.diagnosis.scope` instead.
"""

from __future__ import annotations

from enum import Enum
from typing import Optional, Sequence, Type, TypeVar

from gd_doctor.facts import Facts, facts_of
from gd_doctor.facts.agent import PackageFacts, UnitFacts, UnitFileFacts
from gd_doctor.facts.agent_logs import JournalFacts
from gd_doctor.frozen import dataclass
from gd_doctor.model import CheckResult, Status

F = TypeVar("F", bound=Facts)


class ProofState(str, Enum):
    PROVEN = "proven"
    DISPROVEN = "disproven"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Proof:
    state: ProofState
    reason: Optional[str] = None


@dataclass(frozen=True)
class HealthEvidence:
    """The facts the proof reads (None: that check did not run or could not judge)."""

    package: Optional[PackageFacts] = None
    unit_file: Optional[UnitFileFacts] = None
    unit: Optional[UnitFacts] = None
    journal: Optional[JournalFacts] = None

    @classmethod
    def of(cls, results: Sequence[CheckResult]) -> "HealthEvidence":
        def first(kind: Type[F]) -> Optional[F]:
            return next((f for f in (facts_of(r.facts, kind) for r in results) if f), None)

        return cls(first(PackageFacts), first(UnitFileFacts), first(UnitFacts), first(JournalFacts))


def agent_installed(package: Optional[PackageFacts], unit_file: Optional[UnitFileFacts]) -> Proof:
    """Whether the EC2 host agent is installed (package database, or unit file and program);
    :mod:`gd_doctor.diagnosis.scope` and the node rules ask it on EKS nodes."""
    return _installed(HealthEvidence(package=package, unit_file=unit_file))


def _installed(ev: HealthEvidence) -> Proof:
    pkg, files = ev.package, ev.unit_file
    if pkg is not None and pkg.installed is True:
        return Proof(ProofState.PROVEN, f"the {pkg.manager} database lists the agent {pkg.version}")
    if files is not None and files.installs_agent:
        return Proof(
            ProofState.PROVEN,
            f"the agent's unit file {files.path} and the program it runs ({files.exec_path}) "
            "are installed",
        )
    if pkg is not None and pkg.installed is False:
        return Proof(ProofState.DISPROVEN, f"the agent is not installed ({pkg.source})")
    if files is not None and files.path and not files.masked and files.exec_exists is False:
        return Proof(
            ProofState.DISPROVEN,
            f"the agent's unit file {files.path} runs {files.exec_path}, which does not exist",
        )
    why = pkg.problem if pkg is not None and pkg.problem else "agent.package did not run"
    return Proof(ProofState.UNKNOWN, f"cannot tell whether the agent is installed: {why}")


def _running(ev: HealthEvidence) -> Proof:
    unit, journal = ev.unit, ev.journal
    if unit is None:
        return Proof(ProofState.UNKNOWN, "the agent's unit state is unknown (agent.unit)")
    if not unit.running:
        return Proof(
            ProofState.DISPROVEN, f"the agent's unit is {unit.active_state} ({unit.sub_state})"
        )
    if journal is None or not journal.readable:
        why = journal.unreadable if journal is not None else "agent.journal did not run"
        return Proof(
            ProofState.UNKNOWN, f"cannot rule out a restart loop, the journal is unreadable: {why}"
        )
    if journal.restart_loop:
        return Proof(
            ProofState.DISPROVEN,
            f"restart loop in the journal: {journal.failed_exits} failed exits",
        )
    if journal.oom_kills:
        return Proof(
            ProofState.DISPROVEN, f"the journal shows {journal.oom_kills} OOM kill(s) of the agent"
        )
    return Proof(ProofState.PROVEN, "the agent is installed, active and running, no restart loop")


def prove(evidence: HealthEvidence, *, live: bool) -> Proof:
    """Whether the agent's facts prove a healthy agent (see the module docstring)."""
    installed = _installed(evidence)
    if installed.state != ProofState.PROVEN or not live:
        return installed
    return _running(evidence)


def prove_health(results: Sequence[CheckResult], *, live: bool) -> Proof:
    """Whether the results' typed facts prove a healthy agent."""
    return prove(HealthEvidence.of(results), live=live)


def has_status(results: Sequence[CheckResult], status: Status) -> bool:
    return any(res.status == status for res in results)
