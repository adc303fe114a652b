"""The typed-facts contract for the imds and network domains, against the loopback fakes.

Every imds/network check declares one facts type and returns an instance of it on every judged
outcome (ok, warn, fail); the report's ``data`` is those facts serialised; the rules of these
domains read typed facts only.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

import pytest

from gd_doctor.checks import ALL_CHECKS
from gd_doctor.diagnosis import imds as imds_rules
from gd_doctor.diagnosis import network as network_rules
from gd_doctor.facts import to_data
from gd_doctor.host import Host
from gd_doctor.host.imds import HttpImds
from gd_doctor.host.net import LiveNetwork
from gd_doctor.model import Status
from gd_doctor.runner import RunOutcome
from tests.fakes.dns import FakeResolver
from tests.fakes.imds import FakeImds, default_tree
from tests.fakes.tls import TlsEndpoint, closed_port
from tests.hostkit import make_host
from tests.network.conftest import HOST, REGION, host_with, pipeline

BR_UNIT_ACTIVE = "LoadState=loaded\nActiveState=active\nSubState=running\n"

PACKAGE = Path(__file__).resolve().parents[2] / "gd_doctor"
DOMAIN_CHECKS = [c for c in ALL_CHECKS if c.category in ("imds", "network")]
JUDGED = (Status.OK, Status.WARN, Status.FAIL)
SSM = {f"{s}.{REGION}.amazonaws.com": ["127.0.0.1"] for s in ("ssm", "ssmmessages", "ec2messages")}
Setup = Callable[[Path], "contextlib.AbstractContextManager[Host]"]


@contextlib.contextmanager
def _healthy(tmp_path: Path) -> Iterator[Host]:
    """IMDS with tokens required, the endpoint and the SSM names on loopback."""
    with FakeImds(tokens="required") as imds, TlsEndpoint(HOST) as ep:
        resolver = FakeResolver({HOST: ["127.0.0.1"], **SSM})
        yield host_with(
            tmp_path,
            imds_url=imds.url,
            resolver=resolver,
            ca_file=ep.ca_file,
            endpoint_url=f"https://{HOST}:{ep.address[1]}",
        )


@contextlib.contextmanager
def _broken(tmp_path: Path) -> Iterator[Host]:
    """Tags excluded, no credentials, no VPC CIDRs, TCP refused, a proxy without no_proxy."""
    tree = default_tree()
    tree["/latest/meta-data/tags/instance/GuardDutyManaged"] = "false"
    tree["/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance"] = None
    tree = {k: v for k, v in tree.items() if "cidr-block" not in k}
    proxy = '[Service]\nEnvironment="https_proxy=http://proxy.corp:3128"\n'
    files = {
        "/etc/resolv.conf": "nameserver 10.9.9.9\n",
        "/etc/systemd/system/amazon-guardduty-agent.service.d/proxy.conf": proxy,
    }
    with FakeImds(tokens="optional", tree=tree) as imds:
        yield host_with(
            tmp_path,
            imds_url=imds.url,
            resolver=FakeResolver({HOST: ["127.0.0.1"]}),
            endpoint_url=f"https://{HOST}:{closed_port()}",
            files=files,
        )


@contextlib.contextmanager
def _unreachable(tmp_path: Path) -> Iterator[Host]:
    """IMDS refuses connections; the Region is not a Region name."""
    yield host_with(
        tmp_path,
        imds_url=f"http://127.0.0.1:{closed_port()}",
        resolver=FakeResolver({}),
        region="not a region",
    )


@contextlib.contextmanager
def _identity_garbage(tmp_path: Path) -> Iterator[Host]:
    """IMDS serves HTML as the identity document; nothing resolves."""
    tree = default_tree()
    tree["/latest/dynamic/instance-identity/document"] = "<html>503</html>"
    with FakeImds(tokens="required", tree=tree) as imds:
        yield host_with(tmp_path, imds_url=imds.url, resolver=FakeResolver({}), region=REGION)


@contextlib.contextmanager
def _bottlerocket(tmp_path: Path) -> Iterator[Host]:
    """A Bottlerocket ECS host (checks/node.py): ECR, S3 and guardduty-data resolve."""
    os_release = "NAME=Bottlerocket\nID=bottlerocket\nVARIANT_ID=aws-ecs-2\nVERSION_ID=1.62.1\n"
    names = [f"api.ecr.{REGION}.amazonaws.com", f"s3.{REGION}.amazonaws.com", HOST]
    unit = ("systemctl", "show", "host-containers@amazon-guardduty-agent.service", "-p")
    with FakeImds(tokens="required") as imds:
        yield make_host(
            tmp_path,
            files={"/etc/os-release": os_release, "/etc/resolv.conf": "nameserver 192.0.2.2\n"},
            commands={(*unit, "LoadState,ActiveState,SubState"): (0, BR_UNIT_ACTIVE)},
            imds=HttpImds(imds.url),
            net=LiveNetwork(FakeResolver({n: ["127.0.0.1"] for n in names}), None),
        )


SETUPS: Dict[str, Setup] = {
    "bottlerocket": _bottlerocket,
    "healthy": _healthy,
    "broken": _broken,
    "unreachable": _unreachable,
    "identity-garbage": _identity_garbage,
}


def _run(setup: Setup, tmp_path: Path) -> RunOutcome:
    with setup(tmp_path) as host:
        run, _, _, _ = pipeline(host, "imds", "network")
    return run


def _judged(run: RunOutcome) -> List[Tuple[str, Status]]:
    ids = {c.id for c in DOMAIN_CHECKS}
    return [(r.check_id, r.status) for r in run.results if r.check_id in ids and r.status in JUDGED]


def test_every_check_of_the_domains_declares_a_facts_type_of_its_domain() -> None:
    for chk in DOMAIN_CHECKS:
        assert chk.facts is not None, chk.id
        assert chk.facts.__module__ == f"gd_doctor.facts.{chk.category}", chk.id


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_every_judged_outcome_carries_the_declared_facts(tmp_path: Path, name: str) -> None:
    run = _run(SETUPS[name], tmp_path)
    declared = {c.id: c.facts for c in DOMAIN_CHECKS}
    judged = _judged(run)
    assert judged, "no check of the domains judged anything"
    for res in run.results:
        if res.check_id not in declared or res.status not in JUDGED:
            continue
        facts_type = declared[res.check_id]
        assert facts_type is not None and isinstance(res.facts, facts_type), res
        assert res.data == to_data(res.facts)


def test_the_setups_reach_every_check_and_every_status() -> None:
    import tempfile

    seen: Dict[str, set] = {c.id: set() for c in DOMAIN_CHECKS}  # type: ignore[type-arg]
    for setup in SETUPS.values():
        with tempfile.TemporaryDirectory() as tmp:
            for check_id, status in _judged(_run(setup, Path(tmp))):
                seen[check_id].add(status)
    assert [c for c, statuses in seen.items() if not statuses] == []
    assert set().union(*seen.values()) == set(JUDGED)


def test_rules_of_the_domains_read_typed_facts() -> None:
    for r in (*imds_rules.RULES, *network_rules.RULES):
        assert r.reads is not None, r.id


@pytest.mark.parametrize(
    "path",
    [
        "checks/imds.py",
        "checks/network.py",
        "checks/proxy.py",
        "diagnosis/imds.py",
        "diagnosis/network.py",
    ],
)
def test_no_string_lookup_of_imds_or_network_data(path: str) -> None:
    text = (PACKAGE / path).read_text(encoding="utf-8")
    lookups = re.findall(r"\.(?:fact|data|evidence|summary|result)\(\s*\"(?:imds|network)\.", text)
    assert lookups == []
    assert "# fmt: skip" not in text
