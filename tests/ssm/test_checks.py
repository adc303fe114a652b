"""The SSM checks against fake hosts built from the SSM Agent's on-disk layout."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict

import pytest

from gd_doctor.checks import ssm, ssm_traces
from gd_doctor.checks.base import Options
from gd_doctor.facts import to_data
from gd_doctor.facts.agent import PackageFacts
from gd_doctor.facts.imds import ImdsIdentityFacts
from gd_doctor.facts.ssm import (
    GuardDutyTracesFacts,
    ManagementTypeFacts,
    SsmLogFacts,
    SsmPackageFacts,
    SsmRegistrationFacts,
    SsmUnitFacts,
)
from gd_doctor.host.commands import CommandResult, UnavailableRunner
from gd_doctor.model import CheckResult, SkipReason, Status
from gd_doctor.parsers.rpm import RPM_QUERY_FORMAT
from tests.hostkit import FIXTURES, facts_with, make_host, result, run_one, write_tree
from tests.ssm.conftest import (
    AGENT_LOG,
    DPKG_GD,
    DPKG_SSM,
    ERRORS_LOG,
    INSTANCE,
    PKG_DIR,
    SSM_ROOT,
    earlier,
    ec2_tree,
    facts_of,
    fresult,
    text,
)
from tests.ssm.fakes import DeniedFS, LinesJournal

# A Berkeley DB rpm database (Amazon Linux 2), read by rpm's read-only bdb_ro backend.
BDB = {"/var/lib/rpm/Packages": b"\0" * 4096}
RPM_VERSION = ("rpm", "--version")
RPM_Q = (
    "rpm",
    "--define",
    "_db_backend bdb_ro",
    "-q",
    "--qf",
    RPM_QUERY_FORMAT,
    "amazon-ssm-agent",
)
SHOW = ("systemctl", "show", "amazon-ssm-agent.service", "-p", ssm.SYSTEMCTL_PROPS)
SNAP_SHOW = (
    "systemctl",
    "show",
    "snap.amazon-ssm-agent.amazon-ssm-agent.service",
    "-p",
    ssm.SYSTEMCTL_PROPS,
)


def _res(check_id: str, status: str = "ok", **given: Any) -> Dict[str, CheckResult]:
    """An earlier result of another domain's check, with its typed facts."""
    types = {"agent.package": PackageFacts, "imds.identity": ImdsIdentityFacts}
    return {check_id: result(check_id, status, facts=facts_with(types[check_id], **given))}


def _pkg(installed: Any = True, unit: str = "amazon-ssm-agent.service") -> Dict[str, CheckResult]:
    facts = SsmPackageFacts(installed=installed, unit=unit if installed else None)
    return earlier(fresult(facts, "ok" if installed else "warn"))


def _json(outcome: Any) -> str:
    data = to_data(outcome.facts)
    return json.dumps({"data": data, "evidence": outcome.evidence, "s": outcome.summary})


# --- ssm.agent_installed ---------------------------------------------------------------------


def _installed(out: Any) -> SsmPackageFacts:
    return facts_of(out, SsmPackageFacts)


def test_deb_install_reports_version_and_unit(tmp_path: Path) -> None:
    out = run_one(
        ssm.agent_installed, make_host(tmp_path, files={"/var/lib/dpkg/status": DPKG_SSM})
    )
    pkg = _installed(out)
    assert out.status == Status.OK and pkg.installed is True
    assert (pkg.method, pkg.version, pkg.unit) == (
        "deb",
        "3.3.1142.0-1",
        "amazon-ssm-agent.service",
    )


def test_snap_install_reads_snap_yaml(tmp_path: Path) -> None:
    files = {ssm.SNAP_YAML: "name: amazon-ssm-agent\nversion: '3.3.1142.0'\nconfinement: classic\n"}
    pkg = _installed(run_one(ssm.agent_installed, make_host(tmp_path, files=files)))
    assert (pkg.method, pkg.version, pkg.unit) == ("snap", "3.3.1142.0", ssm.SNAP_UNIT)


