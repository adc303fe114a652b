"""Rules about the kind of node: Bottlerocket's OS, variant, host container and endpoints; EKS
worker nodes (and the EKS agent beside the EC2 one); ECS container instances.

What these hosts change in the verdict itself is in :mod:`gd_doctor.diagnosis.scope`. Also here:
an instance excluded with ``GuardDutyManaged:false`` whose agent still runs (the tag does not
uninstall it).
"""

from __future__ import annotations

from typing import Optional, Tuple

from gd_doctor.diagnosis.base import Rule, RuleOutput, finding, rule
from gd_doctor.diagnosis.verdict import ProofState, agent_installed
from gd_doctor.facts.agent import PackageFacts, UnitFacts, UnitFileFacts
from gd_doctor.facts.imds import ImdsTagsFacts
from gd_doctor.facts.network import BottlerocketEndpointsFacts, RegionFacts
from gd_doctor.facts.node import BottlerocketFacts, NodeRoleFacts
from gd_doctor.knowledge import load


@rule("platform.bottlerocket_os_too_old", reads=(BottlerocketFacts,))
def bottlerocket_os_too_old(br: Optional[BottlerocketFacts]) -> RuleOutput:
    """Bottlerocket older than 1.62.1: GuardDuty shows 'Kernel version is lower than ...'."""
    if br is None or br.version_ok is not False:
        return None
    return finding(
        "platform.bottlerocket-os-too-old",
        checks=(BottlerocketFacts,),
        evidence_from=(BottlerocketFacts,),
        version=br.version,
        min_version=br.min_version,
    )


@rule("platform.bottlerocket_variant_unsupported", reads=(BottlerocketFacts,))
def bottlerocket_variant_unsupported(br: Optional[BottlerocketFacts]) -> RuleOutput:
    """A Bottlerocket variant outside ECS-2/ECS-3 (aws-k8s-* is an EKS node)."""
    if br is None or br.variant_supported is not False:
        return None
    return finding(
        "platform.bottlerocket-variant-unsupported",
        evidence_from=(BottlerocketFacts,),
        variant=br.variant,
    )


@rule("platform.bottlerocket_ecr_pull_failed", reads=(BottlerocketFacts, RegionFacts))
def bottlerocket_ecr_pull_failed(
    br: Optional[BottlerocketFacts], region: Optional[RegionFacts]
) -> RuleOutput:
    """The host container's journal shows a failed pull of the agent's image from ECR."""
    if br is None or not br.pull_errors:
        return None
    name = region.region if region is not None and region.region else "<region>"
    accounts = load("bottlerocket.json")["ecr_registry_accounts"]["accounts"]
    image = str(load("bottlerocket.json")["host_container"]["image_uri"]).format(
        account=accounts.get(name, "<account>"), region=name, dns_suffix="amazonaws.com"
    )
    return finding(
        "platform.bottlerocket-ecr-pull-failed",
        checks=(BottlerocketFacts,),
        evidence_from=(BottlerocketFacts,),
        image=image,
        region=name,
    )


@rule("platform.bottlerocket_host_container_down", reads=(BottlerocketFacts,))
def bottlerocket_host_container_down(br: Optional[BottlerocketFacts]) -> RuleOutput:
    """The host container's unit is there but not active (running)."""
    if br is None or br.running is not False or br.pull_errors or br.version_ok is False:
        return None  # a failed pull or a too-old OS is the cause, named by its own rule
    return finding(
        "platform.bottlerocket-host-container-down",
        checks=(BottlerocketFacts,),
        evidence_from=(BottlerocketFacts,),
        unit=br.unit,
        state=f"{br.unit_load_state}, {br.unit_active_state} ({br.unit_sub_state})",
    )


@rule("network.bottlerocket_endpoints", reads=(BottlerocketEndpointsFacts,))
def bottlerocket_endpoints(eps: Optional[BottlerocketEndpointsFacts]) -> RuleOutput:
    """ECR, S3 or guardduty-data not reachable (or public only) from a Bottlerocket host."""
    if eps is None:
        return None  # not Bottlerocket, or not live
    if eps.unreachable:
        return finding(
            "network.bottlerocket-endpoint-unreachable",
            checks=(BottlerocketEndpointsFacts,),
            evidence_from=(BottlerocketEndpointsFacts,),
            hosts=", ".join(e.host for e in eps.unreachable),
            region=eps.region,
        )
    if eps.public_only:
        return finding(
            "network.bottlerocket-endpoint-public",
            evidence_from=(BottlerocketEndpointsFacts,),
            hosts=", ".join(e.host for e in eps.public_only),
            region=eps.region,
        )
    return None


@rule("platform.node_role", reads=(NodeRoleFacts, PackageFacts, UnitFileFacts))
def node_role(
    role: Optional[NodeRoleFacts],
    package: Optional[PackageFacts],
    unit_file: Optional[UnitFileFacts],
) -> RuleOutput:
    """EKS worker node (covered by the EKS table; both agents: the EKS one takes priority) or
    ECS container instance (the EC2 table)."""
    if role is None or role.role == "none":
        return None
    if role.role == "ecs":
        return finding("platform.ecs-container-instance", evidence_from=(NodeRoleFacts,))
    found = [finding("platform.eks-node", evidence_from=(NodeRoleFacts,))]
    if role.eks_agent and agent_installed(package, unit_file).state == ProofState.PROVEN:
        found.append(finding("platform.eks-dual-agent", evidence_from=(NodeRoleFacts,)))
    return found


@rule("imds.excluded_agent_running", reads=(ImdsTagsFacts, UnitFacts, PackageFacts, UnitFileFacts))
def excluded_agent_running(
    tags: Optional[ImdsTagsFacts],
    unit: Optional[UnitFacts],
    package: Optional[PackageFacts],
    unit_file: Optional[UnitFileFacts],
) -> RuleOutput:
    """GuardDutyManaged:false, yet the agent is installed and running: the tag stops management,
    it does not uninstall the agent."""
    if tags is None or tags.excluded is not True:
        return None
    if unit is not None and unit.active_state == "active":
        state = "running"
    elif agent_installed(package, unit_file).state == ProofState.PROVEN:
        state = "installed (its state is not visible here)"
    else:
        return None
    return finding(
        "imds.excluded-agent-running",
        evidence_from=(ImdsTagsFacts, UnitFacts),
        state=state,
    )


RULES: Tuple[Rule, ...] = (
    excluded_agent_running,
    bottlerocket_os_too_old,
    bottlerocket_variant_unsupported,
    bottlerocket_ecr_pull_failed,
    bottlerocket_host_container_down,
    bottlerocket_endpoints,
    node_role,
)
