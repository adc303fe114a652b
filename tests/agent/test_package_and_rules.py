"""agent.package (dpkg/rpm states) and the agent diagnosis rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, List

import pytest

from gd_doctor.checks import agent
from gd_doctor.diagnosis import agent as rules
from gd_doctor.facts.agent import (
    PackageFacts,
    ProcessFacts,
    UnitFacts,
    UnitFileFacts,
    VersionKernelFacts,
)
from gd_doctor.facts.agent_logs import JournalFacts, LogFacts, SignatureHit, merge_hits
from gd_doctor.host.commands import CommandResult
from gd_doctor.host.procs import FakeProcesses, ProcessInfo
from gd_doctor.model import Finding, Status
from gd_doctor.parsers.rpm import RPM_QUERY_FORMAT
from gd_doctor.parsers.systemctl_show import PROPERTIES
from tests.hostkit import FIXTURES, make_host, result, run_one, run_pipeline, validate_report

RPM_Q = ("rpm", "-q", "--qf", RPM_QUERY_FORMAT, "amazon-guardduty-agent")
RPM_V = ("rpm", "-V", "amazon-guardduty-agent")
SHOW = ("systemctl", "show", "amazon-guardduty-agent", "-p", ",".join(PROPERTIES))


@pytest.mark.parametrize(
    "status_line,expect,abbrev",
    [
        ("install ok installed", Status.OK, "ii"),
        ("install ok half-configured", Status.FAIL, "iF"),
        ("install ok unpacked", Status.FAIL, "iU"),
        ("install ok half-installed", Status.FAIL, "iH"),
        ("install reinstreq half-installed", Status.FAIL, "iHR"),
        ("deinstall ok config-files", Status.FAIL, "rc"),
    ],
)
def test_dpkg_states(tmp_path: Path, status_line: str, expect: Status, abbrev: str) -> None:
    status = f"Package: amazon-guardduty-agent\nStatus: {status_line}\nVersion: 1.9.2\n\n"
    out = run_one(agent.package, make_host(tmp_path, files={"/var/lib/dpkg/status": status}))
    assert isinstance(out.facts, PackageFacts)
    assert out.status == expect and out.facts.state == abbrev


# A Berkeley DB rpm database (Amazon Linux 2): read by rpm's read-only bdb_ro backend.
BDB = {"/var/lib/rpm/Packages": b"\0" * 4096}
RPM_VERSION = ("rpm", "--version")
RPM_Q_RO = ("rpm", "--define", "_db_backend bdb_ro", *RPM_Q[1:])


def test_rpm_installed_with_changed_binary(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        files=BDB,
        commands={
            RPM_VERSION: "RPM version 4.18.0\n",
            RPM_Q_RO: "amazon-guardduty-agent|1.9.2|1|x86_64\n",
            RPM_V: (
                1,
                "S.5....T.  c /etc/amazon-guardduty-agent/x.conf\n"
                "missing     /opt/aws/amazon-guardduty-agent/bin/amazon-guardduty-agent\n",
            ),
        },
    )
    out = run_one(agent.package, host)
    assert isinstance(out.facts, PackageFacts)
    assert out.status == Status.WARN and len(out.facts.verify_problems) == 1
    assert out.facts.verify_ran is True and (out.facts.version, out.facts.release) == ("1.9.2", "1")


def test_not_installed_anywhere(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        files={**BDB, "/var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\n\n"},
        commands={
            RPM_VERSION: "RPM version 4.18.0\n",
            RPM_Q_RO: "package amazon-guardduty-agent is not installed\n",
        },
    )
    out = run_one(agent.package, host)
    assert isinstance(out.facts, PackageFacts)
    assert out.status == Status.FAIL and out.facts.installed is False


def test_an_rpm_database_that_cannot_be_opened_is_unknown_not_absent(tmp_path: Path) -> None:
    """rpm cannot open its database (here: no rpm to read a Berkeley DB): unknown, a WARN,
    never "not installed"."""
    host = make_host(
        tmp_path, files=BDB, commands={RPM_VERSION: CommandResult((), None, problem="not found")}
    )
    out = run_one(agent.package, host)
    assert isinstance(out.facts, PackageFacts)
    assert out.status == Status.WARN and out.facts.installed is None
    assert "install rpm" in (out.facts.problem or "")


def test_dpkg_status_file_under_root(tmp_path: Path) -> None:
    status = (
        "Package: amazon-guardduty-agent\nStatus: install ok half-configured\nVersion: 1.9.2\n\n"
    )
    host = make_host(tmp_path, files={"/var/lib/dpkg/status": status}, live=False)
    out = run_one(agent.package, host)
    assert isinstance(out.facts, PackageFacts)
    assert out.status == Status.FAIL and out.facts.state == "iF"


def test_unit_file_with_syntax_errors_and_dropins(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        live=False,
        files={
            "/lib/systemd/system/amazon-guardduty-agent.service": "[Unit]\nDescription=x\n[Service]\nExecStart=/opt/x\nMemoryLimit=128M\n"
            "MemoryMax=128M\n\x00garbage here\n",
            "/etc/systemd/system/amazon-guardduty-agent.service.d/50-proxy.conf": "[Service]\nEnvironment=HTTPS_PROXY=http://u:pw@p:3128\nMemoryMax=256M\n",
        },
    )
    out = run_one(agent.unit_file, host)
    assert out.status == Status.WARN
    assert isinstance(out.facts, UnitFileFacts)
    assert out.facts.memory_max == 256 * 1024 * 1024
    assert out.facts.environment == {"HTTPS_PROXY": "http://[REDACTED]@p:3128"}
    assert out.facts.exec_path == "/opt/x" and out.facts.exec_exists is False


def _findings(*res: Any) -> List[Finding]:
    out: List[Finding] = []
    for r in rules.RULES:
        got = r.apply(list(res))
        if got is None:
            continue
        out += [got] if isinstance(got, Finding) else list(got)
    return out


def _unit(**kw: Any) -> UnitFacts:
    base = {"load_state": "loaded", "active_state": "active", "sub_state": "running"}
    return UnitFacts(**{**base, **kw})


DNS = SignatureHit(
    "dns",
    "agent.log-dns",
    "agent-disconnected",
    "The agent could not resolve the GuardDuty endpoint name",
    7,
    "2026-11-30T11:00:00+00:00",
    "2026-11-30T11:59:00+00:00",
    ("journal: dns error: failed to lookup address information",),
)


def test_crash_loop_names_the_network_cause() -> None:
    found = _findings(
        result("agent.package", "ok", facts=PackageFacts(True, manager="dpkg", version="1.9.2")),
        result(
            "agent.unit",
            "fail",
            facts=_unit(
                active_state="activating",
                sub_state="auto-restart",
                n_restarts=7,
                result="exit-code",
            ),
        ),
        result(
            "agent.journal",
            "fail",
            facts=JournalFacts(None, failed_exits=7, restart_interval_s=2.1, signatures=(DNS,)),
        ),
    )
    ids = [f.finding_id for f in found]
    assert ids == ["agent.crash-loop", "agent.log-dns"]
    assert "resolve the guardduty endpoint" in found[0].title
    assert found[0].issue_id == "agent-disconnected"
    assert found[1].evidence == DNS.lines


def test_journal_and_log_file_hits_of_one_signature_merge() -> None:
    in_logs = replace(
        DNS,
        count=2,
        first="2026-11-30T10:00:00+00:00",
        last=None,
        lines=("agent.log: 2026-11-30T10:00:00+00:00 dns error",),
    )
    found = _findings(
        result("agent.journal", "warn", facts=JournalFacts(None, signatures=(DNS,))),
        result(
            "agent.logs",
            "warn",
            facts=LogFacts("/var/log/amzn-guardduty-agent", True, signatures=(in_logs,)),
        ),
    )
    dns = [f for f in found if f.finding_id == "agent.log-dns"]
    assert len(dns) == 1 and dns[0].checks == ("agent.journal", "agent.logs")
    assert dns[0].evidence == DNS.lines + in_logs.lines
    merged = merge_hits((DNS,), (in_logs,))
    assert merged[0].count == 9 and merged[0].first == "2026-11-30T10:00:00+00:00"
    assert merged[0].last == DNS.last


def test_oom_rule_suggests_a_higher_limit() -> None:
    found = _findings(
        result(
            "agent.unit",
            "fail",
            facts=_unit(
                active_state="activating",
                sub_state="auto-restart",
                memory_cap=128 * 1024 * 1024,
                result="oom-kill",
            ),
        ),
        result("agent.journal", "fail", facts=JournalFacts(None, oom_kills=2, failed_exits=2)),
    )
    oom = next(f for f in found if f.finding_id == "agent.oom-killed")
    assert "2 time(s); limit 128M" in oom.title and "MemoryMax=256M" in " ".join(oom.steps)
    assert "agent.crash-loop" not in [f.finding_id for f in found]


@pytest.mark.parametrize(
    "starts,finding_id,row",
    [
        (2, "agent.disconnected", "agent-disconnected"),
        (0, "agent.not-running", "no-agent-reporting"),
    ],
)
def test_stopped_agent(starts: int, finding_id: str, row: str) -> None:
    found = _findings(
        result("agent.package", "ok", facts=PackageFacts(True)),
        result(
            "agent.unit",
            "fail",
            facts=_unit(
                active_state="inactive",
                sub_state="dead",
                result="success",
                unit_file_state="enabled",
            ),
        ),
        result("agent.journal", "ok", facts=JournalFacts(None, starts=starts)),
    )
    assert [(f.finding_id, f.issue_id) for f in found] == [(finding_id, row)]


def test_not_installed_and_broken_package() -> None:
    not_found = result(
        "agent.unit",
        "fail",
        facts=_unit(load_state="not-found", active_state="inactive", sub_state="dead"),
    )
    assert [
        f.finding_id
        for f in _findings(result("agent.package", "fail", facts=PackageFacts(False)), not_found)
    ] == ["agent.not-installed"]
    broken = PackageFacts(
        True, manager="dpkg", broken=True, state="iF", dpkg_status="install ok half-configured"
    )
    assert [
        f.finding_id for f in _findings(result("agent.package", "fail", facts=broken), not_found)
    ] == ["agent.package-broken", "agent.unit-missing"]


def test_unreadable_database_alone_is_not_called_not_installed() -> None:
    unknown = PackageFacts.unknown(
        "cannot read /var/lib/dpkg/status: permission denied", install_method="manual-or-unknown"
    )
    pkg = result("agent.package", "warn", facts=unknown)
    assert _findings(pkg) == []
    present = result("agent.unit_file", "ok", facts=UnitFileFacts("/lib/systemd/system/x"))
    assert _findings(pkg, present) == []
    # the unit file the package ships is nowhere: that is evidence of its own
    absent = result("agent.unit_file", "fail", facts=UnitFileFacts.missing())
    assert [f.finding_id for f in _findings(pkg, absent)] == ["agent.not-installed"]


def test_too_old_and_memlock() -> None:
    found = _findings(
        result(
            "agent.version_kernel",
            "fail",
            facts=VersionKernelFacts("5.10.0-1", "5.10", "1.9.1", needed="1.9.2"),
        ),
        result(
            "agent.process",
            "ok",
            facts=ProcessFacts(
                True, pid=4242, memlock_soft=8 * 1024 * 1024, memlock_hard=8 * 1024 * 1024
            ),
        ),
    )
    assert {f.finding_id for f in found} == {"agent.too-old-for-kernel", "agent.memlock-low"}


def test_unknown_memlock_is_not_low() -> None:
    found = _findings(
        result("agent.version_kernel", "ok", facts=VersionKernelFacts("5.10.0-1", "5.10", "2.0")),
        result(
            "agent.process",
            "ok",
            facts=ProcessFacts(True, pid=4242, memlock_problem="permission denied"),
        ),
    )
    assert found == []


def test_pipeline_on_a_crash_looping_host(tmp_path: Path) -> None:
    """The agent checks and rules end to end, with the real 252 auto-restart capture."""
    from gd_doctor.checks import agent as agent_checks

    capture = (FIXTURES / "systemctl/252/activating-auto-restart.props.txt").read_text()
    host = make_host(
        tmp_path,
        commands={SHOW: capture},
        files={
            "/var/lib/dpkg/status": (
                "Package: amazon-guardduty-agent\nStatus: install ok installed\nVersion: 1.9.2\n"
            ),
            "/var/log/amzn-guardduty-agent/agent.log": "2026-11-30T11:59:00Z ERROR dispatch failure: Connection refused (os error 111)\n",
        },
        procs=FakeProcesses([ProcessInfo(pid=1, name="systemd")]),
    )
    _, diagnosis, report = run_pipeline(host, checks=agent_checks.CHECKS)
    ids = [f.finding_id for f in diagnosis.findings]
    assert ids[0] == "agent.crash-loop" and "agent.log-connect" in ids
    assert report.verdict.value == "unhealthy"
    validate_report(report)


def test_a_whole_run_reads_the_dpkg_status_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """agent.package, ssm.agent_installed, the SSM checks' GuardDuty-agent lookups and the
    report all ask about packages: the status file is read once per run (issue 10)."""
    from gd_doctor.checks import ssm
    from gd_doctor.host.fs import RootFS

    status = (
        "Package: amazon-guardduty-agent\nStatus: install ok installed\nVersion: 1.9.2\n\n"
        "Package: amazon-ssm-agent\nStatus: install ok installed\nVersion: 3.3.1142.0-1\n\n"
    )
    host = make_host(tmp_path, files={"/var/lib/dpkg/status": status}, live=False)
    reads: List[str] = []
    original = RootFS.read

    def counting(self: RootFS, abs_path: str, max_bytes: int = 0) -> Any:
        reads.append(abs_path)
        return original(self, abs_path, max_bytes)

    monkeypatch.setattr(RootFS, "read", counting)
    run, _, _ = run_pipeline(host, checks=(*agent.CHECKS, *ssm.CHECKS))
    by_id = {r.check_id: r for r in run.results}
    assert isinstance(by_id["agent.package"].facts, PackageFacts)
    assert by_id["agent.package"].facts.version == "1.9.2"
    assert by_id["ssm.agent_installed"].status == Status.OK
    assert reads.count("/var/lib/dpkg/status") == 1
