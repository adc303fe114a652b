"""Runaway commands: each runs in its own process group, its output is capped while it runs,
and at its timeout, at the cap, at its exit and at the end of the run nothing of it survives."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import List

import psutil
import pytest

from gd_doctor.checks.base import Context, check, ok
from gd_doctor.host.commands import CommandResult, SubprocessRunner
from gd_doctor.model import Outcome
from gd_doctor.pipeline import run_doctor
from tests.faults.hostile import children, run_runaway
from tests.hostkit import make_host


def _left() -> List[int]:
    time.sleep(0.05)
    return children()


@pytest.fixture(autouse=True)
def _no_strays() -> None:
    assert children() == [], "a process from before this test is still running"


def test_timeout_kills_the_whole_group() -> None:
    runner = SubprocessRunner()
    start = time.monotonic()
    res = runner.run(["sh", "-c", "sleep 100 & sleep 100 & wait"], timeout=0.5)
    assert time.monotonic() - start < 1.5
    assert res.problem == "timed out after 0.5 s" and res.returncode is None
    assert _left() == []


def test_a_child_holding_the_pipes_does_not_hold_the_run() -> None:
    """The command exits at once; its background child keeps stdout open for 100 s."""
    res = SubprocessRunner().run(["sh", "-c", "sleep 100 & echo started"], timeout=10)
    assert res.ok and res.stdout == "started\n"
    assert _left() == []


def test_children_in_subshells_die_with_the_group() -> None:
    res = SubprocessRunner().run(
        ["sh", "-c", "for i in 1 2 3; do (sleep 100 &); done; echo spawned"], timeout=10
    )
    assert res.ok and res.stdout == "spawned\n"
    assert _left() == []


def test_a_command_that_closes_its_pipes_still_times_out() -> None:
    start = time.monotonic()
    res = SubprocessRunner().run(["sh", "-c", "exec >&- 2>&-; sleep 100"], timeout=0.5)
    assert res.problem and "timed out" in res.problem
    assert time.monotonic() - start < 1.5 and _left() == []


def test_exit_status_after_closing_pipes() -> None:
    res = SubprocessRunner().run(["sh", "-c", "exec >&- 2>&-; sleep 0.2; exit 3"], timeout=5)
    assert res.returncode == 3 and res.problem is None


def test_output_is_capped_while_the_command_runs() -> None:
    """1 GiB of output: read up to the cap, the command stopped there; memory stays small."""
    proc = psutil.Process()
    before = proc.memory_info().rss
    start = time.monotonic()
    res = SubprocessRunner(max_output=1 << 20).run(["head", "-c", "1G", "/dev/zero"], timeout=30)
    assert time.monotonic() - start < 5  # 1 GiB would take far longer to pass through
    assert res.truncated and res.returncode is None and res.problem is None
    assert len(res.stdout) == 1 << 20
    assert proc.memory_info().rss - before < 64 << 20
    assert _left() == []


def test_stderr_flood_is_capped_too() -> None:
    res = SubprocessRunner(max_stderr=4096).run(["sh", "-c", "yes >&2"], timeout=30)
    assert res.truncated and len(res.stderr) == 4096 and not res.ok
    assert _left() == []


def test_close_kills_commands_of_abandoned_threads_and_refuses_new_ones() -> None:
    runner = SubprocessRunner()
    got: List[CommandResult] = []
    t = threading.Thread(
        target=lambda: got.append(runner.run(["sh", "-c", "sleep 100 & sleep 100"], timeout=60))
    )
    t.start()
    deadline = time.monotonic() + 5
    # wait for sh and both of its sleeps (a loaded machine forks slowly)
    while len(children()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runner.running == 1 and len(children()) >= 2
    runner.close()
    t.join(5)
    assert not t.is_alive() and got and not got[0].ok
    assert _left() == []
    assert runner.run(["true"], timeout=1).problem == "not run: the run is over"


def test_run_doctor_leaves_no_command_behind(tmp_path: Path) -> None:
    """A check stuck in a command past the budget: the run ends on time and kills it."""

    @check("platform.stuck", title="stuck", category="platform")
    def stuck(ctx: Context) -> Outcome:
        ctx.host.run.run(["sh", "-c", "sleep 100 & sleep 100"], timeout=60)
        return ok("never")

    host = make_host(tmp_path, run=SubprocessRunner())
    start = time.monotonic()
    done = run_doctor(host, checks=[stuck], rules=[], budget_s=1.0)
    assert time.monotonic() - start < 1.0 * 1.05 + 0.5
    assert done.outcome.budget_exhausted
    assert _left() == []


def test_runaway_figures() -> None:
    runs = run_runaway(timeout=0.5)
    assert all(r.elapsed_s < 0.5 * 1.05 + 0.5 for r in runs), runs
    assert all(r.processes_left == 0 for r in runs), runs
    assert {r.name for r in runs if r.truncated} == {"flood", "flood-stderr"}
