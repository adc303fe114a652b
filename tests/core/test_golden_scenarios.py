"""Golden text reports of the simulator's root scenarios, built in-process at 80 columns.

Each ``root`` scenario of tests/scenarios (except those the in-process build cannot stage:
arguments, journal exports, recorded gaps; see test_ranking_staged._NOT_STAGED) is laid out the
way the simulator lays it out and analysed offline like ``gd-doctor check --root``. The text
report must match tests/core/golden/scenarios/<name>.txt; regenerate on purpose and review:

    GD_DOCTOR_UPDATE_GOLDEN=1 python -m pytest tests/core/test_golden_scenarios.py
    git diff tests/core/golden/scenarios/

The live scenarios' reports need the simulator (network namespaces, real systemd): their text is
checked by the simulator's judge, not here.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from gd_doctor.host import Host
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.settings import HostSettings
from gd_doctor.pipeline import run_doctor
from gd_doctor.report.style import Style
from gd_doctor.report.text import render_text
from tests.core.test_ranking_staged import _NOT_STAGED, _build_root
from tests.hostkit import NOW
from tests.simulator.scenario import discover

GOLDEN = Path(__file__).resolve().parent / "golden" / "scenarios"
UPDATE = os.environ.get("GD_DOCTOR_UPDATE_GOLDEN") == "1"
SCENARIOS = {
    sc.name: sc
    for sc in discover()
    if sc.kind == "root" and not any(sc.spec.get(key) for key in _NOT_STAGED)
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_root_scenario_text_report_matches_golden(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = SCENARIOS[name]
    # a relative root, so that the file does not depend on where the test ran
    monkeypatch.chdir(tmp_path)
    root = Path("scenarios") / name / "root"
    root.mkdir(parents=True)
    _build_root(sc, root)
    host = Host.from_root(root, HostSettings())
    host = dataclasses.replace(host, euid=0, clock=FixedClock(NOW))
    report = run_doctor(host, budget_s=30.0, started_at=NOW).report
    # the simulator's own expectations hold in-process too
    assert report.verdict.value == sc.expect["verdict"], name
    problems = [f.finding_id for f in report.findings if f.severity.value != "info"]
    if sc.expect.get("top_finding") and sc.expect["verdict"] != "unknown":
        assert problems[:1] == [sc.expect["top_finding"]], (name, problems)
    text = render_text(report, Style(unicode=True, color=False), width=80)
    path = GOLDEN / f"{name}.txt"
    if UPDATE or not path.exists():
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.name} changed: review, then GD_DOCTOR_UPDATE_GOLDEN=1 (see this module)"
    )


def test_every_root_scenario_but_the_unstageable_has_a_golden_report() -> None:
    assert len(SCENARIOS) >= 8, sorted(SCENARIOS)
    names = {p.stem for p in GOLDEN.glob("*.txt")}
    assert names == set(SCENARIOS), names ^ set(SCENARIOS)
