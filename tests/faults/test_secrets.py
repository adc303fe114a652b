"""Every credential format, planted in every input source a check reads, never reaches an output.

Two paths, both the real pipeline:

* per (format, source): a fake live host with the format planted in that one source, run through
  :func:`gd_doctor.pipeline.run_doctor`, rendered as text, verbose text, JSON and SSM;
* the command line: one captured root holding every format in every file source (agent log,
  unit file and drop-in, EnvironmentFile, SSM log and state, a real journal file when
  systemd-journal-remote is installed), run by ``main()`` with each ``--format`` and
  ``--verbose``/``--output``; stdout, stderr and the report file are scanned.

Each planted line carries a canary word that no rule masks: the canary in the output proves the
line did reach it, so "no leak" cannot come from a source the run never showed.
``summary.secrets_summary(control=True)`` also runs every case with redaction switched off and
counts the secrets that would have leaked (the suite's control).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Tuple

import pytest

from gd_doctor.cli import main
from tests.faults import planting
from tests.faults.secret_formats import ROWS, Planted

# Sources whose checks show a planted line in some output (the others are read but only parsed
# for proxy variables, and a run may show nothing of them): at least this share of the rows must
# show their canary there, or the fixture no longer exercises the source.
MIN_SHOWN = {
    "agent-log": 1.0, "journal": 1.0, "ssm-log": 1.0, "ssm-state": 1.0, "unit-environment": 0.9,
    "systemctl-show": 0.9, "process-environ": 0.9, "environment-file": 0.0,
}  # fmt: skip


# CI runs a quarter of the formats per source, rotating, so every format goes through two sources
# and the command-line test below plants all of them at once; GD_DOCTOR_FAULTS=full (the fault
# summary, the benchmark script) runs every format in every source.
FULL = os.environ.get("GD_DOCTOR_FAULTS") == "full"


def cases_for(source: str) -> List[Planted]:
    rows = [r for r in ROWS if planting.applicable(r, source)]
    if FULL:
        return rows
    k = planting.SOURCES.index(source)
    return [r for i, r in enumerate(rows) if i % 4 == k % 4]


def test_the_table_is_large_and_every_value_is_a_real_secret() -> None:
    assert len(ROWS) >= 40
    assert len({r.id for r in ROWS}) == len(ROWS)
    for row in ROWS:
        assert row.secrets and all(len(s) >= 8 and s in row.line for s in row.secrets), row.id


@pytest.mark.parametrize("source", planting.SOURCES)
def test_no_planted_secret_reaches_any_output(tmp_path: Path, source: str) -> None:
    """Each format in this source alone: no secret in any output, and the line was shown."""
    leaked: List[Tuple[str, str, str]] = []
    shown = 0
    cases = cases_for(source)
    for n, row in enumerate(cases):
        canary, marked = planting.with_canary(row, n, source)
        outputs = planting.render_all(planting.planted_host(tmp_path / str(n), marked, source))
        leaked += [(row.id, name, secret) for name, secret in planting.leaks(row, outputs)]
        shown += any(canary in text for text in outputs.values())
    assert leaked == []
    assert shown >= MIN_SHOWN[source] * len(cases), f"{source}: only {shown}/{len(cases)} shown"


@pytest.mark.parametrize(
    "args",
    [["--format", "text"], ["--format", "text", "--verbose"], ["--format", "json"],
     ["--format", "ssm"], ["--format", "ssm", "--verbose"]],
    ids=["text", "verbose", "json", "ssm", "ssm-verbose"],
)  # fmt: skip
def test_the_command_line_never_prints_a_planted_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: List[str]
) -> None:
    root = planting.capture_root(tmp_path / "root")
    report = tmp_path / "report.json"
    with pytest.raises(SystemExit):
        main(["check", "--root", str(root), "--output", str(report), "--no-color", *args])
    out, err = capsys.readouterr()
    written = report.read_text(encoding="utf-8")
    json.loads(written)
    outputs = {"stdout": out, "stderr": err, "--output": written}
    assert [(r.id, where) for r in ROWS for where, _ in planting.leaks(r, outputs)] == []
    # the run did read the planted sources: the agent log's lines are in the report file
    assert "proxy connect error" in written
