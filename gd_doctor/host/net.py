"""Network probes: DNS, TCP, TLS and HTTPS, each with its own timeout.

* DNS goes through a :class:`Resolver`. The live one calls ``socket.getaddrinfo`` (the system
  resolver, as the agent uses it) in a daemon thread and stops waiting at the deadline, because
  getaddrinfo has no timeout of its own. Tests inject a fake resolver instead.
* TCP: one connect per address; refused, timed out (a security group or NACL that drops) and
  unreachable are told apart.
* TLS and HTTPS (:meth:`LiveNetwork.https_probe`): a handshake with SNI and verification against
  the system store, or ``AWS_CA_BUNDLE`` / ``REQUESTS_CA_BUNDLE``; then one unsigned ``GET /``.
  The request is never signed: the expected answer is an AWS refusal. A first handshake that
  verifies nothing shows the chain; the deciding one trusts only the store's certificates that
  chain can reach, and the whole store when those do not verify it (host/trust.py says why the
  answer is the whole store's): a store of 145 certificates costs more CPU to load than the
  rest of a run's network checks.
* Through a proxy: HTTP ``CONNECT`` to the proxy, then the same TLS and request. Proxy
  credentials are sent as ``Proxy-Authorization`` and never appear in a result.

Every read has a deadline and a size cap. Nothing here changes the machine.
"""

from __future__ import annotations

import base64
import errno
import socket
import threading
import time
from dataclasses import field
from typing import TYPE_CHECKING, Callable, Dict, FrozenSet, List, Optional, Protocol, Tuple
from urllib.parse import unquote, urlsplit

from gd_doctor import __version__
from gd_doctor.frozen import dataclass
from gd_doctor.host.http_reply import Deadline, parse_http_reply, recv_until
from gd_doctor.host.parallel import call_with_timeout
from gd_doctor.host.settings import HostSettings
from gd_doctor.host.trust import TrustIndex, load_index, read_bundle, to_pem

if TYPE_CHECKING:  # ssl is imported by the probes that use it: --root and offline runs never do
    import ssl


@dataclass(frozen=True)
class DnsAnswer:
    """Addresses of a name (deduplicated, in resolver order) or why there are none.

    ``problem``: ``timeout``, ``no such name``, ``no address``, ``temporary failure``,
    ``error: <reason>``.
    """

    name: str
    addresses: Tuple[str, ...] = ()
    problem: Optional[str] = None
    elapsed_s: float = 0.0


class Resolver(Protocol):
    """Resolves a host name to IP addresses within a timeout; never raises."""

    def resolve(self, name: str, *, timeout: float) -> DnsAnswer: ...


def _is_ip(name: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, name.strip("[]"))
            return True
        except OSError:
            continue
    return False


_GAI_PROBLEMS = {
    socket.EAI_NONAME: "no such name",
    socket.EAI_AGAIN: "temporary failure",
    socket.EAI_FAIL: "resolver failure",
}
for _eai in ("EAI_NODATA", "EAI_ADDRFAMILY"):
    if hasattr(socket, _eai):
        _GAI_PROBLEMS[getattr(socket, _eai)] = "no address"


class SystemResolver:
    """``getaddrinfo`` (the system resolver: /etc/hosts, resolv.conf, nsswitch) under a deadline."""

    description = "system resolver (getaddrinfo)"

    def resolve(self, name: str, *, timeout: float) -> DnsAnswer:
        start = time.monotonic()
        if _is_ip(name):
            return DnsAnswer(name, (name.strip("[]"),))
        box: Dict[str, object] = {}

        def work() -> None:
            try:
                box["infos"] = socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                box["problem"] = _GAI_PROBLEMS.get(exc.errno or 0, f"error: {exc.strerror or exc}")
            except (OSError, UnicodeError) as exc:
                box["problem"] = f"error: {exc}"

        call = call_with_timeout(work, max(0.0, timeout), name="dns")
        elapsed = time.monotonic() - start
        if not call.done:
            return DnsAnswer(name, problem="timeout", elapsed_s=elapsed)
        if "problem" in box:
            return DnsAnswer(name, problem=str(box["problem"]), elapsed_s=elapsed)
        addresses: List[str] = []
        for info in box.get("infos", []):  # type: ignore[attr-defined]
            addr = str(info[4][0])
            if addr not in addresses:
                addresses.append(addr)
        if not addresses:
            return DnsAnswer(name, problem="no address", elapsed_s=elapsed)
        return DnsAnswer(name, tuple(addresses), elapsed_s=elapsed)