def test_snap_without_yaml_asks_snap_list_on_the_live_host(tmp_path: Path) -> None:
    (tmp_path / "snap/amazon-ssm-agent").mkdir(parents=True)
    listing = (
        "Name              Version     Rev    Tracking       Publisher  Notes\n"
        "amazon-ssm-agent  3.3.987.0   9565   latest/stable  aws✓       classic\n"
    )
    host = make_host(tmp_path, commands={("snap", "list", "amazon-ssm-agent"): listing})
    assert _installed(run_one(ssm.agent_installed, host)).version == "3.3.987.0"


def test_rpm_install_is_asked_from_rpm(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        files=BDB,
        commands={
            RPM_VERSION: "RPM version 4.18.0\n",
            RPM_Q: "amazon-ssm-agent|3.3.1142.0|1.amzn2023|x86_64\n",
        },
    )
    pkg = _installed(run_one(ssm.agent_installed, host))
    assert (pkg.method, pkg.version) == ("rpm", "3.3.1142.0-1.amzn2023")


def test_rpm_host_under_root_falls_back_to_files(tmp_path: Path) -> None:
    files = {
        "/usr/bin/amazon-ssm-agent": "",
        "/usr/lib/systemd/system/amazon-ssm-agent.service": "",
    }
    host = make_host(tmp_path, files={**files, **BDB}, live=False, run=UnavailableRunner("--root"))
    out = run_one(ssm.agent_installed, host)
    pkg = _installed(out)
    assert out.status == Status.OK and pkg.method == "files" and pkg.version is None


def test_not_installed_is_a_warning_with_installed_false(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        files={"/var/lib/dpkg/status": DPKG_GD, **BDB},
        commands={
            RPM_VERSION: "RPM version 4.18.0\n",
            RPM_Q: (1, "package amazon-ssm-agent is not installed\n"),
        },
    )
    out = run_one(ssm.agent_installed, host)
    assert out.status == Status.WARN and _installed(out).installed is False
    assert _installed(out).problem is None


def test_unreadable_dpkg_status_is_unknown_not_absent(tmp_path: Path) -> None:
    host = _with_fs(
        make_host(tmp_path, files={"/var/lib/dpkg/status": DPKG_SSM}),
        DeniedFS(tmp_path, denied=frozenset({"/var/lib/dpkg/status"})),
    )
    out = run_one(ssm.agent_installed, host)
    pkg = _installed(out)
    assert out.status == Status.WARN and pkg.installed is None
    assert pkg.problem == "cannot read /var/lib/dpkg/status: permission denied"
    assert out.summary.startswith("cannot tell whether amazon-ssm-agent is installed")
    assert "not installed" not in out.summary


def test_dpkg_status_cut_at_its_cap_is_unknown_not_absent(tmp_path: Path, monkeypatch: Any) -> None:
    # The stanza lies beyond the size cap: the part read does not list the agent.
    from gd_doctor.host import packages

    filler = "".join(
        f"Package: pkg{n}\nStatus: install ok installed\nVersion: 1.0-{n}\n\n" for n in range(2000)
    )
    monkeypatch.setattr(packages, "MAX_DPKG_BYTES", 16 * 1024)
    host = make_host(tmp_path, files={"/var/lib/dpkg/status": filler + DPKG_SSM})
    assert (tmp_path / "var/lib/dpkg/status").stat().st_size > 16 * 1024
    out = run_one(ssm.agent_installed, host)
    pkg = _installed(out)
    assert out.status == Status.WARN and pkg.installed is None
    assert "is larger than 0 MiB" in (pkg.problem or "")
    # The same file under the cap lists it: the test is about the cut, not the content (a new
    # host: the package layer reads the status file once per run).
    monkeypatch.setattr(packages, "MAX_DPKG_BYTES", 32 * 1024 * 1024)
    assert _installed(run_one(ssm.agent_installed, make_host(tmp_path))).installed is True


def test_rpm_that_cannot_read_its_database_is_unknown(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        files=BDB,
        commands={
            RPM_VERSION: "RPM version 4.18.0\n",
            RPM_Q: (
                1,
                "",
                "error: rpmdb: BDB0113 Thread/process failed\nerror: cannot open Packages index\n",
            ),
        },
    )
    pkg = _installed(run_one(ssm.agent_installed, host))
    assert pkg.installed is None and "cannot open Packages index" in (pkg.problem or "")
    assert _installed(run_one(ssm.agent_installed, host)).problem == pkg.problem


