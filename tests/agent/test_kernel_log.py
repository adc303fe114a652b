"""agent.kernel_log: cgroup OOM kills of the agent in the kernel ring buffer (dmesg)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List

from gd_doctor.checks import agent_logs as agent
from gd_doctor.checks.base import Options
from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import diagnose
from gd_doctor.facts.agent import UnitFacts
from gd_doctor.facts.agent_logs import JournalFacts, KernelLogFacts
from gd_doctor.host.clock import FixedClock
from gd_doctor.model import CheckResult, Outcome, SkipReason, Status
from tests.hostkit import FIXTURES, make_host, result, run_one, since

DMESG = ("dmesg", "--time-format=iso", "--kernel", "--nopager")
# Real capture: this build machine's ring buffer after the test harness had the stand-in agent
# (comm "amazon-guarddut") OOM-killed in a 160 MiB memory cgroup (tests/fixtures/README.md).
REAL = (FIXTURES / "agent" / "dmesg-oom-kill.txt").read_text()
AFTER = FixedClock(datetime(2026, 11, 30, 15, 0, tzinfo=timezone.utc))


def test_real_oom_kill_is_found_with_its_line(tmp_path: Path) -> None:
    host = make_host(tmp_path, commands={DMESG: REAL}, clock=AFTER)
    out = run_one(agent.kernel_log, host)
    assert out.status == Status.FAIL and isinstance(out.facts, KernelLogFacts)
    assert out.facts.oom_kills == 1
    assert out.facts.last_oom_kill == "2026-11-30T14:13:32.628925+00:00"
    assert any("Killed process 14499 (amazon-guarddut)" in e for e in out.evidence)


def test_kills_before_the_window_do_not_count(tmp_path: Path) -> None:
    host = make_host(tmp_path, commands={DMESG: REAL}, clock=AFTER)
    out = run_one(agent.kernel_log, host, options=Options(since=since(0.5)))
    assert out.status == Status.OK and _facts(out).oom_kills == 0


def test_other_processes_oom_kills_are_not_the_agent(tmp_path: Path) -> None:
    other = REAL.replace("(amazon-guarddut)", "(java)").replace("task=amazon-guarddut", "task=java")
    out = run_one(agent.kernel_log, make_host(tmp_path, commands={DMESG: other}, clock=AFTER))
    assert out.status == Status.OK and _facts(out).oom_kills == 0


def test_restricted_ring_buffer_needs_root(tmp_path: Path) -> None:
    denied = (1, "", "dmesg: read kernel buffer failed: Operation not permitted\n")
    out = run_one(agent.kernel_log, make_host(tmp_path, commands={DMESG: denied}, euid=1000))
    assert out.status == Status.SKIP and out.skip_reason == SkipReason.NEEDS_ROOT


def test_missing_dmesg_is_not_applicable(tmp_path: Path) -> None:
    from gd_doctor.host.commands import CommandResult

    gone = CommandResult(DMESG, None, problem="not found")
    out = run_one(agent.kernel_log, make_host(tmp_path, commands={DMESG: gone}))
    assert out.status == Status.SKIP and out.skip_reason == SkipReason.NOT_APPLICABLE


def test_garbage_output_is_no_kill_not_a_crash(tmp_path: Path) -> None:
    junk = "\x00\x01 not dmesg at all\n" + "é" * 5000
    out = run_one(agent.kernel_log, make_host(tmp_path, commands={DMESG: junk}))
    assert out.status == Status.OK and _facts(out).oom_kills == 0


def test_unreadable_ring_buffer_is_not_zero_kills(tmp_path: Path) -> None:
    failed = (1, "", "dmesg: klogctl failed: Input/output error\n")
    out = run_one(agent.kernel_log, make_host(tmp_path, commands={DMESG: failed}))
    assert out.status == Status.WARN and _facts(out).oom_kills is None
    assert "Input/output error" in (_facts(out).problem or "")


def _findings(*results: CheckResult) -> List[str]:
    return [f.finding_id for f in diagnose(list(results), ALL_RULES).findings]


def test_ring_buffer_kills_name_oom_when_the_journal_missed_them() -> None:
    # cgroup v1: systemd says Result=signal and the journal kept no kernel line
    unit = result(
        "agent.unit",
        "fail",
        facts=UnitFacts("loaded", "activating", "auto-restart", result="signal", n_restarts=5),
    )
    journal = result(
        "agent.journal",
        "fail",
        facts=JournalFacts(None, failed_exits=5, restarts_scheduled=5, starts=5),
    )
    kernel = result("agent.kernel_log", "fail", facts=KernelLogFacts(2))
    found = _findings(unit, journal, kernel)
    assert found[0] == "agent.oom-killed"
    assert "agent.crash-loop" not in found


def test_journal_and_ring_buffer_seeing_the_same_kill_count_it_once() -> None:
    journal = result("agent.journal", "fail", facts=JournalFacts(None, oom_kills=1))
    kernel = result("agent.kernel_log", "fail", facts=KernelLogFacts(1))
    oom = [
        f
        for f in diagnose([journal, kernel], ALL_RULES).findings
        if f.finding_id == "agent.oom-killed"
    ]
    assert len(oom) == 1 and "1 time" in oom[0].title


def _journal(**kw: Any) -> Dict[str, CheckResult]:
    return {"agent.journal": result("agent.journal", "fail", facts=JournalFacts(None, **kw))}


def _facts(out: Outcome) -> KernelLogFacts:
    assert isinstance(out.facts, KernelLogFacts)
    return out.facts


def test_a_kill_counts_when_the_unit_died_of_sigkill_at_that_moment(tmp_path: Path) -> None:
    host = make_host(tmp_path, commands={DMESG: REAL}, clock=AFTER)
    # systemd: "Main process exited, code=killed, status=9/KILL" a moment after the kernel line
    out = run_one(
        agent.kernel_log, host, _journal(sigkill_exits=("2026-11-30T14:13:33.101000+00:00",))
    )
    assert out.status == Status.FAIL
    assert _facts(out).oom_kills == 1 and _facts(out).paired_with_journal is True


def test_a_kill_of_a_namesake_elsewhere_on_the_kernel_is_only_a_warning(tmp_path: Path) -> None:
    # the ring buffer is the whole kernel's: another container's process with the same name
    host = make_host(tmp_path, commands={DMESG: REAL}, clock=AFTER)
    out = run_one(agent.kernel_log, host, _journal(sigkill_exits=(), starts=3))
    assert out.status == Status.WARN
    assert _facts(out).oom_kills == 0 and _facts(out).named_oom_kills == 1
    assert "none of them the unit's main process" in out.summary
    found = _findings(result("agent.kernel_log", "warn", facts=_facts(out)))
    assert "agent.oom-killed" not in found


def test_the_journal_records_sigkill_deaths_for_the_pairing() -> None:
    from types import SimpleNamespace as E

    from gd_doctor.parsers.journal_events import summarise_unit

    u = "amazon-guardduty-agent.service"
    t = datetime(2026, 11, 30, 14, 13, 33, tzinfo=timezone.utc)
    hist = summarise_unit(
        [
            E(timestamp=t, message="Started amazon-guardduty-agent.service.", fields={"UNIT": u}),
            E(
                timestamp=t,
                message=u + ": Main process exited, code=killed, status=9/KILL",
                fields={"UNIT": u},
            ),
        ],
        u,
    )
    assert hist.as_data()["sigkill_exits"] == [t.isoformat()]
