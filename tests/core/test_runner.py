"""The runner: isolation, prerequisites, live-only checks, parallelism and the time budget."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

import pytest

from gd_doctor.checks.base import Context, Options, check, fail, ok
from gd_doctor.model import Facts, Outcome, SkipReason, Status
from gd_doctor.runner import run_checks
from tests.hostkit import make_host


@dataclass(frozen=True)
class AlphaFacts(Facts):
    value: int


@check("platform.alpha", title="alpha", category="platform", facts=AlphaFacts)
def alpha(ctx: Context) -> Outcome:
    """Passes."""
    return ok("fine", facts=AlphaFacts(1))


@check("platform.broken", title="broken", category="platform")
def broken(ctx: Context) -> Outcome:
    """Crashes."""
    raise ValueError("unexpected host data")


@check("platform.failing", title="failing", category="platform")
def failing(ctx: Context) -> Outcome:
    """Fails."""
    return fail("nope")


@check(
    "platform.after_alpha",
    title="reads alpha",
    category="platform",
    requires=("platform.alpha",),
    reads=(AlphaFacts,),
)
def after_alpha(ctx: Context) -> Outcome:
    """Reads the facts of its prerequisite."""
    facts = ctx.facts(AlphaFacts)
    return ok(f"alpha said {facts.value if facts else None}")


@check(
    "platform.after_failing",
    title="needs failing",
    category="platform",
    requires=("platform.failing",),
)
def after_failing(ctx: Context) -> Outcome:
    """Never runs."""
    raise AssertionError("must not run")


@check("platform.live_only", title="live only", category="platform", needs=("live",))
def live_only(ctx: Context) -> Outcome:
    """Needs the live host."""
    return ok("live")


def _sleeper(check_id: str, seconds: float, log: List[str]):  # type: ignore[no-untyped-def]
    @check(check_id, title=check_id, category="network", needs=("network",))
    def sleeper(ctx: Context) -> Outcome:
        """Sleeps like a slow probe."""
        log.append(threading.current_thread().name)
        time.sleep(seconds)
        return ok("slept")

    return sleeper


def test_crash_becomes_error_and_run_goes_on(tmp_path: Path) -> None:
    run = run_checks(make_host(tmp_path), [broken, alpha], Options(), budget_s=5)
    res = {r.check_id: r for r in run.results}
    assert res["platform.broken"].status == Status.ERROR
    assert "ValueError: unexpected host data" in res["platform.broken"].summary
    assert "Traceback" in (res["platform.broken"].error or "")
    assert res["platform.alpha"].status == Status.OK


def test_debug_reraises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unexpected host data"):
        run_checks(make_host(tmp_path), [broken], Options(), budget_s=5, debug=True)


def test_prerequisites_block_and_feed_dependants(tmp_path: Path) -> None:
    run = run_checks(
        make_host(tmp_path), [alpha, failing, after_alpha, after_failing], Options(), budget_s=5
    )
    res = {r.check_id: r for r in run.results}
    assert res["platform.after_alpha"].summary == "alpha said 1"
    blocked = res["platform.after_failing"]
    assert blocked.status == Status.SKIP
    assert blocked.skip_reason == f"{SkipReason.BLOCKED_BY}:platform.failing"
    assert [r.check_id for r in run.results] == [
        "platform.alpha",
        "platform.failing",
        "platform.after_alpha",
        "platform.after_failing",
    ]


def test_live_checks_are_skipped_on_a_root(tmp_path: Path) -> None:
    run = run_checks(make_host(tmp_path, live=False), [live_only], Options(), budget_s=5)
    assert run.results[0].skip_reason == SkipReason.UNAVAILABLE_WITH_ROOT
    run = run_checks(make_host(tmp_path, live=True), [live_only], Options(), budget_s=5)
    assert run.results[0].status == Status.OK


def test_deselected_checks_are_reported_and_block_dependants(tmp_path: Path) -> None:
    run = run_checks(
        make_host(tmp_path),
        [alpha, after_alpha],
        Options(),
        budget_s=5,
        deselected={"platform.alpha"},
    )
    res = {r.check_id: r for r in run.results}
    assert res["platform.alpha"].skip_reason == SkipReason.NOT_SELECTED
    assert res["platform.after_alpha"].skip_reason == "BLOCKED_BY:platform.alpha"


def test_network_checks_run_in_parallel(tmp_path: Path) -> None:
    log: List[str] = []
    probes = [_sleeper(f"network.p{n}", 0.4, log) for n in range(4)]
    t0 = time.monotonic()
    run = run_checks(make_host(tmp_path), probes, Options(), budget_s=10)
    elapsed = time.monotonic() - t0
    assert all(r.status == Status.OK for r in run.results)
    assert len(set(log)) == 4, "each probe ran on its own worker"
    assert elapsed < 1.2, f"4 x 0.4 s probes took {elapsed:.2f} s: not parallel"


def test_budget_exhaustion_still_produces_every_result(tmp_path: Path) -> None:
    log: List[str] = []
    slow = _sleeper("network.slow", 3.0, log)

    @check("network.after_slow", title="after slow", category="network", requires=("network.slow",))
    def after_slow(ctx: Context) -> Outcome:
        """Waits for the slow probe."""
        return ok("never")

    t0 = time.monotonic()
    run = run_checks(make_host(tmp_path), [alpha, slow, after_slow], Options(), budget_s=0.5)
    elapsed = time.monotonic() - t0
    res = {r.check_id: r for r in run.results}
    assert run.budget_exhausted
    assert elapsed < 1.5, f"the runner waited {elapsed:.2f} s past a 0.5 s budget"
    assert res["platform.alpha"].status == Status.OK
    assert res["network.slow"].status == Status.ERROR and res["network.slow"].timed_out
    assert res["network.after_slow"].status == Status.SKIP
    assert res["network.after_slow"].skip_reason == SkipReason.TIMED_OUT
    assert res["network.after_slow"].timed_out


def test_context_timeout_never_exceeds_the_deadline(tmp_path: Path) -> None:
    seen: List[float] = []

    @check("platform.timeouts", title="t", category="platform")
    def timeouts(ctx: Context) -> Outcome:
        """Records the clamped timeout."""
        seen.append(ctx.timeout(30.0))
        return ok("done")

    run_checks(make_host(tmp_path), [timeouts], Options(), budget_s=2)
    assert 0 < seen[0] <= 2.0


def test_a_check_returning_garbage_is_an_error(tmp_path: Path) -> None:
    @check("platform.garbage", title="g", category="platform")
    def garbage(ctx: Context) -> Outcome:
        """Returns the wrong type."""
        return "ok"  # type: ignore[return-value]

    run = run_checks(make_host(tmp_path), [garbage], Options(), budget_s=2)
    assert run.results[0].status == Status.ERROR
    assert "not an Outcome" in run.results[0].summary


def test_runs_leave_no_worker_threads_behind(tmp_path: Path) -> None:
    # Threads of earlier tests (a check deliberately stuck past its budget) are not counted.
    before = {t.ident for t in threading.enumerate()}

    def ours() -> list:  # type: ignore[type-arg]
        return [t.name for t in threading.enumerate() if t.ident not in before]

    for _ in range(5):
        run_checks(make_host(tmp_path), [alpha, after_alpha], Options(), budget_s=5, workers=8)
    deadline = time.monotonic() + 2
    while ours() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ours() == []
