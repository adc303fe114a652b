"""Text for ``gd-doctor explain``: the row, its steps and the local checks that bear on it."""

from __future__ import annotations

from typing import List

from gd_doctor.diagnosis.explain import Explanation, checks_bearing_on
from gd_doctor.knowledge import CoverageIssue

_OBSERVABLE = {
    "yes": "gd-doctor can see the cause on the instance",
    "partly": "gd-doctor sees causes and symptoms on the instance, not the row itself",
    "no": "visible only from the control plane (GuardDuty console or API), not from the host",
}


def _row_block(row: CoverageIssue, check_titles: dict) -> List[str]:  # type: ignore[type-arg]
    message = f'"{row.message}"' if row.message else "(empty message)"
    table = "Bottlerocket (ECS-EC2) table, row" if row.table == "bottlerocket" else "Row"
    lines = [
        f"{table} {row.number} [{row.id}]: {row.type} {message}",
        f"  From the host: {_OBSERVABLE.get(row.host_observable, row.host_observable)}.",
    ]
    if row.table == "ec2" and not row.in_seed:
        lines.append("  Added to the AWS table after the 2025 edition.")
    lines.append("  Troubleshooting:")
    lines.extend(f"    {n}. {s}" for n, s in enumerate(row.steps, 1))
    related = checks_bearing_on(row.id)
    if related:
        lines.append("  Local checks that bear on it (gd-doctor check --only <id>):")
        lines.extend(f"    - {c}: {check_titles.get(c, '')}".rstrip(": ") for c in related)
    lines.append(f"  Docs: {row.doc}")
    return lines


def render_explanation(exp: Explanation, check_titles: dict) -> str:  # type: ignore[type-arg]
    """What ``explain`` prints."""
    lines: List[str] = []
    if exp.how == "other-resource":
        lines.append(exp.note)
        lines.append(f"gd-doctor explains EC2 instance coverage; see {exp.other_doc}")
        return "\n".join(lines) + "\n"
    if exp.how == "none":
        return f"No coverage issue matches {exp.query!r}.\n"
    if exp.how == "closest":
        lines.append(f"No coverage issue matches {exp.query!r} exactly. Closest rows:")
        lines.append("")
    if exp.note:
        lines.append(exp.note)
        lines.append("")
    for n, row in enumerate(exp.matches):
        if n:
            lines.append("")
        lines.extend(_row_block(row, check_titles))
    return "\n".join(lines) + "\n"
