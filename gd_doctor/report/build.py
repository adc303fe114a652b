"""Assembling the :class:`~gd_doctor.model.Report` from the run and the diagnosis."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from gd_doctor import __version__
from gd_doctor.diagnosis.engine import Diagnosis
from gd_doctor.knowledge import coverage_issues, knowledge_date
from gd_doctor.model import HostFacts, Report
from gd_doctor.runner import RunOutcome


def _text(value: object) -> Optional[str]:
    return str(value) if isinstance(value, (str, int, float)) and str(value) else None


def host_facts(run: RunOutcome, *, root: str, live: bool, euid: Optional[int] = None) -> HostFacts:
    """The host summary at the top of a report, read from the checks that establish it."""
    data = {r.check_id: r.data for r in run.results}

    def fact(check_id: str, key: str) -> Optional[str]:
        return _text(data.get(check_id, {}).get(key))

    is_ec2 = data.get("platform.ec2", {}).get("is_ec2")
    return HostFacts(
        hostname=fact("platform.os", "hostname"),
        root=root,
        live=live,
        os=fact("platform.os", "pretty_name"),
        kernel=fact("platform.kernel", "release"),
        arch=fact("platform.arch", "machine"),
        instance_id=fact("imds.identity", "instance_id"),
        region=fact("imds.identity", "region") or fact("network.region", "region"),
        is_ec2=is_ec2 if isinstance(is_ec2, bool) else None,
        account_id=fact("imds.identity", "account_id"),
        agent_version=fact("agent.package", "version"),
        agent_state=_unit_state(
            fact("agent.unit", "active_state"), fact("agent.unit", "sub_state")
        ),
        management_type=fact("ssm.management_type", "management_type"),
        ssm_agent_version=fact("ssm.agent_installed", "version"),
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
