"""The simulator's own parts (fast), and the scenario corpus end to end (marker ``simulator``).

Fast tests: the DNS server over loopback, the scenario loader and format, the accuracy judge.
``netns`` tests: a namespace with no route out is made and always removed; the fake services
answer inside it. ``simulator`` tests: every scenario in tests/scenarios, then the 100 % gate.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

from tests.simulator import dns
from tests.simulator.accuracy import Row, judge, summarize, table
from tests.simulator.netns import NETNS_DIR, netns_unavailable_reason, sim_network
from tests.simulator.scenario import CORPUS, REPO, ScenarioError, discover, load

SCENARIOS = discover()
NETNS_REASON = netns_unavailable_reason()


# --------------------------------------------------------------------------------------------
# DNS


def _ask(addr: tuple, name: str, qtype: str = "A", timeout: float = 1.0) -> Dict[str, object]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(dns.build_query(name, dns.QTYPE[qtype], 4242), addr)
        return dns.parse_reply(s.recv(4096))


def test_dns_answers_records_nxdomain_nodata_and_drops() -> None:
    zone = dns.Zone(
        {
            "guardduty-data.us-east-1.amazonaws.com": {"A": ["10.0.1.25"]},
            "alias.example": {"CNAME": "guardduty-data.us-east-1.amazonaws.com"},
            "v6.example": {"AAAA": ["fd00:ec2::254"]},
            "broken.example": {"rcode": "SERVFAIL"},
            "silent.example": {"drop": True},
        }
    )
    with dns.DnsServer(zone, "127.0.0.1", 0) as server:
        addr = server.address
        assert _ask(addr, "guardduty-data.us-east-1.amazonaws.com")["answers"] == [
            ("guardduty-data.us-east-1.amazonaws.com", "A", "10.0.1.25")
        ]
        chain = _ask(addr, "alias.example")["answers"]
        assert [a[1] for a in chain] == ["CNAME", "A"]
        assert _ask(addr, "v6.example", "AAAA")["answers"] == [
            ("v6.example", "AAAA", "fd00:ec2::254")
        ]
        nodata = _ask(addr, "v6.example", "A")
        assert nodata == {"rcode": "NOERROR", "answers": []}
        assert _ask(addr, "nothing.example")["rcode"] == "NXDOMAIN"
        assert _ask(addr, "broken.example")["rcode"] == "SERVFAIL"
        with pytest.raises(socket.timeout):
            _ask(addr, "silent.example", timeout=0.3)
        assert "silent.example" in server.queries


def test_dns_ignores_garbage() -> None:
    zone = dns.Zone({})
    assert zone.answer(b"") is None
    assert zone.answer(b"\x00" * 11) is None
    assert zone.answer(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c") is None


# --------------------------------------------------------------------------------------------
# scenario format


def test_corpus_loads_and_every_scenario_is_complete() -> None:
    assert SCENARIOS, "no scenarios found"
    for sc in SCENARIOS:
        assert sc.expect["verdict"] in ("healthy", "unhealthy", "unknown"), sc.name
        if sc.expect["verdict"] == "unhealthy":
            assert sc.expect.get("top_finding") or sc.expect.get("top_issue"), sc.name


def test_corpus_has_healthy_hosts_on_al2023_and_ubuntu_2204() -> None:
    healthy = [sc for sc in SCENARIOS if sc.expect["verdict"] == "healthy" and not sc.row]
    releases = {sc.host_files().get("/etc/os-release", (b"", 0))[0] for sc in healthy}
    text = b"".join(releases)
    assert b'VERSION_ID="2023"' in text
    assert b'VERSION_ID="22.04"' in text


def test_expected_ids_exist_in_the_knowledge_base() -> None:
    from gd_doctor.knowledge import all_coverage_issues, finding_specs

    specs, rows = finding_specs(), all_coverage_issues()
    for sc in SCENARIOS:
        if sc.known_gap:
            continue
        e = sc.expect
        for fid in [*e.get("findings", []), *e.get("forbidden_findings", [])]:
            assert fid in specs, f"{sc.name}: unknown finding {fid}"
        for iid in [*e.get("issues", []), *e.get("forbidden_issues", [])]:
            assert iid in rows, f"{sc.name}: unknown coverage row {iid}"
        if e.get("top_finding"):
            assert e["top_finding"] in specs, sc.name
        if e.get("top_issue"):
            assert e["top_issue"] in rows, sc.name
        if sc.row:
            assert sc.row in rows, f"{sc.name}: unknown row {sc.row}"


def test_scenario_outside_the_repository_and_extends(tmp_path: Path) -> None:
    base = tmp_path / "_bases" / "b"
    (base / "files" / "etc").mkdir(parents=True)
    (base / "files" / "etc" / "os-release").write_text("ID=debian\n")
    (base / "scenario.json").write_text(
        json.dumps({"imds": {"region": "eu-west-1"}, "expect": {"verdict": "healthy"}})
    )
    sc_dir = tmp_path / "mine"
    sc_dir.mkdir()
    (sc_dir / "scenario.json").write_text(
        json.dumps(
            {
                "kind": "root",
                "extends": ["../_bases/b"],
                "imds": {"token": "optional"},
                "files": {"/etc/hostname": "x\n"},
                "expect": {"verdict": "healthy"},
            }
        )
    )
    sc = load(sc_dir)
    assert sc.spec["imds"] == {"region": "eu-west-1", "token": "optional"}
    assert set(sc.host_files()) == {"/etc/os-release", "/etc/hostname"}
    assert [s.name for s in discover([tmp_path])] == ["mine"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"expect": {"verdict": "healthy"}, "imsd": {}}, "unknown keys"),
        ({"expect": {"verdict": "fine"}}, "expect.verdict"),
        ({"expect": {"verdict": "healthy", "top": "x"}}, "unknown expect keys"),
        ({"kind": "vm", "expect": {"verdict": "healthy"}}, "kind"),
        ({"endpoints": [{"name": "a"}], "expect": {"verdict": "healthy"}}, "endpoint"),
    ],
)
def test_scenario_typos_are_rejected(tmp_path: Path, spec: dict, message: str) -> None:
    (tmp_path / "scenario.json").write_text(json.dumps(spec))
    with pytest.raises(ScenarioError, match=message):
        load(tmp_path)


# --------------------------------------------------------------------------------------------
# accuracy


def _report(verdict: str, *findings: tuple) -> dict:
    return {
        "verdict": verdict,
        "findings": [{"id": f, "severity": s, "issue_id": i} for f, s, i in findings],
    }


def test_judge_top1_false_healthy_false_alarm_and_forbidden() -> None:
    exp = {
        "verdict": "unhealthy",
        "top_issue": "agent-disconnected",
        "forbidden_findings": ["network.endpoint-public"],
    }
    good = _report("unhealthy", ("agent.crash-loop", "fail", "agent-disconnected"))
    assert judge(exp, good, 1).passed
    wrong_order = _report(
        "unhealthy",
        ("network.endpoint-public", "fail", "no-agent-reporting"),
        ("agent.crash-loop", "fail", "agent-disconnected"),
    )
    j = judge(exp, wrong_order, 1)
    assert not j.top1 and j.false_alarm and not j.passed
    j = judge(exp, _report("healthy"), 0)
    assert j.false_healthy and not j.top1
    j = judge({"verdict": "healthy"}, _report("healthy", ("x.y", "warn", None)), 0)
    assert j.false_alarm
    j = judge(
        {"verdict": "healthy"},
        _report("healthy", ("platform.in-container", "warn", None)),
        0,
        ignore=["platform.in-container"],
    )
    assert j.passed
    rows = [
        Row("a", "r", "live", judge(exp, good, 1)),
        Row("b", "r", "root", judge(exp, _report("healthy"), 0)),
        Row("c", "r", "root", judge(exp, _report("healthy"), 0), known_gap="rule missing"),
    ]
    s = summarize(rows)
    assert (s.gated, s.passed, s.false_healthy, s.accuracy) == (2, 1, 1, 50.0)
    out = table(rows)
    assert "KNOWN GAPS (1)" in out and "!! c: rule missing" in out


# --------------------------------------------------------------------------------------------
# the namespace kit and the services (root)


@pytest.mark.netns
@pytest.mark.skipif(NETNS_REASON is not None, reason=NETNS_REASON or "")
def test_namespace_has_no_route_out_and_is_removed() -> None:
    with sim_network(["169.254.169.254"]) as net:
        name = net.name
        assert (NETNS_DIR / name).exists()
        probe = (
            "import socket,time\ns=socket.socket();s.settimeout(0.5);t=time.time()\n"
            "try:\n s.connect(('1.1.1.1',443));print('connected')\n"
            "except OSError as e:\n print(type(e).__name__)"
        )
        out = net.exec([sys.executable, "-c", probe]).stdout.strip()
        assert out in ("timeout", "TimeoutError")  # black hole: nothing answers, nothing leaves
        server = net.spawn([sys.executable, "-c", "import time; time.sleep(60)"])
    assert not (NETNS_DIR / name).exists()
    assert server.poll() is not None


@pytest.mark.netns
@pytest.mark.skipif(NETNS_REASON is not None, reason=NETNS_REASON or "")
def test_removed_after_an_exception() -> None:
    names: List[str] = []
    with pytest.raises(RuntimeError), sim_network() as net:
        names.append(net.name)
        raise RuntimeError("boom")
    assert not (NETNS_DIR / names[0]).exists()


@pytest.mark.netns
@pytest.mark.skipif(NETNS_REASON is not None, reason=NETNS_REASON or "")
def test_services_answer_inside_the_namespace(tmp_path: Path) -> None:
    from tests.simulator.runner import _lo_addresses, _make_certs, _server_config, _wait_ready
    from tests.simulator.servers import FAKE_SECRET_ACCESS_KEY

    sc = load(CORPUS / "healthy-ubuntu-2204")
    certs = _make_certs(sc, tmp_path)
    cfg = _server_config(sc, certs)
    (tmp_path / "servers.json").write_text(json.dumps(cfg))
    (tmp_path / "ca.pem").write_bytes(certs["bundle"])
    client = f"""
