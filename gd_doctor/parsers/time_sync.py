"""Parsers for the clock-synchronisation state: ``timedatectl show``, ``chronyc -c tracking``,
the HTTP ``Date`` header, and whether a configuration names the Amazon Time Sync Service.

Formats:

* ``timedatectl show`` (systemd >= 239) prints ``Key=value`` lines: ``Timezone=UTC``,
  ``LocalRTC=no``, ``CanNTP=yes``, ``NTP=yes``, ``NTPSynchronized=yes``,
  ``TimeUSec=Tue 2026-12-01 14:20:00 UTC``, ``RTCTimeUSec=...``. ``NTPSynchronized`` is the
  kernel's own state (adjtimex(2): STA_UNSYNC clear), set by whichever daemon disciplines the
  clock: chronyd, ntpd or systemd-timesyncd.
* ``chronyc -c tracking`` prints one CSV line whose fields follow the ``tracking`` report of
  chrony's client.c: reference id (hex), reference name or address, stratum, reference time
  (epoch seconds), system time offset (signed seconds; positive: the clock is slow of NTP
  time), last offset, RMS offset, frequency (ppm), residual frequency, skew, root delay, root
  dispersion, update interval, leap status (``Normal``, ``Insert second``, ``Delete second``,
  ``Not synchronised``).

Hostile text never makes these raise: anything unexpected is None.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Dict, Optional

from gd_doctor.frozen import dataclass
from gd_doctor.patterns import lazy

# The Amazon Time Sync Service: link-local IPv4, and IPv6 on Nitro instances.
TIME_SYNC_ADDRESSES = ("169.254.169.123", "fd00:ec2::123")
_MAX_LINES = 200


def parse_timedatectl_show(text: str) -> Dict[str, str]:
    """``Key=value`` lines of ``timedatectl show`` (first 200 lines; other lines ignored).

    >>> parse_timedatectl_show("NTP=yes\\nNTPSynchronized=no\\n")["NTPSynchronized"]
    'no'
    """
    out: Dict[str, str] = {}
    for line in text.splitlines()[:_MAX_LINES]:
        key, sep, value = line.partition("=")
        if sep and key.strip() and key.strip().isalnum():
            out.setdefault(key.strip(), value.strip())
    return out


def yes_no(value: Optional[str]) -> Optional[bool]:
    """systemd's booleans as ``show`` prints them (``yes``/``no``); anything else is None."""
    if value is None:
        return None
    return {"yes": True, "no": False}.get(value.strip().lower())


@dataclass(frozen=True)
class ChronyTracking:
    """The fields of ``chronyc -c tracking`` gd-doctor uses."""

    reference_id: str
    reference: str
    stratum: int
    system_offset_s: float
    leap_status: str

    @property
    def synchronised(self) -> bool:
        """chronyd has a reference (stratum 1-15) and does not report "Not synchronised"."""
        return self.leap_status != "Not synchronised" and 0 < self.stratum < 16

    @property
    def uses_time_sync_service(self) -> bool:
        return self.reference in TIME_SYNC_ADDRESSES


def parse_chrony_tracking(text: str) -> Optional[ChronyTracking]:
    """The first line of ``chronyc -c tracking`` with the 14 fields, or None.

    >>> t = parse_chrony_tracking(
    ...     "A9FEA97B,169.254.169.123,4,1764598800.123456789,0.000012345,-0.000004567,"
    ...     "0.000023456,-12.345,-0.001,0.035,0.000345678,0.000123456,64.5,Normal")
    >>> (t.reference, t.stratum, t.synchronised, t.uses_time_sync_service)
    ('169.254.169.123', 4, True, True)
    """
    for line in text.splitlines()[:_MAX_LINES]:
        fields = line.strip().split(",")
        if len(fields) != 14 or not re.fullmatch(r"[0-9A-Fa-f]{1,8}", fields[0]):
            continue
        try:
            stratum = int(fields[2])
            offset = float(fields[4])
        except ValueError:
            continue
        if offset != offset or abs(offset) > 1e12:  # NaN or absurd: not chrony's output
            continue
        return ChronyTracking(
            reference_id=fields[0].upper(),
            reference=fields[1][:255],
            stratum=stratum,
            system_offset_s=offset,
            leap_status=fields[13][:40],
        )
    return None


_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_UTC_NAMES = {"gmt", "utc", "ut", "z"}


