"""The EC2 instance metadata service (IMDSv2 first, IMDSv1 only where v2 is refused).

The client lives in the host layer so that the session token never leaves it: checks ask for a
token (and learn only whether one was issued), then read paths; the client adds the token itself.

* Endpoint: ``--imds-endpoint``, else ``AWS_EC2_METADATA_SERVICE_ENDPOINT``, else
  ``http://169.254.169.254``. ``AWS_EC2_METADATA_DISABLED=true`` switches IMDS off
  (:class:`UnavailableImds`), as it does for the AWS SDKs.
* Never through a proxy: the exchange is one HTTP/1.1 request on a socket to the endpoint
  itself, which reads no proxy settings, because a proxy in front of IMDS breaks IMDSv2 (AWS
  documents ``no_proxy`` for it). A link-local exchange of a few hundred bytes needs no HTTP
  library: importing ``http.client`` (and the ``email`` package it parses headers with) cost
  a live run more CPU than all its IMDS exchanges. An endpoint given as ``https://`` (a test
  double, a local relay) goes through ``http.client``.
* Bounded: every call has a timeout and one retry (``timeouts.IMDS_RETRIES``) on a 5xx or a
  refused connection (both answer at once); none after a timeout: a silent IMDS stays silent,
  and a retry would only double the worst case. Each exchange runs in a daemon thread joined
  with the timeout, and a body is read up to :data:`MAX_BODY` bytes, so a server that trickles
  a byte a second or sends megabytes cannot hold the run.
* Secrets: the token is kept in the client; replies of credential paths are handed to the check,
  which keeps only ``Code`` and ``Expiration``. Nothing here logs.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from typing import Any, Dict, Mapping, Optional, Protocol, Tuple

from gd_doctor import __version__
from gd_doctor.frozen import dataclass
from gd_doctor.host import timeouts
from gd_doctor.host.http_reply import Deadline, read_answer
from gd_doctor.host.parallel import call_with_timeout
from gd_doctor.host.settings import HostSettings

DEFAULT_ENDPOINT = "http://169.254.169.254"
TOKEN_PATH = "/latest/api/token"
TOKEN_TTL_SECONDS = 60  # the doctor needs the token for seconds, not the SDKs' 6 hours
MAX_BODY = 64 * 1024
USER_AGENT = {"User-Agent": f"gd-doctor/{__version__}"}


@dataclass(frozen=True)
class ImdsReply:
    """One IMDS exchange. ``status`` is None when no HTTP answer came; ``problem`` says why.

    ``problem`` vocabulary: ``timeout``, ``refused``, ``unreachable``, ``too large``,
    ``error: <reason>``. For the token PUT, ``text`` is always empty (the token stays inside).
    """

    method: str
    path: str
    status: Optional[int]
    text: str = ""
    problem: Optional[str] = None
    attempts: int = 1
    used_token: bool = False
    elapsed_s: float = 0.0
    # The reply's HTTP Date header and this machine's wall clock (epoch s) when the headers
    # came: the clock check measures the host's offset from AWS's clock with them.
    date: Optional[str] = None
    received_at: Optional[float] = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.problem is None


class ImdsClient(Protocol):
    """Talks to IMDS. Never goes through a proxy; never logs tokens or credentials."""

    endpoint: Optional[str]

    def fetch_token(self, *, timeout: float) -> ImdsReply:
        """PUT /latest/api/token; on 200 the client keeps the token for later GETs."""
        ...

    def get(self, path: str, *, timeout: float, use_token: bool = True) -> ImdsReply:
        """GET a path (with the token when one was issued and ``use_token``)."""
        ...


class UnavailableImds:
    """No IMDS: analysing a root, or IMDS switched off by AWS_EC2_METADATA_DISABLED."""

    def __init__(self, reason: str) -> None:
        self.endpoint: Optional[str] = None
        self.reason = reason

    def fetch_token(self, *, timeout: float) -> ImdsReply:
        return ImdsReply("PUT", TOKEN_PATH, None, problem=f"unavailable: {self.reason}")

    def get(self, path: str, *, timeout: float, use_token: bool = True) -> ImdsReply:
        return ImdsReply("GET", path, None, problem=f"unavailable: {self.reason}")


_REFUSED = {errno.ECONNREFUSED, errno.ECONNRESET}
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


def _classify_exception(exc: BaseException) -> str:
    """The ``problem`` word for an exchange that raised.

    >>> _classify_exception(socket.timeout("timed out")), _classify_exception(TimeoutError())
    ('timeout', 'timeout')
    >>> _classify_exception(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
    'refused'
    >>> _classify_exception(OSError(errno.EHOSTUNREACH, "No route to host"))
    'unreachable'
    >>> _classify_exception(ValueError("bad"))
    'error: ValueError'
    """
    # socket.timeout is TimeoutError from 3.10 on, an OSError of its own on 3.9
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    code = exc.errno if isinstance(exc, OSError) else None
    text = str(exc).lower()
    if code in _REFUSED or "refused" in text:
        return "refused"
    if code in _UNREACHABLE or "unreachable" in text or "no route" in text:
        return "unreachable"
    if "timed out" in text:
        return "timeout"
    return f"error: {type(exc).__name__}"


def _address(endpoint: str) -> Tuple[str, str, int]:
    """(scheme, host, port) of an endpoint URL; ValueError when it has none.

    >>> _address("http://169.254.169.254"), _address("http://[fd00:ec2::254]:8080")
    (('http', '169.254.169.254', 80), ('http', 'fd00:ec2::254', 8080))
    """
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL with a host")
    return parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


class HttpImds:
    """IMDS over HTTP with the standard library (no proxies, bounded reads)."""

    def __init__(self, endpoint: str, retries: int = timeouts.IMDS_RETRIES) -> None:
        self.endpoint: Optional[str] = endpoint.rstrip("/")
        self._retries = max(0, retries)
        self._token: Optional[str] = None
        self._lock = threading.Lock()
        self._inline = self._bounded_inline()  # the endpoint never changes: decided once

    def _request(
        self, method: str, path: str, host: str, port: int, headers: Mapping[str, str]
    ) -> bytes:
        """The request as ``http.client`` would write it: Host with the port when it is not
        80, IPv6 addresses bracketed, ``Content-Length: 0`` on a PUT without a body."""
        name = f"[{host}]" if ":" in host else host
        lines = [f"{method} {path} HTTP/1.1", f"Host: {name}" + (f":{port}" if port != 80 else "")]
        lines += ["Accept-Encoding: identity"]
        if method == "PUT":
            lines.append("Content-Length: 0")
        lines += [f"{k}: {v}" for k, v in {**USER_AGENT, **headers}.items()]
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _bounded_inline(self) -> bool:
        """Whether an exchange with the endpoint is bounded by its own deadline: plain HTTP to
        an IP address (169.254.169.254, fd00:ec2::254). A host name needs getaddrinfo, which
        no timeout stops, and https needs http.client: those run in a daemon thread."""
        try:
            scheme, host, _ = _address(self.endpoint or "")
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return scheme == "http"

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def _exchange(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        timeout: float,
        box: Dict[str, Any],
    ) -> None:
        """The HTTP exchange itself; runs in a daemon thread so a trickling body cannot hold us.
        The deadline bounds the connect and every read; a redirect is answered as it is (IMDS
        sends none, and following one could leave the link-local address)."""
        try:
            scheme, host, port = _address(self.endpoint or "")
            if scheme == "https":
                self._exchange_https(method, path, host, port, headers, timeout, box)
                return
            deadline = Deadline(timeout)
            with socket.create_connection((host, port), timeout=deadline.left()) as sock:
                sock.sendall(self._request(method, path, host, port, headers))
                status, head, body = read_answer(sock, deadline, MAX_BODY)
            self._keep(box, status, head.get("date"), body)
        except (OSError, ValueError) as exc:
            box["problem"] = _classify_exception(exc)

    @staticmethod
    def _keep(box: Dict[str, Any], status: int, date: Optional[str], body: bytes) -> None:
        box["received_at"] = time.time()
        box["date"] = date
        if len(body) > MAX_BODY:
            box["problem"] = "too large"
            return
        box["status"] = status
        box["text"] = body.decode("utf-8", errors="replace")

    def _exchange_https(
        self,
        method: str,
        path: str,
        host: str,
        port: int,
        headers: Mapping[str, str],
        timeout: float,
        box: Dict[str, Any],
    ) -> None:
        import http.client

        conn = http.client.HTTPSConnection(host, port, timeout=timeout)
        try:
            conn.request(method, path, headers={**USER_AGENT, **headers})
            resp = conn.getresponse()
            self._keep(box, resp.status, resp.getheader("Date"), resp.read(MAX_BODY + 1))
        except http.client.HTTPException as exc:
            box["problem"] = _classify_exception(exc)
        finally:
            conn.close()

    def _once(
        self, method: str, path: str, headers: Mapping[str, str], timeout: float
    ) -> ImdsReply:
        start = time.monotonic()
        box: Dict[str, Any] = {}
        if self._inline:
            # An IP address over plain HTTP: the connect and every read stop at the exchange's
            # own deadline, and no name lookup can hang, so no thread is needed to give up.
            self._exchange(method, path, headers, timeout, box)
            done = True
        else:
            done = call_with_timeout(
                lambda: self._exchange(method, path, headers, timeout, box),
                max(0.05, timeout),
                name="imds",
            ).done
        elapsed = time.monotonic() - start
        if not done:
            # abandoned: closing the response from here would block on the reader's lock; the
            # daemon thread ends when the server stops or its socket timeout fires
            return ImdsReply(method, path, None, problem="timeout", elapsed_s=elapsed)
        if "problem" in box:
            return ImdsReply(method, path, None, problem=str(box["problem"]), elapsed_s=elapsed)
        return ImdsReply(
            method,
            path,
            int(box["status"]),
            str(box["text"]),
            elapsed_s=elapsed,
            date=box.get("date"),
            received_at=box.get("received_at"),
        )

    def _call(
        self, method: str, path: str, headers: Mapping[str, str], timeout: float
    ) -> ImdsReply:
        reply = self._once(method, path, headers, timeout)
        attempts = 1
        while attempts <= self._retries and (
            reply.problem == "refused" or (reply.status is not None and reply.status >= 500)
        ):
            attempts += 1
            reply = self._once(method, path, headers, timeout)
        return ImdsReply(
            reply.method,
            reply.path,
            reply.status,
            reply.text,
            reply.problem,
            attempts,
            bool(headers.get("X-aws-ec2-metadata-token")),
            reply.elapsed_s,
            reply.date,
            reply.received_at,
        )

    def fetch_token(self, *, timeout: float) -> ImdsReply:
        reply = self._call(
            "PUT",
            TOKEN_PATH,
            {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
            timeout,
        )
        with self._lock:
            if reply.ok and reply.text.strip():
                self._token = reply.text.strip()
        # the token itself never leaves the client
        return ImdsReply(
            reply.method,
            reply.path,
            reply.status,
            "",
            reply.problem,
            reply.attempts,
            False,
            reply.elapsed_s,
            reply.date,
            reply.received_at,
        )

    def get(self, path: str, *, timeout: float, use_token: bool = True) -> ImdsReply:
        with self._lock:
            token = self._token if use_token else None
        headers = {"X-aws-ec2-metadata-token": token} if token else {}
        return self._call("GET", path, headers, timeout)


def _truthy(value: Optional[str]) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def imds_endpoint(settings: HostSettings) -> Optional[str]:
    """The endpoint to use, or None when IMDS is switched off for gd-doctor.

    >>> imds_endpoint(HostSettings())
    'http://169.254.169.254'
    >>> imds_endpoint(HostSettings(env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://[fd00:ec2::254]"}))
    'http://[fd00:ec2::254]'
    >>> imds_endpoint(HostSettings(env={"AWS_EC2_METADATA_DISABLED": "true"})) is None
    True
    >>> imds_endpoint(HostSettings(imds_endpoint="http://127.0.0.1:8080",
    ...                            env={"AWS_EC2_METADATA_DISABLED": "true"}))
    'http://127.0.0.1:8080'
    """
    if settings.imds_endpoint:  # the command line wins over the environment
        return settings.imds_endpoint
    if _truthy(settings.env.get("AWS_EC2_METADATA_DISABLED")):
        return None
    return settings.env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or DEFAULT_ENDPOINT


def live_imds(settings: HostSettings) -> ImdsClient:
    """The IMDS client for the live host."""
    endpoint = imds_endpoint(settings)
    if endpoint is None:
        return UnavailableImds("switched off by AWS_EC2_METADATA_DISABLED")
    return HttpImds(endpoint)
