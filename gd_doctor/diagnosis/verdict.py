"""The health proof: the positive evidence a ``healthy`` verdict needs.

No FAIL finding is not enough: a host where nothing could be read, or where the agent was never
installed, must not pass. :func:`prove_health` says whether the evidence shows

* that the agent is installed: the package database lists it, or its unit file is there;
* live, that its unit is active and running, and that the journal (readable) shows no restart
  loop in the window;
* offline (``--root``), the install alone: live state cannot be seen in a root.

It answers PROVEN, DISPROVEN (the evidence shows the opposite) or UNKNOWN (could not be read),
with a reason the report prints. Hosts outside the EC2 table's ordinary case (EKS nodes without
the EC2 agent, Bottlerocket's host container) get their proof from
:mod:`gd_doctor.diagnosis.scope` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional, Sequence

from gd_doctor.diagnosis.base import Results
from gd_doctor.model import CheckResult, Status


class ProofState(str, Enum):
    PROVEN = "proven"
    DISPROVEN = "disproven"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Proof:
    state: ProofState
    reason: Optional[str] = None


def agent_installed(r: Results) -> Proof:
    """Whether the EC2 host agent is installed (package database or unit file)."""
    return _installed(r)


def _installed(r: Results) -> Proof:
    installed = r.data("agent.package", "installed")
    unit_file = r.data("agent.unit_file", "path")
    masked = r.data("agent.unit_file", "masked") is True
    if installed is True:
        return Proof(ProofState.PROVEN, "the package database lists the agent")
    if isinstance(unit_file, str) and not masked and r.passed("agent.unit_file"):
        return Proof(ProofState.PROVEN, f"the agent's unit file {unit_file} is installed")
    if installed is False:
        return Proof(ProofState.DISPROVEN, "the agent is not installed")
    why = r.summary("agent.package") or "agent.package did not run"
    return Proof(ProofState.UNKNOWN, f"cannot tell whether the agent is installed: {why}")


def _running(r: Results) -> Proof:
    if not r.ran("agent.unit"):
        why = r.summary("agent.unit") or "agent.unit did not run"
        return Proof(ProofState.UNKNOWN, f"the agent's unit state is unknown: {why}")
    active, sub = r.data("agent.unit", "active_state"), r.data("agent.unit", "sub_state")
    if active != "active" or sub != "running":
        return Proof(ProofState.DISPROVEN, f"the agent's unit is {active} ({sub})")
    if not r.ran("agent.journal") or r.data("agent.journal", "unreadable"):
        why = r.summary("agent.journal") or "agent.journal did not run"
        return Proof(
            ProofState.UNKNOWN, f"cannot rule out a restart loop, the journal is unreadable: {why}"
        )
    if r.failed("agent.journal"):
        return Proof(ProofState.DISPROVEN, r.summary("agent.journal"))
    return Proof(ProofState.PROVEN, "the agent is installed, active and running, no restart loop")


def prove_health(results: Sequence[CheckResult], *, live: bool) -> Proof:
    """Whether the results prove a healthy agent (see the module docstring)."""
    r = Results(results)
    installed = _installed(r)
    if installed.state != ProofState.PROVEN or not live:
        return installed
    return _running(r)


def has_status(results: Sequence[CheckResult], status: Status) -> bool:
    return any(res.status == status for res in results)
