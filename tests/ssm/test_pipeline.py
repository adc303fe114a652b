"""Whole-pipeline scenarios of the SSM path: checks, rules, report, renderers, schema."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from gd_doctor.checks import agent, ssm
from gd_doctor.facts.ssm import ManagementTypeFacts
from gd_doctor.host.commands import UnavailableRunner
from gd_doctor.model import Severity, Status, Verdict
from gd_doctor.parsers.systemctl_show import PROPERTIES
from gd_doctor.report.ssm import render_ssm
from gd_doctor.report.text import render_text
from tests.hostkit import FIXTURES, make_host, run_pipeline, validate_report
from tests.ssm.conftest import AGENT_LOG, DPKG_SSM, INSTANCE, PKG_DIR, SSM_ROOT, ec2_tree, text
from tests.ssm.fakes import DeniedFS, LinesJournal

SHOW = ("systemctl", "show", "amazon-ssm-agent.service", "-p", ssm.SYSTEMCTL_PROPS)
ACTIVE = "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n"
STATE = f"{SSM_ROOT}/{INSTANCE}/document/state"


def _finding_ids(report) -> List[str]:  # type: ignore[no-untyped-def]
    return [f.finding_id for f in report.findings]


def test_health_ping_denied_host(tmp_path: Path) -> None:
    files = ec2_tree(**{AGENT_LOG: text("logs/health-ping-denied-v3.log")})
    run, diag, report = run_pipeline(
        make_host(tmp_path, files=files, commands={SHOW: ACTIVE}), checks=ssm.CHECKS
    )
    assert diag.verdict == Verdict.UNHEALTHY
    assert _finding_ids(report)[0] == "ssm.health-ping-denied"
    assert report.findings[0].issue_id == "waiting-for-ssm"
    assert {r.check_id: r.status for r in run.results}["ssm.management_type"] == Status.OK
    validate_report(report)
    out = " ".join(render_text(report).split())  # the report is wrapped to 80 columns
    assert "Waiting for SSM notification" in out
    assert "Health ping failed with error - AccessDeniedException" in out
    assert render_ssm(report).startswith("gd-doctor: UNHEALTHY")


def test_failed_guardduty_plugin_run_host(tmp_path: Path) -> None:
    files = ec2_tree(
        **{
            AGENT_LOG: text("logs/no-manifest.log"),
            f"{PKG_DIR}/installstate": text("state/installstate-failed.json"),
            f"{STATE}/current/a1b2.run": text("state/docstate-failed.json"),
        }
    )
    _, diag, report = run_pipeline(
        make_host(tmp_path, files=files, commands={SHOW: ACTIVE}), checks=ssm.CHECKS
    )
    assert diag.verdict == Verdict.UNHEALTHY
    f = report.findings[0]
    assert f.finding_id == "ssm.plugin-platform-unsupported"
    assert f.issue_id == "association-execution-failed"
    assert "ubuntu, version 22.04, architecture arm64" in f.title
    validate_report(report)
    assert "SSM Instance Association Execution Failed" in render_text(report)


# The health proof's evidence: the GuardDuty agent's package, its unit (a real systemd 252
# capture of an active, running unit) and a readable journal with no restart in the window.
GD_PROOF_CHECKS = tuple(
    c for c in agent.CHECKS if c.id in ("agent.package", "agent.unit", "agent.journal")
)
GD_DPKG_QUERY = ("dpkg-query", "-W", "-f", "${Status}|${Version}\\n", "amazon-guardduty-agent")
GD_SHOW = ("systemctl", "show", "amazon-guardduty-agent", "-p", ",".join(PROPERTIES))
GD_ACTIVE = (FIXTURES / "systemctl/252/active-running.props.txt").read_text()


def test_healthy_automated_host(tmp_path: Path) -> None:
    files = ec2_tree(
        **{
            "/var/lib/dpkg/status": DPKG_SSM + "Package: amazon-guardduty-agent\n"
            "Status: install ok installed\nVersion: 1.7.1\n",
            AGENT_LOG: text("logs/healthy-v3.log"),
            f"{PKG_DIR}/installstate": text("state/installstate-installed.json"),
            f"{STATE}/current/a1b2.run": text("state/docstate-success.json"),
        }
    )
    commands = {SHOW: ACTIVE, GD_DPKG_QUERY: "install ok installed|1.7.1\n", GD_SHOW: GD_ACTIVE}
    host = make_host(tmp_path, files=files, commands=commands, journal=LinesJournal([]))
    run, diag, report = run_pipeline(host, checks=(*GD_PROOF_CHECKS, *ssm.CHECKS))
    assert diag.verdict == Verdict.HEALTHY and report.findings == (), diag.reason
    mt = next(r.facts for r in run.results if r.check_id == "ssm.management_type")
    assert isinstance(mt, ManagementTypeFacts) and mt.management_type == "automated"
    assert mt.agent_source == "agent.package"
    validate_report(report)


def test_ssm_checks_alone_cannot_prove_health(tmp_path: Path) -> None:
    # The same healthy SSM side, but no agent.* check ran: no evidence the agent is installed.
    files = ec2_tree(
        **{
            AGENT_LOG: text("logs/healthy-v3.log"),
            f"{PKG_DIR}/installstate": text("state/installstate-installed.json"),
        }
    )
    _, diag, report = run_pipeline(
        make_host(tmp_path, files=files, commands={SHOW: ACTIVE}), checks=ssm.CHECKS
    )
    assert diag.verdict == Verdict.UNKNOWN and report.findings == ()


def _unreadable_dpkg(tmp_path: Path) -> object:
    denied = DeniedFS(tmp_path, denied=frozenset({"/var/lib/dpkg/status"}))
    return make_host(tmp_path, files={"/var/lib/dpkg/status": DPKG_SSM}, fs=denied)


def test_unreadable_dpkg_status_gives_no_missing_agent_finding(tmp_path: Path) -> None:
    run, diag, report = run_pipeline(_unreadable_dpkg(tmp_path), checks=ssm.CHECKS)  # type: ignore[arg-type]
    inst = next(r for r in run.results if r.check_id == "ssm.agent_installed")
    assert inst.status == Status.WARN and inst.data["installed"] is None
    assert inst.summary == (
        "cannot tell whether amazon-ssm-agent is installed: "
        "cannot read /var/lib/dpkg/status: permission denied"
    )
    assert "ssm.agent-missing" not in _finding_ids(report)
    assert diag.verdict != Verdict.HEALTHY
    validate_report(report)


def test_dpkg_status_over_the_cap_gives_no_missing_agent_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gd_doctor.host import packages

    monkeypatch.setattr(packages, "MAX_DPKG_BYTES", 8 * 1024)
    filler = "".join(
        f"Package: p{n}\nStatus: install ok installed\nVersion: 1\n\n" for n in range(500)
    )
    host = make_host(tmp_path, files={"/var/lib/dpkg/status": filler + DPKG_SSM})
    run, _, report = run_pipeline(host, checks=ssm.CHECKS)
    inst = next(r for r in run.results if r.check_id == "ssm.agent_installed")
    assert inst.status == Status.WARN and inst.data["installed"] is None
    assert "/var/lib/dpkg/status is larger than" in inst.summary
    assert "ssm.agent-missing" not in _finding_ids(report)


def test_ssm_managed_host_without_guardduty_gets_the_control_plane_note(tmp_path: Path) -> None:
    files = ec2_tree(**{AGENT_LOG: text("logs/healthy-v3.log").replace("AmazonGuardDuty", "Other")})
    _, _, report = run_pipeline(
        make_host(tmp_path, files=files, commands={SHOW: ACTIVE}), checks=ssm.CHECKS
    )
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


def test_health_ping_failing_for_an_unknown_reason_is_explained(tmp_path: Path) -> None:
    log = (
        "2026-11-30 10:00:00 INFO [ssm-agent-worker] Starting Core Agent\n"
        "2026-11-30 10:05:00 ERROR [ssm-agent-worker] [HealthCheck] error when calling AWS APIs. "
        "error: InternalFailure: something new\n"
    )
    files = ec2_tree(**{AGENT_LOG: log})
    run, diag, report = run_pipeline(
        make_host(tmp_path, files=files, commands={SHOW: ACTIVE}), checks=ssm.CHECKS
    )
    status = {r.check_id: r.status for r in run.results}
    assert status["ssm.agent_log"] == Status.FAIL
    assert _finding_ids(report) == ["ssm.health-ping-failed"]
    assert "InternalFailure: something new" in report.findings[0].evidence[0]
    assert diag.verdict == Verdict.UNHEALTHY
