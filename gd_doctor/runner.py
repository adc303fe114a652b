"""Runs the registered checks: dependencies, isolation, parallelism and one time budget.

* Every check runs in isolation: an exception becomes an ERROR result with its reason (``--debug``
  re-raises it instead).
* A check whose ``requires`` did not pass is skipped with ``BLOCKED_BY:<id>``; one that needs the
  live host is skipped with ``UNAVAILABLE_WITH_ROOT`` when a root is analysed.
* Checks start as soon as what they wait for has finished, on a small pool of worker threads, so
  network probes overlap. Every I/O call has its own timeout, clamped to the deadline.
* The whole run has one budget. When it is spent the runner stops waiting: a check still running
  is an ERROR marked ``timed_out``, one not started is a SKIP marked ``timed_out``, and the report
  is produced all the same. Workers are daemon threads, so a stuck probe cannot hold the exit;
  they end with the run.
"""

from __future__ import annotations

import queue
import threading
import traceback
from dataclasses import dataclass, replace
from typing import AbstractSet, Callable, Dict, List, Optional, Sequence, Tuple

from gd_doctor.checks.base import Check, Context, Options
from gd_doctor.facts import Facts, to_data
from gd_doctor.host import Host
from gd_doctor.limits import MAX_SUMMARY, cut_lines, cut_text
from gd_doctor.model import CheckResult, Outcome, SkipReason, Status

ProgressFn = Callable[[CheckResult, int, int], None]


@dataclass(frozen=True)
class RunOutcome:
    """The results in registry order, and whether the budget ran out."""

    results: Tuple[CheckResult, ...]
    budget_exhausted: bool
    duration_s: float


class FactsContractError(TypeError):
    """A check returned facts of another type than it declared."""


def _checked_facts(chk: Check, outcome: Outcome) -> Optional[Facts]:
    """The outcome's facts, after checking they are of the type the check declared."""
    got = outcome.facts
    if got is None:
        return None
    if chk.facts is None or not isinstance(got, chk.facts):
        declared = chk.facts.__name__ if chk.facts else "no facts"
        raise FactsContractError(f"{chk.id} returned {type(got).__name__}, but declares {declared}")
    return got


def _stamp(chk: Check, outcome: Outcome, duration: float) -> CheckResult:
    facts = _checked_facts(chk, outcome)
    return CheckResult(
        check_id=chk.id,
        title=chk.title,
        category=chk.category,
        status=outcome.status,
        summary=cut_text(outcome.summary, MAX_SUMMARY),
        data=to_data(facts) if facts is not None else {},
        evidence=cut_lines(tuple(outcome.evidence)),
        skip_reason=outcome.skip_reason,
        duration_s=round(duration, 4),
        facts=facts,
    )


def _crash_result(chk: Check, exc: BaseException, duration: float) -> CheckResult:
    return CheckResult(
        check_id=chk.id,
        title=chk.title,
        category=chk.category,
        status=Status.ERROR,
        summary=f"check crashed: {type(exc).__name__}: {exc}",
        error="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        duration_s=round(duration, 4),
    )


def _skipped(chk: Check, reason: str, summary: str, timed_out: bool = False) -> CheckResult:
    return CheckResult(
        check_id=chk.id,
        title=chk.title,
        category=chk.category,
        status=Status.SKIP,
        summary=summary,
        skip_reason=reason,
        timed_out=timed_out,
    )


def _precondition_skip(
    chk: Check,
    host: Host,
    results: Dict[str, CheckResult],
    selected: Dict[str, Check],
    deselected: AbstractSet[str],
) -> Optional[CheckResult]:
    """A SKIP result when the check must not run, else None."""
    if chk.id in deselected:
        return _skipped(chk, SkipReason.NOT_SELECTED, "skipped on request (--skip)")
    if "live" in chk.needs and not host.live:
        return _skipped(
            chk, SkipReason.UNAVAILABLE_WITH_ROOT, "needs the live host; a root is being analysed"
        )
    for dep in chk.requires:
        if dep not in selected:
            return _skipped(chk, f"{SkipReason.BLOCKED_BY}:{dep}", f"prerequisite {dep} not run")
        res = results[dep]
        if not res.passed:
            return _skipped(
                chk, f"{SkipReason.BLOCKED_BY}:{dep}", f"prerequisite {dep} is {res.status.value}"
            )
    return None


def _ready(chk: Check, results: Dict[str, CheckResult], selected: Dict[str, Check]) -> bool:
    return all(dep in results for dep in chk.waits_on if dep in selected)


