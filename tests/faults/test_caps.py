"""Every list, string and the report as a whole have a cap; what is cut is counted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping, Tuple

from gd_doctor.checks.base import Context, check, fail
from gd_doctor.facts import Facts, to_data
from gd_doctor.limits import MAX_LIST, MAX_REPORT_BYTES, MAX_TEXT
from gd_doctor.model import Outcome
from gd_doctor.pipeline import run_doctor
from gd_doctor.report.json import render_json
from gd_doctor.report.style import Style
from gd_doctor.report.text import render_text
from tests.hostkit import make_host, validate_report


@dataclass(frozen=True)
class FloodFacts(Facts):
    errors: Tuple[str, ...]
    env: Mapping[str, str]
    blob: str


def _flood() -> FloodFacts:
    return FloodFacts(
        errors=tuple(f"line {n}: junk" for n in range(50_000)),
        env={f"K{n}": "v" * 100 for n in range(5000)},
        blob="x" * 1_000_000,
    )


def test_facts_lists_maps_and_strings_are_cut_and_counted() -> None:
    data = to_data(_flood())
    assert len(data["errors"]) == MAX_LIST and data["errors_left_out"] == 50_000 - MAX_LIST
    assert len(data["env"]) == MAX_LIST + 1 and data["env"]["_left_out"] == 5000 - MAX_LIST
    assert len(data["blob"]) < MAX_TEXT + 50 and "more characters" in data["blob"]


@check("platform.flood_test", title="flood", category="platform", facts=FloodFacts)
def flood(ctx: Context) -> Outcome:
    """Returns facts, evidence and a summary far over every cap."""
    return fail("s" * 100_000, facts=_flood(), evidence=[f"e{n}" * 500 for n in range(100_000)])


def test_a_flooding_check_gives_a_bounded_report(tmp_path) -> None:  # type: ignore[no-untyped-def]
    done = run_doctor(make_host(tmp_path), checks=[flood], budget_s=10)
    result = done.report.checks[0]
    assert len(result.evidence) <= 20 and "more lines" in result.evidence[-1]
    assert len(result.summary) < 600
    text_json = render_json(done.report)
    assert len(text_json.encode()) <= MAX_REPORT_BYTES
    validate_report(text_json)
    text = render_text(done.report, Style(unicode=True, color=False), verbose=True)
    assert len(text) < 200_000
    # the unexplained failure names the check, with bounded evidence too
    doc = json.loads(text_json)
    assert [f["id"] for f in doc["findings"]] == ["tool.unexplained-failure"]
    assert len(doc["findings"][0]["evidence"]) <= 20
