"""Shared helpers of the network tests: hosts wired to the fakes in tests/fakes."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, TypeVar

import pytest

from gd_doctor.checks import ALL_CHECKS, select_checks
from gd_doctor.checks.base import Check
from gd_doctor.diagnosis.engine import UNEXPLAINED, Diagnosis
from gd_doctor.facts import Facts, producer_of
from gd_doctor.host import Host
from gd_doctor.host.imds import HttpImds
from gd_doctor.host.net import LiveNetwork
from gd_doctor.host.settings import HostSettings
from gd_doctor.model import CheckResult, Report
from gd_doctor.runner import RunOutcome
from tests.fakes.dns import FakeResolver
from tests.hostkit import make_host, run_pipeline, validate_report

REGION = "us-east-1"
HOST = f"guardduty-data.{REGION}.amazonaws.com"
F = TypeVar("F", bound=Facts)


def net_checks(*names: str) -> Tuple[Check, ...]:
    chosen, _ = select_checks(names or ("imds", "network"), (), ALL_CHECKS)
    return chosen


def host_with(
    root: Path,
    *,
    imds_url: Optional[str] = None,
    resolver: Optional[FakeResolver] = None,
    ca_file: Optional[str] = None,
    files: Optional[Dict[str, str]] = None,
    region: Optional[str] = None,
    endpoint_url: Optional[str] = None,
    live: bool = True,
) -> Host:
    """A host wired to the fakes; ``region``/``endpoint_url`` are --region/--endpoint-url."""
    ports: Dict[str, Any] = {}
    if imds_url:
        ports["imds"] = HttpImds(imds_url)
    if resolver is not None:
        ports["net"] = LiveNetwork(resolver, ca_file)
    settings = HostSettings(region=region, endpoint_url=endpoint_url)
    return make_host(
        root,
        files=files or {"/etc/resolv.conf": "nameserver 192.0.2.2\n"},
        live=live,
        settings=settings,
        **ports,
    )


def pipeline(
    host: Host, *names: str, budget_s: float = 20.0
) -> Tuple[RunOutcome, Diagnosis, Report, Dict[str, Any]]:
    """The CLI's pipeline over the named checks (and what they wait on).

    Every failing check of these runs must be explained by a real rule: the generic
    ``tool.unexplained-failure`` finding is a test failure here.
    """
    run, diagnosis, report = run_pipeline(host, checks=net_checks(*names), budget_s=budget_s)
    unexplained = [f.title for f in diagnosis.findings if f.finding_id == UNEXPLAINED]
    assert unexplained == [], unexplained
    return run, diagnosis, report, validate_report(report)


def facts(run: RunOutcome, facts_type: Type[F]) -> F:
    """The facts of the check that produces ``facts_type`` (the test fails when it has none)."""
    res = by_id(run)[producer_of(facts_type)]
    assert isinstance(res.facts, facts_type), res
    return res.facts


def finding_ids(diagnosis: Diagnosis) -> List[str]:
    return [f.finding_id for f in diagnosis.findings]


def by_id(run: RunOutcome) -> Dict[str, CheckResult]:
    return {r.check_id: r for r in run.results}


def resolver(table: Dict[str, Sequence[str]], **kw: Any) -> FakeResolver:
    return FakeResolver(dict(table), **kw)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connect beyond loopback made in-process by these tests (a safety net)."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def _check(address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            raise AssertionError(f"test tried to connect beyond loopback: {address}")

    def connect(self: socket.socket, address: Any) -> None:
        _check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
