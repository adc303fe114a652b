"""platform.bpf_restrictions: kernel lockdown and SELinux denials of bpf for the agent, from the
lockdown file, the audit log and the kernel log; findings labelled as analogues ("may")."""

from __future__ import annotations

from pathlib import Path

from gd_doctor.checks import security
from gd_doctor.checks.ring_buffer import DMESG
from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import diagnose
from gd_doctor.facts.security import BpfRestrictionFacts
from gd_doctor.model import Severity, SkipReason, Status
from gd_doctor.parsers.lsm import bpf_avc_denials, lockdown_mode, lockdown_refusals
from tests.hostkit import FIXTURES, make_host, result, run_one

LSM = FIXTURES / "lsm"


def _text(name: str) -> str:
    return (LSM / name).read_text(encoding="utf-8")


def test_parsers_read_the_kernel_and_audit_formats() -> None:
    assert lockdown_mode("none integrity [confidentiality]\n") == "confidentiality"
    assert lockdown_mode("[none] integrity confidentiality\n") == "none"
    refusals = lockdown_refusals(_text("dmesg.txt"))
    assert [(r.comm, r.what) for r in refusals] == [
        ("amazon-guarddut", "use of bpf to read kernel RAM"),
        ("amazon-guarddut", "use of kprobes"),
    ]  # hibernation is not one of the facilities eBPF uses
    denials = bpf_avc_denials(_text("audit.log"))
    assert [(d.perms, d.comm, d.tclass, d.permissive) for d in denials] == [
        ("prog_load", "amazon-guarddut", "bpf", False),
        ("bpf", "amazon-guarddut", "capability2", False),
        ("map_create", "tetragon", "bpf", False),
    ]


def test_a_root_with_lockdown_and_enforced_denials_warns_with_analogues(tmp_path: Path) -> None:
    files = {
        "/sys/kernel/security/lockdown": "none integrity [confidentiality]\n",
        "/sys/fs/selinux/enforce": "1",
        "/var/log/audit/audit.log": _text("audit.log"),
    }
    out = run_one(security.bpf_restrictions, make_host(tmp_path, files=files, live=False))
    assert out.status == Status.WARN, out.summary
    facts = out.facts
    assert isinstance(facts, BpfRestrictionFacts)
    assert (facts.lockdown, facts.selinux, facts.avc_count, facts.avc_enforced) == (
        "confidentiality",
        "enforcing",
        2,
        True,
    )
    assert facts.avc_perms == ("prog_load", "bpf")  # tetragon's denial is not the agent's
    found = diagnose([result("platform.bpf_restrictions", "warn", facts=facts)], ALL_RULES)
    by_id = {f.finding_id: f for f in found.findings}
    assert set(by_id) == {"platform.lockdown-restricts-bpf", "platform.selinux-denies-bpf"}
    for f in by_id.values():
        assert f.severity == Severity.WARN
        assert "may" in f.title and "analogue" in f.title
    assert "audit2allow" in (by_id["platform.selinux-denies-bpf"].fix_step or "")


def test_permissive_and_other_processes_denials_are_no_finding(tmp_path: Path) -> None:
    files = {
        "/sys/kernel/security/lockdown": "[none] integrity confidentiality\n",
        "/var/log/audit/audit.log": _text("audit-permissive.log"),
    }
    out = run_one(security.bpf_restrictions, make_host(tmp_path, files=files, live=False))
    assert out.status == Status.OK, out.summary
    assert out.facts.avc_count == 1 and not out.facts.avc_enforced  # type: ignore[union-attr]
    found = diagnose([result("platform.bpf_restrictions", "ok", facts=out.facts)], ALL_RULES)
    assert not [f for f in found.findings if f.finding_id.startswith("platform.")]


def test_live_reads_the_kernel_log_through_dmesg(tmp_path: Path) -> None:
    host = make_host(
        tmp_path,
        files={"/usr/bin/dmesg": ""},
        commands={DMESG: _text("dmesg.txt")},
    )
    out = run_one(security.bpf_restrictions, host)
    assert out.status == Status.WARN and out.facts.lockdown_count == 2  # type: ignore[union-attr]
    found = diagnose([result("platform.bpf_restrictions", "warn", facts=out.facts)], ALL_RULES)
    (lockdown,) = [f for f in found.findings if f.finding_id == "platform.lockdown-restricts-bpf"]
    assert "use of kprobes" in lockdown.title


def test_an_empty_root_is_skipped_with_its_reason(tmp_path: Path) -> None:
    out = run_one(security.bpf_restrictions, make_host(tmp_path, live=False))
    assert out.status == Status.SKIP and out.skip_reason == SkipReason.UNAVAILABLE_WITH_ROOT
    assert isinstance(out.facts, BpfRestrictionFacts) and out.facts.lockdown is None


def test_the_ring_buffer_is_read_once_for_both_checks_that_need_it(tmp_path: Path) -> None:
    from gd_doctor.checks import ALL_CHECKS
    from gd_doctor.facts.agent_logs import KernelLogFacts
    from gd_doctor.facts.security import BpfRestrictionFacts
    from tests.hostkit import run_pipeline

    host = make_host(
        tmp_path,
        files={"/usr/bin/dmesg": ""},
        commands={DMESG: _text("dmesg.txt")},
    )
    chosen = [c for c in ALL_CHECKS if c.id in ("agent.kernel_log", "platform.bpf_restrictions")]
    run, _, _ = run_pipeline(host, checks=chosen)
    by_id = {r.check_id: r for r in run.results}
    assert isinstance(by_id["platform.bpf_restrictions"].facts, BpfRestrictionFacts)
    assert by_id["platform.bpf_restrictions"].facts.lockdown_count == 2
    assert isinstance(by_id["agent.kernel_log"].facts, KernelLogFacts)
    assert [key for key, _ in host.run.calls if key == DMESG] == [DMESG]  # type: ignore[attr-defined]
    # another run (another runner) reads it again
    again = make_host(tmp_path, files={"/usr/bin/dmesg": ""}, commands={DMESG: ""})
    run_pipeline(again, checks=chosen)
    assert [key for key, _ in again.run.calls if key == DMESG] == [DMESG]  # type: ignore[attr-defined]
