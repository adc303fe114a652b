"""HttpImds against the fake IMDS server on loopback: tokens, fallbacks, retries, bounds."""

from __future__ import annotations

import time

import pytest

from gd_doctor.host.imds import HttpImds, UnavailableImds, live_imds
from gd_doctor.host.settings import HostSettings
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
