"""Network checks and rules through the runner: an injected resolver, trustme TLS endpoints."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from gd_doctor.facts.network import (
    DnsFacts,
    HttpsFacts,
    NameAnswer,
    RegionFacts,
    ResolvedAddress,
    ResolverFacts,
    SsmEndpoint,
    SsmEndpointsFacts,
    TcpAttempt,
    TcpFacts,
)
from gd_doctor.host import Host
from gd_doctor.host import net as net_mod
from gd_doctor.host.net import LiveNetwork
from tests.fakes.dns import FakeResolver
from tests.fakes.imds import FakeImds
from tests.fakes.tls import TlsEndpoint, closed_port
from tests.network.conftest import (
    HOST,
    REGION,
    by_id,
    facts,
    finding_ids,
    host_with,
    pipeline,
)

SSM = {f"{s}.{REGION}.amazonaws.com": ["127.0.0.1"] for s in ("ssm", "ssmmessages", "ec2messages")}


def _endpoint_host(tmp_path: Path, port: int, resolver: FakeResolver, **kw: Any) -> Host:
    """--region and --endpoint-url pointing at a loopback endpoint on ``port``."""
    return host_with(
        tmp_path, resolver=resolver, region=REGION, endpoint_url=f"https://{HOST}:{port}", **kw
    )


def test_healthy_endpoint_answers_as_aws(tmp_path: Path) -> None:
    with TlsEndpoint(HOST) as ep:
        res = FakeResolver({HOST: ["127.0.0.1"], **SSM})
        host = _endpoint_host(tmp_path, ep.address[1], res, ca_file=ep.ca_file)
        run, diagnosis, _, doc = pipeline(host, "network")
    r = by_id(run)
    assert r["network.guardduty_https"].status.value == "ok", r["network.guardduty_https"]
    https = facts(run, HttpsFacts)
    assert https.service_answered and not https.intercepted and https.agent_path == "direct"
    (probe,) = https.probes
    assert probe.aws_shaped and probe.issuer_o == "Amazon" and probe.tls == "ok"
    assert probe.error_type == "MissingAuthenticationTokenException"
    assert (
        doc["checks"][[c["id"] for c in doc["checks"]].index("network.guardduty_https")]["data"][
            "probes"
        ][0]["aws_shaped"]
        is True
    )
    # the refusal of the unsigned probe is healthy: no denial finding
    assert [f for f in finding_ids(diagnosis) if f.startswith("network.")] == []
    request = ep.requests[0].decode()
    assert request.startswith("GET / HTTP/1.1") and f"Host: {HOST}" in request
    assert "Authorization" not in request  # never signed
    assert HOST in json.dumps(doc)


@pytest.mark.parametrize(
    "cert,tls",
    [("untrusted", "untrusted"), ("wrong-name", "name-mismatch"), ("expired", "expired")],
)
def test_bad_certificates(tmp_path: Path, cert: str, tls: str) -> None:
    with TlsEndpoint(HOST, cert=cert) as ep:
        host = _endpoint_host(
            tmp_path, ep.address[1], FakeResolver({HOST: ["127.0.0.1"]}), ca_file=ep.ca_file
        )
        run, diagnosis, _, _ = pipeline(host, "network.guardduty_https")
    https = facts(run, HttpsFacts)
    assert [p.tls for p in https.probes] == [tls] and https.intercepted
    assert "network.tls-intercepted" in finding_ids(diagnosis)


def test_trusted_but_non_amazon_issuer_is_interception(tmp_path: Path) -> None:
    with TlsEndpoint(HOST, ca_org="Corp TLS Inspection") as ep:
        host = _endpoint_host(
            tmp_path, ep.address[1], FakeResolver({HOST: ["127.0.0.1"]}), ca_file=ep.ca_file
        )
        _, diagnosis, _, _ = pipeline(host, "network.guardduty_https")
    found = {f.finding_id: f for f in diagnosis.findings}
    assert "Corp TLS Inspection" in found["network.tls-intercepted"].title


def test_middlebox_answering(tmp_path: Path) -> None:
    with TlsEndpoint(HOST, reply="html") as ep:
        host = _endpoint_host(
            tmp_path, ep.address[1], FakeResolver({HOST: ["127.0.0.1"]}), ca_file=ep.ca_file
        )
        _, diagnosis, _, _ = pipeline(host, "network.guardduty_https")
    found = {f.finding_id: f for f in diagnosis.findings}
    assert "HTTP 200, Server: corp-gateway" in found["network.not-the-service"].title


def test_closed_port_is_tcp_refused(tmp_path: Path) -> None:
    host = _endpoint_host(tmp_path, closed_port(), FakeResolver({HOST: ["127.0.0.1"]}))
    run, diagnosis, _, _ = pipeline(host, "network.guardduty_https")
    assert facts(run, TcpFacts).attempts == (TcpAttempt("127.0.0.1", "refused"),)
    assert by_id(run)["network.guardduty_https"].skip_reason == "BLOCKED_BY:network.guardduty_tcp"
    found = {f.finding_id: f for f in diagnosis.findings}
    assert "refused" in found["network.tcp-blocked"].title


def test_public_resolution_is_the_private_dns_row(tmp_path: Path) -> None:
    with FakeImds(tokens="required") as imds:  # VPC 192.0.2.0/24 from the AEMM tree
        res = FakeResolver({HOST: ["52.94.236.248", "52.94.236.249"], **SSM})
        host = host_with(tmp_path, imds_url=imds.url, resolver=res)
        run, diagnosis, report, _ = pipeline(host, "network.guardduty_dns", "imds")
    dns = facts(run, DnsFacts)
    assert dns.endpoint_class == "public" and dns.vpc_cidrs == ("192.0.2.0/24",)
    assert dns.addresses == (
        ResolvedAddress("52.94.236.248", "public"),
        ResolvedAddress("52.94.236.249", "public"),
    )
    assert facts(run, RegionFacts).region_source == "instance identity document"
    found = {f.finding_id: f for f in diagnosis.findings}
    assert found["network.endpoint-public"].issue_id == "private-dns-attributes"
    assert "vpc-d295a6a7" in " ".join(found["network.endpoint-public"].steps)
    assert report.host.region == "us-east-1"


def test_vpc_resolution_is_healthy(tmp_path: Path) -> None:
    with FakeImds(tokens="required") as imds:
        res = FakeResolver(
            {
                HOST: ["192.0.2.10", "192.0.2.11"],
                f"guardduty-data-v2.{REGION}.amazonaws.com": "no such name",
            }
        )
        host = host_with(tmp_path, imds_url=imds.url, resolver=res)
        run, diagnosis, _, _ = pipeline(host, "network.guardduty_dns", "imds")
    assert by_id(run)["network.guardduty_dns"].status.value == "ok"
    dns = facts(run, DnsFacts)
    assert dns.endpoint_class == "vpc" and dns.in_vpc
    assert dns.names[1] == NameAnswer(
        f"guardduty-data-v2.{REGION}.amazonaws.com", (), "no such name"
    )
    assert "network.endpoint-public" not in finding_ids(diagnosis)


def test_unresolvable_endpoint(tmp_path: Path) -> None:
    host = host_with(
        tmp_path,
        resolver=FakeResolver({}),
        region=REGION,
        files={"/etc/resolv.conf": "nameserver 1.1.1.1\n"},
    )
    run, diagnosis, _, _ = pipeline(host, "network.guardduty_dns")
    ids = finding_ids(diagnosis)
    assert "network.endpoint-unresolvable" in ids and "network.custom-resolver" in ids
    assert facts(run, ResolverFacts).kind == "custom"
    assert facts(run, DnsFacts).endpoint_class == "unresolved"


def test_dns_that_never_answers_is_bounded(tmp_path: Path) -> None:
    res = FakeResolver({HOST: ["192.0.2.10"]}, delays={HOST: 30.0})
    host = host_with(tmp_path, resolver=res, region=REGION)
    start = time.monotonic()
    run, _, _, _ = pipeline(host, "network.guardduty_dns", budget_s=1.0)
    assert time.monotonic() - start < 2.0
    dns = by_id(run)["network.guardduty_dns"]
    assert dns.status.value in ("fail", "error")


def test_region_unknown_skips_with_a_reason(tmp_path: Path) -> None:
    host = host_with(tmp_path, resolver=FakeResolver({}))
    run, _, _, _ = pipeline(host, "network.guardduty_dns")
    assert "pass --region" in by_id(run)["network.region"].summary
    assert by_id(run)["network.guardduty_dns"].skip_reason == "BLOCKED_BY:network.region"


@pytest.mark.parametrize(
    "region,suffix", [("cn-north-1", "amazonaws.com.cn"), ("us-gov-west-1", "amazonaws.com")]
)
def test_partitions(tmp_path: Path, region: str, suffix: str) -> None:
    host = host_with(tmp_path, resolver=FakeResolver({}), region=region)
    run, _, _, _ = pipeline(host, "network.region")
    got = facts(run, RegionFacts)
    # GovCloud's endpoint service is guardduty-data-fips: its name is the primary one there.
    name = "guardduty-data-fips" if region.startswith("us-gov") else "guardduty-data"
    assert got.host == f"{name}.{region}.{suffix}" and got.region_source == "--region"
    assert (got.fips_host is not None) == region.startswith("us-gov")


def test_ssm_endpoints_shape(tmp_path: Path) -> None:
    res = FakeResolver(
        {
            f"ssm.{REGION}.amazonaws.com": ["127.0.0.1"],
            f"ssmmessages.{REGION}.amazonaws.com": "no such name",
        }
    )
    host = host_with(tmp_path, resolver=res, region=REGION)
    run, _, _, _ = pipeline(host, "network.ssm_endpoints")
    eps = facts(run, SsmEndpointsFacts)
    assert [e.service for e in eps.endpoints] == ["ssm", "ssmmessages", "ec2messages"]
    ssm = eps.get("ssm")
    assert ssm is not None and ssm.addresses == ("127.0.0.1",)
    assert ssm.tcp in ("refused", "ok")
    assert eps.get("ssmmessages") == SsmEndpoint(
        "ssmmessages", f"ssmmessages.{REGION}.amazonaws.com", (), "dns-failed", "no such name"
    )
    assert [e.service for e in eps.unreachable if e.tcp == "dns-failed"] == [
        "ssmmessages",
        "ec2messages",
    ]


def test_live_network_against_loopback_only() -> None:
    net = LiveNetwork(FakeResolver({}))
    assert net.tcp_connect("127.0.0.1", closed_port(), timeout=0.5).state == "refused"
    assert net.resolve("127.0.0.1", timeout=0.5).addresses == ("127.0.0.1",)


@pytest.mark.parametrize(
    "resolv,upstream,kind",
    [
        ("nameserver 169.254.169.253\n", None, "amazon"),
        (
            "# generated by /usr/sbin/dhclient-script\nsearch ec2.internal\nnameserver 192.0.2.2\n",
            None,
            "amazon",
        ),
        (
            "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
            "nameserver 192.0.2.2\n",
            "amazon",
        ),
        ("nameserver 127.0.0.53\n", "nameserver 10.200.0.10\n", "custom"),
        ("nameserver 127.0.0.1\n", None, "local"),
        ("\x00\x00binary garbage", None, "none"),
    ],
)
def test_resolver_kinds(tmp_path: Path, resolv: str, upstream: str, kind: str) -> None:
    files = {"/etc/resolv.conf": resolv}
    if upstream:
        files["/run/systemd/resolve/resolv.conf"] = upstream
    with FakeImds(tokens="required") as imds:  # VPC 192.0.2.0/24: its resolver is 192.0.2.2
        host = host_with(tmp_path, imds_url=imds.url, resolver=FakeResolver({}), files=files)
        run, _, _, _ = pipeline(host, "network.resolver")
    assert facts(run, ResolverFacts).kind == kind


def test_under_root_only_file_checks_run(tmp_path: Path) -> None:
    host = host_with(
        tmp_path, live=False, region=REGION, files={"/etc/resolv.conf": "nameserver 10.0.0.2\n"}
    )
    run, _, _, _ = pipeline(host, "network")
    r = by_id(run)
    assert r["network.resolver"].status.value == "ok"
    assert facts(run, RegionFacts).host == HOST
    assert r["network.guardduty_dns"].skip_reason == "UNAVAILABLE_WITH_ROOT"
    assert r["network.ssm_endpoints"].skip_reason == "UNAVAILABLE_WITH_ROOT"


def test_one_tls_context_serves_every_probe_of_a_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loading a CA store costs tens of milliseconds of CPU: the probes of every address and
    # endpoint that present the same chain share one context holding the certificates that
    # chain needs; the whole store is loaded once, for the chain the small context refused.
    import ssl

    made = []
    original = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append("whole store" if kwargs.get("cafile") else "chain's certificates")
        return original(*args, **kwargs)

    with TlsEndpoint(HOST) as good, TlsEndpoint(HOST, cert="untrusted") as bad:
        monkeypatch.setattr(ssl, "create_default_context", counting)  # the servers have theirs
        net = LiveNetwork(FakeResolver({}), good.ca_file)
        net.warm()  # the run's early hook indexes the store while the local checks run
        probes = [
            net.https_probe("127.0.0.1", ep.address[1], HOST, timeout=5.0)
            for ep in (good, bad, good)
        ]
    assert [p.tls for p in probes] == ["ok", "untrusted", "ok"]
    if net_mod._chain_readable():
        assert made == ["chain's certificates", "whole store"]
    else:  # Python 3.9 cannot show the chain: the whole store, loaded once
        assert made == ["whole store"]
    assert net.whole_store_loads == 1
