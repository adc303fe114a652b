"""Network checks and rules through the runner: an injected resolver, trustme TLS endpoints."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gd_doctor.checks.base import Options
from gd_doctor.host.net import LiveNetwork
from tests.fakes.dns import FakeResolver
from tests.fakes.imds import FakeImds
from tests.fakes.tls import TlsEndpoint, closed_port
from tests.network.conftest import HOST, REGION, by_id, finding_ids, host_with, pipeline

SSM = {f"{s}.{REGION}.amazonaws.com": ["127.0.0.1"] for s in ("ssm", "ssmmessages",
                                                                "ec2messages")}


def _opts(port: int, **kw: object) -> Options:
    return Options(region=REGION, endpoint_url=f"https://{HOST}:{port}", **kw)  # type: ignore[arg-type]


def test_healthy_endpoint_answers_as_aws(tmp_path: Path) -> None:
    with TlsEndpoint(HOST) as ep:
        res = FakeResolver({HOST: ["127.0.0.1"], **SSM})
        host = host_with(tmp_path, resolver=res, ca_file=ep.ca_file)
        run, diagnosis, _, doc = pipeline(host, "network", options=_opts(ep.address[1]))
    r = by_id(run)
    assert r["network.guardduty_https"].status.value == "ok", r["network.guardduty_https"]
    probe = r["network.guardduty_https"].data["probes"][0]
    assert probe["aws_shaped"] and probe["issuer_o"] == "Amazon" and probe["tls"] == "ok"
    assert probe["error_type"] == "MissingAuthenticationTokenException"
    # the refusal of the unsigned probe is healthy: no denial finding
    assert [f for f in finding_ids(diagnosis) if f.startswith("network.")] == []
    request = ep.requests[0].decode()
    assert request.startswith("GET / HTTP/1.1") and f"Host: {HOST}" in request
    assert "Authorization" not in request  # never signed
    assert HOST in json.dumps(doc)


@pytest.mark.parametrize("cert,tls", [("untrusted", "untrusted"), ("wrong-name", "name-mismatch"),
                                      ("expired", "expired")])
def test_bad_certificates(tmp_path: Path, cert: str, tls: str) -> None:
    with TlsEndpoint(HOST, cert=cert) as ep:
        host = host_with(tmp_path, resolver=FakeResolver({HOST: ["127.0.0.1"]}),
                         ca_file=ep.ca_file)
        run, diagnosis, _, _ = pipeline(host, "network.guardduty_https",
                                        options=_opts(ep.address[1]))
    probe = by_id(run)["network.guardduty_https"].data["probes"][0]
    assert probe["tls"] == tls
    assert "network.tls-intercepted" in finding_ids(diagnosis)


def test_trusted_but_non_amazon_issuer_is_interception(tmp_path: Path) -> None:
    with TlsEndpoint(HOST, ca_org="Corp TLS Inspection") as ep:
        host = host_with(tmp_path, resolver=FakeResolver({HOST: ["127.0.0.1"]}),
                         ca_file=ep.ca_file)
        _, diagnosis, _, _ = pipeline(host, "network.guardduty_https",
                                      options=_opts(ep.address[1]))
    found = {f.finding_id: f for f in diagnosis.findings}
    assert "Corp TLS Inspection" in found["network.tls-intercepted"].title


def test_middlebox_answering(tmp_path: Path) -> None:
    with TlsEndpoint(HOST, reply="html") as ep:
        host = host_with(tmp_path, resolver=FakeResolver({HOST: ["127.0.0.1"]}),
                         ca_file=ep.ca_file)
        _, diagnosis, _, _ = pipeline(host, "network.guardduty_https",
                                      options=_opts(ep.address[1]))
    found = {f.finding_id: f for f in diagnosis.findings}
    assert "HTTP 200, Server: corp-gateway" in found["network.not-the-service"].title


def test_closed_port_is_tcp_refused(tmp_path: Path) -> None:
    host = host_with(tmp_path, resolver=FakeResolver({HOST: ["127.0.0.1"]}))
    run, diagnosis, _, _ = pipeline(host, "network.guardduty_https",
                                    options=_opts(closed_port()))
    assert by_id(run)["network.guardduty_tcp"].data["states"] == {"127.0.0.1": "refused"}
    assert by_id(run)["network.guardduty_https"].skip_reason == "BLOCKED_BY:network.guardduty_tcp"
    found = {f.finding_id: f for f in diagnosis.findings}
    assert "refused" in found["network.tcp-blocked"].title


def test_public_resolution_is_the_private_dns_row(tmp_path: Path) -> None:
    with FakeImds(tokens="required") as imds:  # VPC 192.0.2.0/24 from the AEMM tree
        res = FakeResolver({HOST: ["52.94.236.248", "52.94.236.249"], **SSM})
        host = host_with(tmp_path, imds_url=imds.url, resolver=res)
        run, diagnosis, report, _ = pipeline(host, "network.guardduty_dns", "imds")
    dns = by_id(run)["network.guardduty_dns"]
    assert dns.data["endpoint_class"] == "public"
    assert dns.data["classes"] == {"52.94.236.248": "public", "52.94.236.249": "public"}
    assert by_id(run)["network.region"].data["region_source"] == "instance identity document"
    found = {f.finding_id: f for f in diagnosis.findings}
    assert found["network.endpoint-public"].issue_id == "private-dns-attributes"
    assert "vpc-d295a6a7" in " ".join(found["network.endpoint-public"].steps)
    assert report.host.region == "us-east-1"


def test_vpc_resolution_is_healthy(tmp_path: Path) -> None:
    with FakeImds(tokens="required") as imds:
        res = FakeResolver({HOST: ["192.0.2.10", "192.0.2.11"],
                            f"guardduty-data-v2.{REGION}.amazonaws.com": "no such name"})
        host = host_with(tmp_path, imds_url=imds.url, resolver=res)
        run, diagnosis, _, _ = pipeline(host, "network.guardduty_dns", "imds")
    dns = by_id(run)["network.guardduty_dns"]
    assert dns.status.value == "ok" and dns.data["endpoint_class"] == "vpc"
    assert dns.data["names"][f"guardduty-data-v2.{REGION}.amazonaws.com"]["problem"] == \
        "no such name"
    assert "network.endpoint-public" not in finding_ids(diagnosis)


def test_unresolvable_endpoint(tmp_path: Path) -> None:
    host = host_with(tmp_path, resolver=FakeResolver({}),
                     files={"/etc/resolv.conf": "nameserver 1.1.1.1\n"})
    run, diagnosis, _, _ = pipeline(host, "network.guardduty_dns",
                                    options=Options(region=REGION))
    ids = finding_ids(diagnosis)
    assert "network.endpoint-unresolvable" in ids and "network.custom-resolver" in ids
    assert by_id(run)["network.resolver"].data["kind"] == "custom"


def test_dns_that_never_answers_is_bounded(tmp_path: Path) -> None:
    res = FakeResolver({HOST: ["192.0.2.10"]}, delays={HOST: 30.0})
    host = host_with(tmp_path, resolver=res)
    start = time.monotonic()
    run, _, _, _ = pipeline(host, "network.guardduty_dns", options=Options(region=REGION),
                            budget_s=1.0)
    assert time.monotonic() - start < 2.0
    dns = by_id(run)["network.guardduty_dns"]
    assert dns.status.value in ("fail", "error")


def test_region_unknown_skips_with_a_reason(tmp_path: Path) -> None:
    host = host_with(tmp_path, resolver=FakeResolver({}))
    run, _, _, _ = pipeline(host, "network.guardduty_dns")
    assert "pass --region" in by_id(run)["network.region"].summary
    assert by_id(run)["network.guardduty_dns"].skip_reason == "BLOCKED_BY:network.region"


@pytest.mark.parametrize("region,suffix", [("cn-north-1", "amazonaws.com.cn"),
                                           ("us-gov-west-1", "amazonaws.com")])
def test_partitions(tmp_path: Path, region: str, suffix: str) -> None:
    host = host_with(tmp_path, resolver=FakeResolver({}))
    run, _, _, _ = pipeline(host, "network.region", options=Options(region=region))
    data = by_id(run)["network.region"].data
    assert data["host"] == f"guardduty-data.{region}.{suffix}"
    assert (data["fips_host"] is not None) == region.startswith("us-gov")


def test_ssm_endpoints_shape(tmp_path: Path) -> None:
    res = FakeResolver({f"ssm.{REGION}.amazonaws.com": ["127.0.0.1"],
                        f"ssmmessages.{REGION}.amazonaws.com": "no such name"})
    host = host_with(tmp_path, resolver=res)
    run, _, _, _ = pipeline(host, "network.ssm_endpoints", options=Options(region=REGION))
    eps = by_id(run)["network.ssm_endpoints"].data["endpoints"]
    assert set(eps) == {"ssm", "ssmmessages", "ec2messages"}
    assert eps["ssm"]["addresses"] == ["127.0.0.1"] and eps["ssm"]["tcp"] in ("refused", "ok")
    assert eps["ssmmessages"]["tcp"] == "dns-failed"
    assert eps["ec2messages"]["host"] == f"ec2messages.{REGION}.amazonaws.com"


def test_live_network_against_loopback_only() -> None:
    net = LiveNetwork(FakeResolver({}))
    assert net.tcp_connect("127.0.0.1", closed_port(), timeout=0.5).state == "refused"
    assert net.resolve("127.0.0.1", timeout=0.5).addresses == ("127.0.0.1",)


@pytest.mark.parametrize("resolv,upstream,kind", [
    ("nameserver 169.254.169.253\n", None, "amazon"),
    ("# generated by /usr/sbin/dhclient-script\nsearch ec2.internal\nnameserver 192.0.2.2\n",
     None, "amazon"),
    ("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n", "nameserver 192.0.2.2\n",
     "amazon"),
    ("nameserver 127.0.0.53\n", "nameserver 10.200.0.10\n", "custom"),
    ("nameserver 127.0.0.1\n", None, "local"),
    ("\x00\x00binary garbage", None, "none"),
])
def test_resolver_kinds(tmp_path: Path, resolv: str, upstream: str, kind: str) -> None:
    files = {"/etc/resolv.conf": resolv}
    if upstream:
        files["/run/systemd/resolve/resolv.conf"] = upstream
    with FakeImds(tokens="required") as imds:  # VPC 192.0.2.0/24: its resolver is 192.0.2.2
        host = host_with(tmp_path, imds_url=imds.url, resolver=FakeResolver({}), files=files)
        run, _, _, _ = pipeline(host, "network.resolver")
    assert by_id(run)["network.resolver"].data["kind"] == kind


def test_under_root_only_file_checks_run(tmp_path: Path) -> None:
    from tests.hostkit import make_host

    host = make_host(tmp_path, live=False, files={"/etc/resolv.conf": "nameserver 10.0.0.2\n"})
    run, _, _, _ = pipeline(host, "network", options=Options(region=REGION))
    r = by_id(run)
    assert r["network.resolver"].status.value == "ok"
    assert r["network.region"].data["host"] == HOST
    assert r["network.guardduty_dns"].skip_reason == "UNAVAILABLE_WITH_ROOT"
    assert r["network.ssm_endpoints"].skip_reason == "UNAVAILABLE_WITH_ROOT"
