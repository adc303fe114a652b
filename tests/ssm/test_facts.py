"""Every SSM check returns the facts type it declares, on every fixture root and SSM tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Union

import pytest

from gd_doctor.checks import ssm
from gd_doctor.facts import producer_of, to_data
from gd_doctor.facts.ssm import (
    GuardDutyTracesFacts,
    ManagementTypeFacts,
    SsmLogFacts,
    SsmPackageFacts,
    SsmRegistrationFacts,
    SsmUnitFacts,
)
from gd_doctor.host import Host
from gd_doctor.host.settings import HostSettings
from gd_doctor.model import CheckResult, Status
from tests.hostkit import FIXTURES, run_pipeline, write_tree
from tests.ssm.conftest import AGENT_LOG, INSTANCE, PKG_DIR, SSM_ROOT, ec2_tree, text

ROOTS = sorted(p / "root" for p in (FIXTURES / "roots").iterdir() if (p / "root").is_dir())
STATE = f"{SSM_ROOT}/{INSTANCE}/document/state"

# SSM trees in the agent's layout, from the captured and synthetic files in tests/fixtures/ssm.
TREES: Dict[str, Dict[str, Union[str, bytes]]] = {
    "healthy": ec2_tree(
        **{
            AGENT_LOG: text("logs/healthy-v3.log"),
            f"{PKG_DIR}/installstate": text("state/installstate-installed.json"),
            f"{STATE}/current/a1b2.run": text("state/docstate-success.json"),
        }
    ),
    "plugin-failed": ec2_tree(
        **{
            AGENT_LOG: text("logs/no-manifest.log"),
            f"{PKG_DIR}/installstate": text("state/installstate-failed.json"),
            f"{STATE}/corrupt/a1b2.run": text("state/docstate-failed.json"),
        }
    ),
    "ping-denied": ec2_tree(**{AGENT_LOG: text("logs/health-ping-denied-v3.log")}),
    "hybrid": ec2_tree(**{f"{SSM_ROOT}/registration": text("state/registration-hybrid.json")}),
    "corrupt": ec2_tree(
        **{
            AGENT_LOG: b"\x00\xff" * 1000,
            f"{PKG_DIR}/installstate": text("state/installstate-truncated.json"),
        }
    ),
    "unreadable-dpkg": {"/var/lib/dpkg/status/not-a-file": ""},
    "empty": {"/etc/hostname": "empty\n"},
}

DECLARED = {
    "ssm.agent_installed": SsmPackageFacts,
    "ssm.agent_running": SsmUnitFacts,
    "ssm.registration": SsmRegistrationFacts,
    "ssm.agent_log": SsmLogFacts,
    "ssm.guardduty_traces": GuardDutyTracesFacts,
    "ssm.management_type": ManagementTypeFacts,
}


def test_every_ssm_check_declares_its_own_facts_type() -> None:
    assert {c.id: c.facts for c in ssm.CHECKS} == DECLARED
    for check_id, facts_type in DECLARED.items():
        assert producer_of(facts_type) == check_id


def _assert_typed(results: List[CheckResult]) -> None:
    by_id = {r.check_id: r for r in results}
    assert set(by_id) == set(DECLARED)
    for check_id, res in by_id.items():
        assert res.status != Status.ERROR, f"{check_id}: {res.summary}"
        if res.status in (Status.OK, Status.WARN, Status.FAIL):
            assert isinstance(res.facts, DECLARED[check_id]), f"{check_id}: {res.facts!r}"
        if res.facts is not None:
            assert isinstance(res.facts, DECLARED[check_id])
            assert res.data == to_data(res.facts)
            json.dumps(res.data)  # JSON-safe


@pytest.mark.parametrize("root", ROOTS, ids=[p.parent.name for p in ROOTS])
def test_fixture_roots(root: Path) -> None:
    run, _, _ = run_pipeline(Host.from_root(root, HostSettings()), checks=ssm.CHECKS)
    _assert_typed(list(run.results))


@pytest.mark.parametrize("name", sorted(TREES))
def test_ssm_trees_as_roots(tmp_path: Path, name: str) -> None:
    write_tree(tmp_path, TREES[name])
    run, _, _ = run_pipeline(Host.from_root(tmp_path, HostSettings()), checks=ssm.CHECKS)
    _assert_typed(list(run.results))
