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
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
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


def parse_http_date(value: Optional[str]) -> Optional[datetime]:
    """An HTTP ``Date`` header (RFC 9110 IMF-fixdate, e.g. ``Tue, 01 Dec 2026 14:20:00 GMT``)
    as an aware UTC datetime, or None when absent or malformed.

    >>> parse_http_date("Tue, 01 Dec 2026 14:20:00 GMT").isoformat()
    '2026-12-01T14:20:00+00:00'
    >>> parse_http_date("yesterday") is None
    True
    """
    if not value or len(value) > 64:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


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
