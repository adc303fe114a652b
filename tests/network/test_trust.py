"""The TLS probe's trust: the store's certificates a presented chain can reach, the whole store
whenever they do not verify it (gd_doctor/host/trust.py), against trustme endpoints on loopback
and this machine's own CA store."""

from __future__ import annotations

import os
import random
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from cryptography import x509

from gd_doctor.host import net as net_mod
from gd_doctor.host import trust
from gd_doctor.host.net import HttpsProbe, LiveNetwork
from tests.fakes.dns import FakeResolver
from tests.fakes.tls import TlsEndpoint
from tests.network.conftest import HOST

SYSTEM_STORE = ssl.get_default_verify_paths().cafile
# Python 3.9 cannot show a presented chain: every probe there verifies against the whole store
SELECTS = net_mod._chain_readable()
needs_chain = pytest.mark.skipif(not SELECTS, reason="this Python cannot show the chain (3.9)")


def _system_store() -> bytes:
    if not SYSTEM_STORE or not Path(SYSTEM_STORE).is_file():
        pytest.skip("this machine has no CA bundle file")
    return Path(SYSTEM_STORE).read_bytes()


def _store_with(tmp_path: Path, *pem_files: str, system: bool = True) -> str:
    """A bundle as large as a real instance's: this machine's store plus the given CAs."""
    parts = [_system_store()] if system else []
    parts += [Path(f).read_bytes() for f in pem_files]
    path = tmp_path / "bundle.pem"
    path.write_bytes(b"\n".join(parts))
    return str(path)


def _probe(net: LiveNetwork, ep: TlsEndpoint, timeout: float = 5.0) -> HttpsProbe:
    return net.https_probe("127.0.0.1", ep.address[1], HOST, timeout=timeout)


def _answer(p: HttpsProbe) -> Tuple[Any, ...]:
    """What a probe concludes, without its timing."""
    return (p.tcp, p.tls, p.tls_detail, tuple(sorted(p.cert.items())), p.http_status, p.problem)


def _count_certificates(cadata: str) -> int:
    return cadata.count("-----BEGIN CERTIFICATE-----")


@pytest.mark.filterwarnings("ignore:Parsed a serial number")  # some real roots have one
def test_every_certificate_of_this_machines_store_is_indexed_by_its_real_names() -> None:
    data = _system_store()
    index = trust.index_pem(data)
    assert index is not None
    assert index.size == data.count(b"-----BEGIN CERTIFICATE-----") > 10
    for entries in index.by_subject.values():
        for der, issuer in entries:
            cert = x509.load_der_x509_certificate(der)
            assert trust.names(der) == (cert.subject.public_bytes(), cert.issuer.public_bytes())
            assert issuer == cert.issuer.public_bytes()


@needs_chain
def test_a_chain_through_an_intermediate_is_verified_by_its_root_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: List[Dict[str, Any]] = []  # the keyword arguments of each CA context the probe makes
    original = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(kwargs)
        return original(*args, **kwargs)

    with TlsEndpoint(HOST, intermediates=2) as ep:
        bundle = _store_with(tmp_path, ep.ca_file)
        monkeypatch.setattr(ssl, "create_default_context", counting)  # the server has its own
        net = LiveNetwork(FakeResolver({}), bundle)
        probe = _probe(net, ep)
    assert probe.tls == "ok" and probe.http_status == 403
    assert net.whole_store_loads == 0
    (small,) = made
    assert _count_certificates(small["cadata"]) == 1  # the root; the server sent the others
    assert "cafile" not in small and small.get("capath") is None  # the bundle replaces the system's


@pytest.mark.parametrize(
    "kind",
    [
        {"cert": "valid"},
        {"cert": "valid", "intermediates": 1},
        {"cert": "untrusted"},
        {"cert": "untrusted", "intermediates": 1},
        {"cert": "wrong-name"},
        {"cert": "expired"},
        {"cert": "valid", "reply": "close"},
        {"cert": "valid", "reply": "html", "ca_org": "Corp Inspection"},
    ],
    ids=lambda k: "-".join(str(v) for v in k.values()),
)
def test_the_answer_is_the_whole_stores_answer(tmp_path: Path, kind: Dict[str, Any]) -> None:
    with TlsEndpoint(HOST, **kind) as ep:
        bundle = _store_with(tmp_path, ep.ca_file)
        selected = LiveNetwork(FakeResolver({}), bundle)
        whole = LiveNetwork(FakeResolver({}), bundle, select_trust=False)
        fast, slow = _probe(selected, ep), _probe(whole, ep)
    assert _answer(fast) == _answer(slow)
    # a failed verification is always confirmed by the whole store
    assert selected.whole_store_loads == (0 if fast.tls == "ok" and SELECTS else 1)


