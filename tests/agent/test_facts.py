"""The agent domain on the typed-facts contract: every check returns its declared facts type,
the health proof is earned from those facts, and one kernel/agent cause gives one finding."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import pytest

from gd_doctor.checks import ALL_CHECKS
from gd_doctor.checks import agent as agent_checks
from gd_doctor.checks.base import Check
from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import UNEXPLAINED, diagnose
from gd_doctor.diagnosis.verdict import ProofState, prove_health
from gd_doctor.facts.agent import PackageFacts
from gd_doctor.facts.platform import KernelFacts, OsFacts
from gd_doctor.host import Host
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.journal import (
    JournalEntry,
    UnavailableJournal,
    entry_from_fields,
    wanted,
)
from gd_doctor.host.procs import FakeProcesses, ProcessInfo
from gd_doctor.host.settings import HostSettings
from gd_doctor.knowledge.agent_versions import kernel_agents, min_agent_for_kernel
from gd_doctor.knowledge.support import judge_kernel, matrix
from gd_doctor.model import CheckResult, Status, Verdict
from gd_doctor.parsers.kernel_version import parse_kernel_release
from gd_doctor.parsers.systemctl_show import PROPERTIES
from tests.hostkit import FIXTURES, facts_with, make_host, result, run_one, run_pipeline

ROOTS = sorted(p for p in (FIXTURES / "roots").iterdir() if p.is_dir())
STANDIN = Path(__file__).resolve().parents[1] / "harness" / "standin"
CAPTURED_AT = datetime(2026, 11, 30, 13, 30, tzinfo=timezone.utc)  # the journal captures' clock
DPKG_STATUS = "Package: amazon-guardduty-agent\nStatus: install ok installed\nVersion: 1.9.2\n\n"
SHOW = ("systemctl", "show", "amazon-guardduty-agent", "-p", ",".join(PROPERTIES))
DMESG = ("dmesg", "--time-format=iso", "--kernel", "--nopager")
UNIT_PATH = "/lib/systemd/system/amazon-guardduty-agent.service"
BINARY = "/opt/aws/amazon-guardduty-agent/bin/amazon-guardduty-agent"


class CapturedJournal:
    """Entries of a real ``journalctl -o json`` capture (tests/fixtures/journal/*.json)."""

    description = "journalctl -o json (captured)"

    def __init__(self, name: str) -> None:
        lines = (FIXTURES / "journal" / f"{name}.json").read_text().splitlines()
        self.entries = [e for e in (entry_from_fields(json.loads(x)) for x in lines) if e]

    def read(
        self,
        *,
        units: Sequence[str],
        since: datetime,
        kernel: bool,
        timeout: float,
        max_entries: int,
    ) -> List[JournalEntry]:
        got = [e for e in self.entries if e.timestamp >= since and wanted(e, units, kernel)]
        return got[:max_entries]


def _assert_declared_facts(checks: Sequence[Check], results: Sequence[CheckResult]) -> int:
    """Every judged result of ``checks`` carries the facts type its check declares."""
    by_id = {c.id: c for c in checks}
    judged = 0
    for res in results:
        chk = by_id.get(res.check_id)
        if chk is None:
            continue
        assert chk.facts is not None, f"{chk.id} declares no facts type"
        if res.status in (Status.OK, Status.WARN, Status.FAIL):
            assert isinstance(res.facts, chk.facts), f"{res.check_id}: {res.facts!r}"
            judged += 1
        else:
            assert res.facts is None or isinstance(res.facts, chk.facts), res.check_id
    return judged


@pytest.mark.parametrize("case", ROOTS, ids=[p.name for p in ROOTS])
def test_every_agent_check_returns_its_facts_type_on_the_fixture_roots(case: Path) -> None:
    host = Host.from_root(case / "root", HostSettings())
    run, diagnosis, _ = run_pipeline(host, checks=ALL_CHECKS)
    assert _assert_declared_facts(agent_checks.CHECKS, run.results) >= 2  # package, unit file
    # none of these roots holds an agent but eks-node-dual-agent (its unit file and program):
    # never healthy, and every agent failure is explained
    if case.name != "eks-node-dual-agent":
        assert diagnosis.verdict != Verdict.HEALTHY
    unexplained = [f for f in diagnosis.findings if f.finding_id == UNEXPLAINED]
    assert not [c for f in unexplained for c in f.checks if c.startswith("agent.")]


def _live_agent_host(
    tmp_path: Path, *, journal: Any, show: str = "active-running", **more: Any
) -> Host:
    unit_text = (STANDIN / "amazon-guardduty-agent.service").read_text()
    files: Dict[str, Any] = {
        UNIT_PATH: unit_text.replace("@MEMORY@", "128M").replace("@EXTRA@", ""),
        BINARY: (STANDIN / "amazon-guardduty-agent").read_bytes(),
        "/proc/meminfo": "MemTotal:        3951952 kB\nMemFree:          215432 kB\n",
        "/proc/31/limits": (
            "Limit                     Soft Limit           Hard Limit           Units     \n"
            "Max locked memory         8388608              8388608              bytes     \n"
        ),
        "/var/log/amzn-guardduty-agent/agent.log": "2026-11-30T13:00:00Z INFO started\n",
        "/proc/sys/kernel/osrelease": "6.1.112-124.190.amzn2023.x86_64\n",
        "/var/lib/dpkg/status": DPKG_STATUS,
    }
    capture = (FIXTURES / f"systemctl/252/{show}.props.txt").read_text()
    return make_host(
        tmp_path,
        files=files,
        commands={SHOW: capture, DMESG: ""},
        journal=journal,
        clock=FixedClock(CAPTURED_AT),
        procs=FakeProcesses(
            [
                ProcessInfo(
                    pid=31,
                    name="amazon-guarddut",
                    rss=30 << 20,
                    cpu_percent=1.0,
                    cpu_count=2,
                    total_memory=4 << 30,
                )
            ]
        ),
        **more,
    )


def test_every_agent_check_returns_its_facts_type_on_a_live_host(tmp_path: Path) -> None:
    host = _live_agent_host(tmp_path, journal=CapturedJournal("clean-run"))
    run, _, _ = run_pipeline(host, checks=agent_checks.CHECKS)
    assert _assert_declared_facts(agent_checks.CHECKS, run.results) == len(agent_checks.CHECKS)


# --------------------------------------------------------------------------------------------
# The health proof


def test_proof_no_agent_at_all_on_al2023_is_not_healthy() -> None:
    host = Host.from_root(FIXTURES / "roots" / "al2023-x86_64" / "root", HostSettings())
    run, diagnosis, report = run_pipeline(host, checks=ALL_CHECKS)
    proof = prove_health(run.results, live=False)
    assert proof.state != ProofState.PROVEN
    assert diagnosis.verdict == Verdict.UNHEALTHY and report.verdict == Verdict.UNHEALTHY
    assert "agent.not-installed" in [f.finding_id for f in diagnosis.findings]


def test_proof_unreadable_dpkg_status_is_unknown(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "roots" / "ubuntu2204" / "root", root, symlinks=True)
    (root / "var/lib/dpkg/status").mkdir(parents=True)  # a database that cannot be read
    run, diagnosis, _ = run_pipeline(
        Host.from_root(root, HostSettings()), checks=agent_checks.CHECKS
    )
    pkg = next(r.facts for r in run.results if r.check_id == "agent.package")
    assert isinstance(pkg, PackageFacts) and pkg.installed is None and pkg.problem
    proof = prove_health(run.results, live=False)
    assert proof.state == ProofState.UNKNOWN and "/var/lib/dpkg/status" in (proof.reason or "")
    assert diagnosis.verdict != Verdict.HEALTHY


def test_proof_installed_active_running_clean_journal_is_proven(tmp_path: Path) -> None:
    host = _live_agent_host(tmp_path, journal=CapturedJournal("clean-run"))
    checks = tuple(
        c
        for c in agent_checks.CHECKS
        if c.id in ("agent.package", "agent.unit", "agent.unit_file", "agent.journal")
    )
    run, diagnosis, _ = run_pipeline(host, checks=checks)
    assert [r.status for r in run.results] == [Status.OK] * 4, [r.summary for r in run.results]
    proof = prove_health(run.results, live=True)
    assert proof.state == ProofState.PROVEN, proof.reason
    assert diagnosis.verdict == Verdict.HEALTHY and not diagnosis.findings


def test_proof_needs_the_unit_files_program_without_a_package(tmp_path: Path) -> None:
    host = _live_agent_host(tmp_path, journal=CapturedJournal("clean-run"), live=False)
    (tmp_path / "var/lib/dpkg/status").unlink()  # no package database: the files must prove it
    run, _, _ = run_pipeline(host, checks=agent_checks.CHECKS[:3])
    assert prove_health(run.results, live=False).state == ProofState.PROVEN
    (tmp_path / BINARY.lstrip("/")).unlink()
    run, _, _ = run_pipeline(host, checks=agent_checks.CHECKS[:3])
    assert prove_health(run.results, live=False).state == ProofState.DISPROVEN


def test_proof_journal_unreadable_is_unknown(tmp_path: Path) -> None:
    reason = "journalctl: Failed to open journal files: Permission denied"
    host = _live_agent_host(tmp_path, journal=UnavailableJournal(reason))
    checks = tuple(
        c
        for c in agent_checks.CHECKS
        if c.id in ("agent.package", "agent.unit", "agent.unit_file", "agent.journal")
    )
    run, diagnosis, _ = run_pipeline(host, checks=checks)
    proof = prove_health(run.results, live=True)
    assert proof.state == ProofState.UNKNOWN and "journal is unreadable" in (proof.reason or "")
    assert diagnosis.verdict == Verdict.UNKNOWN
    assert "agent.journal-unreadable" in [f.finding_id for f in diagnosis.findings]


def test_proof_restart_loop_is_disproven(tmp_path: Path) -> None:
    host = _live_agent_host(tmp_path, journal=CapturedJournal("restart-loop"))
    run, diagnosis, _ = run_pipeline(host, checks=agent_checks.CHECKS)
    assert prove_health(run.results, live=True).state == ProofState.DISPROVEN
    assert diagnosis.verdict == Verdict.UNHEALTHY


# --------------------------------------------------------------------------------------------
# One kernel -> agent table, one finding per cause


def test_the_agent_and_platform_checks_read_one_table() -> None:
    """The platform matrix's kernel judgement and the agent's lookup agree on every series."""
    table = kernel_agents()
    series = set(table.general) | {k for e in table.exceptions for k in e["kernels"]}
    oses: List[Tuple[str, str]] = [("amzn", "2023"), ("ubuntu", "24.04"), ("debian", "12")]
    for s in sorted(series):
        kernel = parse_kernel_release(f"{s}.0-1-aws")
        assert kernel is not None
        for os_id, version_id in oses:
            platform_says = judge_kernel(kernel, None, os_id, version_id, matrix()).requires_agent
            assert platform_says == min_agent_for_kernel(s, os_id, version_id), (s, os_id)


def _kernel_findings(
    tmp_path: Path, release: str, os_id: str, version_id: str, agent: str
) -> List[str]:
    os = facts_with(OsFacts, id=os_id, version_id=version_id, match="exact", matrix_date="")
    kernel = parse_kernel_release(release)
    assert kernel is not None
    judged = judge_kernel(kernel, None, os_id, version_id)
    kernel_facts = facts_with(
        KernelFacts,
        release=release,
        major_minor=kernel.major_minor,
        verdict="supported",
        requires_agent=judged.requires_agent,
    )
    os_res = result("platform.os", "ok", facts=os)
    kernel_res = result("platform.kernel", "ok", facts=kernel_facts)
    pkg = result("agent.package", "ok", facts=PackageFacts(True, manager="dpkg", version=agent))
    earlier = {r.check_id: r for r in (os_res, kernel_res, pkg)}
    out = run_one(agent_checks.version_kernel, make_host(tmp_path), earlier)
    vk = CheckResult("agent.version_kernel", "v", "agent", out.status, out.summary, facts=out.facts)
    found = diagnose([os_res, kernel_res, pkg, vk], ALL_RULES).findings
    return [f.finding_id for f in found]


def test_an_agent_too_old_for_the_kernel_is_one_finding(tmp_path: Path) -> None:
    assert _kernel_findings(tmp_path, "6.15.0-1001-aws", "ubuntu", "24.04", "1.9.1") == [
        "agent.too-old-for-kernel"
    ]
    assert _kernel_findings(tmp_path, "6.13.0-1009-aws", "ubuntu", "24.04", "1.9.0") == [
        "agent.too-old-for-kernel"
    ]


def test_the_ubuntu_only_footnote_does_not_fail_other_distributions(tmp_path: Path) -> None:
    # the old agent_kernels.json applied "6.13/6.14 need 1.9.1" to every distribution
    assert _kernel_findings(tmp_path, "6.13.0-100.fc42.x86_64", "amzn", "2023", "1.9.0") == []


def test_the_journals_window_is_the_captures(tmp_path: Path) -> None:
    """The captured journal is inside the window the proof tests use (else they prove nothing)."""
    entries = CapturedJournal("clean-run").read(
        units=["amazon-guardduty-agent.service"],
        since=CAPTURED_AT - timedelta(hours=24),
        kernel=True,
        timeout=5,
        max_entries=100,
    )
    assert entries
