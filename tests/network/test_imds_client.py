"""HttpImds against the fake IMDS server on loopback: tokens, fallbacks, retries, bounds."""

from __future__ import annotations

import socket
import time
from typing import List

import pytest

from gd_doctor.host.imds import HttpImds, UnavailableImds, live_imds
from gd_doctor.host.settings import HostSettings
from tests.fakes.background import TcpAcceptServer
from tests.fakes.imds import TOKEN, FakeImds
from tests.fakes.tls import closed_port

IDENTITY = "/latest/dynamic/instance-identity/document"


def test_token_required_put_then_get_with_token() -> None:
    with FakeImds(tokens="required") as fake:
        client = HttpImds(fake.url)
        put = client.fetch_token(timeout=1)
        got = client.get(IDENTITY, timeout=1)
    assert put.status == 200 and put.text == ""  # the token never leaves the client
    assert got.ok and '"instanceId" : "i-1234567890abcdef0"' in got.text and got.used_token
    first, second = fake.requests
    assert first.method == "PUT" and first.path == "/latest/api/token"
    assert int(first.headers["X-aws-ec2-metadata-token-ttl-seconds"]) > 0
    assert second.headers["X-aws-ec2-metadata-token"] == TOKEN


def test_tokenless_get_is_refused_when_tokens_required() -> None:
    with FakeImds(tokens="required") as fake:
        reply = HttpImds(fake.url).get(IDENTITY, timeout=1)
    assert reply.status == 401 and not reply.used_token


def test_v2_refused_falls_back_to_v1() -> None:
    with FakeImds(tokens="disabled") as fake:
        client = HttpImds(fake.url)
        assert client.fetch_token(timeout=1).status == 403
        got = client.get(IDENTITY, timeout=1)
    assert got.ok and not got.used_token
    assert [r.method for r in fake.requests] == ["PUT", "GET"]  # 403 is not retried


def test_503_is_retried_once() -> None:
    with FakeImds(tokens="optional", status={IDENTITY: 503}) as fake:
        reply = HttpImds(fake.url).get(IDENTITY, timeout=1)
    assert reply.status == 503 and reply.attempts == 2
    assert len([r for r in fake.requests if r.path == IDENTITY]) == 2


def test_dropped_put_times_out_within_bounds() -> None:
    with FakeImds(drop_put=True) as fake:
        start = time.monotonic()
        reply = HttpImds(fake.url).fetch_token(timeout=0.3)
        elapsed = time.monotonic() - start
    assert reply.problem == "timeout" and reply.attempts == 1  # no retry into the silence
    assert elapsed < 0.9


def test_trickling_body_is_cut_at_the_deadline() -> None:
    with FakeImds(tokens="optional", trickle=0.2) as fake:
        start = time.monotonic()
        reply = HttpImds(fake.url).get(IDENTITY, timeout=0.5)
        elapsed = time.monotonic() - start
    assert reply.status is None and reply.problem == "timeout"
    assert elapsed < 2.0  # one attempt of ~0.5 s plus its read, not 100 s of bytes


@pytest.mark.parametrize(
    "endpoint,inline",
    [
        ("http://169.254.169.254", True),
        ("http://[fd00:ec2::254]", True),
        ("http://127.0.0.1:8080", True),
        ("http://metadata.internal", False),  # getaddrinfo, which no timeout stops
        ("https://169.254.169.254", False),  # http.client
    ],
)
def test_only_an_exchange_its_deadline_bounds_runs_without_a_thread(
    endpoint: str, inline: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gd_doctor.host.imds as imds_mod

    threads: List[str] = []
    real = imds_mod.call_with_timeout

    def counting(fn: object, timeout: float, *, name: str) -> object:
        threads.append(name)
        return real(fn, timeout, name=name)  # type: ignore[arg-type]

    monkeypatch.setattr(imds_mod, "call_with_timeout", counting)
    client = HttpImds(endpoint)
    assert client._bounded_inline() is inline
    monkeypatch.setattr(client, "_exchange", lambda *a: a[-1].update(problem="refused"))
    assert client.get(IDENTITY, timeout=0.1).problem == "refused"
    assert threads == ([] if inline else ["imds"] * len(threads)) and (inline or threads)


def test_huge_body_is_refused() -> None:
    tree = {IDENTITY: "x" * (1024 * 1024)}
    with FakeImds(tokens="optional", tree=tree) as fake:
        reply = HttpImds(fake.url).get(IDENTITY, timeout=2)
    assert reply.problem == "too large"


def test_closed_port_is_refused() -> None:
    reply = HttpImds(f"http://127.0.0.1:{closed_port()}").get(IDENTITY, timeout=0.5)
    assert reply.status is None and reply.problem == "refused"


def test_never_through_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, dead)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with FakeImds(tokens="required") as fake:
        client = HttpImds(fake.url)
        assert client.fetch_token(timeout=1).ok
        assert client.get(IDENTITY, timeout=1).ok