# --- ssm.agent_running -----------------------------------------------------------------------

ACTIVE = "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n"
DEAD = (
    "LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=disabled\n"
    "Result=success\nNRestarts=0\n"
)


def _unit(out: Any) -> SsmUnitFacts:
    return facts_of(out, SsmUnitFacts)


def test_running_unit_is_ok(tmp_path: Path) -> None:
    out = run_one(ssm.agent_running, make_host(tmp_path, commands={SHOW: ACTIVE}), _pkg())
    assert out.status == Status.OK and _unit(out).running is True


def test_stopped_unit_fails_with_its_state(tmp_path: Path) -> None:
    out = run_one(
        ssm.agent_running, make_host(tmp_path, commands={SNAP_SHOW: DEAD}), _pkg(unit=ssm.SNAP_UNIT)
    )
    unit = _unit(out)
    assert out.status == Status.FAIL
    assert (unit.active_state, unit.sub_state, unit.n_restarts) == ("inactive", "dead", 0)
    assert "ActiveState=inactive" in out.evidence[0]


def test_stopped_unit_only_warns_once_the_guardduty_agent_is_installed(tmp_path: Path) -> None:
    host = make_host(tmp_path, commands={SHOW: DEAD})
    out = run_one(ssm.agent_running, host, {**_pkg(), **_res("agent.package", installed=True)})
    assert out.status == Status.WARN and _unit(out).running is False
    assert "does not block" in out.summary


def test_no_systemctl_is_a_clear_skip(tmp_path: Path) -> None:
    host = make_host(tmp_path, commands={SHOW: CommandResult(SHOW, None, problem="not found")})
    out = run_one(ssm.agent_running, host, _pkg())
    assert out.status == Status.SKIP and out.skip_reason == SkipReason.NOT_APPLICABLE


def test_systemctl_that_cannot_answer_is_unknown(tmp_path: Path) -> None:
    host = make_host(tmp_path, commands={SHOW: CommandResult(SHOW, None, problem="timed out")})
    out = run_one(ssm.agent_running, host, _pkg())
    assert out.status == Status.WARN and _unit(out).running is None


def test_running_check_does_not_apply_without_the_agent(tmp_path: Path) -> None:
    out = run_one(ssm.agent_running, make_host(tmp_path), _pkg(installed=False))
    assert out.status == Status.SKIP


# --- ssm.registration ------------------------------------------------------------------------


def _reg(out: Any) -> SsmRegistrationFacts:
    return facts_of(out, SsmRegistrationFacts)


def test_ec2_registration_matches_imds(tmp_path: Path) -> None:
    host = make_host(tmp_path, files=ec2_tree())
    out = run_one(ssm.registration, host, _res("imds.identity", instance_id=INSTANCE))
    assert out.status == Status.OK
    assert (_reg(out).kind, _reg(out).managed_instance_id) == ("ec2", INSTANCE)


def test_hybrid_registration_on_an_ec2_instance_warns(tmp_path: Path) -> None:
    files = ec2_tree(
        **{
            f"{SSM_ROOT}/registration": text("state/registration-hybrid.json"),
            f"{SSM_ROOT}/Vault/Store/RegistrationKey": "SECRET-PRIVATE-KEY-MATERIAL",
        }
    )
    out = run_one(
        ssm.registration,
        make_host(tmp_path, files=files),
        _res("imds.identity", instance_id=INSTANCE),
    )
    assert out.status == Status.WARN and _reg(out).hybrid_on_ec2
    assert (_reg(out).kind, _reg(out).managed_instance_id) == ("hybrid", "mi-0123456789abcdef0")
    assert _reg(out).hybrid_region == "us-east-2"
    assert "SECRET" not in _json(out)  # the vault's content is never read


