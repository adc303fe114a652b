"""Rules about gd-doctor's own run (time budget)."""

from __future__ import annotations

from typing import Tuple

from gd_doctor.diagnosis.base import Results, Rule, RuleOutput, finding, rule


@rule("tool.budget_exhausted")
def budget_exhausted(r: Results) -> RuleOutput:
    """Some checks were cut short by the global --timeout budget."""
    pending = [res.check_id for res in r.all() if res.timed_out]
    if not pending:
        return None
    return finding(
        "tool.budget-exhausted",
        evidence=[", ".join(pending)],
        checks=pending,
        pending=len(pending),
    )


RULES: Tuple[Rule, ...] = (budget_exhausted,)
