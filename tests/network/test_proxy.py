"""Proxy settings as the agent sees them, read from a fake root, and the probe through a proxy."""

from __future__ import annotations

import json
from pathlib import Path

from gd_doctor.facts.network import HttpsFacts, ProxyFacts, ProxySource
from tests.fakes.dns import FakeResolver
from tests.fakes.tls import ConnectProxy, TlsEndpoint
from tests.network.conftest import HOST, REGION, facts, finding_ids, host_with, pipeline

DROPIN = "/etc/systemd/system/amazon-guardduty-agent.service.d/proxy.conf"
UNIT = "/lib/systemd/system/amazon-guardduty-agent.service"


def test_no_proxy(tmp_path: Path) -> None:
    host = host_with(
        tmp_path,
        resolver=FakeResolver({}),
        region=REGION,
        files={UNIT: "[Service]\nExecStart=/opt/agent\n"},
    )
    run, diagnosis, _, _ = pipeline(host, "network.proxy")
    proxy = facts(run, ProxyFacts)
    assert proxy.proxy is None and proxy.sources == () and proxy.applies_to_imds is False
    assert finding_ids(diagnosis) == []


def test_ssm_style_dropin_without_imds_exemption(tmp_path: Path) -> None:
    files = {
        UNIT: "[Service]\nExecStart=/opt/agent\n",
        DROPIN: '[Service]\nEnvironment="https_proxy=http://bob:hunter2@proxy.corp:3128"\n'
        'Environment="no_proxy=localhost"\n',
    }
    host = host_with(tmp_path, resolver=FakeResolver({}), files=files, region=REGION)
    run, diagnosis, _, doc = pipeline(host, "network.proxy")
    proxy = facts(run, ProxyFacts)
    assert proxy.applies_to_imds is True and proxy.applies_to_endpoint is True
    assert proxy.proxy == "http://[REDACTED]@proxy.corp:3128"
    assert proxy.sources == (
        ProxySource(
            "unit Environment= in " + DROPIN,
            "https_proxy",
            ("localhost",),
            "http://[REDACTED]@proxy.corp:3128",
        ),
    )
    assert "network.proxy-without-imds-exemption" in finding_ids(diagnosis)
    assert "hunter2" not in json.dumps(doc) and "bob" not in json.dumps(doc)


def test_environment_file_with_exemptions(tmp_path: Path) -> None:
    files = {
        UNIT: "[Service]\nExecStart=/opt/agent\n",
        DROPIN: "[Service]\nEnvironmentFile=-/etc/sysconfig/gd-proxy\n",
        "/etc/sysconfig/gd-proxy": "HTTPS_PROXY=http://10.0.0.9:3128\n"
        "NO_PROXY=169.254.169.254,.amazonaws.com\n",
        "/etc/environment": 'PATH="/usr/bin"\nhttp_proxy=http://other:8080\n',
    }
    host = host_with(tmp_path, resolver=FakeResolver({}), files=files, region=REGION)
    run, diagnosis, _, _ = pipeline(host, "network.proxy")
    proxy = facts(run, ProxyFacts)
    assert proxy.applies_to_imds is False and proxy.applies_to_endpoint is False
    assert proxy.agent_source == "EnvironmentFile /etc/sysconfig/gd-proxy"
    assert proxy.variable == "HTTPS_PROXY"
    sources = [s.source for s in proxy.sources]
    assert "/etc/environment (login sessions only)" not in sources  # no https proxy there
    assert finding_ids(diagnosis) == []


def test_malformed_proxy_url(tmp_path: Path) -> None:
    files = {
        UNIT: "[Service]\nExecStart=/opt/agent\n",
        DROPIN: '[Service]\nEnvironment="https_proxy=http://proxy:port"\n',
    }
    host = host_with(tmp_path, resolver=FakeResolver({}), files=files, region=REGION)
    run, diagnosis, _, _ = pipeline(host, "network.proxy")
    proxy = facts(run, ProxyFacts)
    assert proxy.malformed == "port is not a number" and proxy.proxy is None
    assert proxy.applies_to_endpoint is False
    assert "network.proxy-malformed" in finding_ids(diagnosis)