def test_hybrid_node_off_ec2_is_fine(tmp_path: Path) -> None:
    files = {f"{SSM_ROOT}/mi-0123456789abcdef0/document/state/current/.keep": ""}
    out = run_one(ssm.registration, make_host(tmp_path, files=files))
    assert out.status == Status.OK and _reg(out).kind == "hybrid" and not _reg(out).hybrid_on_ec2


def test_state_of_another_instance_warns(tmp_path: Path) -> None:
    out = run_one(
        ssm.registration,
        make_host(tmp_path, files=ec2_tree()),
        _res("imds.identity", instance_id="i-0fffffffffffffff0"),
    )
    assert out.status == Status.WARN and "copied image" in out.summary
    assert _reg(out).registered is None and _reg(out).foreign_state


def test_no_instance_directory_is_not_registered(tmp_path: Path) -> None:
    files = {f"{SSM_ROOT}/registration": "{garbage", f"{SSM_ROOT}/ipc/.keep": ""}
    out = run_one(ssm.registration, make_host(tmp_path, files=files))
    assert out.status == Status.WARN and _reg(out).registered is False
    assert "registration file unreadable" in out.summary


def test_missing_state_dir_has_never_registered(tmp_path: Path) -> None:
    out = run_one(ssm.registration, make_host(tmp_path), _pkg())
    assert out.status == Status.WARN and _reg(out).registered is False


def test_unreadable_state_dir_needs_root(tmp_path: Path) -> None:
    host = _with_fs(
        make_host(tmp_path, files=ec2_tree(), euid=1000),
        DeniedFS(tmp_path, denied=frozenset({SSM_ROOT})),
    )
    out = run_one(ssm.registration, host)
    assert out.status == Status.SKIP and out.skip_reason == SkipReason.NEEDS_ROOT


def test_state_dir_that_is_not_a_directory_is_unknown(tmp_path: Path) -> None:
    out = run_one(ssm.registration, make_host(tmp_path, files={SSM_ROOT: "a file"}), _pkg())
    assert out.status == Status.WARN and _reg(out).registered is None and _reg(out).problem


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 directory anyway")
def test_real_mode_000_state_dir_needs_root(tmp_path: Path) -> None:
    host = make_host(tmp_path, files=ec2_tree(), euid=os.geteuid())
    (tmp_path / SSM_ROOT.lstrip("/")).chmod(0)
    try:
        out = run_one(ssm.registration, host)
    finally:
        (tmp_path / SSM_ROOT.lstrip("/")).chmod(0o755)
    assert out.skip_reason == SkipReason.NEEDS_ROOT


def _with_fs(host: Any, fs: Any) -> Any:
    """The host over another filesystem, its unit and package layers too."""
    from dataclasses import replace

    from gd_doctor.host.packages import PackageQuery
    from gd_doctor.host.units import UnitResolver

    packages = PackageQuery(fs, host.run, live=host.live, tools=host.run)
    return replace(host, fs=fs, units=UnitResolver(fs), packages=packages)


# --- ssm.agent_log ---------------------------------------------------------------------------


def _log(out: Any) -> SsmLogFacts:
    return facts_of(out, SsmLogFacts)


def _log_hit(out: Any, sig: str) -> Any:
    hit = _log(out).hit(sig)
    assert hit is not None, f"{sig} not in {[h.id for h in _log(out).signatures]}"
    return hit


def test_denied_health_ping_fails_with_the_exact_lines(tmp_path: Path) -> None:
    files = {
        AGENT_LOG: text("logs/health-ping-denied-v3.log"),
        ERRORS_LOG: text("logs/errors-v2.log"),
    }
    out = run_one(ssm_traces.agent_log, make_host(tmp_path, files=files))
    assert out.status == Status.FAIL
    assert _log(out).causes == ("iam", "other")
    hit = _log_hit(out, "health-ping-access-denied")
    assert hit.count == 4 and hit.last_at == "2026-11-30T10:14:03+00:00"
    assert any("Health ping failed with error - AccessDeniedException" in e for e in out.evidence)
    assert any("ec2messages:GetMessages" in e for e in out.evidence)
    assert _log(out).last_entry_at == "2026-11-30T10:14:03+00:00"