class _Pool:
    """Worker threads that run checks; they end when the run closes the pool.

    Daemon threads, so a check stuck past the budget cannot hold the exit; such a worker ends
    as soon as its check returns (every I/O call in a check has its own timeout).
    """

    def __init__(self, workers: int, execute: Callable[[Check], None]) -> None:
        self._queue: queue.Queue[Optional[Check]] = queue.Queue()
        self._execute = execute
        self._workers = workers
        for n in range(workers):
            threading.Thread(target=self._work, name=f"gd-doctor-check-{n}", daemon=True).start()

    def submit(self, chk: Check) -> None:
        self._queue.put(chk)

    def close(self) -> None:
        """Let every worker end once the checks queued before this are done."""
        for _ in range(self._workers):
            self._queue.put(None)

    def _work(self) -> None:
        while True:
            chk = self._queue.get()
            if chk is None:
                return
            self._execute(chk)


def run_checks(
    host: Host,
    checks: Sequence[Check],
    options: Options,
    *,
    budget_s: float,
    debug: bool = False,
    deselected: AbstractSet[str] = frozenset(),
    workers: int = 8,
    progress: Optional[ProgressFn] = None,
) -> RunOutcome:
    """Run ``checks`` (in registry order) against ``host`` within ``budget_s`` seconds."""
    clock = host.clock
    start = clock.monotonic()
    deadline = start + budget_s
    selected: Dict[str, Check] = {c.id: c for c in checks}
    results: Dict[str, CheckResult] = {}
    running: Dict[str, float] = {}
    crashes: List[BaseException] = []
    cond = threading.Condition()

    def finish(res: CheckResult) -> None:
        # Called with cond held.
        if res.check_id in results:
            return  # already given up on as timed out
        results[res.check_id] = res
        running.pop(res.check_id, None)
        if progress is not None:
            progress(res, len(results), len(selected))
        cond.notify_all()

    def execute(chk: Check) -> None:
        with cond:
            snapshot = dict(results)
        ctx = Context(host, options, snapshot, deadline)
        t0 = clock.monotonic()
        try:
            outcome = chk.func(ctx)
            if not isinstance(outcome, Outcome):
                raise TypeError(f"check returned {type(outcome).__name__}, not an Outcome")
            res = _stamp(chk, outcome, clock.monotonic() - t0)
        except BaseException as exc:  # noqa: BLE001 - the isolation boundary of every check
            if debug:
                with cond:
                    crashes.append(exc)
                    cond.notify_all()
                return
            res = _crash_result(chk, exc, clock.monotonic() - t0)
        with cond:
            finish(res)

    pool = _Pool(max(1, min(workers, len(checks))), execute) if checks else None
    try:
        waiting = list(checks)
        with cond:
            while len(results) < len(selected):
                if crashes:
                    raise crashes[0]
                progressed = True
                while progressed:
                    progressed = False
                    for chk in list(waiting):
                        if not _ready(chk, results, selected):
                            continue
                        waiting.remove(chk)
                        progressed = True
                        skipped = _precondition_skip(chk, host, results, selected, deselected)
                        if skipped is not None:
                            finish(skipped)
                        elif pool is not None:
                            running[chk.id] = clock.monotonic()
                            pool.submit(chk)
                if len(results) >= len(selected):
                    break
                left = deadline - clock.monotonic()
                if left <= 0:
                    break
                if not running and waiting:
                    # Nothing runs and nothing can start: a dependency cycle. The registry
                    # conformance test forbids it; fail loudly rather than wait for the budget.
                    raise RuntimeError(f"checks wait on each other: {[c.id for c in waiting]}")
                cond.wait(timeout=min(left, 0.5))
            exhausted = len(results) < len(selected)
            if exhausted:
                now = clock.monotonic()
                for chk_id, t0 in list(running.items()):
                    chk = selected[chk_id]
                    finish(
                        replace(
                            _stamp(
                                chk,
                                Outcome(Status.ERROR, "did not finish within the time budget"),
                                now - t0,
                            ),
                            timed_out=True,
                        )
                    )
                for chk in waiting:
                    if chk.id not in results:
                        finish(
                            _skipped(
                                chk,
                                SkipReason.TIMED_OUT,
                                "not started: the time budget ran out",
                                timed_out=True,
                            )
                        )
            ordered = tuple(results[c.id] for c in checks)
    finally:
        if pool is not None:
            pool.close()
    return RunOutcome(ordered, exhausted, round(clock.monotonic() - start, 4))