import json, socket, ssl, urllib.request, urllib.error
o = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
def get(path, token=None):
    h = {{"X-aws-ec2-metadata-token": token}} if token else {{}}
    try:
        return o.open(urllib.request.Request("http://169.254.169.254" + path, headers=h), timeout=2).read().decode()
    except urllib.error.HTTPError as e:
        return e.code
tok = o.open(urllib.request.Request("http://169.254.169.254/latest/api/token", method="PUT",
      headers={{"X-aws-ec2-metadata-token-ttl-seconds": "60"}}), timeout=2).read().decode()
out = {{"v1": get("/latest/meta-data/instance-id"),
       "doc": json.loads(get("/latest/dynamic/instance-identity/document", tok))["region"],
       "tags": get("/latest/meta-data/tags/instance/", tok),
       "creds": json.loads(get("/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance", tok))["SecretAccessKey"]}}
ctx = ssl.create_default_context(cafile={str(tmp_path / "ca.pem")!r})
s = ctx.wrap_socket(socket.create_connection(("10.0.1.25", 443), timeout=2),
                    server_hostname="guardduty-data.us-east-1.amazonaws.com")
s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
out["https"] = s.recv(4096).decode().split("\\r\\n")[0]
out["issuer"] = dict(x[0] for x in s.getpeercert()["issuer"]).get("organizationName")
print(json.dumps(out))
"""
    with sim_network(_lo_addresses(cfg)) as net:
        log = tmp_path / "servers.log"
        proc = net.spawn(
            [sys.executable, "-m", "tests.simulator.servers", str(tmp_path / "servers.json")],
            cwd=str(REPO),
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
            log=log,
        )
        _wait_ready(tmp_path, proc, log)
        res = net.exec([sys.executable, "-c", client])
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        dig = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                net.name,
                sys.executable,
                "-c",
                "from tests.simulator import dns; import socket, json\n"
                "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)\n"
                "s.sendto(dns.build_query('guardduty-data.us-east-1.amazonaws.com',1,1),"
                "('10.0.0.2',53)); print(json.dumps(dns.parse_reply(s.recv(512))))",
            ],
            capture_output=True,
            text=True,
            cwd=str(REPO),
            timeout=20,
        )
    assert out["v1"] == 401  # IMDSv2 required: no token, no answer
    assert out["doc"] == "us-east-1"
    assert out["tags"] == "Name"
    assert out["creds"] == FAKE_SECRET_ACCESS_KEY
    assert out["https"].startswith("HTTP/1.1 403")
    assert out["issuer"] == "Amazon"
    assert json.loads(dig.stdout)["answers"][0][2] == "10.0.1.25"


# --------------------------------------------------------------------------------------------
# the corpus, end to end


_ROWS: Dict[str, Row] = {}


@pytest.mark.simulator
@pytest.mark.parametrize("name", [sc.name for sc in SCENARIOS])
def test_scenario(name: str) -> None:
    from tests.simulator.__main__ import row_for
    from tests.simulator.runner import run_scenario

    sc = next(s for s in SCENARIOS if s.name == name)
    t0 = time.monotonic()
    res = run_scenario(sc)
    row = row_for(sc, res)
    _ROWS[name] = row
    if res.skipped:
        pytest.skip(res.skipped)
    if res.report:
        from tests.hostkit import validate_report

        validate_report(res.report)
    assert not res.leaked_secrets, "an IMDS credential reached gd-doctor's output"
    if sc.known_gap:
        pytest.xfail(f"known gap: {sc.known_gap}")
    assert row.status == "PASS", table([row]) + f"\n({time.monotonic() - t0:.0f}s)"


@pytest.mark.simulator
def test_corpus_accuracy_is_100_percent() -> None:
    """Runs last in this module: the accuracy table over every scenario that ran."""
    rows = [_ROWS[sc.name] for sc in SCENARIOS if sc.name in _ROWS]
    if not rows or all(r.skipped for r in rows):
        pytest.skip("no scenario ran (run the whole module with -m simulator)")
    print("\n" + table(rows))
    s = summarize(rows)
    assert s.passed == s.gated, table(rows)


def test_judge_fails_a_scenario_on_the_engines_generic_finding() -> None:
    from gd_doctor.diagnosis.engine import UNEXPLAINED
    from tests.simulator import accuracy

    assert accuracy.UNEXPLAINED == UNEXPLAINED
    report = {"verdict": "unhealthy", "findings": [{"id": UNEXPLAINED, "severity": "fail"}]}
    assert not accuracy.judge({"verdict": "unhealthy"}, report, exit_code=1).passed
