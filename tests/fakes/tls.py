"""HTTPS endpoints made with trustme, a CONNECT proxy, and a closed port, all on loopback.

:class:`TlsEndpoint` serves one TLS listener. ``cert``: ``valid`` (issued by ``ca``), ``untrusted``
(issued by a CA the client was not told about), ``wrong-name`` (valid chain, other host name) or
``expired``. ``reply``: ``aws`` answers like an AWS endpoint refusing an unsigned request (403,
``x-amzn-RequestId``, ``x-amzn-ErrorType: MissingAuthenticationTokenException``, JSON body),
``html`` answers 200 with a block page and no request id (a middlebox), ``close`` closes after the
handshake. Pass ``ca_org="Amazon"`` (default) for an Amazon-looking issuer, or another organisation
to stand in for a TLS-inspecting proxy whose CA the host trusts. ``intermediates``: how many
intermediate CAs stand between the leaf and the CA (the server sends them, as AWS's do).

``endpoint.ca_file`` is a PEM bundle to hand to the tool (``AWS_CA_BUNDLE`` or
``LiveNetwork(ca_file=...)``).
"""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import trustme

from tests.fakes.background import TcpAcceptServer

AWS_REPLY = (
    b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
    b"x-amzn-RequestId: 5d1c5c4b-7c1e-4a0b-9d8e-1f2a3b4c5d6e\r\n"
    b"x-amzn-ErrorType: MissingAuthenticationTokenException\r\n"
    b"Content-Length: 42\r\nConnection: close\r\n\r\n"
    b'{"message":"Missing Authentication Token"}'
)
HTML_REPLY = (
    b"HTTP/1.1 200 OK\r\nServer: corp-gateway\r\nContent-Type: text/html\r\n"
    b"Content-Length: 36\r\nConnection: close\r\n\r\n<html><body>Blocked</body></html>\r\n"
)


class TlsEndpoint(TcpAcceptServer):
    def __init__(
        self,
        name: str,
        *,
        cert: str = "valid",
        reply: str = "aws",
        ca_org: str = "Amazon",
        host: str = "127.0.0.1",
        port: int = 0,
        reply_bytes: Optional[bytes] = None,
        intermediates: int = 0,
    ) -> None:
        self.name = name
        self.reply_bytes = reply_bytes  # a whole HTTP answer of the test's own
        self.ca = trustme.CA(organization_name=ca_org)
        issuer = (
            trustme.CA(organization_name="Untrusted Test CA") if cert == "untrusted" else self.ca
        )
        for _ in range(intermediates):  # the server sends them with its certificate
            issuer = issuer.create_child_ca()
        identity = "other.example.net" if cert == "wrong-name" else name
        kwargs = {}
        if cert == "expired":
            now = datetime.now(timezone.utc)
            kwargs = {"not_before": now - timedelta(days=30), "not_after": now - timedelta(days=1)}
        leaf = issuer.issue_cert(identity, **kwargs)  # type: ignore[arg-type]
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(self.context)
        self.reply = reply
        self._dir = tempfile.TemporaryDirectory(prefix="gd-doctor-tls-")
        self.ca_file = str(Path(self._dir.name) / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.requests: List[bytes] = []
        self._prepare_thread()

    @property
    def address(self) -> Tuple[str, int]:
        a = self.sock.getsockname()
        return str(a[0]), int(a[1])

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(3)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                if self.reply == "close":
                    return
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                self.requests.append(data)
                if self.reply_bytes is not None:
                    tls.sendall(self.reply_bytes)
                else:
                    tls.sendall(AWS_REPLY if self.reply == "aws" else HTML_REPLY)
        except (OSError, ssl.SSLError):
            return

    def _cleanup(self) -> None:
        self._dir.cleanup()


class ConnectProxy(TcpAcceptServer):
    """A minimal HTTP CONNECT proxy. ``routes`` maps ``host:port`` to a local ``(ip, port)``.

    ``require_auth``: answer 407 unless ``Proxy-Authorization`` is present. ``connects`` logs
    the CONNECT request heads (tests assert the credentials were sent, and never printed).
    """

    def __init__(self, routes: Dict[str, Tuple[str, int]], require_auth: bool = False) -> None:
        self.routes = routes
        self.require_auth = require_auth
        self.connects: List[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._prepare_thread()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(3)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    conn.close()
                    return
                head += chunk
        except OSError:
            conn.close()
            return
        text = head.decode("iso-8859-1")
        self.connects.append(text)
        target = text.split(" ", 2)[1] if text.startswith("CONNECT ") else ""
        if self.require_auth and "proxy-authorization:" not in text.lower():
            conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            conn.close()
            return
        route: Optional[Tuple[str, int]] = self.routes.get(target)
        if route is None:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            conn.close()
            return
        upstream = socket.create_connection(route, timeout=3)
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        conn.settimeout(None)
        upstream.settimeout(None)
        threading.Thread(target=self._pipe, args=(conn, upstream), daemon=True).start()
        threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True).start()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed): connects are refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port
