"""Rules about gd-doctor's own run (time budget)."""

from __future__ import annotations

from typing import Tuple

from gd_doctor.diagnosis.base import Rule, RuleOutput, RunResults, finding, rule


@rule("tool.budget_exhausted", reads=(RunResults,))
def budget_exhausted(run: RunResults) -> RuleOutput:
    """Some checks were cut short by the global --timeout budget."""
    pending = [res.check_id for res in run.results if res.timed_out]
    if not pending:
        return None
    return finding(
        "tool.budget-exhausted",
        evidence=[", ".join(pending)],
        checks=pending,
        pending=len(pending),
    )


RULES: Tuple[Rule, ...] = (budget_exhausted,)
