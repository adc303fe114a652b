"""gd-doctor's CLI on captured roots with the SSM Agent's layout (real subprocess, --root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.hostkit import validate_report, write_tree
from tests.ssm.conftest import AGENT_LOG, INSTANCE, PKG_DIR, SSM_ROOT, ec2_tree, text

REPO = Path(__file__).resolve().parents[2]
# An absolute window start, so the fixture lines (dated 2026-11-30) count whatever today is.
SINCE = "2026-11-01T00:00:00+00:00"


def _check(root: Path, *extra: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gd_doctor",
            "check",
            "--root",
            str(root),
            "--since",
            SINCE,
            "--only",
            "ssm",
            "--force",  # SSM state only: these roots have no etc/
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=str(REPO),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_failed_plugin_root_names_row_12(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        ec2_tree(
            **{
                AGENT_LOG: text("logs/no-manifest.log"),
                f"{PKG_DIR}/installstate": text("state/installstate-failed.json"),
                f"{SSM_ROOT}/{INSTANCE}/document/state/current/a1b2.run": text(
                    "state/docstate-failed.json"
                ),
            }
        ),
    )
    proc = _check(tmp_path, "--format", "json")
    assert proc.returncode == 1, proc.stderr
    report = validate_report(proc.stdout)
    by_id = {f["id"]: f for f in report["findings"]}
    assert by_id["ssm.plugin-platform-unsupported"]["issue_number"] == 12
    assert "Traceback" not in proc.stderr


def test_corrupt_state_root_still_reports(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        ec2_tree(
            **{
                AGENT_LOG: b"\x00\xff" * 1000,
                f"{PKG_DIR}/installstate": text("state/installstate-truncated.json"),
                f"{SSM_ROOT}/{INSTANCE}/document/state/current/x": "AmazonGuardDuty-Configure"
                "RuntimeMonitoringSsmPlugin {{{",
            }
        ),
    )
    proc = _check(tmp_path, "--format", "ssm")
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stdout.startswith("gd-doctor: ")
    assert len(proc.stdout) <= 2501
    full = _check(tmp_path, "--format", "json")
    checks = {c["id"]: c for c in json.loads(full.stdout)["checks"]}
    assert checks["ssm.guardduty_traces"]["status"] == "warn"
