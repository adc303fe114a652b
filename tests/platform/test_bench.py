"""benchmarks/bench.py: its section registry, its table, and one short real run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gd_doctor_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gd_doctor_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_registry_and_table() -> None:
    bench = _load()
    assert "startup" in bench.SECTIONS
    with pytest.raises(ValueError):
        bench.section("startup")(lambda options: [])
    case = bench.Case("x", ["a"], ["b"], 1.5, times=[0.3, 0.2, 0.25], base_times=[0.1, 0.2, 0.2])
    assert case.median == 0.25 and case.base_median == 0.2
    assert case.ratio == pytest.approx(1.25) and case.passed
    assert case.ratios == pytest.approx([3.0, 1.0, 1.25])  # run by run, for the min-max
    table = bench.render_table([("startup", "x", "250 ms", "200 ms", "1.25x", "<= 1.5x", "PASS")])
    assert table.splitlines()[0].split() == [
        "section",
        "case",
        "median",
        "(min-max)",
        "baseline",
        "ratio",
        "target",
        "result",
    ]
    row = bench.row_of("startup", case)
    assert row[2] == "250 ms (200-300)" and row[4] == "1.25x (1.00-3.00)"


def test_one_real_run_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load()
    code = bench.main(["-n", "1", "--warmup", "0", "--json", "startup"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["case"].split()[1] for r in rows] == ["--version", "check"]
    assert all(r["median_s"] > 0 and r["baseline_s"] > 0 for r in rows)
    assert code in (0, 1)  # one run is too few to judge the targets


def test_unknown_section_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        _load().main(["no-such-section"])
    assert exc.value.code == 2