@dataclass(frozen=True)
class TcpResult:
    """One TCP connect; ``state``: ``ok``, ``refused``, ``timeout``, ``unreachable``, ``error``."""

    address: str
    port: int
    state: str
    detail: str = ""
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class HttpsProbe:
    """TLS handshake and one unsigned GET to one address (optionally through a proxy).

    ``tls``: ``ok``, ``untrusted``, ``name-mismatch``, ``expired``, ``failed`` or None (not
    reached). ``cert`` holds subject/issuer names and ``not_after`` of a verified certificate.
    """

    address: str
    port: int
    server_name: str
    tcp: str
    tcp_detail: str = ""
    via_proxy: Optional[str] = None
    proxy_status: Optional[int] = None
    tls: Optional[str] = None
    tls_detail: str = ""
    tls_version: Optional[str] = None
    cert: Dict[str, str] = field(default_factory=dict)
    http_status: Optional[int] = None
    headers: Dict[str, str] = field(default_factory=dict)
    body: str = ""
    problem: Optional[str] = None
    elapsed_s: float = 0.0


class Network(Protocol):
    """Resolves names and probes endpoints; every call takes a timeout."""

    description: str

    def resolve(self, name: str, *, timeout: float) -> DnsAnswer: ...

    def tcp_connect(self, address: str, port: int, *, timeout: float) -> TcpResult: ...

    def https_probe(
        self,
        address: str,
        port: int,
        server_name: str,
        *,
        timeout: float,
        proxy_url: Optional[str] = None,
    ) -> HttpsProbe: ...


class UnavailableNetwork:
    """No live network: analysing a root."""

    def __init__(self, reason: str) -> None:
        self.description = f"unavailable ({reason})"
        self.reason = reason

    def resolve(self, name: str, *, timeout: float) -> DnsAnswer:
        return DnsAnswer(name, problem=f"unavailable: {self.reason}")

    def tcp_connect(self, address: str, port: int, *, timeout: float) -> TcpResult:
        return TcpResult(address, port, "error", f"unavailable: {self.reason}")

    def https_probe(
        self,
        address: str,
        port: int,
        server_name: str,
        *,
        timeout: float,
        proxy_url: Optional[str] = None,
    ) -> HttpsProbe:
        return HttpsProbe(address, port, server_name, "error", f"unavailable: {self.reason}")


def _connect_state(exc: BaseException) -> Tuple[str, str]:
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout", "no answer (packets dropped?)"
    if isinstance(exc, OSError) and exc.errno in (
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.EADDRNOTAVAIL,
        errno.EAFNOSUPPORT,
    ):
        return "unreachable", exc.strerror or str(exc)
    if isinstance(exc, OSError):
        return "error", exc.strerror or str(exc)
    return "error", str(exc)


def _name(parts: object) -> Dict[str, str]:
    """{'CN': ..., 'O': ...} from ssl's getpeercert() subject/issuer tuples."""
    out: Dict[str, str] = {}
    if isinstance(parts, tuple):
        for rdn in parts:
            for key, value in rdn:
                if key == "commonName":
                    out["CN"] = str(value)
                elif key == "organizationName":
                    out["O"] = str(value)
    return out


def _verify_class(exc: ssl.SSLCertVerificationError) -> str:
    code = getattr(exc, "verify_code", None)
    if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
        return "expired"
    if code == 62 or "hostname" in str(exc).lower() or "doesn't match" in str(exc):
        return "name-mismatch"
    if code in (2, 18, 19, 20, 21):  # self-signed, unable to get (local) issuer
        return "untrusted"
    return "failed"


def peer_chain(tls: ssl.SSLSocket) -> Optional[List[bytes]]:
    """The DER certificates the server sent, unverified; None where Python cannot say (before
    3.10; public from 3.13, on the private SSL object before)."""
    getter = getattr(tls, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    if getter is None:
        return None
    try:
        import _ssl

        return [c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER) for c in getter()]
    except Exception:  # noqa: BLE001 - no chain: the whole store decides
        return None


