"""Output of ``gd-doctor explain``: the row, its steps and the local checks that bear on it, as
text, as one line per row (``--list``) or as JSON (``--format json``, for chat-ops and scripts).

Knowledge-base provenance (which edition of AWS's table a row came from, how the Korean wording
was obtained) is shown only with ``verbose``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional

from gd_doctor.diagnosis.explain import (
    Explanation,
    checks_bearing_on,
    korean_messages,
    korean_type,
)
from gd_doctor.knowledge import CoverageIssue, all_coverage_issues

_OBSERVABLE = {
    "yes": "gd-doctor can see the cause on the instance",
    "partly": "gd-doctor sees causes and symptoms on the instance, not the row itself",
    "no": "visible only from the control plane (GuardDuty console or API), not from the host",
}
_KIND = {
    "seed": "as AWS's Korean edition prints it",
    "corrected": "spelling corrected",
    "translation": "gd-doctor's translation; not in AWS's Korean edition",
}
LIST_HINT = "'gd-doctor explain --list' lists every row."


def _message(row: CoverageIssue) -> str:
    return f'"{row.message}"' if row.message else "(empty message)"


def _korean_lines(row: CoverageIssue, verbose: bool) -> List[str]:
    ktype = korean_type(row.type)
    texts = korean_messages(row.id)
    if not texts and ktype is None:
        return []
    lines = ["  Korean edition:"]
    if ktype is not None:
        lines.append(f"    {ktype.text}" + (f" ({_KIND[ktype.kind]})" if verbose else ""))
    for k in texts if verbose else texts[:1]:
        lines.append(f"    {k.text}" + (f" ({_KIND[k.kind]})" if verbose else ""))
    return lines


def _row_block(
    row: CoverageIssue, check_titles: Mapping[str, str], *, verbose: bool, korean: bool
) -> List[str]:
    table = "Bottlerocket (ECS-EC2) table, row" if row.table == "bottlerocket" else "Row"
    lines = [
        f"{table} {row.number} [{row.id}]: {row.type} {_message(row)}",
        f"  From the host: {_OBSERVABLE.get(row.host_observable, row.host_observable)}.",
    ]
    if verbose and row.table == "ec2" and not row.in_seed:
        lines.append("  Added to the AWS table after the 2025 edition (not in the Korean seed).")
    if korean or verbose:
        lines.extend(_korean_lines(row, verbose))
    lines.append("  Troubleshooting:")
    lines.extend(f"    {n}. {s}" for n, s in enumerate(row.steps, 1))
    related = checks_bearing_on(row.id)
    if related:
        lines.append("  Local checks that bear on it (gd-doctor check --only <id>):")
        lines.extend(f"    - {c}: {check_titles.get(c, '')}".rstrip(": ") for c in related)
    lines.append(f"  Docs: {row.doc}")
    return lines


def render_explanation(
    exp: Explanation, check_titles: Mapping[str, str], *, verbose: bool = False
) -> str:
    """What ``explain`` prints."""
    lines: List[str] = []
    if exp.how == "other-resource":
        lines.append(exp.note)
        lines.append(f"gd-doctor explains EC2 instance coverage; see {exp.other_doc}")
        return "\n".join(lines) + "\n"
    if exp.how == "none":
        return f"No coverage issue matches {exp.query!r}. {LIST_HINT}\n"
    if exp.how == "closest":
        lines.append(f"No coverage issue matches {exp.query!r} exactly. Closest rows:")
        lines.append("")
    if exp.note and (verbose or exp.how != "korean"):
        lines.append(exp.note)
        lines.append("")
    for n, row in enumerate(exp.matches):
        if n:
            lines.append("")
        lines.extend(_row_block(row, check_titles, verbose=verbose, korean=exp.how == "korean"))
    if exp.how == "closest":
        lines.append("")
        lines.append(LIST_HINT)
    return "\n".join(lines) + "\n"


def render_list(width: Optional[int] = None) -> str:
    """``explain --list``: every row on one line (number, id, type and message), cut to
    ``width`` on a terminal, whole for a pipe."""
    rows = list(all_coverage_issues().values())
    id_width = max(len(r.id) for r in rows)
    out = []
    for r in rows:
        number = f"{r.number:>2}" if r.table == "ec2" else f"B{r.number}"  # Bottlerocket table
        line = f"{number}  {r.id.ljust(id_width)}  {r.type}: {r.message or '(empty message)'}"
        if width is not None and len(line) > width:
            line = line[: max(10, width - 3)].rstrip() + "..."
        out.append(line)
    return "\n".join(out) + "\n"


def _row_data(row: CoverageIssue) -> Dict[str, Any]:
    ktype = korean_type(row.type)
    return {
        "number": row.number,
        "table": row.table,
        "id": row.id,
        "type": row.type,
        "message": row.message,
        "host_observable": row.host_observable,
        "in_korean_edition": row.in_seed,
        "korean": {
            "type": ktype.text if ktype else None,
            "messages": [{"text": k.text, "kind": k.kind} for k in korean_messages(row.id)],
        },
        "steps": list(row.steps),
        "checks": list(checks_bearing_on(row.id)),
        "doc": row.doc,
    }


def render_explanation_json(exp: Explanation) -> str:
    """``explain --format json``: the query, how it matched, and every matching row."""
    doc = {
        "query": exp.query,
        "recognised": exp.recognised,
        "how": exp.how,
        "note": exp.note or None,
        "other_resource": exp.other_resource,
        "other_doc": exp.other_doc,
        "matches": [_row_data(r) for r in exp.matches],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_list_json() -> str:
    """``explain --list --format json``: every row."""
    rows = [_row_data(r) for r in all_coverage_issues().values()]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