def test_failing_health_ping_only_warns_once_the_guardduty_agent_is_installed(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path, files={AGENT_LOG: text("logs/health-ping-denied-v3.log")})
    out = run_one(ssm_traces.agent_log, host, _res("agent.package", installed=True))
    assert out.status == Status.WARN and _log(out).health_ping_failing is True
    assert "does not block" in out.summary


@pytest.mark.parametrize(
    ("fixture", "signature", "cause"),
    [
        ("logs/dns-failure.log", "endpoint-dns-failed", "network"),
        ("logs/tcp-timeout.log", "endpoint-unreachable", "network"),
        ("logs/clock-skew.log", "clock-skew", "clock"),
        ("logs/no-identity.log", "no-identity", "identity"),
    ],
)
def test_health_ping_causes(tmp_path: Path, fixture: str, signature: str, cause: str) -> None:
    out = run_one(ssm_traces.agent_log, make_host(tmp_path, files={AGENT_LOG: text(fixture)}))
    assert out.status == Status.FAIL and cause in _log(out).causes
    assert _log(out).hit(signature) is not None


def test_dns_failure_names_the_host(tmp_path: Path) -> None:
    out = run_one(
        ssm_traces.agent_log, make_host(tmp_path, files={AGENT_LOG: text("logs/dns-failure.log")})
    )
    assert _log_hit(out, "endpoint-dns-failed").host == "ssm.eu-west-1.amazonaws.com"


def test_journal_only_no_role_and_files_missing(tmp_path: Path) -> None:
    journal = LinesJournal(text("logs/no-role-journal.txt").splitlines())
    out = run_one(ssm_traces.agent_log, make_host(tmp_path, journal=journal))
    assert out.status == Status.FAIL and _log(out).causes == ("credentials", "other")
    assert journal.asked == [("amazon-ssm-agent.service", ssm.SNAP_UNIT)]
    sources = {s.source: s for s in _log(out).sources}
    assert sources[AGENT_LOG].problem == "missing" and sources["journal"].lines == 4


def test_same_line_in_file_and_journal_counts_once(tmp_path: Path) -> None:
    log = text("logs/clock-skew.log")
    out = run_one(
        ssm_traces.agent_log,
        make_host(
            tmp_path,
            files={AGENT_LOG: log, ERRORS_LOG: log},
            journal=LinesJournal(log.splitlines()),
        ),
    )
    # the journal drops fractional seconds: same second, same message, so one entry
    assert _log_hit(out, "clock-skew").count == 1


def test_old_failures_are_outside_the_window(tmp_path: Path) -> None:
    old = text("logs/health-ping-denied-v3.log").replace("2026-11-30", "2026-11-20")
    out = run_one(ssm_traces.agent_log, make_host(tmp_path, files={AGENT_LOG: old}))
    assert out.status == Status.OK and _log(out).health_ping_failing is False
    assert _log(out).older("health-ping-access-denied") == 3
    wide = run_one(ssm_traces.agent_log, make_host(tmp_path), options=Options(since=_days(30)))
    assert wide.status == Status.FAIL


def _days(n: int) -> Any:
    from datetime import timedelta

    return timedelta(days=n)


def test_healthy_log_is_ok_and_counts_guardduty_lines(tmp_path: Path) -> None:
    out = run_one(
        ssm_traces.agent_log, make_host(tmp_path, files={AGENT_LOG: text("logs/healthy-v3.log")})
    )
    assert out.status == Status.OK and _log(out).guardduty_lines == 2
    assert out.evidence == ()


def test_secrets_in_log_lines_are_redacted(tmp_path: Path) -> None:
    line = (
        "2026-11-30 11:00:00 ERROR Health ping failed with error - RequestError: send request "
        "failed\ncaused by: Post https://ssm.eu-west-1.amazonaws.com/: proxyconnect tcp: "
        "http://bob:hunter2@proxy.corp:3128 dial tcp 10.0.0.9:443: i/o timeout "
        "token=AQoDYXdzEJr1234 key ASIAIOSFODNN7EXAMPLE\n"
    )
    out = run_one(ssm_traces.agent_log, make_host(tmp_path, files={AGENT_LOG: line}))
    assert out.status == Status.FAIL
    dumped = _json(out)
    for secret in ("hunter2", "AQoDYXdzEJr1234", "ASIAIOSFODNN7EXAMPLE"):
        assert secret not in dumped


