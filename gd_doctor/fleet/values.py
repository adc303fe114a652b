"""Small shared pieces of the fleet input readers: id and Region patterns, times, clean
strings from hostile files, and the coverage row an issue string names."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

from gd_doctor.patterns import lazy

MAX_FILE_BYTES = 16 * 1024 * 1024  # a report is ~30 kB; anything this big is not one
INSTANCE_ID = lazy(r"^(?:i|mi)-[0-9a-f]{8,17}$")
ACCOUNT_ID = lazy(r"^\d{12}$")
REGION = lazy(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
REGION_IN_NAME = lazy(r"(?<![a-z])([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2})(?![0-9])")
COMMAND_ID = lazy(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_UNPRINTABLE = lazy(r"[^\S ]|[\x00-\x1f\x7f-\x9f\u2028\u2029]")

ProgressFn = Callable[[int], None]


# ---------------------------------------------------------------------------------------------
# small helpers


def parse_time(value: Any) -> Optional[float]:
    """Seconds since the epoch from an ISO-8601 string (``Z`` or offset) or an epoch number.

    >>> parse_time("2026-11-30T10:00:00Z") == parse_time("2026-11-30T10:00:00+00:00")
    True
    >>> t0 = parse_time("2026-11-30T10:00:00Z")
    >>> round(parse_time("2026-11-30T10:00:00.123000+00:00") - t0, 3)
    0.123
    >>> round(parse_time("2026-11-30T10:00:00.5Z") - parse_time("2026-11-30T10:00:00Z"), 3)
    0.5
    >>> parse_time("yesterday") is None
    True
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        v = float(value)
        return v / 1000.0 if v > 1e11 else v  # milliseconds from some exporters
    if not isinstance(value, str) or not value.strip():
        return None
    return _parse_iso(value.strip())


@lru_cache(maxsize=256)  # console refreshes and report times repeat a lot
def _parse_iso(text: str) -> Optional[float]:
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
        if not (m and m.group(2)):
            return None
        # Python 3.9 accepts only 3 or 6 fraction digits
        try:
            at = datetime.fromisoformat(m.group(1) + (m.group(2) + "000000")[:7] + m.group(3))
        except ValueError:
            return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.timestamp()


def iso(ts: Optional[float]) -> Optional[str]:
    """The ISO-8601 UTC form used in every output."""
    if ts is None:
        return None
    return (
        datetime.fromtimestamp(ts, timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def clean(value: Any, limit: int = 512) -> Optional[str]:
    """A short clean string or None: hostile files must not blow up rows or outputs."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value[:limit]
    if not value.isprintable():  # rare: the C check keeps the common case fast
        value = _UNPRINTABLE.sub(" ", value)
    return value.strip() or None


def shown(path: Union[str, Path]) -> str:
    """A path as outputs show it: control characters in hostile file names become '?'.

    >>> shown("reports/\x1b[2Jx.json")
    'reports/?[2Jx.json'
    """
    text = str(path)
    return text if text.isprintable() else _UNPRINTABLE.sub("?", text)


def field(d: Mapping[str, Any], *names: str) -> Any:
    """A field by its CLI name (PascalCase) or its wire name (camelCase)."""
    for name in names:
        if name in d:
            return d[name]
        camel = name[:1].lower() + name[1:]
        if camel in d:
            return d[camel]
    return None


def obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


@lru_cache(maxsize=512)
def _row_of_normalised(norm: str) -> Optional[str]:
    from gd_doctor.diagnosis.explain import explain

    # explain() folds its input the same way again (the fold is idempotent), so the cache can be
    # keyed on the folded text: issues that differ only in VPC or request ids share one entry.
    found = explain(norm)
    if found.how in ("id", "message", "type", "korean") and found.matches:
        return found.matches[0].id
    return None


def row_of_issue(issue: str) -> Optional[str]:
    """The coverage-issue row id a console ``Issue`` string maps to (None if unrecognised).

    The patterns are gd_doctor.knowledge.coverage_issues(); an empty issue is row 2 (the current
    "No Agent Reporting" row), and a message shared by two rows (10 and 11) maps to the first.

    >>> row_of_issue("Agent disconnected")
    'agent-disconnected'
    >>> row_of_issue("Enabling private DNS requires both enableDnsSupport and enableDnsHostnames "
    ...              "VPC attributes set to true for vpc-0a1b2c3d4e5f60718")
    'private-dns-attributes'
    >>> row_of_issue("") , row_of_issue("quantum flux") is None
    ('no-agent-reporting', True)
    >>> row_of_issue("연결이 끊긴 에이전트")  # a console in Korean
    'agent-disconnected'
    """
    from gd_doctor.diagnosis.explain import normalise

    norm = normalise(issue)
    if not norm:
        return "no-agent-reporting"
    return _row_of_normalised(norm[:2000])


def unknown_lead(reason: str) -> str:
    """What a host with an unknown verdict and no problem listed offers as its fix: why it is not
    proven healthy (the JSON report's ``verdict_reason``, the SSM text's ``reason:`` line)."""
    return f"not proven healthy: {reason}"
