"""Lines of the SSM Agent's logs: ``amazon-ssm-agent.log``, ``errors.log`` and its journal.

The agent logs through seelog (aws/amazon-ssm-agent ``seelog.xml`` template, commit 1c217c89)::

    %Date(2006-01-02 15:04:05.0000) %LEVEL %Msg                          (info file)
    %Date(2006-01-02 15:04:05.0000) %LEVEL [%FuncShort @ %File.%Line] %Msg  (errors, debug)

Agent 3.x puts the worker's name in brackets at the start of the message
(``INFO [ssm-agent-worker] ...``); agent 2.x error lines carry the function and file
(``ERROR [HandleAwsError @ awserr.go.48] [instanceID=i-...] [HealthCheck] ...``). In the journal
the same text appears without fractional seconds. An AWS SDK error continues on the next lines
(``caused by: ...``, ``<TAB>status code: 400, request id: ...``); :func:`parse_ssm_log` folds those
continuation lines into the entry they belong to, because the cause (a DNS failure, a timeout) is
often only on the continuation.

The timestamp is the host's local time (seelog ``%Date``); EC2 images run in UTC by default, so
gd-doctor reads it as UTC and says so where it matters.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Iterable, List, Optional, Sequence, Tuple

from gd_doctor.frozen import dataclass, hot_dataclass
from gd_doctor.patterns import LazyPattern, lazy

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")

_LINE = lazy(
    r"^(?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{2}:\d{2}:\d{2})(?:\.\d+)?\s+"
    r"(?P<level>TRACE|DEBUG|INFO|WARN|ERROR|CRITICAL)\s+"
    r"(?:\[(?P<component>[^\]]{1,120})\]\s*)?(?P<msg>.*)$"
)
# A syslog-style prefix ("Oct 12 13:49:56 host amazon-ssm-agent[1860]: ") before the seelog line,
# as in /var/log/syslog, /var/log/messages or `journalctl` short output pasted into a file.
_SYSLOG_PREFIX = lazy(r"^[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \S+ [\w.@-]+(?:\[\d+\])?: ")

MAX_MESSAGE = 2000  # one folded entry; SDK errors can drag an HTML page along


@hot_dataclass(frozen=True)  # one per log entry
class SsmLogEntry:
    """One log entry: its first line's fields plus any continuation lines folded in."""

    timestamp: Optional[datetime]
    level: str
    component: Optional[str]
    message: str
    line: str  # the first line as written (for evidence)
    lineno: int = 0

    @property
    def text(self) -> str:
        """Everything the entry says, continuation included, on one line."""
        return self.message


def parse_ssm_log_line(line: str) -> Optional[SsmLogEntry]:
    """Parse one line that starts an entry, or None for a continuation or foreign line.

    Typical input (agent 3.x, file)::

        2024-11-04 09:07:41.2240 INFO [amazon-ssm-agent] Stopping Core Agent

    >>> e = parse_ssm_log_line(
    ...     "2024-11-04 09:07:41.2240 INFO [amazon-ssm-agent] Stopping Core Agent")
    >>> (e.timestamp.isoformat(), e.level, e.component, e.message)
    ('2024-11-04T09:07:41+00:00', 'INFO', 'amazon-ssm-agent', 'Stopping Core Agent')
    >>> e = parse_ssm_log_line(
    ...     "Oct 12 13:49:56 ip-10-0-0-5 amazon-ssm-agent[1860]: 2020-10-12 13:49:56 ERROR "
    ...     "Health ping failed with error - RequestError: send request failed")
    >>> (e.level, e.component, e.message)
    ('ERROR', None, 'Health ping failed with error - RequestError: send request failed')
    >>> parse_ssm_log_line("caused by: EC2MetadataError: failed to make EC2Metadata request")
    """
    stripped = line.rstrip("\r\n")
    body = _SYSLOG_PREFIX.sub("", stripped, count=1)
    m = _LINE.match(body)
    if m is None:
        return None
    try:
        ts: Optional[datetime] = datetime.strptime(
            f"{m['date']} {m['time']}", "%Y-%m-%d %H:%M:%S"
        ).replace(tzinfo=timezone.utc)
    except ValueError:  # 2024-13-45 and friends: keep the line, drop the time
        ts = None
    return SsmLogEntry(ts, m["level"], m["component"], m["msg"][:MAX_MESSAGE], body)


