"""The compact output for SSM Run Command: verdict on line one, at most 2,500 characters.

The Run Command console shows only the first 2,500 characters of a command's output, so the
verdict comes first, then each finding on one or two lines, and the last line says where the
full JSON report is.
"""

from __future__ import annotations

from typing import List

from gd_doctor.knowledge import all_coverage_issues
from gd_doctor.model import Finding, Report, Severity, Status
from gd_doctor.redact import redact, terminal_safe

LIMIT = 2500


def _finding_lines(n: int, f: Finding) -> List[str]:
    row = all_coverage_issues().get(f.issue_id) if f.issue_id else None
    issue = ""
    if row is not None:
        issue = f" [{row.type}: {row.message or '(empty)'}]"
    lines = [f"{n}. {f.severity.value.upper()} {f.title}{issue}"]
    if f.evidence:
        lines.append(f"   evidence: {f.evidence[0][:200]}")
    if f.steps:
        lines.append(f"   fix: {f.steps[0][:300]}")
    return lines


def render_ssm(report: Report) -> str:
    """Compact text that fits the Run Command console."""
    report = terminal_safe(report)  # host text may hold escape sequences and bidi overrides
    h = report.host
    ident = " ".join(p for p in (h.instance_id, h.region) if p)
    counts = {s: sum(1 for c in report.checks if c.status == s) for s in Status}
    fails = sum(1 for f in report.findings if f.severity == Severity.FAIL)
    head = f"gd-doctor: {report.verdict.value.upper()}"
    if fails:
        head += f" ({fails} problem{'s' * (fails != 1)})"
    if ident:
        head += f" {ident}"
    tail_lines = [
        "checks: " + ", ".join(f"{counts[s]} {s.value}" for s in Status),
        f"gd-doctor {report.tool_version}, knowledge {report.knowledge_date}",
        (
            f"full report: {report.report_path}"
            if report.report_path
            else "full report: run with --output FILE (JSON)"
        ),
    ]
    tail = "\n".join(tail_lines)
    body: List[str] = [head]
    budget = LIMIT - len(tail) - len(head) - 2
    shown = 0
    for n, f in enumerate(report.findings, 1):
        if f.severity == Severity.INFO:
            continue
        block = "\n".join(_finding_lines(n, f))
        if len(block) + 1 > budget - 40:
            rest = sum(1 for x in report.findings[n - 1 :] if x.severity != Severity.INFO)
            body.append(f"... {rest} more finding(s) in the full report")
            break
        body.append(block)
        budget -= len(block) + 1
        shown += 1
    text = redact("\n".join(body) + "\n" + tail)
    if len(text) > LIMIT:  # redaction can only shorten, but be strict about the limit
        text = text[: LIMIT - len(tail) - 5] + "...\n" + tail
    return text + "\n"
