"""The real CLI on the fixture roots: in-process (typer's CliRunner) and as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from typer.testing import CliRunner

from gd_doctor.cli import app
from tests.hostkit import FIXTURES, validate_report

ROOTS = sorted(p for p in (FIXTURES / "roots").iterdir() if p.is_dir())
REPO = Path(__file__).resolve().parents[2]


def _platform_findings(doc: Dict[str, Any]) -> List[str]:
    """Platform findings listed on their own or as a cause's consequences."""
    every = [g for f in doc["findings"] for g in (f, *f["consequences"])]
    return sorted(f["id"] for f in every if f["id"].startswith("platform."))


def _expected(case: Path) -> List[str]:
    """The root's platform findings in a full run: ``findings`` plus ``full_run_findings``,
    those that also read another domain's facts (the EKS dual-agent note reads the agent's)."""
    doc = json.loads((case / "expected.json").read_text())
    return sorted([*doc["findings"], *doc.get("full_run_findings", [])])


@pytest.mark.parametrize("case", ROOTS, ids=[p.name for p in ROOTS])
def test_cli_in_process(case: Path) -> None:
    res = CliRunner().invoke(
        app, ["check", "--root", str(case / "root"), "--format", "json", "--timeout", "30"]
    )
    assert res.exit_code in (0, 1), res.output
    doc = validate_report(res.stdout)
    assert _platform_findings(doc) == _expected(case)
    assert doc["host"]["live"] is False
    assert doc["host"]["root"] == str(case / "root")


def test_cli_host_header_from_platform_facts() -> None:
    case = FIXTURES / "roots" / "al2023-x86_64"
    res = CliRunner().invoke(app, ["check", "--root", str(case / "root"), "--format", "json"])
    host = validate_report(res.stdout)["host"]
    assert host["os"] == "Amazon Linux 2023"
    assert host["kernel"] == "6.1.112-124.190.amzn2023.x86_64"
    assert host["arch"] == "x86_64"
    assert host["is_ec2"] is True
    assert host["hostname"] == "ip-10-0-1-25.ec2.internal"


@pytest.mark.parametrize("name", ["centos7-unsupported", "al2023-x86_64"])
def test_cli_subprocess(name: str) -> None:
    case = FIXTURES / "roots" / name
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gd_doctor",
            "check",
            "--root",
            str(case / "root"),
            "--format",
            "json",
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=str(REPO),
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    doc = validate_report(proc.stdout)
    assert _platform_findings(doc) == _expected(case)


def test_cli_text_output_names_the_kernel_row() -> None:
    case = FIXTURES / "roots" / "centos7-unsupported"
    res = CliRunner().invoke(app, ["check", "--root", str(case / "root"), "--no-color"])
    assert res.exit_code == 1
    text = " ".join(res.stdout.split())  # the report is wrapped to 80 columns
    assert "Kernel version is lower than the supported version." in text
    assert "CentOS Linux 7 (Core)" in text
