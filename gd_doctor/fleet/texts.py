"""The text host inputs: ``--format ssm`` output and Resource Data Sync inventory lines."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Dict, List, Mapping, Optional, Tuple

from gd_doctor.fleet.model import (
    VERDICTS,
    BadInput,
    HostItem,
    HostRecord,
    Kind,
    Reason,
)
from gd_doctor.fleet.values import (
    ACCOUNT_ID,
    INSTANCE_ID,
    REGION,
    clean,
    parse_time,
    row_of_issue,
    unknown_lead,
)
from gd_doctor.patterns import lazy

_SSM_HEAD = lazy(r"^gd-doctor: (HEALTHY|UNHEALTHY|UNKNOWN)\b(.*)$")
_SSM_FINDING = lazy(r"^\d+\. (FAIL|WARN) (.*?)(?: \[(.*)\])?$")
_ROW_LABEL = lazy(r"^row (B?\d+) ([a-z0-9-]+)$")  # B3: the Bottlerocket table


@lru_cache(maxsize=1)
def _title_patterns() -> Tuple[Tuple["re.Pattern[str]", str], ...]:
    from gd_doctor.knowledge import finding_specs

    out = []
    for spec in finding_specs().values():
        parts = re.split(r"\{[a-z_]+\}", spec.title)
        out.append((re.compile("^" + ".+?".join(re.escape(p) for p in parts) + "$"), spec.id))
    # Longest titles first: a specific title must win over a generic one with placeholders.
    out.sort(key=lambda p: -len(p[0].pattern))
    return tuple(out)


def finding_from_title(title: str) -> Optional[str]:
    """The finding id whose knowledge-base title (placeholders filled) is ``title``."""
    for pattern, fid in _title_patterns():
        if pattern.match(title):
            return fid
    return None


def _row_from_label(label: str) -> Optional[str]:
    m = _ROW_LABEL.match(label.strip())
    if m:
        return m.group(2)
    kind, sep, message = label.strip().rpartition(": ")
    if sep and message == "(empty)":
        # "[No Agent Reporting: (empty)]": the row of that type whose message is empty
        from gd_doctor.knowledge import all_coverage_issues

        for row in all_coverage_issues().values():
            if row.type.lower() == kind.lower() and not row.message:
                return row.id
    return row_of_issue(label) if label.strip() else None


def ssm_text(text: str, info: Mapping[str, str], src: str, mtime: float, kind: str) -> HostItem:
    lines = text.splitlines()
    m = _SSM_HEAD.match(lines[0].strip())
    if not m:
        return BadInput(src, Reason.NOT_A_REPORT, "first line is not a gd-doctor verdict")
    verdict = m.group(1).lower()
    tokens = re.sub(r"\(\d+ problems?\)", " ", m.group(2)).split()
    instance = account = region = row = None
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.startswith("row=") and i + 1 < len(tokens):
            nxt = tokens[i + 1]
            if t == "row=-" and nxt == "-":  # no row: "row=- -" holds the places
                i += 2
                continue
            row = nxt if not INSTANCE_ID.match(nxt) else None
            i += 2 if row else 1
            continue
        if INSTANCE_ID.match(t):
            instance = t
        elif ACCOUNT_ID.match(t):
            account = t
        elif REGION.match(t):
            region = t
        i += 1
    instance = instance or info.get("instance")
    if not instance:
        return BadInput(src, Reason.NO_INSTANCE, "the verdict line and the path name none")
    finding = fix = None
    rows: List[str] = [row] if row else []
    first = True
    for n, line in enumerate(lines[1:60], 1):
        fm = _SSM_FINDING.match(line.strip())
        if not fm:
            continue
        label_row = _row_from_label(fm.group(3)) if fm.group(3) else None
        if label_row and label_row not in rows:
            rows.append(label_row)
        if not first:
            continue
        first = False
        finding = finding_from_title(fm.group(2))
        row = row or label_row
        for follow in lines[n + 1 : n + 4]:
            if follow.strip().startswith("fix: "):
                fix = clean(follow.strip()[5:], 1000)
                break
    if fix is None and verdict == "unknown":
        reason = next((ln.strip()[8:] for ln in lines[1:4] if ln.startswith("reason: ")), None)
        fix = clean(unknown_lead(reason), 1000) if reason else None
    return HostRecord(
        instance_id=instance,
        account_id=account,
        region=region,
        # The text carries no time; `aws s3 sync` sets each file's mtime to the object's
        # LastModified, which is when the step wrote its output.
        time=mtime,
        verdict=verdict,
        finding=finding,
        row=row,
        fix=fix,
        os=None,
        kernel=None,
        agent_version=None,
        kind=kind,
        source=src,
        invocation=info.get("command"),
        rows=tuple(rows[:20]),
    )


def _lower_keys(d: Mapping[str, Any]) -> Dict[str, Any]:
    return {str(k).lower(): v for k, v in d.items()}


def inventory_entry(text: str, info: Mapping[str, str], src: str, mtime: float) -> HostItem:
    """A Resource Data Sync file: JSON lines, one per inventory entry (JsonSerDe format)."""
    entry: Optional[Dict[str, Any]] = None
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            reason = Reason.TRUNCATED if "Unterminated" in str(exc) else Reason.NOT_JSON
            return BadInput(src, reason, str(exc)[:120])
        if isinstance(obj, dict):
            entry = _lower_keys(obj)
            break
    if entry is None:
        return BadInput(src, Reason.NOT_A_REPORT, "no inventory entry")
    verdict = clean(entry.get("verdict"), 20)
    if verdict is None or verdict.lower() not in VERDICTS:
        return BadInput(src, Reason.NOT_A_REPORT, "inventory entry without a verdict")
    instance = clean(entry.get("resourceid") or entry.get("instance_id"), 40) or info["instance"]
    row = clean(entry.get("row_id") or entry.get("issue_id"), 80)
    finding = clean(entry.get("top_finding") or entry.get("finding"), 120)
    fix = clean(entry.get("fix") or entry.get("first_fix"), 1000)
    if fix is None and finding:
        from gd_doctor.knowledge import finding_specs

        spec = finding_specs().get(finding)
        fix = spec.fix if spec else None
    return HostRecord(
        instance_id=instance,
        account_id=clean(entry.get("account_id"), 12) or info.get("accountid"),
        region=clean(entry.get("region"), 32) or info.get("region"),
        time=parse_time(entry.get("checked_at") or entry.get("capturetime")) or mtime,
        verdict=verdict.lower(),
        finding=finding,
        row=row,
        fix=fix,
        os=clean(entry.get("os"), 120),
        kernel=clean(entry.get("kernel"), 120),
        agent_version=clean(entry.get("agent_version"), 80),
        kind=Kind.INVENTORY,
        source=src,
        rows=(row,) if row else (),
    )
