"""What the fleet outputs share: the report's top finding and its coverage-issue row."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from gd_doctor.knowledge import CoverageIssue, all_coverage_issues
from gd_doctor.model import Finding, Report, Severity


def top_finding(report: Report) -> Optional[Finding]:
    """The first problem (FAIL before WARN), or None on a host with none."""
    for f in report.findings:
        if f.severity != Severity.INFO:
            return f
    return None


def top_row(report: Report) -> Optional[CoverageIssue]:
    """The coverage-issue row of the first problem that names one."""
    for f in report.findings:
        if f.severity != Severity.INFO and f.issue_id:
            return all_coverage_issues().get(f.issue_id)
    return None


def capture_time(report: Report) -> str:
    """The run's start in SSM Inventory's CaptureTime format, ``yyyy-MM-ddTHH:mm:ssZ``."""
    try:
        at = datetime.fromisoformat(report.started_at)
    except ValueError:
        at = datetime.now(timezone.utc)
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
