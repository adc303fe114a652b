"""Assembling the :class:`~gd_doctor.model.Report` from the run and the diagnosis."""

from __future__ import annotations

from datetime import datetime
from typing import Optional, Type, TypeVar

from gd_doctor import __version__
from gd_doctor.diagnosis.engine import Diagnosis
from gd_doctor.facts import Facts
from gd_doctor.facts.agent import PackageFacts, UnitFacts
from gd_doctor.facts.imds import ImdsIdentityFacts
from gd_doctor.facts.network import RegionFacts
from gd_doctor.facts.platform import ArchFacts, Ec2Facts, KernelFacts, OsFacts
from gd_doctor.facts.ssm import ManagementTypeFacts, SsmPackageFacts
from gd_doctor.knowledge import coverage_issues, knowledge_date
from gd_doctor.model import HostFacts, Report
from gd_doctor.runner import RunOutcome

F = TypeVar("F", bound=Facts)


def _facts(run: RunOutcome, facts_type: Type[F]) -> Optional[F]:
    for res in run.results:
        if isinstance(res.facts, facts_type):
            return res.facts
    return None


def host_facts(run: RunOutcome, *, root: str, live: bool, euid: Optional[int] = None) -> HostFacts:
    """The host summary at the top of a report, from the typed facts that establish it."""
    os_ = _facts(run, OsFacts)
    kernel = _facts(run, KernelFacts)
    arch = _facts(run, ArchFacts)
    ec2 = _facts(run, Ec2Facts)
    identity = _facts(run, ImdsIdentityFacts)
    region = _facts(run, RegionFacts)
    package = _facts(run, PackageFacts)
    unit = _facts(run, UnitFacts)
    management = _facts(run, ManagementTypeFacts)
    ssm_package = _facts(run, SsmPackageFacts)

    return HostFacts(
        hostname=os_.hostname if os_ else None,
        root=root,
        live=live,
        os=os_.pretty_name if os_ else None,
        kernel=kernel.release if kernel else None,
        arch=arch.machine if arch else None,
        instance_id=identity.instance_id if identity else None,
        region=(identity.region if identity else None) or (region.region if region else None),
        is_ec2=ec2.is_ec2 if ec2 else None,
        account_id=identity.account_id if identity else None,
        agent_version=package.version if package else None,
        agent_state=_unit_state(unit.active_state, unit.sub_state) if unit else None,
        management_type=management.management_type if management else None,
        ssm_agent_version=ssm_package.version if ssm_package else None,
        euid=euid,
    )


def _unit_state(active: Optional[str], sub: Optional[str]) -> Optional[str]:
    if active is None:
        return None
    return f"{active} ({sub})" if sub else active


def build_report(
    run: RunOutcome,
    diagnosis: Diagnosis,
    *,
    started_at: datetime,
    root: str,
    live: bool,
    budget_s: float,
    report_path: Optional[str] = None,
    euid: Optional[int] = None,
) -> Report:
    """One report value: everything the renderers need."""
    return Report(
        tool_version=__version__,
        knowledge_date=knowledge_date(),
        started_at=started_at.isoformat(timespec="seconds"),
        duration_s=run.duration_s,
        verdict=diagnosis.verdict,
        host=host_facts(run, root=root, live=live, euid=euid),
        findings=diagnosis.findings,
        checks=run.results,
        budget_s=budget_s,
        budget_exhausted=run.budget_exhausted,
        report_path=report_path,
        control_plane_issues=tuple(
            row.id for row in coverage_issues().values() if row.host_observable == "no"
        ),
        verdict_reason=diagnosis.reason,
    )
