"""Facts about what kind of node this instance is: Bottlerocket (ECS-EC2), EKS worker, ECS
container instance. They decide which of AWS's coverage tables applies (EC2, Bottlerocket, EKS)
and so whether a missing EC2 host agent is a fault at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from gd_doctor.facts import Facts


@dataclass(frozen=True)
class BottlerocketFacts(Facts):
    """platform.bottlerocket: the Bottlerocket variant and version, and the agent's host
    container (its unit's state and journal, live only).

    ``bottlerocket`` False (or None, os-release unreadable) leaves every other field None.
    ``unit_active_state`` None means not seen (a root, or systemctl unavailable: ``unit_problem``
    says why); ``pull_errors`` are journal lines of failed image pulls from Amazon ECR.
    """

    bottlerocket: Optional[bool]  # None: no os-release could be read
    min_version: str
    unit: str
    variant: Optional[str] = None
    version: Optional[str] = None
    version_ok: Optional[bool] = None
    variant_supported: Optional[bool] = None
    variant_kernel: Optional[str] = None
    unit_load_state: Optional[str] = None
    unit_active_state: Optional[str] = None
    unit_sub_state: Optional[str] = None
    unit_problem: Optional[str] = None
    journal_entries: Optional[int] = None
    journal_problem: Optional[str] = None
    pull_errors: Tuple[str, ...] = ()

    @property
    def running(self) -> Optional[bool]:
        """The host container's unit is active (running); None when not seen."""
        if self.unit_active_state is None:
            return None
        return self.unit_active_state == "active" and self.unit_sub_state == "running"


@dataclass(frozen=True)
class NodeRoleFacts(Facts):
    """platform.node_role: EKS worker node, ECS container instance, or neither.

    ``role`` is ``eks``, ``ecs`` or ``none``; ``signals`` the files that said so;
    ``eks_agent_pods`` the GuardDuty EKS add-on's pod log directories seen on the node.
    """

    role: str
    signals: Tuple[str, ...] = ()
    eks_agent_pods: Tuple[str, ...] = ()
    ecs_signals: Tuple[str, ...] = ()

    @property
    def eks(self) -> bool:
        return self.role == "eks"

    @property
    def eks_agent(self) -> bool:
        return bool(self.eks_agent_pods)
