"""Reading one HTTP answer from a socket under a deadline, and parsing it (status, headers,
a body that may be chunked): what the HTTPS probe and the IMDS client need, without an HTTP
library."""

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


MAX_HEAD = 16 * 1024  # bytes of a status line and headers read at most


class BadReply(ValueError):
    """An answer that is not HTTP/1.x, or ends before its headers do."""


def read_answer(
    sock: socket.socket, deadline: Deadline, max_body: int
) -> Tuple[int, Dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one HTTP/1.x answer, the body read up
    to ``max_body + 1`` bytes (more says "too large" to the caller). Stops at Content-Length,
    at the end of a chunked body or at the close, so a server that keeps the connection open
    costs no wait. Raises OSError (socket.timeout at the deadline) or :class:`BadReply`."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            raise BadReply("headers too long")
        chunk = _recv(sock, deadline)
        if not chunk:
            raise BadReply(
                "closed before the headers ended" if data else "closed without an answer"
            )
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, headers, _ = parse_http_reply(head + b"\r\n\r\n")
    if status is None:
        raise BadReply("not an HTTP answer")
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    length = headers.get("content-length", "")
    expected = int(length) if length.isdigit() and not chunked else None
    while len(body) <= max_body + 2 and not (
        (expected is not None and len(body) >= expected)
        or (chunked and body.endswith(b"0\r\n\r\n"))
    ):
        chunk = _recv(sock, deadline)
        if not chunk:
            break
        body += chunk
    if chunked:
        body = _dechunk(body)
    elif expected is not None:
        body = body[:expected]
    return status, headers, body[: max_body + 1]


def _recv(sock: socket.socket, deadline: Deadline) -> bytes:
    if deadline.passed():
        raise socket.timeout("timed out")
    sock.settimeout(deadline.left())
    return sock.recv(65536)
