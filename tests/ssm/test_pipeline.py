"""Whole-pipeline scenarios of the SSM path: checks, rules, report, renderers, schema."""

from __future__ import annotations

from pathlib import Path
from typing import List

from gd_doctor.checks import ssm
from gd_doctor.host.commands import UnavailableRunner
from gd_doctor.model import Severity, Status, Verdict
from gd_doctor.report.ssm import render_ssm
from gd_doctor.report.text import render_text
from tests.hostkit import make_host, run_pipeline, validate_report
from tests.ssm.conftest import AGENT_LOG, DPKG_SSM, INSTANCE, PKG_DIR, SSM_ROOT, ec2_tree, text
from tests.ssm.fakes import DeniedFS

SHOW = ("systemctl", "show", "amazon-ssm-agent.service", "-p", ssm.SYSTEMCTL_PROPS)
ACTIVE = "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n"
STATE = f"{SSM_ROOT}/{INSTANCE}/document/state"


def _finding_ids(report) -> List[str]:  # type: ignore[no-untyped-def]
    return [f.finding_id for f in report.findings]


def test_health_ping_denied_host(tmp_path: Path) -> None:
    files = ec2_tree(**{AGENT_LOG: text("logs/health-ping-denied-v3.log")})
    run, diag, report = run_pipeline(make_host(tmp_path, files=files, commands={SHOW: ACTIVE}),
                                     checks=ssm.CHECKS)
    assert diag.verdict == Verdict.UNHEALTHY
    assert _finding_ids(report)[0] == "ssm.health-ping-denied"
    assert report.findings[0].issue_id == "waiting-for-ssm"
    assert {r.check_id: r.status for r in run.results}["ssm.management_type"] == Status.OK
    validate_report(report)
    out = render_text(report)
    assert "Waiting for SSM notification" in out
    assert "Health ping failed with error - AccessDeniedException" in out
    assert render_ssm(report).startswith("gd-doctor: UNHEALTHY")


def test_failed_guardduty_plugin_run_host(tmp_path: Path) -> None:
    files = ec2_tree(**{
        AGENT_LOG: text("logs/no-manifest.log"),
        f"{PKG_DIR}/installstate": text("state/installstate-failed.json"),
        f"{STATE}/current/a1b2.run": text("state/docstate-failed.json"),
    })
    _, diag, report = run_pipeline(make_host(tmp_path, files=files, commands={SHOW: ACTIVE}),
                                   checks=ssm.CHECKS)
    assert diag.verdict == Verdict.UNHEALTHY
    f = report.findings[0]
    assert f.finding_id == "ssm.plugin-platform-unsupported"
    assert f.issue_id == "association-execution-failed"
    assert "ubuntu, version 22.04, architecture arm64" in f.title
    validate_report(report)
    assert "SSM Instance Association Execution Failed" in render_text(report)


def test_healthy_automated_host(tmp_path: Path) -> None:
    files = ec2_tree(**{
        "/var/lib/dpkg/status": DPKG_SSM + "Package: amazon-guardduty-agent\n"
                                           "Status: install ok installed\nVersion: 1.7.1\n",
        AGENT_LOG: text("logs/healthy-v3.log"),
        f"{PKG_DIR}/installstate": text("state/installstate-installed.json"),
        f"{STATE}/current/a1b2.run": text("state/docstate-success.json"),
    })
    run, diag, report = run_pipeline(make_host(tmp_path, files=files, commands={SHOW: ACTIVE}),
                                     checks=ssm.CHECKS)
    assert diag.verdict == Verdict.HEALTHY and report.findings == ()
    mt = next(r for r in run.results if r.check_id == "ssm.management_type")
    assert mt.data["management_type"] == "automated"
    validate_report(report)


def test_ssm_managed_host_without_guardduty_gets_the_control_plane_note(tmp_path: Path) -> None:
    files = ec2_tree(**{AGENT_LOG: text("logs/healthy-v3.log").replace("AmazonGuardDuty", "Other")})
    _, _, report = run_pipeline(make_host(tmp_path, files=files, commands={SHOW: ACTIVE}),
                                checks=ssm.CHECKS)
    assert _finding_ids(report) == ["ssm.control-plane-rows"]
    assert report.findings[0].severity == Severity.INFO
    validate_report(report)


def test_root_analysis_of_a_non_root_user_goes_on(tmp_path: Path) -> None:
    files = ec2_tree(**{AGENT_LOG: text("logs/tcp-timeout.log")})
    host = make_host(tmp_path, files=files, live=False, run=UnavailableRunner("--root"), euid=1000)
    from dataclasses import replace

    host = replace(host, fs=DeniedFS(tmp_path, denied=frozenset({SSM_ROOT})))
    run, _, report = run_pipeline(host, checks=ssm.CHECKS)
    status = {r.check_id: (r.status, r.skip_reason) for r in run.results}
    assert status["ssm.agent_running"] == (Status.SKIP, "UNAVAILABLE_WITH_ROOT")
    assert status["ssm.registration"] == (Status.SKIP, "NEEDS_ROOT")
    assert status["ssm.guardduty_traces"] == (Status.SKIP, "NEEDS_ROOT")
    assert status["ssm.agent_log"][0] == Status.FAIL
    assert all(r.status != Status.ERROR for r in run.results)
    assert "ssm.endpoint-unreachable" in _finding_ids(report)
    validate_report(report)
