"""Golden text reports of the fixture roots, as a reader sees them at 80 columns.

When a finding, a check or the layout changes on purpose, regenerate and review the diff:

    GD_DOCTOR_UPDATE_GOLDEN=1 python -m pytest tests/core/test_golden_roots.py tests/core/test_report.py
    git diff tests/core/golden/ README.md

README.md's "Over SSH" sample is a golden file pasted verbatim (checked here, pasted again by
the update run).

The roots are given as paths relative to the repository's top directory, so the files do not
depend on where the checkout lives; euid and clock are fixed so that they do not depend on who
runs the tests or when.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from gd_doctor.host import Host
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.settings import HostSettings
from gd_doctor.pipeline import run_doctor
from gd_doctor.report.style import Style
from gd_doctor.report.text import render_text
from tests.hostkit import NOW

TOP = Path(__file__).resolve().parents[2]
ROOTS = TOP / "tests" / "fixtures" / "roots"
GOLDEN = Path(__file__).resolve().parent / "golden" / "roots"
UPDATE = os.environ.get("GD_DOCTOR_UPDATE_GOLDEN") == "1"
NAMES = sorted(p.name for p in ROOTS.iterdir() if (p / "root").is_dir())


def _report_text(name: str, monkeypatch: pytest.MonkeyPatch, *, verbose: bool = False) -> str:
    monkeypatch.chdir(TOP)
    host = Host.from_root(Path("tests/fixtures/roots") / name / "root", HostSettings())
    host = dataclasses.replace(host, euid=0, clock=FixedClock(NOW))
    report = run_doctor(host, budget_s=30.0, started_at=NOW).report
    return render_text(report, Style(unicode=True, color=False), verbose=verbose, width=80)


@pytest.mark.parametrize("name", NAMES)
def test_fixture_root_text_report_matches_golden(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _report_text(name, monkeypatch)
    path = GOLDEN / f"{name}.txt"
    if UPDATE or not path.exists():
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.name} changed: review, then GD_DOCTOR_UPDATE_GOLDEN=1 (see this module)"
    )


@pytest.mark.parametrize("name", NAMES)
def test_fixture_root_reports_read_cleanly_at_80_columns(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for verbose in (False, True):
        text = _report_text(name, monkeypatch, verbose=verbose)
        lines = text.splitlines()
        # Only a single word longer than the width (a URL, a path) may stick out, and only
        # when it already starts at the indent (after a bullet or mark at most).
        for line in lines:
            assert len(line) <= 80 or len(line) - len(line.split()[-1]) <= 12, line
        assert "data: {" not in text  # facts are bullets, raw data is --format json
        # First and last lines carry the same verdict.
        assert lines[0].split(" — ")[0] == lines[-1].split(" — ")[0] or lines[-1].startswith("  ")


# The README shows golden reports verbatim: a "<!-- sample: PATH -->" line before a fenced
# block names the golden file the block must equal, so the sample cannot go stale.
SAMPLE = re.compile(r"^<!-- sample: (\S+) -->\n```\n(.*?)^```$", re.M | re.S)


def _pasted(m: "re.Match[str]") -> str:
    golden = (TOP / m.group(1)).read_text(encoding="utf-8")
    return f"<!-- sample: {m.group(1)} -->\n```\n{golden}```"


def test_readme_samples_are_the_golden_reports() -> None:
    readme = (TOP / "README.md").read_text(encoding="utf-8")
    if UPDATE:  # regenerating the golden files pastes them into the README too
        readme = SAMPLE.sub(_pasted, readme)
        (TOP / "README.md").write_text(readme, encoding="utf-8")
    samples = SAMPLE.findall(readme)
    assert "tests/core/golden/roots/centos7-unsupported.txt" in dict(samples)
    assert readme.count("<!-- sample: ") == len(samples), "a sample marker without its block"
    for path, block in samples:
        assert block == (TOP / path).read_text(encoding="utf-8"), (
            f"README.md's sample of {path} is stale: paste the golden file into it"
        )
