"""One CloudWatch Embedded Metric Format event per run.

Sent to the CloudWatch agent on the instance (``{"logs": {"metrics_collected": {"emf": {}}}}``
makes it listen on TCP and UDP 25888; agent 1.230621.0 or later), over TCP, falling back to UDP,
or appended to a file the agent ships (``--emf-file``). Spec: the CloudWatch EMF specification
(``_aws.Timestamp`` in ms, ``CloudWatchMetrics`` of Namespace, Dimensions, Metrics; an event is
at most 1 MB, at most 30 dimension keys, 100 metrics).

Dimensions are few and bounded, so the metrics stay cheap and alarmable: ``Verdict`` (3 values)
and ``IssueRow`` (the coverage-issue row id, about 20 values, ``none`` when healthy). The
instance id, account and Region are properties, not dimensions: Logs Insights can still group
by them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.host.delivery import send_tcp_then_udp
from gd_doctor.integrations.common import top_finding, top_row
from gd_doctor.model import Report, Severity, Verdict
from gd_doctor.redact import redact

NAMESPACE = "GdDoctor"
DEFAULT_ENDPOINT = ("127.0.0.1", 25888)
MAX_EVENT = 1024 * 1024


def _timestamp_ms(report: Report) -> int:
    try:
        at = datetime.fromisoformat(report.started_at)
    except ValueError:
        at = datetime.now(timezone.utc)
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return int(at.timestamp() * 1000)


def event(report: Report) -> Dict[str, object]:
    """The EMF document of one run."""
    row = top_row(report)
    top = top_finding(report)
    h = report.host
    doc: Dict[str, object] = {
        "_aws": {
            "Timestamp": _timestamp_ms(report),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Verdict", "IssueRow"], []],
                    "Metrics": [
                        {"Name": "Unhealthy", "Unit": "Count", "StorageResolution": 60},
                        {"Name": "Unknown", "Unit": "Count", "StorageResolution": 60},
                        {"Name": "Problems", "Unit": "Count", "StorageResolution": 60},
                        {"Name": "Warnings", "Unit": "Count", "StorageResolution": 60},
                        {"Name": "RunSeconds", "Unit": "Seconds", "StorageResolution": 60},
                    ],
                }
            ],
        },
        "Verdict": report.verdict.value,
        "IssueRow": row.id if row else "none",
        "Unhealthy": int(report.verdict == Verdict.UNHEALTHY),
        "Unknown": int(report.verdict == Verdict.UNKNOWN),
        "Problems": sum(1 for f in report.findings if f.severity == Severity.FAIL),
        "Warnings": sum(1 for f in report.findings if f.severity == Severity.WARN),
        "RunSeconds": round(report.duration_s, 3),
        # properties for Logs Insights, never dimensions (unbounded values)
        "InstanceId": h.instance_id or "",
        "AccountId": h.account_id or "",
        "Region": h.region or "",
        "TopFindingId": top.finding_id if top else "",
        "FindingIds": [f.finding_id for f in report.findings][:100],
        "ToolVersion": report.tool_version,
    }
    return doc


def render_event(report: Report) -> str:
    """One line of JSON (the agent reads newline-delimited events), redacted."""
    return redact(json.dumps(event(report), ensure_ascii=False, separators=(",", ":"))) + "\n"


@dataclass(frozen=True)
class Sent:
    how: Optional[str]  # "tcp", "udp", "file", or None when not sent
    problem: Optional[str] = None


def parse_endpoint(text: str) -> Tuple[str, int]:
    """``HOST:PORT`` (``[::1]:25888`` for IPv6); ValueError when malformed.

    >>> parse_endpoint("127.0.0.1:25888"), parse_endpoint("[::1]:9")
    (('127.0.0.1', 25888), ('::1', 9))
    """
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def send(line: str, endpoint: Tuple[str, int] = DEFAULT_ENDPOINT, timeout: float = 0.5) -> Sent:
    """Send one event to the CloudWatch agent: TCP, then UDP (see host.delivery)."""
    how, problem = send_tcp_then_udp(line.encode("utf-8")[:MAX_EVENT], endpoint, timeout)
    return Sent(how, problem)


def append(line: str, path: Path) -> Sent:
    """Append the event to ``path`` (created 0600) for an agent that ships that file."""
    import os

    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600
        )
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(line)
    except OSError as exc:
        return Sent(None, f"cannot append to {path}: {exc.strerror or exc}")
    return Sent("file")
