"""The human report: verdict first, the run's conditions, the problems with their fixes, the
checks, and a closing summary line so that the last screen of a terminal is always actionable.

Pure: a function of the Report, a Style and a width. Every paragraph is wrapped to ``width``
with a hanging indent and never inside a word (URLs and paths stay whole). Passing checks fold
into one line per category; ``verbose`` lists every check with its facts as ``key: value``
bullets (the raw data is the JSON report's business).
"""

from __future__ import annotations

import textwrap
from typing import Any, Dict, List, Mapping, Optional, Tuple

from gd_doctor.facts import to_data
from gd_doctor.knowledge import all_coverage_issues, coverage_issues
from gd_doctor.limits import MAX_LIST
from gd_doctor.model import CheckResult, Finding, Report, Severity, SkipReason, Status, Verdict
from gd_doctor.redact import neutralise_controls, redact, redact_value, terminal_safe
from gd_doctor.report.conditions import run_conditions
from gd_doctor.report.style import Style

# Joins words that must stay on one line ("[row 15 private-dns-attributes]"): textwrap breaks
# only at ASCII whitespace.
NBSP = "\u00a0"
DEFAULT_WIDTH = 80
MIN_WIDTH = 40
_EVIDENCE_SHOWN = 8
_DETAILS_SHOWN = 30  # facts bullets per check in --verbose
_LIST_SHOWN = 8  # items of one list value in a bullet
_SHORT_CAUSE = 60  # characters of the top cause in the closing line

# Display order of the marks in the check list: the worst first.
_MARK_ORDER = {"fail": 0, "error": 1, "warn": 2, "ok": 3, "skip": 4}
_SEVERITY_KEY = {Severity.FAIL: "fail", Severity.WARN: "warn"}


