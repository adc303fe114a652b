"""platform.os on every real os-release file in tests/fixtures/os-release, against expected.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest

from gd_doctor.checks.platform import os_distribution
from gd_doctor.facts import to_data
from gd_doctor.model import Status
from tests.hostkit import FIXTURES, make_host, run_one

CASES = sorted(p for p in (FIXTURES / "os-release").iterdir() if p.is_dir())


def test_the_required_distributions_are_there() -> None:
    names = {p.name for p in CASES}
    assert {
        "al2",
        "al2023",
        "ubuntu2004",
        "ubuntu2204",
        "ubuntu2404",
        "debian11",
        "debian12",
        "rhel8",
        "rhel9",
        "centos-stream9",
        "fedora42",
        "oraclelinux89",
        "rocky9",
        "alma10",
        "sles16",
        "bottlerocket",
        "centos7",
        "alpine",
        "archlinux",
    } <= names


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_os_release_verdict(case: Path, tmp_path: Path) -> None:
    expected: Dict[str, Any] = json.loads((case / "expected.json").read_text())
    content = (case / "os-release").read_bytes()
    host = make_host(tmp_path, files={"/etc/os-release": content}, live=False)
    out = run_one(os_distribution, host)
    for key, value in expected.items():
        assert to_data(out.facts)[key] == value, key
    assert out.status == (Status.OK if expected["supported"] else Status.WARN)
    assert to_data(out.facts)["source"] == "/etc/os-release"


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_usr_lib_os_release_is_the_fallback(case: Path, tmp_path: Path) -> None:
    content = (case / "os-release").read_bytes()
    host = make_host(tmp_path, files={"/usr/lib/os-release": content}, live=False)
    out = run_one(os_distribution, host)
    assert to_data(out.facts)["source"] == "/usr/lib/os-release"
    assert to_data(out.facts)["id"] == json.loads((case / "expected.json").read_text())["id"]
