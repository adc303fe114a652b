"""Probes that start with the run (host/early.py): joined by the checks, never doubled.

No timed assertions: the tests check who made each call, in which order, and how many times.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from gd_doctor.checks import ALL_CHECKS
from gd_doctor.checks.base import Options
from gd_doctor.facts.network import DnsFacts, TcpFacts
from gd_doctor.host.early import EarlyNetwork
from gd_doctor.host.imds import ImdsReply
from gd_doctor.host.net import DnsAnswer, HttpsProbe, TcpResult
from gd_doctor.host.settings import HostSettings
from gd_doctor.model import CheckResult
from gd_doctor.runner import run_checks
from tests.hostkit import make_host

ADDRESS = "192.0.2.25"
HOST = "guardduty-data.us-east-1.amazonaws.com"


class RecordingNet:
    """A network that answers at once and records (call, target, thread name)."""

    description = "recording fake"

    def __init__(self, tcp_state: str = "ok") -> None:
        self.calls: List[Tuple[str, str, str]] = []
        self.first_call = threading.Event()
        self.tcp_state = tcp_state

    def _record(self, kind: str, target: str) -> None:
        self.calls.append((kind, target, threading.current_thread().name))
        self.first_call.set()

    def resolve(self, name: str, *, timeout: float) -> DnsAnswer:
        self._record("dns", name)
        return DnsAnswer(name, (ADDRESS,))

    def tcp_connect(self, address: str, port: int, *, timeout: float) -> TcpResult:
        self._record("tcp", address)
        return TcpResult(address, port, self.tcp_state)

    def https_probe(
        self,
        address: str,
        port: int,
        server_name: str,
        *,
        timeout: float,
        proxy_url: Optional[str] = None,
    ) -> HttpsProbe:
        self._record("https", address)
        return HttpsProbe(address, port, server_name, "ok", tls="failed", tls_detail="fake")

    def count(self, kind: str) -> int:
        return sum(1 for c in self.calls if c[0] == kind)


def test_a_started_resolution_is_joined_not_repeated() -> None:
    inner = RecordingNet()
    net = EarlyNetwork(inner)
    net.start_chain([HOST], 443, dns_timeout=5.0)
    answer = net.resolve(HOST, timeout=5.0)
    assert answer.addresses == (ADDRESS,)
    assert inner.calls == [("dns", HOST, "gd-doctor-early")]
    net.resolve(HOST, timeout=5.0)  # handed out once: the second call probes afresh
    assert inner.count("dns") == 2 and inner.calls[-1][2] != "gd-doctor-early"


def test_the_chain_connects_then_probes_https_only_on_an_open_address() -> None:
    for state, https_calls in (("ok", 1), ("timeout", 0)):
        inner = RecordingNet(tcp_state=state)
        net = EarlyNetwork(inner)
        net.start_chain([HOST], 443, dns_timeout=5.0, tcp_timeout=5.0, https_timeout=5.0)
        assert net.resolve(HOST, timeout=5.0).addresses == (ADDRESS,)
        assert net.tcp_connect(ADDRESS, 443, timeout=5.0).state == state
        if state == "ok":
            assert net.https_probe(ADDRESS, 443, HOST, timeout=5.0).tls == "failed"
        assert inner.count("https") == https_calls
        assert {c[2] for c in inner.calls} == {"gd-doctor-early"}


def test_a_probe_still_running_gives_a_timeout_answer() -> None:
    release = threading.Event()

    class Stuck(RecordingNet):
        def resolve(self, name: str, *, timeout: float) -> DnsAnswer:
            release.wait(10)
            return super().resolve(name, timeout=timeout)

    net = EarlyNetwork(Stuck())
    net.start_chain([HOST], 443, dns_timeout=0.05)
    try:
        answer = net.resolve(HOST, timeout=0.05)
    finally:
        release.set()
    assert answer.problem == "timeout" and not answer.addresses


def test_a_proxied_probe_is_never_taken_from_an_early_one() -> None:
    inner = RecordingNet()
    net = EarlyNetwork(inner)
    net.start_chain([HOST], 443, dns_timeout=5.0, tcp_timeout=5.0, https_timeout=5.0)
    net.resolve(HOST, timeout=5.0)
    net.tcp_connect(ADDRESS, 443, timeout=5.0)
    net.https_probe(ADDRESS, 443, HOST, timeout=5.0, proxy_url="http://10.0.0.9:3128")
    assert inner.calls[-1][2] != "gd-doctor-early"


class WaitingImds:
    """An IMDS that answers nothing until the network has been asked something (or ``wait``
    seconds): with the probes in series, the network would be asked only after this gave up."""

    endpoint: Optional[str] = "http://192.0.2.254"

    def __init__(self, net: RecordingNet, wait: float) -> None:
        self.net = net
        self.wait = wait
        self.saw_network_first: List[bool] = []

    def _silent(self, method: str, path: str) -> ImdsReply:
        self.saw_network_first.append(self.net.first_call.wait(self.wait))
        return ImdsReply(method, path, None, problem="timeout")

    def fetch_token(self, *, timeout: float) -> ImdsReply:
        return self._silent("PUT", "/latest/api/token")

    def get(self, path: str, *, timeout: float, use_token: bool = True) -> ImdsReply:
        return self._silent("GET", path)


def _run(
    tmp_path: Path, region: Optional[str]
) -> Tuple[RecordingNet, WaitingImds, Dict[str, CheckResult]]:
    inner = RecordingNet()
    imds = WaitingImds(inner, wait=5.0 if region else 0.3)
    host = make_host(
        tmp_path,
        files={"/etc/resolv.conf": "nameserver 192.0.2.2\n"},
        imds=imds,
        net=EarlyNetwork(inner),
        settings=HostSettings(region=region),
    )
    wanted = {"imds.reachable", "network.region", "network.resolver", "network.guardduty_dns"}
    wanted |= {"network.guardduty_tcp", "imds.identity", "imds.network", "imds.token"}
    checks = [c for c in ALL_CHECKS if c.id in wanted]
    outcome = run_checks(host, checks, Options(), budget_s=20.0)
    return inner, imds, {r.check_id: r for r in outcome.results}


def test_with_region_the_endpoint_is_probed_while_imds_is_still_silent(tmp_path: Path) -> None:
    inner, imds, results = _run(tmp_path, "us-east-1")
    assert imds.saw_network_first and all(imds.saw_network_first)
    assert ("dns", HOST, "gd-doctor-early") in inner.calls
    assert inner.count("dns") == 2  # the primary and -v2 names, once each
    assert inner.count("tcp") == 1  # the check joined the early connect
    dns, tcp = results["network.guardduty_dns"].facts, results["network.guardduty_tcp"].facts
    assert isinstance(dns, DnsFacts) and [a.address for a in dns.addresses] == [ADDRESS]
    assert isinstance(tcp, TcpFacts) and tcp.open_addresses == (ADDRESS,)


def test_without_region_nothing_starts_before_imds(tmp_path: Path) -> None:
    inner, imds, results = _run(tmp_path, None)
    assert inner.calls == []
    assert imds.saw_network_first and not any(imds.saw_network_first)
    assert results["network.guardduty_dns"].skip_reason == "BLOCKED_BY:network.region"


def test_a_root_run_starts_no_probe(tmp_path: Path) -> None:
    inner = RecordingNet()
    host = make_host(
        tmp_path, live=False, net=EarlyNetwork(inner), settings=HostSettings(region="us-east-1")
    )
    run_checks(host, ALL_CHECKS, Options(), budget_s=20.0)
    assert inner.calls == []
