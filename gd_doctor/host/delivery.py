"""Sending one record to a local collector (the CloudWatch agent's EMF listener).

Used only when an option asks for it; every connect, send and the UDP fallback is bounded by
the timeout.
"""

from __future__ import annotations

import socket
from typing import Optional, Tuple


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def send_tcp_then_udp(
    data: bytes, endpoint: Tuple[str, int], timeout: float
) -> Tuple[Optional[str], Optional[str]]:
    """(how, problem): ``("tcp", None)``; ``("udp", why TCP failed)`` since a datagram cannot
    confirm delivery; ``(None, both reasons)`` when neither could be sent."""
    host, port = endpoint
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(data)
        return "tcp", None
    except OSError as exc:
        tcp_problem = exc.strerror or type(exc).__name__
    try:
        with socket.socket(_family(host), socket.SOCK_DGRAM) as udp:
            udp.settimeout(timeout)
            udp.sendto(data, (host, port))
        return "udp", f"TCP {host}:{port} failed ({tcp_problem}); sent over UDP, unconfirmed"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return None, (
            f"CloudWatch agent not reachable at {host}:{port}: TCP {tcp_problem}, UDP {reason}"
        )
