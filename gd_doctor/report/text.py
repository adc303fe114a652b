"""The human report: verdict first, then problems with their fixes, then the checks.

Pure: a function of the Report and a Style. ``verbose`` adds each check's details and data.
"""

from __future__ import annotations

import json
from typing import List

from gd_doctor.knowledge import all_coverage_issues, coverage_issues
from gd_doctor.model import CheckResult, Finding, Report, Severity, Status, Verdict
from gd_doctor.redact import redact, redact_value, terminal_safe
from gd_doctor.report.style import Style

_STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2, Status.OK: 3, Status.SKIP: 4}


def _host_line(report: Report) -> str:
    h = report.host
    parts = [p for p in (h.os, h.kernel, h.arch, h.instance_id, h.region) if p]
    where = h.hostname or ("this host" if h.live else f"root {h.root}")
    if not h.live:
        where = f"root {h.root}"
    return f"{where}" + (f" ({', '.join(parts)})" if parts else "")


def _verdict_line(report: Report, style: Style) -> str:
    fails = sum(1 for f in report.findings if f.severity == Severity.FAIL)
    warns = sum(1 for f in report.findings if f.severity == Severity.WARN)
    if report.verdict == Verdict.HEALTHY:
        tail = "no problem found" + (f" ({warns} warning{'s' * (warns != 1)})" if warns else "")
    elif report.verdict == Verdict.UNHEALTHY:
        tail = f"{fails} problem{'s' * (fails != 1)} found"
        if warns:
            tail += f", {warns} warning{'s' * (warns != 1)}"
    else:
        tail = report.verdict_reason or "some checks could not finish"
        tail = f"not proven healthy: {tail}"
    return f"{style.verdict(report.verdict)} {style.symbols['dash']} {tail}"


def _issue_line(f: Finding) -> str:
    row = all_coverage_issues().get(f.issue_id) if f.issue_id else None
    if row is None:
        return ""
    message = f'"{row.message}"' if row.message else "(empty message)"
    return f"Coverage issue: {row.type} {message} (row {row.number}, {row.id})"


def _finding_block(f: Finding, style: Style) -> List[str]:
    lines = [f"{style.severity_mark(f.severity)} {style.paint(f.title, 'bold')}"]
    issue = _issue_line(f)
    if issue:
        lines.append(f"  {issue}")
    if f.evidence:
        lines.append("  Evidence:")
        lines.extend(f"    {e}" for e in f.evidence[:8])
        if len(f.evidence) > 8:
            lines.append(f"    … and {len(f.evidence) - 8} more (see the JSON report)")
    if f.steps:
        lines.append("  Fix:")
        lines.extend(f"    {n}. {s}" for n, s in enumerate(f.steps, 1))
    if f.doc:
        lines.append(f"  Docs: {f.doc}")
    return lines


def _check_line(c: CheckResult, style: Style, width: int) -> str:
    summary = c.summary
    if c.status == Status.SKIP and c.skip_reason:
        summary = f"skipped: {summary}"
    if c.timed_out:
        summary += " [timed out]"
    return f"  {style.mark(c.status)} {c.check_id.ljust(width)}  {summary}"


def _check_details(c: CheckResult) -> List[str]:
    out: List[str] = []
    out.extend(f"      | {e}" for e in c.evidence[:20])
    if c.data:
        data = redact_value(dict(c.data))
        out.append("      data: " + json.dumps(data, sort_keys=True, default=str)[:2000])
    if c.error:
        out.extend(f"      {line}" for line in c.error.rstrip().splitlines()[-6:])
    return out


def render_text(report: Report, style: Style = Style(), *, verbose: bool = False) -> str:
    """The whole text report."""
    report = terminal_safe(report)  # host text may hold escape sequences and bidi overrides
    lines: List[str] = [
        _verdict_line(report, style),
        f"gd-doctor {report.tool_version} {style.symbols['dash']} knowledge base "
        f"{report.knowledge_date} {style.symbols['dash']} {_host_line(report)}",
    ]
    if not report.host.live:
        lines.append("Offline analysis of a root: live unit state, IMDS and network not checked.")
    problems = [f for f in report.findings if f.severity != Severity.INFO]
    if problems:
        lines.append("")
        lines.append(style.paint("Problems, most likely root cause first:", "bold"))
        for n, f in enumerate(problems):
            if n:
                lines.append("")
            lines.extend(_finding_block(f, style))
    notes = [f for f in report.findings if f.severity == Severity.INFO]
    if notes:
        lines.append("")
        lines.append("Notes:")
        for f in notes:
            lines.extend(_finding_block(f, style))
    lines.append("")
    lines.append(style.paint("Checks:", "bold"))
    width = max((len(c.check_id) for c in report.checks), default=10)
    ordered = sorted(report.checks, key=lambda c: _STATUS_ORDER[c.status])
    for c in ordered:
        if c.status == Status.SKIP and not verbose and not c.timed_out:
            continue
        lines.append(_check_line(c, style, width))
        if verbose:
            lines.extend(_check_details(c))
    skipped = [c for c in report.checks if c.status == Status.SKIP and not c.timed_out]
    if skipped and not verbose:
        lines.append(
            f"  {style.mark(Status.SKIP)} {len(skipped)} check(s) skipped "
            "(--verbose lists them with the reason)"
        )
    if report.control_plane_issues:
        rows = coverage_issues()
        numbers = ", ".join(str(rows[i].number) for i in report.control_plane_issues)
        lines.append("")
        lines.append(
            f"Not visible from this host: coverage-issue rows {numbers} (SSM association and "
            "shared-VPC rows). Check them in the GuardDuty console (Runtime coverage, EC2) or "
            "with 'aws guardduty list-coverage'; 'gd-doctor explain <message>' explains each."
        )
    if report.report_path:
        lines.append(f"Full JSON report: {report.report_path}")
    return redact("\n".join(lines)) + "\n"
