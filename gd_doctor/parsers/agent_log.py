"""Parse one line of the GuardDuty agent's log files, whatever its format.

The agent's log format is not public (guardduty.md section 13), so this accepts any line and
pulls out what it can: a timestamp, a level and the message. Formats recognised:

* JSON objects with ``timestamp``/``time``/``ts``/``@timestamp`` and ``level``/``severity``
  and ``message``/``msg``/``fields.message`` (Rust ``tracing`` JSON, logrus, zap);
* Rust ``tracing``'s default text format: ``2026-11-30T11:59:01.123456Z ERROR target: message``;
* ``env_logger``: ``[2026-11-30T11:59:01Z ERROR target] message``;
* ``YYYY-MM-DD HH:MM:SS[.fff] LEVEL message`` (seelog, Python logging);
* syslog style ``Nov 30 11:59:01 host prog[pid]: message`` (no year: the caller supplies one);
* anything else: no timestamp, no level, the whole line as message.

Typical input (synthetic, modelled on Rust ``tracing``, since the agent's SDK is
``aws-sdk-rust``)::

    2026-11-30T11:59:01.123456Z ERROR amazon_guardduty_agent::sender: dispatch failure
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Tuple

from gd_doctor.frozen import hot_dataclass
from gd_doctor.parsers.errors import ParseError, loads_json
from gd_doctor.patterns import lazy

MAX_LINE = 8192  # longer lines are cut: a 10 MB single line must not cost 10 MB per copy

LEVELS = {
    "TRACE": "TRACE", "DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARN", "WARNING": "WARN",
    "ERROR": "ERROR", "ERR": "ERROR", "CRITICAL": "ERROR", "CRIT": "ERROR", "FATAL": "ERROR",
    "PANIC": "ERROR",
}  # fmt: skip

_ISO = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?"
_LEVEL = r"(?:TRACE|DEBUG|INFO|WARN(?:ING)?|ERR(?:OR)?|CRIT(?:ICAL)?|FATAL|PANIC)"
_ISO_LINE = lazy(
    rf"^\[?(?P<ts>{_ISO})\]?\s+(?:\[?(?P<level>{_LEVEL})\]?[\s:]+)?(?P<msg>.*)$", re.IGNORECASE
)
_ENV_LOGGER = lazy(rf"^\[(?P<ts>{_ISO})\s+(?P<level>{_LEVEL})\s+[^\]]*\]\s*(?P<msg>.*)$")
_SYSLOG = lazy(r"^(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)\s+(?P<msg>.*)$")
_LEVEL_ANYWHERE = lazy(rf"\b(?P<level>{_LEVEL})\b")
# The common case of _ISO in plain ASCII, UTC ("Z" or no zone): built straight from its fields,
# the same value the general path below gives, at a fraction of its cost (busy logs have 10^5+
# lines in the window and every one of them needs its time).
_FAST_ISO = lazy(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]{1,9}))?Z?"
)
# The start of a line _ISO_LINE (or _ENV_LOGGER) reads, in the same ASCII, UTC case.
_FAST_LINE = lazy(
    r"\[?([0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]{1,9})?Z?)\]?\s"
)


@hot_dataclass(frozen=True)  # one per log line
class LogLine:
    """What one log line says; fields the line does not carry are None."""

    message: str
    timestamp: Optional[datetime] = None
    level: Optional[str] = None
    structured: bool = False


def parse_time(text: str, year: Optional[int] = None) -> Optional[datetime]:
    """An ISO-like or syslog timestamp, as an aware UTC datetime (naive times are taken as UTC).

    >>> parse_time("2026-11-30T11:59:01.123456789Z").isoformat()
    '2026-11-30T11:59:01.123456+00:00'
    >>> parse_time("Nov 30 11:59:01", year=2026).isoformat()
    '2026-11-30T11:59:01+00:00'
    """
    text = text.strip()
    fast = _fast_iso(text)
    if fast is not None:
        return fast
    if re.fullmatch(r"\d{10}(?:\.\d+)?", text):
        return datetime.fromtimestamp(float(text), timezone.utc)
    m = re.fullmatch(_ISO, text)
    if m:
        iso = text.replace(" ", "T", 1).replace(",", ".")
        iso = re.sub(r"Z$", "+00:00", iso)
        iso = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", iso)
        iso = re.sub(r"\.(\d{6})\d+", r".\1", iso)  # nanoseconds: fromisoformat takes micro
        frac = re.search(r"\.(\d{1,5})(?=[+-]|$)", iso)
        if frac:  # Python 3.9's fromisoformat wants exactly 3 or 6 digits
            iso = iso.replace("." + frac.group(1), "." + frac.group(1).ljust(6, "0"), 1)
        try:
            at = datetime.fromisoformat(iso)
        except ValueError:
            return None
        return at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    if year is not None and re.fullmatch(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d", text):
        try:
            at = datetime.strptime(f"{year} {text}", "%Y %b %d %H:%M:%S")
        except ValueError:
            return None
        return at.replace(tzinfo=timezone.utc)
    return None


def _fast_iso(text: str) -> Optional[datetime]:
    """``text`` as parse_time reads it, when it is an ASCII UTC ISO time; else None (then the
    general path decides, also for invalid dates)."""
    m = _FAST_ISO.fullmatch(text)
    if m is None:
        return None
    y, mo, d, h, mi, sec, frac = m.groups()
    if h == "24":  # whether fromisoformat takes 24:00 depends on the Python version
        return None
    try:
        return datetime(
            int(y),
            int(mo),
            int(d),
            int(h),
            int(mi),
            int(sec),
            int(frac[:6].ljust(6, "0")) if frac else 0,
            timezone.utc,
        )
    except ValueError:
        return None


def line_timestamp(line: str, year: Optional[int] = None) -> Optional[datetime]:
    """The timestamp ``parse_agent_log_line(line, year)`` gives, reading no more than needed.

    >>> line_timestamp("2026-11-30T11:59:01.5Z  INFO agent: heartbeat").isoformat()
    '2026-11-30T11:59:01.500000+00:00'
    >>> line_timestamp("no time here") is None
    True
    """
    m = _FAST_LINE.match(line)
    if m is not None:  # such a line is an _ISO_LINE/_ENV_LOGGER line whose ts is this group
        at = _fast_iso(m.group(1))
        if at is not None:
            return at
    return parse_agent_log_line(line, year).timestamp


def _first(obj: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value: Any = obj
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value not in (None, ""):
            return value
    return None


def _parse_json(line: str) -> Optional[LogLine]:
    try:
        obj = loads_json(line)
    except ParseError:
        return None
    if not isinstance(obj, dict):
        return None
    msg = _first(obj, "message", "msg", "fields.message", "error", "err")
    ts = _first(obj, "timestamp", "time", "ts", "@timestamp", "datetime")
    level = _first(obj, "level", "severity", "lvl", "log.level")
    at = parse_time(str(ts)) if ts is not None else None
    text = str(msg) if msg is not None else line
    extra = _first(obj, "fields.error", "error.message", "cause")
    if extra is not None and str(extra) not in text:
        text = f"{text}: {extra}"
    return LogLine(text, at, LEVELS.get(str(level).upper()) if level else None, True)


def parse_agent_log_line(line: str, year: Optional[int] = None) -> LogLine:
    """Parse one line (already decoded); never raises.

    >>> l = parse_agent_log_line("2026-11-30T11:59:01.123456Z ERROR agent::net: dns error")
    >>> l.timestamp.isoformat(), l.level, l.message
    ('2026-11-30T11:59:01.123456+00:00', 'ERROR', 'agent::net: dns error')
    >>> l = parse_agent_log_line('{"timestamp":"2026-11-30T11:59:01Z","level":"WARN","msg":"x"}')
    >>> l.level, l.message, l.structured
    ('WARN', 'x', True)
    >>> parse_agent_log_line("[2026-11-30T11:59:01Z INFO  agent] started").level
    'INFO'
    >>> parse_agent_log_line("libbpf: failed to find valid kernel BTF").timestamp is None
    True
    """
    line = line[:MAX_LINE].replace("\x00", "").strip()
    if line.startswith("{"):
        parsed = _parse_json(line)
        if parsed is not None:
            return parsed
    for pattern in (_ENV_LOGGER, _ISO_LINE):
        m = pattern.match(line)
        if m:
            level = m.group("level")
            return LogLine(
                m.group("msg").strip(),
                parse_time(m.group("ts")),
                LEVELS.get(level.upper()) if level else None,
            )
    m = _SYSLOG.match(line)
    if m:
        at = parse_time(m.group("ts"), year)
        lm = _LEVEL_ANYWHERE.search(m.group("msg"))
        return LogLine(m.group("msg"), at, LEVELS.get(lm.group("level").upper()) if lm else None)
    lm = _LEVEL_ANYWHERE.match(line)
    return LogLine(line, None, LEVELS.get(lm.group("level").upper()) if lm else None)


# guardduty-data, -v2 and -fips names in every partition (amazonaws.com, amazonaws.com.cn).
_ENDPOINT_HOST = lazy(
    r"\b(guardduty-data(?:-v2|-fips)?\.((?:[a-z]{2}(?:-gov|-iso[a-z]?)?)-[a-z]+-\d+)"
    r"\.amazonaws\.com(?:\.cn)?)\b",
    re.IGNORECASE,
)


def endpoint_host_in(message: str) -> Optional[Tuple[str, str]]:
    """The GuardDuty data endpoint a log line names, and its Region, or None.

    Typical input (a DNS failure as an agent would log it)::

        dns error: failed to lookup address information for guardduty-data.eu-west-1.amazonaws.com

    >>> endpoint_host_in("connect to guardduty-data.eu-west-1.amazonaws.com:443 timed out")
    ('guardduty-data.eu-west-1.amazonaws.com', 'eu-west-1')
    >>> endpoint_host_in("https://guardduty-data-v2.cn-north-1.amazonaws.com.cn/ refused")
    ('guardduty-data-v2.cn-north-1.amazonaws.com.cn', 'cn-north-1')
    >>> endpoint_host_in("heartbeat ok") is None
    True
    """
    m = _ENDPOINT_HOST.search(message)
    if m is None:
        return None
    return m.group(1).lower(), m.group(2).lower()
