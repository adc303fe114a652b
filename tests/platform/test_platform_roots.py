"""The whole pipeline over every fixture root in tests/fixtures/roots, against expected.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict

import pytest

from gd_doctor.checks import PLATFORM_CHECKS
from gd_doctor.host import Host
from gd_doctor.host.settings import HostSettings
from tests.hostkit import FIXTURES, run_pipeline, validate_report

ROOTS = sorted(p for p in (FIXTURES / "roots").iterdir() if p.is_dir())


def test_the_required_roots_are_there() -> None:
    names = {p.name for p in ROOTS}
    assert {
        "al2023-x86_64",
        "ubuntu2204",
        "al2-kernel-5.10-low-memlock",
        "centos7-unsupported",
        "non-ec2-qemu",
        "container-docker",
    } <= names


@pytest.mark.parametrize("case", ROOTS, ids=[p.name for p in ROOTS])
def test_root(case: Path) -> None:
    expected: Dict[str, Any] = json.loads((case / "expected.json").read_text())
    host = Host.from_root(case / "root", HostSettings())
    run, diagnosis, report = run_pipeline(host, checks=PLATFORM_CHECKS)
    statuses = {r.check_id: r.status.value for r in run.results}
    data = {r.check_id: r.data for r in run.results}
    # every platform finding, listed on its own or folded under its cause ("folded": where)
    causes = {c.finding_id: f.finding_id for f in diagnosis.findings for c in f.consequences}
    every = [f.finding_id for f in diagnosis.findings] + list(causes)
    platform_findings = sorted(f for f in every if f.startswith("platform."))
    assert platform_findings == sorted(expected["findings"])
    assert {c: causes[c] for c in expected.get("folded", {})} == expected.get("folded", {})
    for check_id, status in expected.get("checks", {}).items():
        assert statuses[check_id] == status, check_id
    for check_id, facts in expected.get("data", {}).items():
        for key, value in facts.items():
            assert data[check_id].get(key) == value, f"{check_id}.{key}"
    assert not any(r.status.value == "error" for r in run.results)
    for f in diagnosis.findings:
        for text in (f.title, *f.steps):
            assert not re.search(r"\{[a-z_]+\}", text), f"{f.finding_id}: unfilled {text!r}"
    validate_report(report)
