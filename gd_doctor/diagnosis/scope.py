"""Which coverage table a host falls under, and what that changes in the diagnosis.

Most instances are judged against AWS's EC2 table. Two kinds are not, and the knowledge base says
how (``findings/node.json``, ``scopes``):

* an EKS worker node without the EC2 host agent: GuardDuty covers it through the EKS add-on and
  the EKS coverage table, so the EC2 agent's absence is not a fault and the EC2 health proof does
  not apply. The verdict is ``unknown`` with the reason "not applicable: covered by the EKS table";
* Bottlerocket: the agent is a host container, never a package, so the package and unit checks
  do not apply; the health proof is the host container's unit being active (running).

A scope demotes the listed findings to INFO (they stay in the report, as context), drops those
that are wrong there (Bottlerocket: "install the SSM Agent package"), counts the listed checks as
explained, so they do not raise ``tool.unexplained-failure`` either, and on Bottlerocket replaces
any step that runs a package manager by the note that Bottlerocket has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Sequence, Tuple

from gd_doctor.diagnosis.verdict import Proof, ProofState, agent_installed
from gd_doctor.facts.agent import PackageFacts, UnitFileFacts
from gd_doctor.facts.node import BottlerocketFacts, NodeRoleFacts
from gd_doctor.knowledge import StepSpec, load
from gd_doctor.model import CheckResult, Finding, Severity


@dataclass(frozen=True)
class Scope:
    name: str  # "eks" | "bottlerocket"
    demote: Tuple[str, ...]
    explained: Tuple[str, ...]  # check ids, or prefixes ending in "."
    proof: Proof
    drop: Tuple[str, ...] = ()
    package_steps: Optional[str] = None  # regex of steps that would run a package manager
    no_package_note: str = ""

    def explains(self, check_id: str) -> bool:
        return any(
            check_id.startswith(e) if e.endswith(".") else check_id == e for e in self.explained
        )

    def apply(self, findings: Sequence[Finding]) -> Tuple[Finding, ...]:
        """The findings as this scope sees them (see the module docstring)."""
        out = []
        for f in findings:
            if f.finding_id in self.drop:
                continue
            if f.finding_id in self.demote:
                f = replace(f, severity=Severity.INFO)
            out.append(self._without_package_managers(f))
        return tuple(out)

    def _without_package_managers(self, f: Finding) -> Finding:
        if not self.package_steps:
            return f
        pattern = re.compile(self.package_steps)
        metas = list(f.step_specs) if len(f.step_specs) == len(f.steps) else [None] * len(f.steps)
        kept: Dict[str, Any] = {}
        for text, meta in zip(f.steps, metas):
            if pattern.search(text):
                # the note is no fix and applies everywhere: a plain step
                text, meta = self.no_package_note, StepSpec()
            kept.setdefault(text, meta)
        if None in kept.values():
            return replace(f, steps=tuple(kept))
        return replace(f, steps=tuple(kept), step_specs=tuple(kept.values()))


def _conf(name: str) -> Dict[str, Any]:
    value = load("findings/node.json")["scopes"][name]
    assert isinstance(value, dict), name
    return value


def _facts(results: Sequence[CheckResult], wanted: Any) -> Any:
    return next((r.facts for r in results if isinstance(r.facts, wanted)), None)


def _bottlerocket_proof(br: BottlerocketFacts) -> Proof:
    if br.pull_errors:
        return Proof(ProofState.DISPROVEN, "the agent's image could not be pulled from Amazon ECR")
    if br.running is True:
        return Proof(ProofState.PROVEN, f"the agent's host container {br.unit} is active (running)")
    if br.running is False:
        state = f"{br.unit_active_state} ({br.unit_sub_state})"
        return Proof(ProofState.DISPROVEN, f"the agent's host container {br.unit} is {state}")
    why = br.unit_problem or "its state could not be read"
    return Proof(ProofState.UNKNOWN, f"the agent's host container {br.unit}: {why}")


def node_scope(results: Sequence[CheckResult]) -> Optional[Scope]:
    """The scope these results put the host in; None for the EC2 table's ordinary case."""
    br = _facts(results, BottlerocketFacts)
    if isinstance(br, BottlerocketFacts) and br.bottlerocket:
        conf = _conf("bottlerocket")
        return Scope(
            "bottlerocket",
            tuple(conf["demote"]),
            tuple(conf["explained_checks"]),
            _bottlerocket_proof(br),
            drop=tuple(conf["drop"]),
            package_steps=str(conf["package_manager_steps"]),
            no_package_note=str(load("bottlerocket.json")["host_container"]["no_package_manager"]),
        )
    role = _facts(results, NodeRoleFacts)
    if isinstance(role, NodeRoleFacts) and role.eks:
        installed = agent_installed(_facts(results, PackageFacts), _facts(results, UnitFileFacts))
        if installed.state == ProofState.PROVEN:
            return None  # the EC2 agent is there too: judged as EC2, plus the dual-agent note
        conf = _conf("eks")
        reason = str(conf["reason"])
        return Scope(
            "eks",
            tuple(conf["demote"]),
            tuple(conf["explained_checks"]),
            Proof(ProofState.UNKNOWN, reason),
        )
    return None