def test_a_small_context_that_refuses_leaves_the_answer_to_the_whole_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As when the store holds the issuer under a name encoded otherwise than the chain says.
    with TlsEndpoint(HOST) as ep, TlsEndpoint(HOST) as other:
        bundle = _store_with(tmp_path, ep.ca_file, other.ca_file)
        wrong = _ders(Path(other.ca_file).read_bytes())  # a CA of the store, not the issuer
        monkeypatch.setattr(trust.TrustIndex, "reachable", lambda self, chain: wrong)
        net = LiveNetwork(FakeResolver({}), bundle)
        probe = _probe(net, ep)
    assert probe.tls == "ok" and net.whole_store_loads == 1


def _ders(pem: bytes) -> frozenset[bytes]:
    index = trust.index_pem(pem)
    assert index is not None
    return frozenset(der for entries in index.by_subject.values() for der, _ in entries)


@pytest.mark.parametrize(
    "extra",
    [
        b"-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n",
        b"-----BEGIN TRUSTED CERTIFICATE-----\nMIIB\n-----END TRUSTED CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n",  # not a certificate
        b"-----BEGIN CERTIFICATE-----\nMIIB\n",  # no END line
    ],
    ids=["crl", "trusted-certificate", "not-a-certificate", "unterminated"],
)
def test_a_store_that_cannot_be_indexed_exactly_is_loaded_whole(
    tmp_path: Path, extra: bytes
) -> None:
    with TlsEndpoint(HOST) as ep:
        store = Path(_store_with(tmp_path, ep.ca_file, system=False))
        assert trust.index_pem(store.read_bytes()) is not None
        store.write_bytes(store.read_bytes() + b"\n" + extra)
        assert trust.index_pem(store.read_bytes()) is None
        net = LiveNetwork(FakeResolver({}), str(store))
        fast = _probe(net, ep)
        slow = _probe(LiveNetwork(FakeResolver({}), str(store), select_trust=False), ep)
    assert _answer(fast) == _answer(slow)
    assert net.whole_store_loads == 1


def test_without_the_chain_python_loads_the_whole_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(net_mod, "_chain_readable", lambda: False)  # Python 3.9
    with TlsEndpoint(HOST) as ep:
        net = LiveNetwork(FakeResolver({}), _store_with(tmp_path, ep.ca_file))
        assert _probe(net, ep).tls == "ok"
    assert net.whole_store_loads == 1


def test_a_fifo_as_the_ca_bundle_fails_the_probe_at_once(tmp_path: Path) -> None:
    # OpenSSL opens a bundle with fopen, which waits for a writer forever on a FIFO.
    fifo = tmp_path / "bundle.pem"
    os.mkfifo(fifo)
    with TlsEndpoint(HOST) as ep:
        for select in (True, False):
            start = time.monotonic()
            probe = _probe(LiveNetwork(FakeResolver({}), str(fifo), select_trust=select), ep, 3.0)
            assert time.monotonic() - start < 2.0
            assert probe.tls == "failed" and "not a regular file" in (probe.tls_detail or "")


def test_a_server_that_never_answers_the_handshake_times_out_within_the_probe(
    tmp_path: Path,
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel accepts the connections; nobody speaks TLS
    try:
        with TlsEndpoint(HOST) as ep:
            net = LiveNetwork(FakeResolver({}), _store_with(tmp_path, ep.ca_file))
        start = time.monotonic()
        probe = net.https_probe("127.0.0.1", silent.getsockname()[1], HOST, timeout=1.0)
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    assert probe.tcp == "ok" and probe.tls == "failed"
    assert probe.tls_detail == "handshake timed out"
    assert elapsed < 1.5


@needs_chain
def test_probes_in_threads_share_one_small_context(tmp_path: Path) -> None:
    with TlsEndpoint(HOST, intermediates=1) as ep:
        net = LiveNetwork(FakeResolver({}), _store_with(tmp_path, ep.ca_file))
        net.warm()
        answers: List[str] = []
        threads = [
            threading.Thread(target=lambda: answers.append(_probe(net, ep).tls)) for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert answers == ["ok"] * 6 and net.whole_store_loads == 0


def test_hostile_der_raises_only_value_error() -> None:
    index = trust.index_pem(_system_store())
    assert index is not None
    ders = [der for entries in index.by_subject.values() for der, _ in entries]
    rng = random.Random(14)
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(3000):
        der = bytearray(rng.choice(ders))
        for _ in range(rng.randint(1, 4)):
            der[rng.randrange(len(der))] = rng.randrange(256)
        cut = bytes(der[: rng.randint(0, len(der))]) if rng.random() < 0.3 else bytes(der)
        try:
            trust.names(cut)
            index.reachable([cut])
            outcomes["parsed"] += 1
        except ValueError:
            outcomes["refused"] += 1
    assert outcomes["parsed"] > 100 and outcomes["refused"] > 100, outcomes