def parse_http_date(value: Optional[str]) -> Optional[datetime]:
    """An HTTP ``Date`` header as an aware UTC datetime, or None when absent or malformed.

    RFC 9110 5.6.7's three forms, which a recipient must accept (IMF-fixdate, RFC 850 and
    asctime), and a numeric zone as RFC 5322 writes it. Read here rather than with
    ``email.utils``, whose import (the ``email`` package's charsets and encoders) cost a live
    run more CPU than the rest of the clock check.

    >>> parse_http_date("Tue, 01 Dec 2026 14:20:00 GMT").isoformat()
    '2026-12-01T14:20:00+00:00'
    >>> parse_http_date("Tuesday, 01-Dec-26 14:20:00 GMT").isoformat()
    '2026-12-01T14:20:00+00:00'
    >>> parse_http_date("Tue Dec  1 14:20:00 2026").isoformat()
    '2026-12-01T14:20:00+00:00'
    >>> parse_http_date("Tue, 01 Dec 2026 15:20:00 +0100").isoformat()
    '2026-12-01T14:20:00+00:00'
    >>> parse_http_date("yesterday") is None
    True
    """
    if not value or len(value) > 64:
        return None
    tokens = value.replace(",", " ").split()
    if tokens and not tokens[0][:1].isdigit() and tokens[0][:3].lower() not in _MONTHS:
        tokens = tokens[1:]  # the day of the week, which the date itself implies
    if len(tokens) == 3 and tokens[0].count("-") == 2:  # RFC 850: 01-Dec-26 14:20:00 GMT
        tokens = tokens[0].split("-") + tokens[1:]
    if len(tokens) in (4, 5) and tokens[0].isdigit():  # day month year time [zone]
        day, month, year, clock = tokens[:4]
        zone = tokens[4] if len(tokens) == 5 else "GMT"
    elif len(tokens) in (4, 5) and tokens[1].isdigit():  # asctime: month day time year
        month, day, clock, year = tokens[:4]
        zone = tokens[4] if len(tokens) == 5 else "GMT"
    else:
        return None
    return _http_datetime(day, month, year, clock, zone)


def _http_datetime(day: str, month: str, year: str, clock: str, zone: str) -> Optional[datetime]:
    number = _MONTHS.get(month[:3].lower()) if len(month) >= 3 else None
    parts = clock.split(":")
    offset = _zone_offset(zone)
    if number is None or offset is None or not 2 <= len(parts) <= 3 or len(year) not in (2, 4):
        return None
    if not (day.isdigit() and year.isdigit() and all(p.isdigit() and len(p) <= 2 for p in parts)):
        return None
    full_year = int(year) + (0 if len(year) == 4 else 1900 if int(year) > 68 else 2000)
    hour, minute, second = (int(p) for p in [*parts, "0"][:3])
    try:
        when = datetime(full_year, number, int(day), hour, minute, second, tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        return None
    return when - offset


def _zone_offset(zone: str) -> Optional[timedelta]:
    """``GMT`` and its names, or ``+hhmm``/``-hhmm``; None for anything else."""
    if zone.lower() in _UTC_NAMES:
        return timedelta(0)
    if len(zone) == 5 and zone[0] in "+-" and zone[1:].isdigit():
        hours, minutes = int(zone[1:3]), int(zone[3:])
        if minutes < 60:
            sign = -1 if zone[0] == "-" else 1
            return sign * timedelta(hours=hours, minutes=minutes)
    return None


_SERVER_LINE = lazy(r"^\s*(?:server|pool|peer)\s+(\S+)", re.I | re.M)
_TIMESYNCD_NTP = lazy(r"^\s*(?:NTP|FallbackNTP)\s*=\s*(.*)$", re.M)


def names_time_sync_service(text: str) -> bool:
    """Whether a chrony/ntp configuration (``server``/``pool`` lines) or timesyncd.conf
    (``NTP=``) names 169.254.169.123 or fd00:ec2::123; comments do not count.

    >>> names_time_sync_service("server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4")
    True
    >>> names_time_sync_service("# server 169.254.169.123\\npool 2.pool.ntp.org iburst")
    False
    """
    servers = set(_SERVER_LINE.findall(text))
    for value in _TIMESYNCD_NTP.findall(text):
        servers.update(value.split())
    return any(s.strip("[]") in TIME_SYNC_ADDRESSES for s in servers)
