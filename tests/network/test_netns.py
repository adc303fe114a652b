"""The real system resolver and the whole CLI inside a network namespace this test made.

Root only (``@pytest.mark.netns``). Fake servers are created inside the namespace; the black
hole is a veth route to a MAC nobody has. Nothing leaves the namespace.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Dict

import pytest

from gd_doctor.diagnosis.engine import UNEXPLAINED
from tests.fakes.dns import FakeDnsServer
from tests.fakes.imds import FakeImds
from tests.fakes.tls import TlsEndpoint
from tests.network.netns import exec_in, inside, make_netns, unavailable_reason

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
]
HOST = "guardduty-data.us-east-1.amazonaws.com"

RESOLVE = """
import json, sys
from gd_doctor.host.net import SystemResolver
a = SystemResolver().resolve(sys.argv[1], timeout=float(sys.argv[2]))
print(json.dumps({"addresses": list(a.addresses), "problem": a.problem,
                  "elapsed": a.elapsed_s}))
"""


def _resolve(ns: str, name: str, timeout: float = 2.0) -> Dict[str, Any]:
    out = exec_in(ns, [sys.executable, "-c", RESOLVE, name, str(timeout)])
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _assert_failures_explained(report: Dict[str, Any]) -> None:
    """Every failing imds/network check is explained by a real rule, never the generic finding
    (on this machine the agent's own checks fail too; explaining those is the agent rules' job)."""
    generic = [
        c
        for f in report["findings"]
        if (f.get("id") or f.get("finding_id")) == UNEXPLAINED
        for c in f.get("checks", ())
        if str(c).startswith(("imds.", "network."))
    ]
    assert generic == [], generic


def test_system_resolver_through_a_fake_dns_server() -> None:
    chain = {f"c{i}.example.test": f"c{i + 1}.example.test" for i in range(8)}
    names = {
        "c8.example.test": ["192.0.2.30"],
        HOST: ["192.0.2.25", "192.0.2.26"],
        "v6only.example.test": ["fd00:ec2::25"],
    }
    with make_netns(resolv_conf="nameserver 127.0.0.1\noptions timeout:1 attempts:1\n") as ns:
        server = inside(ns, lambda: FakeDnsServer("127.0.0.1", 53, names=names, cname=chain))
        with server:
            assert sorted(_resolve(ns, HOST)["addresses"]) == ["192.0.2.25", "192.0.2.26"]
            assert _resolve(ns, "c0.example.test")["addresses"] == ["192.0.2.30"]
            assert _resolve(ns, "v6only.example.test")["addresses"] == ["fd00:ec2::25"]
            assert _resolve(ns, "nothing.example.test")["problem"] == "no such name"
        assert (HOST, 1) in server.queries


def test_silent_resolver_is_cut_at_the_deadline() -> None:
    with make_netns(resolv_conf="nameserver 127.0.0.1\n") as ns:
        with inside(ns, lambda: FakeDnsServer("127.0.0.1", 53, silent=True)):
            got = _resolve(ns, HOST, timeout=0.5)
    assert got["problem"] == "timeout" and got["elapsed"] < 1.0


def test_everything_black_holed_returns_within_the_budget() -> None:
    with make_netns() as ns:  # resolv.conf and 169.254.169.254 both lead into the black hole
        start = time.monotonic()
        out = exec_in(
            ns, [sys.executable, "-m", "gd_doctor", "check", "--timeout", "5", "--format", "json"]
        )
        wall = time.monotonic() - start
    report = json.loads(out.stdout)
    checks = {c["id"] if "id" in c else c["check_id"]: c for c in report["checks"]}
    assert checks["imds.reachable"]["status"] in ("fail", "error")
    assert wall <= 5.25 + 0.5, f"black-holed run took {wall:.2f} s"  # + interpreter start-up
    _assert_failures_explained(report)


def test_black_hole_with_region_reports_each_silence() -> None:
    # With --region the DNS probes run alongside IMDS (host/early.py); what the report says is
    # what it said when they ran after it: IMDS silent within its timeout, DNS timed out.
    with make_netns() as ns:
        argv = [sys.executable, "-m", "gd_doctor", "check", "--format", "json"]
        out = exec_in(ns, [*argv, "--region", "us-east-1"])
    report = json.loads(out.stdout)
    checks = {c["id"] if "id" in c else c["check_id"]: c for c in report["checks"]}
    assert "no answer within 1 s" in checks["imds.reachable"]["summary"]
    assert checks["network.guardduty_dns"]["status"] == "fail"
    assert "timeout" in checks["network.guardduty_dns"]["summary"]
    assert checks["network.guardduty_tcp"]["status"] == "skip"
    titles = [f["title"] for f in report["findings"]]
    assert any("no answer within 1 s" in t for t in titles), titles
    _assert_failures_explained(report)


def test_healthy_path_end_to_end() -> None:
    endpoint_ip = "192.0.2.25"  # inside the AEMM tree's VPC CIDR 192.0.2.0/24
    with make_netns(
        addresses=["169.254.169.254", endpoint_ip], resolv_conf="nameserver 127.0.0.1\n"
    ) as ns:
        imds = inside(ns, lambda: FakeImds("169.254.169.254", 80, tokens="required"))
        dns = inside(ns, lambda: FakeDnsServer("127.0.0.1", 53, names={HOST: [endpoint_ip]}))
        tls = inside(ns, lambda: TlsEndpoint(HOST, host=endpoint_ip, port=443))
        with imds, dns, tls:
            out = exec_in(
                ns,
                [
                    sys.executable,
                    "-m",
                    "gd_doctor",
                    "check",
                    "--format",
                    "json",
                    "--only",
                    "imds",
                    "--only",
                    "network",
                    "--timeout",
                    "15",
                ],
                env={"AWS_CA_BUNDLE": tls.ca_file},
            )
    report = json.loads(out.stdout)
    checks = {c.get("id") or c.get("check_id"): c for c in report["checks"]}
    assert checks["imds.token"]["data"]["token_mode"] == "required"
    assert checks["network.guardduty_dns"]["data"]["endpoint_class"] == "vpc"
    assert checks["network.guardduty_https"]["status"] == "ok", checks["network.guardduty_https"]
    ids = [f.get("id") or f.get("finding_id") for f in report["findings"]]
    assert not [i for i in ids if str(i).startswith(("network.", "imds."))], ids
    _assert_failures_explained(report)
    assert [r.path for r in imds.requests if r.method == "PUT"] == ["/latest/api/token"]
    identity = [r for r in imds.requests if r.path.endswith("instance-identity/document")]
    assert identity and all("X-aws-ec2-metadata-token" in r.headers for r in identity)