class _Out:
    """Lines of the report, each paragraph wrapped to the width with a hanging indent."""

    def __init__(self, style: Style, width: int) -> None:
        self.style = style
        self.width = max(MIN_WIDTH, width)
        self.lines: List[str] = []

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def para(
        self, text: str, indent: str = "", hang: Optional[str] = None, painted: Optional[str] = None
    ) -> None:
        """``text`` after the plain prefix ``indent``; continuation lines start with ``hang``
        (default: as wide as ``indent``). ``painted`` replaces the prefix on the first line
        (the same text with colour codes, which have no width)."""
        hang = " " * len(indent) if hang is None else hang
        clean = neutralise_controls(redact(text))
        first = clean.split(maxsplit=1)[0] if clean.strip() else ""
        if len(indent) + len(first) > self.width >= len(hang) + len(first):
            # a word that cannot be broken (a path) and only fits after the shorter hang:
            # the prefix stands alone and the text starts on the next line
            self.lines.append((painted if painted is not None else indent).rstrip())
            indent, painted = hang, None
        wrapped = textwrap.wrap(
            # Facts keep host text raw (terminal_safe leaves them alone): neutralise it here too.
            clean,
            width=self.width,
            initial_indent=indent,
            subsequent_indent=hang,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [indent.rstrip()]
        if painted is not None and wrapped[0].startswith(indent):
            wrapped[0] = painted + wrapped[0][len(indent) :]
        self.lines.extend(line.replace(NBSP, " ") for line in wrapped)

    def marked(self, key: str, text: str, indent: str = "", extra: str = "") -> None:
        """A line that starts with a status mark; ``extra`` follows the mark (an id column).
        Continuation lines align with the text, unless that leaves less than half the width."""
        sym = self.style.symbols[key]
        plain = f"{indent}{sym} {extra}"
        longest = max((len(w) for w in text.split()), default=0)
        aligned = len(plain) <= self.width // 2 - 10 and len(plain) + longest <= self.width
        # a word too long for the aligned column (a path) gets the short hang instead
        hang = " " * len(plain) if aligned else indent + "      "
        self.para(text, plain, hang, painted=f"{indent}{self.style.paint(sym, key)} {extra}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _host_line(report: Report) -> str:
    h = report.host
    parts = [p for p in (h.os, h.kernel, h.arch, h.instance_id, h.region) if p]
    where = (h.hostname or "this host") if h.live else f"root {h.root}"
    return where + (f" ({', '.join(parts)})" if parts else "")


def _counts(report: Report) -> Tuple[int, int]:
    fails = sum(1 for f in report.findings if f.severity == Severity.FAIL)
    warns = sum(1 for f in report.findings if f.severity == Severity.WARN)
    return fails, warns


def _tally(report: Report, found: str = "") -> str:
    """ "2 problems found, 1 warning": the counts of what the Problems section lists."""
    fails, warns = _counts(report)
    if report.verdict == Verdict.HEALTHY:
        text = "no problem found"
        return text + (f" ({_plural(warns, 'warning')})" if warns else "")
    parts = [_plural(fails, "problem") + found] if fails or not warns else []
    if warns:
        parts.append(_plural(warns, "warning"))
    return ", ".join(parts)


def _verdict_tail(report: Report) -> str:
    if report.verdict == Verdict.UNKNOWN:
        reason = report.verdict_reason or "some checks could not finish"
        tail = f"not proven healthy: {reason}"
        if report.findings and any(f.severity != Severity.INFO for f in report.findings):
            tail += f" ({_tally(report)})"
    elif report.verdict == Verdict.UNHEALTHY:
        tail = _tally(report, " found")
    else:
        tail = _tally(report)
    return tail


def _verdict_para(out: _Out, report: Report, tail: str) -> None:
    """A paragraph that starts with the painted verdict (first and last lines)."""
    style = out.style
    plain = f"{style.verdict_plain(report.verdict)} {style.symbols['dash']} "
    painted = f"{style.verdict(report.verdict)} {style.symbols['dash']} "
    out.para(tail, plain, "  ", painted=painted)


def _row(f: Finding) -> Optional[Any]:
    return all_coverage_issues().get(f.issue_id) if f.issue_id else None


def _issue_line(f: Finding) -> str:
    row = _row(f)
    if row is None:
        return ""
    message = f'"{row.message}"' if row.message else "(empty message)"
    table = "row" if row.table == "ec2" else "Bottlerocket table row"
    return f"Coverage issue: {row.type} {message} ({table} {row.number}, {row.id})"


def _finding_block(out: _Out, f: Finding) -> None:
    key = _SEVERITY_KEY.get(f.severity, "skip")
    out.marked(key, f.title)
    issue = _issue_line(f)
    if issue:
        out.para(issue, "  ")
    if f.evidence:
        out.para("Evidence:", "  ")
        for e in f.evidence[:_EVIDENCE_SHOWN]:
            out.para(e, "    ", "      ")
        if len(f.evidence) > _EVIDENCE_SHOWN:
            more = len(f.evidence) - _EVIDENCE_SHOWN
            out.para(
                f"{out.style.symbols['ellipsis']} and {more} more (see the JSON report)", "    "
            )
    if f.steps:
        out.para("Fix:", "  ")
        for n, s in enumerate(f.steps, 1):
            out.para(s, f"    {n}. ")
    if f.doc:
        line = f"  Docs: {f.doc}"
        # A URL is never broken: when it does not fit after the label it gets its own line.
        out.lines.extend([line] if len(line) <= out.width else ["  Docs:", f"    {f.doc}"])


def shown_marks(report: Report) -> Dict[str, str]:
    """The mark of every check: its status, or the severity of the worst problem it feeds,
    so that a check and its finding carry the same symbol. SKIP and ERROR keep their own
    marks (something that did not run is never shown as a pass or a failure)."""
    feeds: Dict[str, Severity] = {}
    for f in report.findings:
        if f.severity not in _SEVERITY_KEY:
            continue
        for cid in f.checks:
            if feeds.get(cid) != Severity.FAIL:
                feeds[cid] = f.severity
    marks: Dict[str, str] = {}
    for c in report.checks:
        sev = feeds.get(c.check_id)
        if sev is not None and c.status in (Status.OK, Status.WARN, Status.FAIL):
            marks[c.check_id] = _SEVERITY_KEY[sev]
        else:
            marks[c.check_id] = c.status.value
    return marks


def _label(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_label(v)}" for k, v in list(value.items())[:_LIST_SHOWN])
    if isinstance(value, (list, tuple)):
        if not value:
            return "(none)"
        shown = ", ".join(_label(v) for v in value[:_LIST_SHOWN])
        left = len(value) - _LIST_SHOWN
        return shown + (f" (and {left} more)" if left > 0 else "")
    return str(value)


def fact_bullets(data: Mapping[str, Any], prefix: str = "") -> List[str]:
    """``key: value`` lines for a check's facts (nested facts as ``outer key / inner key``).

    >>> fact_bullets({"load_state": "loaded", "n_restarts": 3, "masked": False, "path": None})
    ['load state: loaded', 'n restarts: 3', 'masked: no']
    """
    out: List[str] = []
    for key, value in list(data.items())[:MAX_LIST]:
        if value is None or value == [] or value == {}:
            continue  # not known or nothing there: the JSON report keeps the field, people skip it
        name = prefix + str(key).replace("_", " ")
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            out.extend(fact_bullets(value, f"{name} / "))
        elif isinstance(value, dict) and len(value) > 3:
            out.extend(fact_bullets(value, f"{name} / "))
        else:
            out.append(f"{name}: {_label(value)}")
    return out


def _check_text(c: CheckResult, root_hint: bool) -> str:
    summary = c.summary
    if c.status == Status.SKIP and c.skip_reason:
        summary = f"skipped: {summary}"
        if root_hint and c.skip_reason.startswith(SkipReason.NEEDS_ROOT):
            summary += " (run as root)"
    if c.timed_out:
        summary += " [timed out]"
    return summary


def _check_details(out: _Out, c: CheckResult) -> None:
    bullet = out.style.symbols["bullet"]
    data = to_data(c.facts) if c.facts is not None else dict(c.data)
    lines = fact_bullets(redact_value(data))
    for line in lines[:_DETAILS_SHOWN]:
        out.para(line, f"      {bullet} ", "        ")
    if len(lines) > _DETAILS_SHOWN:
        out.para(f"and {len(lines) - _DETAILS_SHOWN} more (--format json)", f"      {bullet} ")
    for e in c.evidence[:20]:
        out.para(e, "      | ", "      | ")
    if c.error:
        for line in c.error.rstrip().splitlines()[-6:]:
            out.para(line, "      ", "        ")


def _checks(out: _Out, report: Report, verbose: bool) -> None:
    marks = shown_marks(report)
    root_hint = report.host.euid is not None and report.host.euid != 0
    ordered = sorted(report.checks, key=lambda c: _MARK_ORDER[marks[c.check_id]])
    passed: Dict[str, List[CheckResult]] = {}
    for c in report.checks:
        if marks[c.check_id] == "ok":
            passed.setdefault(c.category, []).append(c)

    def folded(c: CheckResult) -> bool:
        mark = marks[c.check_id]
        return not verbose and (mark == "ok" or (mark == "skip" and not c.timed_out))

    listed = [c for c in ordered if not folded(c)]
    # the id column is as wide as the ids listed, not every id there is
    width = max((len(c.check_id) for c in listed), default=10)
    for c in listed:
        mark = marks[c.check_id]
        out.marked(mark, _check_text(c, root_hint), "  ", c.check_id.ljust(width) + "  ")
        if verbose:
            _check_details(out, c)
    if verbose:
        return
    for category, group in passed.items():
        total = sum(1 for c in report.checks if c.category == category)
        what = "check" if len(group) == total else "other check"
        out.marked("ok", f"{category} ({_plural(len(group), what)})", "  ")
    skipped = [c for c in report.checks if c.status == Status.SKIP and not c.timed_out]
    if skipped:
        out.marked(
            "skip",
            f"{_plural(len(skipped), 'check')} skipped (--verbose lists them with the reason)",
            "  ",
        )


def short_cause(title: str, limit: int = _SHORT_CAUSE, ellipsis: str = "…") -> str:
    """A finding's title cut to a few words for the closing line.

    >>> short_cause("PID 1 is bash, not systemd; the agent is a systemd service")
    'PID 1 is bash, not systemd'
    """
    text = title
    for sep in ("; ", ", so ", " (", ": "):
        head = text.split(sep, 1)[0]
        if len(head.split()) >= 3:
            text = head
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + ellipsis
    return text


def _top(report: Report) -> Optional[Finding]:
    problems = [f for f in report.findings if f.severity in _SEVERITY_KEY]
    fails = [f for f in problems if f.severity == Severity.FAIL]
    chosen = fails or problems
    return chosen[0] if chosen else None


def summary_line(report: Report, style: Style, *, verbose: bool) -> str:
    """The last line after the verdict mark: counts, the top cause in a few words and the
    command to see more."""
    head = ""
    top = _top(report)
    more: List[str] = []
    if report.verdict == Verdict.UNKNOWN:
        head += f"not proven healthy: {report.verdict_reason or 'some checks could not finish'}"
        if top is not None:
            head += f"; {_tally(report)}"
    else:
        head += _tally(report)
    if top is not None:
        row = _row(top)
        # Bottlerocket's table numbers its rows apart: "B3", explained by id
        number = (str(row.number) if row.table == "ec2" else f"B{row.number}") if row else ""
        label = f" [row{NBSP}{number}{NBSP}{row.id}]" if row else f" [{top.finding_id}]"
        cause = short_cause(top.title, ellipsis=style.symbols["ellipsis"])
        head += f". Top cause: {cause}{label}"
        if row is not None:
            what = row.number if row.table == "ec2" else row.id
            more.append(f"gd-doctor{NBSP}explain{NBSP}{what}")
    if not verbose:
        more.append("--verbose for every check")
    elif report.verdict != Verdict.HEALTHY:
        more.append("--format json for the raw data")
    return head + (f". More: {'; '.join(more)}" if more else "") + "."


def render_text(
    report: Report, style: Style = Style(), *, verbose: bool = False, width: int = DEFAULT_WIDTH
) -> str:
    """The whole text report, wrapped to ``width`` columns."""
    report = terminal_safe(report)  # host text may hold escape sequences and bidi overrides
    out = _Out(style, width)
    _verdict_para(out, report, _verdict_tail(report))
    dash = style.symbols["dash"]
    out.para(
        f"gd-doctor {report.tool_version} {dash} knowledge base {report.knowledge_date} "
        f"{dash} {_host_line(report)}",
        "",
        "  ",
    )
    conditions = run_conditions(report)
    if conditions:
        out.blank()
        for cond in conditions:
            out.marked("warn", cond.text)
    problems = [f for f in report.findings if f.severity in _SEVERITY_KEY]
    if problems:
        out.blank()
        out.para("Problems, most likely root cause first:")
        for n, f in enumerate(problems):
            if n:
                out.blank()
            _finding_block(out, f)
    notes = [f for f in report.findings if f.severity not in _SEVERITY_KEY]
    if notes:
        out.blank()
        out.para("Notes:")
        for f in notes:
            _finding_block(out, f)
    out.blank()
    out.para("Checks:")
    _checks(out, report, verbose)
    if report.control_plane_issues:
        rows = coverage_issues()
        numbers = ", ".join(str(rows[i].number) for i in report.control_plane_issues)
        out.blank()
        out.para(
            f"Not visible from this host: coverage-issue rows {numbers} (SSM association and "
            "shared-VPC rows). Check them in the GuardDuty console (Runtime coverage, EC2) or "
            "with 'aws guardduty list-coverage'; 'gd-doctor explain <message>' explains each."
        )
    if report.report_path:
        out.para(f"Full JSON report: {report.report_path}", "", "  ")
    out.blank()
    _verdict_para(out, report, summary_line(report, style, verbose=verbose))
    return redact("\n".join(out.lines)) + "\n"