def test_metadata_disabled_env_switches_imds_off() -> None:
    client = live_imds(HostSettings(env={"AWS_EC2_METADATA_DISABLED": "true"}))
    assert isinstance(client, UnavailableImds) and client.endpoint is None
    assert client.get(IDENTITY, timeout=1).problem.startswith("unavailable")  # type: ignore[union-attr]


def test_endpoint_env_is_honoured() -> None:
    with FakeImds(tokens="required") as fake:
        client = live_imds(HostSettings(env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": fake.url}))
        assert client.endpoint == fake.url
        assert client.fetch_token(timeout=1).ok


class _RawImds(TcpAcceptServer):
    """Answers every request with the bytes given and keeps the connection open, as an HTTP/1.1
    server that ignores ``Connection: close`` may; records what it was sent."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.received: List[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self._prepare_thread()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(3)
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            self.received.append(data)
            if not self.answer:
                return  # closed after the request, without a word
            conn.sendall(self.answer)
            time.sleep(2)  # the connection stays open


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: Tue, 01 Dec 2026 20:00:00 GMT\r\n\r\nAQAEA",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nAQA\r\n2\r\nEA\r\n0\r\n\r\n",
    ],
    ids=["content-length", "chunked"],
)
def test_an_answer_is_complete_without_waiting_for_the_close(answer: bytes) -> None:
    with _RawImds(answer) as fake:
        start = time.monotonic()
        reply = HttpImds(fake.url).fetch_token(timeout=1.5)
        elapsed = time.monotonic() - start
        client = HttpImds(fake.url)
        client.fetch_token(timeout=1.5)
        got = client.get("/latest/meta-data/instance-id", timeout=1.5)
    assert reply.status == 200 and elapsed < 1.0
    assert got.status == 200 and got.text == "AQAEA" and got.used_token


def test_the_request_is_written_as_http_client_writes_it() -> None:
    with _RawImds(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nT") as fake:
        client = HttpImds(fake.url)
        client.fetch_token(timeout=1.5)
        client.get("/latest/meta-data/", timeout=1.5)
        port = fake.sock.getsockname()[1]
    put, get = (r.decode("latin-1").split("\r\n") for r in fake.received)
    assert (
        put[0] == "PUT /latest/api/token HTTP/1.1" and get[0] == "GET /latest/meta-data/ HTTP/1.1"
    )
    assert f"Host: 127.0.0.1:{port}" in put and "Content-Length: 0" in put
    assert "Content-Length: 0" not in get and "X-aws-ec2-metadata-token: T" in get
    assert not any(line.lower().startswith("proxy") for line in put + get)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (b"", "error: BadReply"),  # closed without a word
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "error: BadReply"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 20000, "error: BadReply"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + b"a" * 70000, "too large"),
    ],
    ids=["closed", "not-http", "endless-headers", "too-large"],
)
def test_a_broken_answer_is_a_problem_not_an_exception(answer: bytes, problem: str) -> None:
    with _RawImds(answer) as fake:
        reply = HttpImds(fake.url, retries=0).get("/latest/meta-data/", timeout=1.5)
    assert reply.status is None and reply.problem == problem
