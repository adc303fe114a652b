"""Reading one HTTP answer from a socket under a deadline, and parsing it (status, headers,
a body that may be chunked): what the HTTPS probe needs, without an HTTP library."""

from __future__ import annotations

import socket
import time
from typing import Dict, Optional, Tuple

MAX_REPLY = 64 * 1024  # bytes of one answer read at most
BODY_KEEP = 2048  # bytes of its body kept


class Deadline:
    def __init__(self, timeout: float) -> None:
        self.end = time.monotonic() + max(0.05, timeout)

    def left(self) -> float:
        return max(0.01, self.end - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.end


def recv_until(sock: socket.socket, deadline: Deadline, stop_at_headers: bool) -> bytes:
    """Read until close, the end of the headers (for CONNECT), the size cap or the deadline."""
    import ssl

    data = b""
    while len(data) < MAX_REPLY and not deadline.passed():
        sock.settimeout(deadline.left())
        try:
            chunk = sock.recv(4096)
        except (socket.timeout, TimeoutError):
            break
        except ssl.SSLError:
            break
        if not chunk:
            break
        data += chunk
        if stop_at_headers and b"\r\n\r\n" in data:
            break
        if not stop_at_headers and _reply_complete(data):
            break
    return data


def _reply_complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            try:
                return len(body) >= int(value.strip())
            except ValueError:
                return False
    return False


def _dechunk(body: bytes) -> bytes:
    out = b""
    rest = body
    while rest:
        size_line, sep, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            return body
        if size == 0 or not sep:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return out


def parse_http_reply(data: bytes) -> Tuple[Optional[int], Dict[str, str], str]:
    """Status, headers (lower-case names) and body of a raw HTTP/1.x reply.

    >>> parse_http_reply(b"HTTP/1.1 403 Forbidden\\r\\nx-amzn-RequestId: abc\\r\\n"
    ...                  b"Content-Length: 2\\r\\n\\r\\n{}")
    (403, {'x-amzn-requestid': 'abc', 'content-length': '2'}, '{}')
    >>> parse_http_reply(b"garbage")
    (None, {}, '')
    """
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None, {}, ""
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep and len(headers) < 100:
            headers[key.strip().lower()] = value.strip()[:500]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    return int(parts[1]), headers, body[:BODY_KEEP].decode("utf-8", errors="replace")