def test_huge_log_is_read_from_its_end_only(tmp_path: Path) -> None:
    filler = "2026-11-30 01:00:00 INFO [ssm-agent-worker] nothing to report\n" * 90_000  # ~5.6 MB
    early = (
        "2026-11-30 00:30:00 ERROR Health ping failed with error - EC2RoleRequestError: "
        "no EC2 instance role found\n"
    )
    late = text("logs/clock-skew.log")
    out = run_one(
        ssm_traces.agent_log, make_host(tmp_path, files={AGENT_LOG: early + filler + late})
    )
    assert _log(out).hit("clock-skew") is not None
    assert _log(out).hit("no-instance-role") is None  # beyond the 4 MiB tail
    assert _log(out).sources[0].truncated is True


def test_binary_garbage_and_bad_encoding_do_not_crash(tmp_path: Path) -> None:
    junk = b"\x00\xff\xfe garbage\n" * 100 + text("logs/tcp-timeout.log").encode() + b"\x80\x81\n"
    out = run_one(ssm_traces.agent_log, make_host(tmp_path, files={AGENT_LOG: junk}))
    assert out.status == Status.FAIL and _log(out).hit("endpoint-unreachable") is not None


def test_unreadable_logs_need_root(tmp_path: Path) -> None:
    host = _with_fs(
        make_host(tmp_path, files={AGENT_LOG: "x"}, euid=1000),
        DeniedFS(tmp_path, denied=frozenset({"/var/log/amazon/ssm"})),
    )
    out = run_one(ssm_traces.agent_log, host)
    assert out.status == Status.SKIP and out.skip_reason == SkipReason.NEEDS_ROOT


def test_unreadable_log_is_not_no_errors(tmp_path: Path) -> None:
    # A directory where the log should be: unreadable for root too, and no error seen is no proof.
    (tmp_path / AGENT_LOG.lstrip("/")).mkdir(parents=True)
    out = run_one(ssm_traces.agent_log, make_host(tmp_path), _pkg())
    assert out.status == Status.WARN and _log(out).health_ping_failing is None
    assert "cannot read" in out.summary
    clean = run_one(
        ssm_traces.agent_log, make_host(tmp_path, files={ERRORS_LOG: text("logs/healthy-v3.log")})
    )
    assert clean.status == Status.WARN and AGENT_LOG in clean.summary


def test_no_logs_at_all(tmp_path: Path) -> None:
    out = run_one(ssm_traces.agent_log, make_host(tmp_path), _pkg())
    assert out.status == Status.WARN and _log(out).health_ping_failing is None
    gone = run_one(ssm_traces.agent_log, make_host(tmp_path), _pkg(installed=False))
    assert gone.status == Status.SKIP


# --- ssm.guardduty_traces --------------------------------------------------------------------

STATE = f"{SSM_ROOT}/{INSTANCE}/document/state"
ORCH = f"{SSM_ROOT}/{INSTANCE}/document/orchestration"


def _traces(out: Any) -> GuardDutyTracesFacts:
    return facts_of(out, GuardDutyTracesFacts)


def test_installed_plugin_is_ok(tmp_path: Path) -> None:
    files = ec2_tree(
        **{
            f"{PKG_DIR}/installstate": text("state/installstate-installed.json"),
            f"{PKG_DIR}/1.7.2/.keep": "",
            f"{STATE}/current/a1b2.run": text("state/docstate-success.json"),
        }
    )
    out = run_one(ssm_traces.guardduty_traces, make_host(tmp_path, files=files))
    traces = _traces(out)
    assert out.status == Status.OK and traces.has_traces is True
    assert traces.package is not None
    assert (traces.package.state, traces.package.version) == ("Installed", "1.7.2")
    assert traces.package.versions == ("1.7.2",)
    assert traces.last_run_status == "Success"


