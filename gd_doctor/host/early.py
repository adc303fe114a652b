"""Probes started before the checks ask for them, so a black-holed IMDS delays nothing else.

The checks run in dependency order: ``network.guardduty_dns`` waits for ``imds.network`` (the
VPC CIDR blocks classify the addresses), so with IMDS black-holed the DNS, TCP and HTTPS probes
would start only when IMDS gives up, and the worst case would be the sum of their timeouts.
When the Region is known without IMDS (``--region``, ``--endpoint-url``), the network checks
start their probes at once through :class:`EarlyNetwork`; the check's own call later joins the
probe under way instead of starting a second one. What the checks conclude does not change:
they read the same answers, only sooner.

* A started probe runs in a daemon thread under the same timeout the check would give it; the
  check's call waits for it at most its own timeout, and gets a ``timeout`` answer otherwise.
* An answer is handed out once: a second call for the same name or address probes afresh.
* A chain (name -> TCP per address -> HTTPS per open address) registers each next step before
  it marks the previous one done, so a check never races past a probe that is about to start.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Generic, Hashable, Optional, Sequence, Tuple, TypeVar

from gd_doctor.frozen import dataclass
from gd_doctor.host.net import DnsAnswer, HttpsProbe, Network, TcpResult
from gd_doctor.host.parallel import start_warm_up

R = TypeVar("R")
NO_ANSWER = "no answer (packets dropped?)"  # as LiveNetwork words a silent connect
JOIN_SLACK = 0.2  # a started probe ends within its timeout; this covers the thread's wake-up


@dataclass
class _Pending(Generic[R]):
    """One probe under way: when it started, its timeout, and its answer once done."""

    started: float
    timeout: float
    done: threading.Event
    value: Optional[R] = None


class EarlyNetwork:
    """A :class:`~gd_doctor.host.net.Network` whose probes can be started ahead of the checks."""

    def __init__(self, inner: Network) -> None:
        self.inner = inner
        self.description = inner.description
        self._lock = threading.Lock()
        self._pending: Dict[Hashable, _Pending[object]] = {}

    def warm(self) -> None:
        """The inner network's warm-up (the TLS context), when it has one."""
        start_warm_up(self.inner)

    # --- what the checks call ------------------------------------------------------------------

    def resolve(self, name: str, *, timeout: float) -> DnsAnswer:
        return self._join(
            ("dns", name),
            timeout,
            lambda: self.inner.resolve(name, timeout=timeout),
            lambda waited: DnsAnswer(name, problem="timeout", elapsed_s=waited),
        )

    def tcp_connect(self, address: str, port: int, *, timeout: float) -> TcpResult:
        return self._join(
            ("tcp", address, port),
            timeout,
            lambda: self.inner.tcp_connect(address, port, timeout=timeout),
            lambda waited: TcpResult(address, port, "timeout", NO_ANSWER, waited),
        )

    def https_probe(
        self,
        address: str,
        port: int,
        server_name: str,
        *,
        timeout: float,
        proxy_url: Optional[str] = None,
    ) -> HttpsProbe:
        def fresh() -> HttpsProbe:
            return self.inner.https_probe(
                address, port, server_name, timeout=timeout, proxy_url=proxy_url
            )

        if proxy_url:  # never started early: the proxy URL carries credentials
            return fresh()
        return self._join(
            ("https", address, port, server_name),
            timeout,
            fresh,
            lambda waited: HttpsProbe(
                address, port, server_name, "ok", problem="timeout", elapsed_s=waited
            ),
        )

    # --- what starts probes early ----------------------------------------------------------------

    def start_chain(
        self,
        names: Sequence[str],
        port: int,
        *,
        dns_timeout: float,
        tcp_timeout: Optional[float] = None,
        https_timeout: Optional[float] = None,
        addresses_per_name: int = 16,
    ) -> None:
        """Resolve ``names`` now; when ``tcp_timeout`` is given, connect to each address of each
        name (the first ``addresses_per_name``); then, when ``https_timeout`` is given too, probe
        TLS and HTTPS on each open address with the name as SNI."""
        for name in names:
            pending = self._register(("dns", name), dns_timeout)
            if pending is None:
                continue
            args = (name, pending, port, dns_timeout, tcp_timeout, https_timeout)
            self._spawn(self._chain, *args, addresses_per_name)

    def _chain(
        self,
        name: str,
        pending: _Pending[object],
        port: int,
        dns_timeout: float,
        tcp_timeout: Optional[float],
        https_timeout: Optional[float],
        limit: int,
    ) -> None:
        answer = self.inner.resolve(name, timeout=dns_timeout)
        if tcp_timeout is None:
            self._finish(pending, answer)
            return
        steps: Sequence[Tuple[str, _Pending[object]]] = [
            (a, p)
            for a in answer.addresses[:limit]
            for p in (self._register(("tcp", a, port), tcp_timeout),)
            if p is not None
        ]
        self._finish(pending, answer)  # the next steps are registered: no check races past them
        for address, tcp_pending in steps:
            self._spawn(self._connect, name, address, tcp_pending, port, tcp_timeout, https_timeout)

    def _connect(
        self,
        name: str,
        address: str,
        pending: _Pending[object],
        port: int,
        tcp_timeout: float,
        https_timeout: Optional[float],
    ) -> None:
        result = self.inner.tcp_connect(address, port, timeout=tcp_timeout)
        probe = None
        if result.state == "ok" and https_timeout is not None:
            probe = self._register(("https", address, port, name), https_timeout)
        self._finish(pending, result)
        if probe is not None:
            value = self.inner.https_probe(address, port, name, timeout=https_timeout or 0.05)
            self._finish(probe, value)

    # --- the bookkeeping -------------------------------------------------------------------------

    def _register(self, key: Hashable, timeout: float) -> Optional[_Pending[object]]:
        """A new pending probe for ``key``; None when one is already under way."""
        with self._lock:
            if key in self._pending:
                return None
            pending: _Pending[object] = _Pending(time.monotonic(), timeout, threading.Event())
            self._pending[key] = pending
            return pending

    @staticmethod
    def _finish(pending: _Pending[object], value: object) -> None:
        pending.value = value
        pending.done.set()

    @staticmethod
    def _spawn(work: Callable[..., None], *args: object) -> None:
        threading.Thread(target=work, args=args, name="gd-doctor-early", daemon=True).start()

    def _join(
        self,
        key: Hashable,
        timeout: float,
        fresh: Callable[[], R],
        timed_out: Callable[[float], R],
    ) -> R:
        """The started probe's answer (waiting at most ``timeout``), else a fresh call."""
        with self._lock:
            pending = self._pending.pop(key, None)
        if pending is None:
            return fresh()
        left = pending.started + pending.timeout + JOIN_SLACK - time.monotonic()
        pending.done.wait(max(0.0, min(timeout + JOIN_SLACK, left)))
        if not pending.done.is_set():
            return timed_out(time.monotonic() - pending.started)
        return pending.value  # type: ignore[return-value]