def test_probe_through_the_agents_proxy(tmp_path: Path) -> None:
    with TlsEndpoint(HOST) as ep:
        port = ep.address[1]
        with ConnectProxy({f"{HOST}:{port}": ep.address}, require_auth=True) as proxy:
            files = {
                UNIT: "[Service]\nExecStart=/opt/agent\n",
                DROPIN: '[Service]\nEnvironment="https_proxy=http://u:s3cr3t@127.0.0.1:'
                f'{proxy.port}" "no_proxy=169.254.169.254"\n',
            }
            host = host_with(
                tmp_path,
                resolver=FakeResolver({HOST: ["127.0.0.1"]}),
                ca_file=ep.ca_file,
                files=files,
                region=REGION,
                endpoint_url=f"https://{HOST}:{port}",
            )
            run, diagnosis, _, doc = pipeline(host, "network.guardduty_https")
    https = facts(run, HttpsFacts)
    assert https.agent_path == "proxy" and https.via_proxy is not None
    assert https.via_proxy.aws_shaped is True
    assert https.via_proxy.via_proxy == f"http://[REDACTED]@127.0.0.1:{proxy.port}"
    assert "proxy-authorization: basic" in proxy.connects[0].lower()
    assert "s3cr3t" not in json.dumps(doc)
    assert finding_ids(diagnosis) == []


def test_agent_facts_fill_in_what_cannot_be_read(tmp_path: Path) -> None:
    """No readable unit files: the agent checks' redacted views are used (not root, say)."""
    from gd_doctor.checks.proxy import proxy_as_agent_sees
    from gd_doctor.facts.agent import ProcessFacts, UnitFacts
    from gd_doctor.facts.network import RegionFacts
    from tests.hostkit import result, run_one

    host = host_with(tmp_path, resolver=FakeResolver({}))
    region = RegionFacts(REGION, "--region", None, None, host=HOST)
    earlier = {
        "network.region": result("network.region", "ok", facts=region),
        "agent.unit": result(
            "agent.unit", "ok", facts=UnitFacts("loaded", "active", "running", main_pid=4242)
        ),
        "agent.process": result(
            "agent.process",
            "ok",
            facts=ProcessFacts(
                running=True,
                proxy_env={
                    "HTTPS_PROXY": "http://[REDACTED]@proxy.corp:3128",
                    "NO_PROXY": "localhost",
                },
            ),
        ),
    }
    out = run_one(proxy_as_agent_sees, host, earlier)
    assert isinstance(out.facts, ProxyFacts)
    assert out.facts.agent_source.endswith("via agent.process)")
    assert out.facts.applies_to_imds is True and out.facts.applies_to_endpoint is True
    assert out.facts.proxy == "http://[REDACTED]@proxy.corp:3128"


VENDOR = "/usr/lib/systemd/system/amazon-guardduty-agent.service"
OVERRIDE = "/etc/systemd/system/amazon-guardduty-agent.service"


def test_vendor_unit_overridden_in_etc_names_the_etc_proxy(tmp_path: Path) -> None:
    """A vendor unit in /usr/lib and an administrator's full override in /etc: systemd loads
    only the /etc file, so its proxy is the agent's (issue 10, section 3)."""
    files = {
        VENDOR: '[Service]\nExecStart=/opt/agent\nEnvironment="HTTPS_PROXY=http://vendor:3128"\n',
        OVERRIDE: "[Service]\nExecStart=/opt/agent\n"
        'Environment="HTTPS_PROXY=http://etc-proxy:3128" "NO_PROXY=169.254.169.254"\n',
    }
    host = host_with(tmp_path, resolver=FakeResolver({}), files=files, region=REGION)
    run, _, _, _ = pipeline(host, "network.proxy")
    proxy = facts(run, ProxyFacts)
    assert proxy.proxy == "http://etc-proxy:3128"
    assert proxy.agent_source == f"Environment= in {OVERRIDE}"
    assert [s.proxy for s in proxy.sources] == ["http://etc-proxy:3128"]
