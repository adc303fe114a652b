"""Helpers for the SSM tests: fixture texts and small host trees of the SSM Agent's layout."""

from __future__ import annotations

from typing import Dict, Iterable, Type, TypeVar, Union

from gd_doctor.facts import Facts, producer_of, to_data
from gd_doctor.model import CheckResult, Outcome, Status
from tests.hostkit import FIXTURES

F = TypeVar("F", bound=Facts)

SSM = FIXTURES / "ssm"
INSTANCE = "i-0abcd1234ef567890"
SSM_ROOT = "/var/lib/amazon/ssm"
PKG_DIR = f"{SSM_ROOT}/packages/AmazonGuardDuty-RuntimeMonitoringSsmPlugin"
AGENT_LOG = "/var/log/amazon/ssm/amazon-ssm-agent.log"
ERRORS_LOG = "/var/log/amazon/ssm/errors.log"

DPKG_SSM = """Package: amazon-ssm-agent
Status: install ok installed
Priority: optional
Section: admin
Installed-Size: 118030
Maintainer: Amazon.com, Inc. <ec2-ssm-feedback@amazon.com>
Architecture: amd64
Version: 3.3.1142.0-1
Description: Amazon SSM Agent
 Agent to enable remote management of your Amazon instances.

"""
DPKG_GD = """Package: amazon-guardduty-agent
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 1.7.1
Description: Amazon GuardDuty security agent

"""


def text(rel: str) -> str:
    return (SSM / rel).read_text(encoding="utf-8")


def ec2_tree(**extra: Union[str, bytes]) -> Dict[str, Union[str, bytes]]:
    """A deb-installed, EC2-registered SSM Agent; add files with ``extra``."""
    files: Dict[str, Union[str, bytes]] = {
        "/var/lib/dpkg/status": DPKG_SSM,
        "/usr/bin/amazon-ssm-agent": "",
        "/lib/systemd/system/amazon-ssm-agent.service": "[Service]\n",
        f"{SSM_ROOT}/{INSTANCE}/document/state/current/.keep": "",
        f"{SSM_ROOT}/{INSTANCE}/document/orchestration/.keep": "",
        f"{SSM_ROOT}/Vault/Store/.keep": "",
    }
    files.update(extra)
    return files


def fresult(
    facts: Facts, status: str = "ok", summary: str = "", evidence: Iterable[str] = ()
) -> CheckResult:
    """A hand-made CheckResult of the check that produces ``facts`` (for rule and check tests)."""
    check_id = producer_of(type(facts))
    return CheckResult(
        check_id=check_id,
        title=check_id,
        category=check_id.split(".")[0],
        status=Status(status),
        summary=summary or status,
        data=to_data(facts),
        evidence=tuple(evidence),
        facts=facts,
    )


def earlier(*results: CheckResult) -> Dict[str, CheckResult]:
    """Earlier results as a check's Context sees them."""
    return {r.check_id: r for r in results}


def facts_of(out: Outcome, facts_type: Type[F]) -> F:
    """The outcome's facts, asserting they are of ``facts_type``."""
    assert isinstance(out.facts, facts_type), f"{out.status}: {out.summary} ({out.facts!r})"
    return out.facts
