"""The compact output for SSM Run Command: a fleet record in at most 2,500 characters.

The Run Command console shows only the first 2,500 characters of a command's output, and fleet
scripts grep the first line, so line one is fixed-format and always has the same six fields:

    gd-doctor: UNHEALTHY row=15 private-dns-attributes i-0abc... 111122223333 us-east-1

(verdict, the top finding's coverage-issue row number and id, instance id, account id, Region;
``-`` for a field that is not known). Each finding follows with a short row label, its decisive
evidence line and its fix step; the last line says where the full JSON report is, only when it
was written.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from gd_doctor.knowledge import all_coverage_issues
from gd_doctor.model import Finding, Report, Severity, Status
from gd_doctor.redact import redact, terminal_safe

LIMIT = 2500
_TITLE = 160
_EVIDENCE = 200
_FIX = 300
# Steps that only look at something; the fix is the first step that changes something.
_LOOKING = ("check", "confirm", "verify", "read", "look", "see", "view", "find")


def _row(f: Finding) -> Optional[Tuple[str, str]]:
    """The row's number as printed (``B3`` for the Bottlerocket table's rows) and its id."""
    row = all_coverage_issues().get(f.issue_id) if f.issue_id else None
    if row is None:
        return None
    return (str(row.number) if row.table == "ec2" else f"B{row.number}", row.id)


def row_label(f: Finding) -> str:
    """``[row 15 private-dns-attributes]``, or ``[finding id]`` when no row applies."""
    row = _row(f)
    return f"[row {row[0]} {row[1]}]" if row else f"[{f.finding_id}]"


def fix_step(f: Finding) -> Optional[str]:
    """The step that fixes (not the first diagnosis step, when the finding has both)."""
    for step in f.steps:
        if step.split(" ", 1)[0].lower().strip(":,") not in _LOOKING:
            return step
    return f.steps[0] if f.steps else None


def decisive_evidence(f: Finding) -> Optional[str]:
    """The evidence line the finding stands on (the first; the engine puts the rule's own
    evidence after the producers' lines only when the rule has none)."""
    return f.evidence[0] if f.evidence else None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def head_line(report: Report) -> str:
    """The stable first line (six space-separated fields after ``gd-doctor:``)."""
    h = report.host
    problems = [f for f in report.findings if f.severity != Severity.INFO]
    top = next((r for r in (_row(f) for f in problems) if r is not None), None)
    fields = [
        report.verdict.value.upper(),
        f"row={top[0]}" if top else "row=-",
        top[1] if top else "-",
        h.instance_id or "-",
        h.account_id or "-",
        h.region or "-",
    ]
    # A field must never contain a space, or the line stops being splittable.
    return "gd-doctor: " + " ".join(f.replace(" ", "_") for f in fields)


def _finding_lines(n: int, f: Finding) -> List[str]:
    # The label ends the line, so that a parser can take the title as it is up to " [".
    lines = [f"{n}. {f.severity.value.upper()} {_cut(f.title, _TITLE)} {row_label(f)}"]
    evidence = decisive_evidence(f)
    if evidence:
        lines.append(f"   evidence: {_cut(evidence, _EVIDENCE)}")
    fix = fix_step(f)
    if fix:
        lines.append(f"   fix: {_cut(fix, _FIX)}")
    return lines


def render_ssm(report: Report) -> str:
    """Compact text that fits the Run Command console."""
    report = terminal_safe(report)  # host text may hold escape sequences and bidi overrides
    head = redact(head_line(report))
    counts = {s: sum(1 for c in report.checks if c.status == s) for s in Status}
    fails = sum(1 for f in report.findings if f.severity == Severity.FAIL)
    warns = sum(1 for f in report.findings if f.severity == Severity.WARN)
    tail_lines = [
        f"problems: {fails} fail, {warns} warn; checks: "
        + ", ".join(f"{counts[s]} {s.value}" for s in Status),
        f"gd-doctor {report.tool_version}, knowledge {report.knowledge_date}",
        (
            f"full report: {report.report_path}"
            if report.report_path
            else "full report: run with --output FILE (JSON)"
        ),
    ]
    tail = redact("\n".join(tail_lines))
    body: List[str] = [head]
    if report.verdict.value == "unknown" and report.verdict_reason:
        # why the host is not proven healthy: with no problem listed, the only lead
        body.append(redact(f"reason: {_cut(terminal_safe(report.verdict_reason), _FIX)}"))
    budget = LIMIT - len(tail) - len(head) - 2
    problems = [f for f in report.findings if f.severity != Severity.INFO]
    for n, f in enumerate(problems, 1):
        block = redact("\n".join(_finding_lines(n, f)))
        if len(block) + 1 > budget - 40:
            body.append(f"... {len(problems) - n + 1} more finding(s) in the full report")
            break
        body.append(block)
        budget -= len(block) + 1
    text = "\n".join(body) + "\n" + tail
    if len(text) > LIMIT:  # cannot happen with the budget above; be strict about the limit
        text = text[: LIMIT - len(tail) - 5] + "...\n" + tail
    return text + "\n"