def test_failed_plugin_run_names_the_platform(tmp_path: Path) -> None:
    files = ec2_tree(
        **{
            f"{PKG_DIR}/installstate": text("state/installstate-failed.json"),
            f"{STATE}/corrupt/a1b2.run": text("state/docstate-failed.json"),
        }
    )
    out = run_one(ssm_traces.guardduty_traces, make_host(tmp_path, files=files))
    assert out.status == Status.FAIL and _traces(out).failed
    assert _traces(out).last_run_failed is True
    assert _traces(out).last_run_at == "2026-11-30T06:10:12.011Z"
    assert "installstate: state Failed" in out.evidence[0]
    assert any("no manifest found for platform" in e for e in out.evidence)


def test_platform_from_orchestration_output(tmp_path: Path) -> None:
    run_dir = (
        f"{ORCH}/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111.2026-11-30T06-10-12.011Z/configurePackage"
    )
    files = ec2_tree(
        **{
            f"{run_dir}/stdout": "Initiating AmazonGuardDuty-RuntimeMonitoringSsmPlugin  install\n",
            f"{run_dir}/stderr": "failed to find platform: no manifest found for platform: "
            "ubuntu, version 22.04, architecture arm64\n",
        }
    )
    out = run_one(ssm_traces.guardduty_traces, make_host(tmp_path, files=files))
    assert out.status == Status.FAIL
    assert _traces(out).platform_failure == "ubuntu, version 22.04, architecture arm64"


def test_platform_from_the_log_alone(tmp_path: Path) -> None:
    log_out = run_one(
        ssm_traces.agent_log, make_host(tmp_path, files={AGENT_LOG: text("logs/no-manifest.log")})
    )
    before = earlier(fresult(_log(log_out), log_out.status.value))
    out = run_one(ssm_traces.guardduty_traces, make_host(tmp_path, files=ec2_tree()), before)
    assert out.status == Status.FAIL and _traces(out).log_lines == 1
    assert _traces(out).platform_failure == "ubuntu, version 22.04, architecture arm64"


def test_unrelated_orchestration_output_is_ignored(tmp_path: Path) -> None:
    files = ec2_tree(
        **{
            f"{ORCH}/cmd-1/awsrunShellScript/0.awsrunShellScript/stdout": "hello\n",
            f"{ORCH}/cmd-1/awsrunShellScript/0.awsrunShellScript/stderr": "error x\n",
        }
    )
    out = run_one(ssm_traces.guardduty_traces, make_host(tmp_path, files=files))
    assert out.status == Status.OK and _traces(out).has_traces is False


def test_corrupt_state_files_warn(tmp_path: Path) -> None:
    files = ec2_tree(
        **{
            f"{PKG_DIR}/installstate": text("state/installstate-truncated.json"),
            f"{STATE}/current/x.run": '{"DocumentInformation": "AmazonGuardDuty-'
            'ConfigureRuntimeMonitoringSsmPlugin", [',
            f"{STATE}/pending/bin": b"\x00\x01AmazonGuardDuty-Runtime\xff",
        }
    )
    out = run_one(ssm_traces.guardduty_traces, make_host(tmp_path, files=files))
    assert out.status == Status.WARN
    pkg = _traces(out).package
    assert pkg is not None and (pkg.problem or "").startswith("installstate corrupt")
    assert len(_traces(out).corrupt) == 1  # the NUL file does not name the document in full


def test_huge_orchestration_output_is_bounded(tmp_path: Path) -> None:
    run_dir = f"{ORCH}/assoc-1/configurePackage"
    big = "x" * (20 * 1024 * 1024) + "\nAmazonGuardDuty-RuntimeMonitoringSsmPlugin installed\n"
    files = ec2_tree(**{f"{run_dir}/stdout": big})
    for n in range(60):  # many plugin directories in one run
        files[f"{run_dir}/p{n}/stdout"] = "ok\n"
    out = run_one(ssm_traces.guardduty_traces, make_host(tmp_path, files=files))
    assert out.status == Status.OK and _traces(out).run_count == 1
    assert len(_json(out)) < 20_000


