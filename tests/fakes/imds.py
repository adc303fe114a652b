"""A fake EC2 instance metadata service on loopback, behaving like IMDS where gd-doctor looks.

Usage::

    with FakeImds(tokens="required") as imds:
        client = HttpImds(imds.url)
        ...
        assert imds.requests[0].method == "PUT"

Knobs (all attributes, changeable while the server runs):

* ``tree``: path -> body (str) or None (404). Defaults to ``tests/fixtures/imds/aemm-tree.json``.
* ``tokens``: ``required`` (tokenless GET -> 401, as AEMM's ``--imdsv2``), ``optional``,
  ``disabled`` (PUT -> 403: only IMDSv1 works), ``off`` (everything 403: IMDS turned off).
* ``drop_put``: the PUT gets no reply at all (the hop-limit symptom from a container).
* ``status``: path -> HTTP status forced for that path (e.g. 503 to exercise the retry).
* ``delay_s``: sleep before every reply; ``trickle``: send the body a byte per ``trickle`` s.
* ``clock_offset_s``: how far the ``Date`` header of every reply is from this machine's clock
  (negative: the host runs ahead of "AWS", as a skewed instance would see it).
* ``requests``: the log of :class:`Request` (method, path, headers) the tests assert on.

Behaviour follows the EC2 User Guide: a PUT carrying ``X-Forwarded-For`` is refused (403); a PUT
without ``X-aws-ec2-metadata-token-ttl-seconds`` gets 400; tokens are opaque strings.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "imds" / "aemm-tree.json"
TOKEN = "AQAEAFAKE-imds-token-MUST-NEVER-BE-PRINTED=="

UNAUTHORIZED = (
    '<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 '
    'Transitional//EN"\n\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
    '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n <head>\n  '
    "<title>401 - Unauthorized</title>\n </head>\n <body>\n  <h1>401 - Unauthorized</h1>\n"
    " </body>\n</html>\n"
)


def default_tree() -> Dict[str, Optional[str]]:
    data: Dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if k.startswith("/")}


@dataclass
class Request:
    method: str
    path: str
    headers: Dict[str, str]


@dataclass
class _State:
    tree: Dict[str, Optional[str]] = field(default_factory=default_tree)
    tokens: str = "required"
    drop_put: bool = False
    status: Dict[str, int] = field(default_factory=dict)
    delay_s: float = 0.0
    trickle: float = 0.0
    clock_offset_s: float = 0.0
    requests: List[Request] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # headers and body leave in one segment, as from the real IMDS

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def date_time_string(self, timestamp: Optional[float] = None) -> str:
        # the Date header send_response() adds, shifted by the knob (AWS's clock vs the host's)
        when = time.time() if timestamp is None else timestamp
        return super().date_time_string(when + self.server.state.clock_offset_s)

    def _send(self, status: int, body: str, content_type: str = "text/plain") -> None:
        st = self.server.state
        if st.delay_s:
            time.sleep(st.delay_s)
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if st.trickle:
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                time.sleep(st.trickle)
        else:
            self.wfile.write(data)

    def _log(self) -> None:
        self.server.state.requests.append(
            Request(self.command, self.path, {k: v for k, v in self.headers.items()})
        )

    def do_PUT(self) -> None:
        self._log()
        st = self.server.state
        if st.drop_put:
            time.sleep(30)  # no reply: the PUT response hop limit was exceeded
            return
        if self.path in st.status:
            self._send(st.status[self.path], "")
            return
        if st.tokens in ("off", "disabled"):
            self._send(403, "")
            return
        if self.path != "/latest/api/token":
            self._send(403 if "/api/token" in self.path else 405, "")
            return
        if self.headers.get("X-Forwarded-For"):
            self._send(403, "")
            return
        if not (self.headers.get("X-aws-ec2-metadata-token-ttl-seconds") or "").isdigit():
            self._send(400, "")
            return
        self._send(200, TOKEN)

    def do_GET(self) -> None:
        self._log()
        st = self.server.state
        token = self.headers.get("X-aws-ec2-metadata-token")
        if st.tokens == "off":
            self._send(403, "")
            return
        if self.path in st.status:
            self._send(st.status[self.path], "")
            return
        if token is not None and token != TOKEN:
            self._send(401, UNAUTHORIZED, "text/html")
            return
        if st.tokens == "required" and token is None:
            self._send(401, UNAUTHORIZED, "text/html")
            return
        body = st.tree.get(self.path)
        if body is None:
            self._send(404, "")
            return
        self._send(200, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class FakeImds:
    """The server; a context manager that starts and stops it on 127.0.0.1 (or ``host``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.state = _State(**knobs)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def state(self) -> _State:
        return self._server.state

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> List[Request]:
        return self._server.state.requests

    def __enter__(self) -> "FakeImds":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