def _chain_readable() -> bool:
    import _ssl
    import ssl

    return hasattr(ssl.SSLSocket, "get_unverified_chain") or hasattr(
        getattr(_ssl, "_SSLSocket", None), "get_unverified_chain"
    )


class _NoConnection(Exception):
    """A connection for a handshake could not be opened: what the probe reports instead."""

    def __init__(self, report: Dict[str, str]) -> None:
        super().__init__(report.get("problem"))
        self.report = report


_MAX_SMALL_CONTEXTS = 16  # distinct chains seen in one run; beyond, contexts are not kept


class LiveNetwork:
    """The live host's network, with an injectable resolver and CA bundle.

    ``select_trust``: verify against the store's certificates the presented chain can reach,
    falling back to the whole store (host/trust.py); False loads the whole store at once.
    """

    def __init__(
        self,
        resolver: Optional[Resolver] = None,
        ca_file: Optional[str] = None,
        *,
        select_trust: bool = True,
    ) -> None:
        self.resolver: Resolver = resolver or SystemResolver()
        self.ca_file = ca_file
        self.select_trust = select_trust
        self._ssl_context: Optional[ssl.SSLContext] = None
        self._context_lock = threading.Lock()
        self._trust_lock = threading.Lock()
        self._trust: Optional[Tuple[Optional[TrustIndex], Optional[str]]] = None
        self._discovery_context: Optional[ssl.SSLContext] = None
        self._small_contexts: Dict[FrozenSet[bytes], ssl.SSLContext] = {}
        self.whole_store_loads = 0  # attempts to load the whole store (tests, benchmarks)
        where = f", CA bundle {ca_file}" if ca_file else ""
        self.description = f"live ({getattr(self.resolver, 'description', 'resolver')}{where})"

    def resolve(self, name: str, *, timeout: float) -> DnsAnswer:
        return self.resolver.resolve(name, timeout=timeout)

    def tcp_connect(self, address: str, port: int, *, timeout: float) -> TcpResult:
        start = time.monotonic()
        try:
            sock = socket.create_connection((address, port), timeout=max(0.05, timeout))
        except (OSError, ValueError) as exc:
            state, detail = _connect_state(exc)
            return TcpResult(address, port, state, detail, time.monotonic() - start)
        sock.close()
        return TcpResult(address, port, "ok", "", time.monotonic() - start)

    def _context(self) -> ssl.SSLContext:
        """The whole store's TLS context, made once, when a handshake first needs it: a
        context is safe to share between the probes' threads."""
        import ssl

        with self._context_lock:
            if self._ssl_context is None:
                self.whole_store_loads += 1
                if self.ca_file:
                    read_bundle(self.ca_file)  # OpenSSL would block on a FIFO
                ctx = ssl.create_default_context(cafile=self.ca_file or None)
                ctx.check_hostname = True
                ctx.verify_mode = ssl.CERT_REQUIRED
                self._ssl_context = ctx
            return self._ssl_context

    def _trust_index(self) -> Tuple[Optional[TrustIndex], Optional[str]]:
        """(index of the store's file, the store's hashed directory); no index: the whole
        store is loaded. The bundle given replaces the system store, as for the SDKs."""
        with self._trust_lock:
            if self._trust is None:
                self._trust = (None, None)
                if self.select_trust and _chain_readable():
                    import ssl

                    paths = ssl.get_default_verify_paths()
                    path = self.ca_file or paths.cafile
                    directory = None if self.ca_file else paths.capath
                    self._trust = (load_index(path), directory)
            return self._trust

    def _small_context(self, certificates: FrozenSet[bytes]) -> Optional[ssl.SSLContext]:
        """A context trusting only ``certificates`` (and the system's hashed directory, which
        OpenSSL reads by name when asked); None when it would trust nothing."""
        import ssl

        _, directory = self._trust_index()
        with self._trust_lock:
            ctx = self._small_contexts.get(certificates)
        if ctx is not None:
            return ctx
        if not certificates and not directory:
            return None
        ctx = ssl.create_default_context(
            cadata=to_pem(certificates) if certificates else None, capath=directory
        )
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        with self._trust_lock:
            if len(self._small_contexts) < _MAX_SMALL_CONTEXTS:
                self._small_contexts[certificates] = ctx
        return ctx

    def _presented_chain(
        self, server_name: str, connect: Callable[[], socket.socket], timeout: float
    ) -> Optional[List[bytes]]:
        """The chain the server sends, from a handshake that verifies nothing; None when that
        handshake fails (the whole store's handshake then says why)."""
        import ssl

        with self._trust_lock:
            if self._discovery_context is None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                self._discovery_context = ctx
            discovery = self._discovery_context
        raw = connect()
        try:
            raw.settimeout(timeout)
            with discovery.wrap_socket(raw, server_hostname=server_name) as tls:
                return peer_chain(tls)
        except (ssl.SSLError, OSError, ValueError):
            return None
        finally:
            raw.close()

    def _handshake(
        self, server_name: str, connect: Callable[[], socket.socket], deadline: Deadline
    ) -> ssl.SSLSocket:
        """A verified TLS connection; raises what ``wrap_socket`` raises (or _NoConnection).

        The chain is verified against the certificates of the store it can reach; on any
        failure the whole store verifies it again, so a failure is the whole store's answer.
        The discovery handshake gets half the time left, so the deciding one always has time.
        """
        import ssl

        index, _ = self._trust_index()
        if index is not None:
            chain = self._presented_chain(server_name, connect, deadline.left() / 2)
            small = None
            if chain:
                try:
                    small = self._small_context(index.reachable(chain))
                except (ValueError, ssl.SSLError):
                    small = None
            if small is not None:
                raw = connect()
                try:
                    raw.settimeout(deadline.left())
                    return small.wrap_socket(raw, server_hostname=server_name)
                except (ssl.SSLError, OSError):
                    raw.close()
                    if deadline.passed():  # no time for the whole store: this answer stands
                        raise
        raw = connect()
        try:
            raw.settimeout(deadline.left())
            return self._context().wrap_socket(raw, server_hostname=server_name)
        except BaseException:
            raw.close()
            raise

    def warm(self) -> None:
        """Read the trust store now, in a daemon thread at the start of the run: its index
        (or, when it cannot be indexed, the whole store, which OpenSSL loads without holding
        the interpreter lock) is ready before the first handshake. A store that cannot load
        fails again, in the probe."""

        def load() -> None:
            try:
                if self._trust_index()[0] is None:
                    self._context()
            except Exception:  # noqa: BLE001 - reported by the probe that needs the context
                pass

        threading.Thread(target=load, name="gd-doctor-tls-warm", daemon=True).start()

    def _open_tunnel(
        self, proxy_url: str, server_name: str, port: int, deadline: Deadline
    ) -> Tuple[Optional[socket.socket], Optional[int], str, str]:
        """Connect to the proxy and CONNECT; returns (socket, proxy status, tcp state, detail)."""
        parts = urlsplit(proxy_url if "://" in proxy_url else "http://" + proxy_url)
        try:
            phost, pport = parts.hostname, parts.port or 80
        except ValueError:
            return None, None, "error", "malformed proxy URL"
        if not phost or parts.scheme not in ("http", ""):
            return None, None, "error", f"proxy scheme {parts.scheme!r} not probed"
        answer = self.resolve(phost, timeout=deadline.left())
        if not answer.addresses:
            return None, None, "dns-failed", f"proxy name: {answer.problem}"
        try:
            sock = socket.create_connection((answer.addresses[0], pport), timeout=deadline.left())
        except OSError as exc:
            state, detail = _connect_state(exc)
            return None, None, state, f"proxy: {detail}"
        request = f"CONNECT {server_name}:{port} HTTP/1.1\r\nHost: {server_name}:{port}\r\n"
        if parts.username is not None:
            creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            request += f"Proxy-Authorization: Basic {base64.b64encode(creds.encode()).decode()}\r\n"
        try:
            sock.settimeout(deadline.left())
            sock.sendall((request + "\r\n").encode())
            status, _, _ = parse_http_reply(recv_until(sock, deadline, stop_at_headers=True))
        except OSError as exc:
            sock.close()
            state, detail = _connect_state(exc)
            return None, None, state, f"proxy: {detail}"
        if status != 200:
            sock.close()
            return None, status, "ok", f"proxy answered CONNECT with {status}"
        return sock, status, "ok", ""

    def https_probe(
        self,
        address: str,
        port: int,
        server_name: str,
        *,
        timeout: float,
        proxy_url: Optional[str] = None,
    ) -> HttpsProbe:
        import ssl

        start = time.monotonic()
        deadline = Deadline(timeout)
        via = _display_proxy(proxy_url) if proxy_url else None
        base = {"address": address, "port": port, "server_name": server_name, "via_proxy": via}

        def done(**kw: object) -> HttpsProbe:
            return HttpsProbe(**base, elapsed_s=time.monotonic() - start, **kw)  # type: ignore[arg-type]

        proxy_status: Optional[int] = None

        def connect() -> socket.socket:
            nonlocal proxy_status
            if proxy_url:
                raw, proxy_status, state, detail = self._open_tunnel(
                    proxy_url, server_name, port, deadline
                )
                if raw is None:
                    raise _NoConnection({"tcp": state, "tcp_detail": detail, "problem": detail})
                return raw
            try:
                return socket.create_connection((address, port), timeout=deadline.left())
            except (OSError, ValueError) as exc:
                state, detail = _connect_state(exc)
                report = {"tcp": state, "tcp_detail": detail, "problem": detail}
                raise _NoConnection(report) from exc

        try:
            tls_sock = self._handshake(server_name, connect, deadline)
        except _NoConnection as failed:
            return done(proxy_status=proxy_status, **failed.report)
        except ssl.SSLCertVerificationError as exc:
            return done(
                tcp="ok",
                proxy_status=proxy_status,
                tls=_verify_class(exc),
                tls_detail=str(getattr(exc, "verify_message", "") or exc)[:300],
            )
        except (ssl.SSLError, OSError) as exc:
            detail = (
                "handshake timed out"
                if isinstance(exc, (socket.timeout, TimeoutError))
                else str(exc)[:300]
            )
            return done(tcp="ok", proxy_status=proxy_status, tls="failed", tls_detail=detail)
        with tls_sock:
            peer = tls_sock.getpeercert() or {}
            cert = {
                "subject_cn": _name(peer.get("subject")).get("CN", ""),
                "subject_o": _name(peer.get("subject")).get("O", ""),
                "issuer_cn": _name(peer.get("issuer")).get("CN", ""),
                "issuer_o": _name(peer.get("issuer")).get("O", ""),
                "not_after": str(peer.get("notAfter", "")),
            }
            request = (
                f"GET / HTTP/1.1\r\nHost: {server_name}\r\n"
                f"User-Agent: gd-doctor/{__version__} (unsigned connectivity probe)\r\n"
                "Accept: */*\r\nConnection: close\r\n\r\n"
            )
            try:
                tls_sock.settimeout(deadline.left())
                tls_sock.sendall(request.encode())
                data = recv_until(tls_sock, deadline, stop_at_headers=False)
            except OSError as exc:
                return done(
                    tcp="ok",
                    proxy_status=proxy_status,
                    tls="ok",
                    tls_version=tls_sock.version(),
                    cert=cert,
                    problem=f"request failed: {exc}"[:300],
                )
            status, headers, body = parse_http_reply(data)
            return done(
                tcp="ok",
                proxy_status=proxy_status,
                tls="ok",
                tls_version=tls_sock.version(),
                cert=cert,
                http_status=status,
                headers=headers,
                body=body,
                problem=None if status is not None else "no HTTP reply in time",
            )


def _display_proxy(url: str) -> str:
    """A proxy URL without credentials.

    >>> _display_proxy("http://bob:pw@10.0.0.9:3128")
    'http://[REDACTED]@10.0.0.9:3128'
    """
    parts = urlsplit(url if "://" in url else "http://" + url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ":?"
    creds = "[REDACTED]@" if parts.username or parts.password else ""
    return f"{parts.scheme}://{creds}{parts.hostname or '?'}{port}"


def ca_bundle(settings: HostSettings) -> Optional[str]:
    """The CA bundle the AWS SDKs and requests would use: AWS_CA_BUNDLE, then REQUESTS_CA_BUNDLE.

    >>> ca_bundle(HostSettings(env={"REQUESTS_CA_BUNDLE": "/etc/pki/corp.pem"}))
    '/etc/pki/corp.pem'
    """
    return settings.env.get("AWS_CA_BUNDLE") or settings.env.get("REQUESTS_CA_BUNDLE") or None


def live_network(settings: HostSettings) -> Network:
    """The network of the live host."""
    return LiveNetwork(SystemResolver(), ca_bundle(settings))