def test_traces_need_root_when_the_state_is_unreadable(tmp_path: Path) -> None:
    host = _with_fs(
        make_host(tmp_path, files=ec2_tree(), euid=1000),
        DeniedFS(tmp_path, denied=frozenset({SSM_ROOT})),
    )
    out = run_one(ssm_traces.guardduty_traces, host)
    assert out.status == Status.SKIP and out.skip_reason == SkipReason.NEEDS_ROOT
    assert _traces(out).has_traces is None
    log = SsmLogFacts(sources=(), health_ping_failing=False, guardduty_lines=3)
    with_log = run_one(ssm_traces.guardduty_traces, host, earlier(fresult(log)))
    assert with_log.status == Status.WARN and _traces(with_log).has_traces is True


def test_no_traces(tmp_path: Path) -> None:
    out = run_one(ssm_traces.guardduty_traces, make_host(tmp_path, files=ec2_tree()))
    assert out.status == Status.OK and _traces(out).has_traces is False


def test_no_state_dir_is_no_trace_but_an_odd_one_is_unknown(tmp_path: Path) -> None:
    out = run_one(ssm_traces.guardduty_traces, make_host(tmp_path / "a"))
    assert out.status == Status.OK and _traces(out).has_traces is False
    odd = run_one(ssm_traces.guardduty_traces, make_host(tmp_path / "b", files={SSM_ROOT: "x"}))
    assert odd.status == Status.WARN and _traces(odd).has_traces is None


# --- ssm.management_type ---------------------------------------------------------------------


def _with_traces(has_traces: Any) -> Dict[str, CheckResult]:
    return earlier(fresult(GuardDutyTracesFacts(has_traces=has_traces, state_readable=True)))


@pytest.mark.parametrize(
    ("traces", "dpkg", "expected"),
    [
        (True, DPKG_SSM + DPKG_GD, "automated"),
        (False, DPKG_SSM + DPKG_GD, "manual"),
        (False, DPKG_SSM, "none"),
        (None, DPKG_SSM + DPKG_GD, "unknown"),
    ],
)
def test_management_type(tmp_path: Path, traces: Any, dpkg: str, expected: str) -> None:
    host = make_host(tmp_path, files={"/var/lib/dpkg/status": dpkg})
    out = run_one(ssm.management_type, host, _with_traces(traces))
    assert facts_of(out, ManagementTypeFacts).management_type == expected


def test_management_type_prefers_agent_package(tmp_path: Path) -> None:
    host = make_host(tmp_path, files={"/var/lib/dpkg/status": DPKG_GD})
    before = {**_with_traces(False), **_res("agent.package", "warn", installed=False)}
    mt = facts_of(run_one(ssm.management_type, host, before), ManagementTypeFacts)
    assert mt.management_type == "none" and mt.agent_source == "agent.package"


def test_tree_helper_writes_bytes(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/a/b": b"\x00"})
    assert (tmp_path / "a/b").read_bytes() == b"\x00"


def test_association_document_without_a_run_is_a_trace(tmp_path: Path) -> None:
    doc = json.dumps({"DocumentInformation": {"DocumentName": ssm.GD_DOCUMENT}})
    files = ec2_tree(**{f"{SSM_ROOT}/{INSTANCE}/document/association/InstanceDocument.json": doc})
    out = run_one(ssm_traces.guardduty_traces, make_host(tmp_path, files=files))
    assert out.status == Status.OK and _traces(out).has_traces is True
    assert "no run of it was found" in out.summary


# Real `systemctl show -p ...` captures (tests/fixtures/systemctl, systemd 247/252/257); the unit
# there is the GuardDuty stand-in, but the property format is what systemd prints for any unit.
REAL_SYSTEMCTL = sorted((FIXTURES / "systemctl").glob("*/*.props.txt"))


@pytest.mark.parametrize("capture", REAL_SYSTEMCTL, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_agent_running_on_real_systemctl_output(tmp_path: Path, capture: Path) -> None:
    host = make_host(tmp_path, commands={SHOW: capture.read_text()})
    out = run_one(ssm.agent_running, host, _pkg())
    state = capture.name.split(".")[0]
    active = "\nActiveState=active\n" in "\n" + capture.read_text()
    assert out.status == (Status.OK if active else Status.FAIL), out.summary
    assert _unit(out).running is active
    assert active or state != "active-running"
    if state == "not-found":
        assert "not a known unit" in out.summary
