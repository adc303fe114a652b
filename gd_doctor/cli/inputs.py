"""What the command line's options must look like: ``--since``, ``--region``, the endpoint URLs,
check ids ("did you mean"), and the ``--output`` path, each checked before any check runs."""

from __future__ import annotations

import difflib
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List, Optional, Sequence

import typer

MAX_SINCE = timedelta(days=3650)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def _duration_s(text: str) -> Optional[float]:
    """The seconds of ``90m``, ``24 h``, ``1.5d`` or ``6`` (hours); None for anything else.

    Plain string work rather than a regular expression compiled at every start for the one
    ``24h`` most runs parse; ``isdecimal`` and ``strip`` are what ``\\d`` and ``\\s`` match.

    >>> _duration_s(" 1.5 D "), _duration_s("6"), _duration_s("24ſ"), _duration_s("5.h")
    (129600.0, 21600.0, None, None)
    """
    body = text.strip()
    unit = _UNITS.get(body[-1:].lower())
    if unit is None:
        unit = _UNITS["h"]
    else:
        body = body[:-1].rstrip()
    whole, dot, fraction = body.partition(".")
    if not whole.isdecimal() or (dot and not fraction.isdecimal()):
        return None
    return float(body) * unit


def parse_since(text: str, now: Optional[datetime] = None) -> timedelta:
    """A log window from ``24h``, ``90m``, ``7d``, ``3600s`` or an ISO-8601 time.

    >>> parse_since("24h")
    datetime.timedelta(days=1)
    >>> parse_since("90m")
    datetime.timedelta(seconds=5400)
    >>> parse_since("2026-11-30T00:00:00+00:00", datetime(2026, 11, 30, 6, tzinfo=timezone.utc))
    datetime.timedelta(seconds=21600)
    """
    if len(text) > 64:
        raise typer.BadParameter("too long for a duration or a time", param_hint="--since")
    seconds = _duration_s(text)
    if seconds is not None:
        if not 0 < seconds <= MAX_SINCE.total_seconds():
            raise typer.BadParameter(
                f"{text!r}: the window must be more than 0 and at most {MAX_SINCE.days} days",
                param_hint="--since",
            )
        return timedelta(seconds=seconds)
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: use a duration such as 24h, 90m, 7d, or an ISO-8601 time",
            param_hint="--since",
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    delta = (now or datetime.now(timezone.utc)) - at
    if delta.total_seconds() <= 0:
        raise typer.BadParameter(f"{text!r} is in the future", param_hint="--since")
    if delta > MAX_SINCE:
        raise typer.BadParameter(
            f"{text!r} is more than {MAX_SINCE.days} days ago", param_hint="--since"
        )
    return delta


# A Region name: two letters, an optional partition marker, a direction, a number (compiled
# by re on first use: most runs give no --region).
REGION = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$"
_URL_MAX = 2048


def check_region(region: str) -> str:
    """``--region`` as given when it is a Region name; a usage error otherwise."""
    if not re.match(REGION, region, re.ASCII):
        raise typer.BadParameter(
            f"{region[:80]!r} is not a Region name (for example us-east-1)", param_hint="--region"
        )
    return region


def check_url(value: str, option: str, *, scheme_required: bool) -> str:
    """``--imds-endpoint`` / ``--endpoint-url``: ``http(s)://HOST[:PORT]`` (a bare HOST[:PORT]
    when the scheme is optional), no credentials, query or path beyond ``/``."""
    from urllib.parse import urlsplit

    def refuse(why: str) -> typer.BadParameter:
        return typer.BadParameter(f"{value[:80]!r} {why}", param_hint=option)

    if not value or len(value) > _URL_MAX or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise refuse("is not a URL (empty, too long or with spaces)")
    if "://" not in value and scheme_required:
        raise refuse("needs a scheme: http://HOST[:PORT]")
    parts = urlsplit(value if "://" in value else "https://" + value)
    if parts.scheme not in ("http", "https"):
        raise refuse("must use http:// or https://")
    try:
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise refuse("has an invalid port") from None
    if not host:
        raise refuse("has no host name")
    if parts.username or parts.password:
        raise refuse("must not carry credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise refuse("must be a base URL: scheme, host and port only")
    return value


def suggest(name: str, choices: Sequence[str]) -> str:
    """ " (did you mean 'agent.unit'?)" for a near miss, else ""."""
    close = difflib.get_close_matches(name.lower(), list(choices), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def selection(names: Optional[List[str]]) -> List[str]:
    """``--only``/``--skip`` values, case-folded: ids and categories are lower case."""
    return [n.lower() for n in names or ()]


def output_problem(path: Path) -> Optional[str]:
    """Why ``--output`` cannot be written, checked before any check runs; None when it can.

    Only a regular file (new or existing) in an existing, writable directory is accepted: a
    FIFO would block the run, a device or a directory is never what the user meant.
    """
    from gd_doctor.integrations.outputs import file_problem

    return file_problem(path)
