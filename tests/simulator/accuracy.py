"""Expected versus found, per scenario, and the corpus's accuracy table.

A scenario passes when the verdict and exit code are the expected ones, the top finding (the
first in the report, the root cause) is the expected one, every expected finding and coverage row
is present and no forbidden one is. Across the corpus the table reports top-1 correctness, false
healthy (expected unhealthy, tool said healthy) and false alarms (expected healthy but tool said
otherwise, or a forbidden finding appeared).

>>> exp = {"verdict": "unhealthy", "top_issue": "agent-disconnected"}
>>> rep = {"verdict": "unhealthy", "findings": [{"id": "agent.crash-loop", "severity": "fail",
...        "issue_id": "agent-disconnected"}]}
>>> judge(exp, rep, exit_code=1).passed
True
>>> judge({"verdict": "healthy"}, rep, exit_code=1).false_alarm
True

A failing check that no rule explains (gd-doctor's generic finding) fails every scenario:

>>> gap = {"verdict": "unhealthy", "findings": [{"id": "tool.unexplained-failure",
...        "severity": "fail"}]}
>>> judge({"verdict": "unhealthy"}, gap, exit_code=1).problems
['tool.unexplained-failure: a failing check that no rule explains']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Sequence, Tuple

PROBLEM_SEVERITIES = ("fail", "warn")
#: the engine's generic finding for a failing check no rule explains (diagnosis/engine.py)
UNEXPLAINED = "tool.unexplained-failure"


@dataclass
class Judgement:
    """How one scenario's run compares with what it expects."""

    verdict_expected: str
    verdict_found: Optional[str]
    exit_expected: Optional[int]
    exit_found: Optional[int]
    top_expected: str
    top_found: str
    top1: bool
    false_healthy: bool
    false_alarm: bool
    problems: List[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def _describe(f: Optional[Mapping[str, Any]]) -> str:
    if f is None:
        return "-"
    issue = f.get("issue_id")
    return f"{f.get('id')}" + (f" [{issue}]" if issue else "")


def judge(
    expect: Mapping[str, Any],
    report: Mapping[str, Any],
    exit_code: Optional[int],
    ignore: Sequence[str] = (),
) -> Judgement:
    """Compare one run's JSON report and exit code with the scenario's ``expect``.

    ``ignore``: finding ids that are true of the simulator itself (gd-doctor correctly notices
    it runs in a container); they are left out of the comparison unless expected explicitly.
    They can never hide a wrong verdict: the verdict is compared as reported.
    """
    problems: List[str] = []
    verdict = report.get("verdict")
    want_verdict = str(expect["verdict"])
    want_exit = expect.get("exit_code", 0 if want_verdict == "healthy" else 1)
    wanted = set(expect.get("findings", [])) | {expect.get("top_finding")}
    skip = {i for i in ignore if i not in wanted}
    findings = [f for f in report.get("findings", []) if f.get("id") not in skip]
    problem_findings = [f for f in findings if f.get("severity") in PROBLEM_SEVERITIES]
    ids = [f.get("id") for f in findings]
    issues = [f.get("issue_id") for f in findings if f.get("issue_id")]
    top = findings[0] if findings else None

    if verdict != want_verdict:
        problems.append(f"verdict {verdict!r}, expected {want_verdict!r}")
    if want_exit is not None and exit_code != want_exit:
        problems.append(f"exit code {exit_code}, expected {want_exit}")

    want_top_f = expect.get("top_finding")
    want_top_i = expect.get("top_issue")
    if want_verdict == "healthy" and not (want_top_f or want_top_i):
        top1 = verdict == "healthy" and not problem_findings
        top_expected = "(none)"
    else:
        top1 = top is not None
        if want_top_f and (top is None or top.get("id") != want_top_f):
            top1 = False
        if want_top_i and (top is None or top.get("issue_id") != want_top_i):
            top1 = False
        top_expected = str(want_top_f or "") + (f" [{want_top_i}]" if want_top_i else "")
    if not top1:
        problems.append(f"top finding {_describe(top)}, expected {top_expected.strip()}")

    if UNEXPLAINED in ids:
        # every failure in the corpus must be explained by a real rule
        problems.append(f"{UNEXPLAINED}: a failing check that no rule explains")
    if expect.get("no_findings") and problem_findings:
        problems.append("expected no findings, got " + ", ".join(map(_describe, problem_findings)))
    for fid in expect.get("findings", []):
        if fid not in ids:
            problems.append(f"missing finding {fid}")
    for iid in expect.get("issues", []):
        if iid not in issues:
            problems.append(f"missing coverage row {iid}")
    forbidden = [f for f in expect.get("forbidden_findings", []) if f in ids]
    forbidden += [i for i in expect.get("forbidden_issues", []) if i in issues]
    for item in forbidden:
        problems.append(f"forbidden {item} present")

    false_healthy = want_verdict == "unhealthy" and verdict == "healthy"
    wanted_rows = set(expect.get("issues", [])) | {want_top_i}
    unexpected = [
        f
        for f in problem_findings
        if f.get("id") not in wanted and (f.get("issue_id") or "-") not in wanted_rows
    ]
    false_alarm = bool(forbidden) or (
        want_verdict == "healthy" and (verdict != "healthy" or bool(unexpected))
    )
    return Judgement(
        verdict_expected=want_verdict,
        verdict_found=verdict if isinstance(verdict, str) else None,
        exit_expected=want_exit,
        exit_found=exit_code,
        top_expected=top_expected.strip(),
        top_found=_describe(top),
        top1=top1,
        false_healthy=false_healthy,
        false_alarm=false_alarm,
        problems=problems,
    )


@dataclass
class Row:
    """One line of the accuracy table."""

    name: str
    row: str
    mode: str
    judgement: Optional[Judgement]
    known_gap: Optional[str] = None
    skipped: Optional[str] = None
    error: Optional[str] = None

    @property
    def status(self) -> str:
        if self.skipped:
            return "SKIP"
        if self.error:
            return "ERROR"
        assert self.judgement is not None
        if self.judgement.passed:
            return "PASS" if not self.known_gap else "PASS (gap?)"
        return "GAP" if self.known_gap else "FAIL"

    @property
    def gated(self) -> bool:
        """Counts towards the 100% gate: ran, and not a declared known gap."""
        return not self.skipped and not self.known_gap


@dataclass
class Summary:
    total: int
    gated: int
    passed: int
    top1: int
    false_healthy: int
    false_alarms: int
    real_systemd: int
    skipped: int
    gaps: List[Tuple[str, str]]

    @property
    def accuracy(self) -> float:
        return 100.0 * self.passed / self.gated if self.gated else 100.0


def summarize(rows: Sequence[Row]) -> Summary:
    gated = [r for r in rows if r.gated]
    judged = [r for r in gated if r.judgement is not None and not r.error]
    return Summary(
        total=len(rows),
        gated=len(gated),
        passed=sum(1 for r in judged if r.judgement and r.judgement.passed),
        top1=sum(1 for r in judged if r.judgement and r.judgement.top1),
        false_healthy=sum(1 for r in judged if r.judgement and r.judgement.false_healthy),
        false_alarms=sum(1 for r in judged if r.judgement and r.judgement.false_alarm),
        real_systemd=sum(1 for r in rows if r.mode == "live" and not r.skipped),
        skipped=sum(1 for r in rows if r.skipped),
        gaps=[(r.name, r.known_gap) for r in rows if r.known_gap],
    )


def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: Sequence[Row]) -> str:
    """The accuracy report as plain text."""
    head = ("scenario", "row", "mode", "expected top", "found top", "top1", "verdict", "result")
    widths = (34, 26, 8, 40, 40, 4, 21, 11)
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    for r in rows:
        j = r.judgement
        cells = (
            r.name,
            r.row,
            r.mode,
            j.top_expected if j else "-",
            j.top_found if j else "-",
            ("yes" if j.top1 else "NO") if j else "-",
            f"{j.verdict_expected}/{j.verdict_found}" if j else "-",
            r.status,
        )
        lines.append("  ".join(_cell(c, w).ljust(w) for c, w in zip(cells, widths)).rstrip())
        reasons = (j.problems if j else []) + ([r.error] if r.error else [])
        reasons += [f"skipped: {r.skipped}"] if r.skipped else []
        for p in reasons:
            lines.append(f"    - {p}")
    s = summarize(rows)
    lines.append("")
    lines.append(
        f"{s.total} scenarios, {s.gated} gated: {s.passed} passed ({s.accuracy:.1f}%), "
        f"top-1 correct {s.top1}/{s.gated}, false healthy {s.false_healthy}, "
        f"false alarms {s.false_alarms}; {s.real_systemd} ran on real systemd, "
        f"{s.skipped} skipped"
    )
    if s.gaps:
        lines.append(f"KNOWN GAPS ({len(s.gaps)}), excluded from the gate:")
        for name, gap in s.gaps:
            lines.append(f"  !! {name}: {gap}")
    return "\n".join(lines) + "\n"