def parse_ssm_log(lines: Iterable[str]) -> List[SsmLogEntry]:
    """Parse a whole log, folding continuation lines into the entry before them.

    Lines before the first entry (a file that starts mid-entry because gd-doctor read only its
    tail) are dropped.

    >>> log = '''2020-07-23 22:19:21 ERROR Health ping failed with error - EC2RoleRequestError: x
    ... caused by: EC2MetadataError: failed to make EC2Metadata request
    ... \tstatus code: 404, request id:
    ... 2020-07-23 22:19:22 INFO Backing off health check to every 600 seconds for 1800 seconds.'''
    >>> entries = parse_ssm_log(log.splitlines())
    >>> [(e.level, e.lineno) for e in entries]
    [('ERROR', 1), ('INFO', 4)]
    >>> for part in entries[0].message.split(" | ")[1:]:
    ...     print(part)
    caused by: EC2MetadataError: failed to make EC2Metadata request
    status code: 404, request id:
    """
    entries: List[SsmLogEntry] = []
    for n, raw in enumerate(lines, 1):
        entry = parse_ssm_log_line(raw)
        if entry is not None:
            entries.append(_with_lineno(entry, n))
            continue
        extra = raw.strip()
        if entries and extra and len(entries[-1].message) < MAX_MESSAGE:
            last = entries[-1]
            folded = f"{last.message} | {extra}"[:MAX_MESSAGE]
            entries[-1] = SsmLogEntry(
                last.timestamp, last.level, last.component, folded, last.line, last.lineno
            )
    return entries


def _with_lineno(entry: SsmLogEntry, n: int) -> SsmLogEntry:
    return SsmLogEntry(entry.timestamp, entry.level, entry.component, entry.message, entry.line, n)


@dataclass(frozen=True)
class Signature:
    """A known message of the SSM Agent: an id, a pattern and what it means."""

    id: str
    pattern: LazyPattern[str]  # compiled when an entry of its levels is first tried
    cause: str
    levels: Tuple[str, ...] = ()


def compile_signatures(raw: Sequence[Tuple[str, str, str, Sequence[str]]]) -> List[Signature]:
    """Signatures from (id, regex, cause, levels) tuples; regexes match case-insensitively.

    >>> [s.id for s in compile_signatures([("x", "a+b", "cause", ())])]
    ['x']
    """
    return [Signature(i, lazy(p, re.IGNORECASE), c, tuple(lv)) for i, p, c, lv in raw]


def match_signatures(entry: SsmLogEntry, signatures: Sequence[Signature]) -> List[Signature]:
    """Every signature the entry matches (the first line or its continuation).

    >>> sigs = compile_signatures([
    ...     ("health-ping-access-denied", r"AccessDeniedException.*ssm:UpdateInstanceInformation",
    ...      "iam", ()),
    ...     ("dns", r"dial tcp: lookup \\S+", "network", ("ERROR", "WARN"))])
    >>> e = parse_ssm_log_line("2021-04-30 14:08:08 INFO [ssm-agent-worker] Entering SSM Agent "
    ...     "hibernate - AccessDeniedException: User: arn:aws:sts::111122223333:assumed-role/r/i-0 "
    ...     "is not authorized to perform: ssm:UpdateInstanceInformation on resource: x")
    >>> [s.id for s in match_signatures(e, sigs)]
    ['health-ping-access-denied']
    """
    found = []
    for sig in signatures:
        if sig.levels and entry.level not in sig.levels:
            continue
        if sig.pattern.search(entry.message):
            found.append(sig)
    return found
