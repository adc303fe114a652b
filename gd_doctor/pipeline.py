"""The one run pipeline: checks, diagnosis and the report, under one budget.

The CLI and the tests both call :func:`run_doctor`, so what a test exercises is what a user runs.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import AbstractSet, Optional, Sequence

from gd_doctor.checks.base import Check, Options
from gd_doctor.diagnosis.base import Rule
from gd_doctor.diagnosis.engine import Diagnosis, diagnose
from gd_doctor.frozen import dataclass
from gd_doctor.host import Host
from gd_doctor.model import Report
from gd_doctor.report.build import build_report
from gd_doctor.runner import ProgressFn, RunOutcome, run_checks


def check_budget(budget_s: float) -> float:
    """The part of the run's budget the checks may use: diagnosis, report building and
    rendering keep a reserve (5 %, at most 0.5 s; they are bounded by the size caps)."""
    return budget_s - min(0.5, 0.05 * budget_s)


@dataclass(frozen=True)
class Run:
    """Everything one run produced."""

    outcome: RunOutcome
    diagnosis: Diagnosis
    report: Report


def run_doctor(
    host: Host,
    *,
    checks: Optional[Sequence[Check]] = None,
    rules: Optional[Sequence[Rule]] = None,
    options: Optional[Options] = None,
    budget_s: float = 20.0,
    deselected: AbstractSet[str] = frozenset(),
    debug: bool = False,
    report_path: Optional[str] = None,
    started_at: Optional[datetime] = None,
    progress: Optional[ProgressFn] = None,
) -> Run:
    """Run ``checks`` on ``host``, apply ``rules`` and build the report."""
    from gd_doctor.checks import ALL_CHECKS
    from gd_doctor.diagnosis import ALL_RULES

    started = started_at or datetime.now(timezone.utc)
    try:
        outcome = run_checks(
            host,
            ALL_CHECKS if checks is None else checks,
            options or Options(),
            budget_s=check_budget(budget_s),
            debug=debug,
            deselected=deselected,
            progress=progress,
        )
    finally:
        host.close()  # no command (nor its children) of an abandoned check outlives the run
    diagnosis = diagnose(
        outcome.results, ALL_RULES if rules is None else rules, live=host.live, debug=debug
    )
    report = build_report(
        outcome,
        diagnosis,
        started_at=started,
        root=str(host.fs.root),
        live=host.live,
        budget_s=budget_s,
        report_path=report_path,
        euid=host.euid,
    )
    return Run(outcome, diagnosis, report)
