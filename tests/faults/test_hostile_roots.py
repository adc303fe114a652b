"""Hostile captured roots through the real CLI: nothing outside the root reaches any output,
no run outlives its budget, no process is left behind and the root is not changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Tuple

import pytest

from gd_doctor.host import fs as fs_mod
from tests.faults import hostile as h

RESOLVERS = ["openat2", "walk"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, h.Canary, Dict[str, Path]]:
    base = tmp_path_factory.mktemp("hostile")
    (base / "out").mkdir()
    return base, h.make_canary(base / "outside"), {}


def _root(world: Tuple[Path, h.Canary, Dict[str, Path]], name: str) -> Path:
    base, canary, built = world
    if name not in built:
        if name == "device-nodes" and not h.mknod_works(base):
            pytest.skip("mknod is not permitted here")
        built[name] = h.build_root(base / "roots", name, canary)
    return built[name]


def _run(
    world: Tuple[Path, h.Canary, Dict[str, Path]], name: str, resolver: str, fmt: str = "json"
) -> h.RootRun:
    if resolver == "openat2" and not fs_mod.openat2_available():
        pytest.skip("this kernel has no openat2")
    base, canary, _ = world
    run = h.run_cli(name, _root(world, name), canary, base / "out", resolver_name=resolver, fmt=fmt)
    assert run.exit_code in (0, 1), run.outputs["stderr"]
    assert "Traceback" not in run.outputs["stderr"]
    return run


@pytest.mark.parametrize("resolver", RESOLVERS)
@pytest.mark.parametrize("name", list(h.ROOTS))
def test_nothing_outside_the_root_reaches_the_output(
    world: Tuple[Path, h.Canary, Dict[str, Path]], name: str, resolver: str
) -> None:
    run = _run(world, name, resolver)
    assert run.leaked_in == [], f"the canary reached {run.leaked_in}"
    assert not run.over_budget, f"{run.elapsed_s:.1f} s for a {h.BUDGET_S} s budget"
    assert run.processes_left == 0
    assert run.root_changed == []
    assert len(run.outputs["report"]) < 4 << 20  # bounded, however many files the root holds


@pytest.mark.parametrize("name", list(h.ROOTS))
def test_text_verbose_output_holds_no_canary(
    world: Tuple[Path, h.Canary, Dict[str, Path]], name: str
) -> None:
    run = _run(world, name, "walk", fmt="text")
    assert run.leaked_in == []


def _checks(run: h.RootRun) -> Dict[str, Dict[str, object]]:
    report = json.loads(run.outputs["stdout"])
    return {c["id"]: c for c in report["checks"]}


def test_links_out_read_as_missing_inside_the_root(
    world: Tuple[Path, h.Canary, Dict[str, Path]],
) -> None:
    """etc/os-release -> /outside/secret is /outside/secret OF THE CAPTURED SYSTEM: missing."""
    checks = _checks(_run(world, "absolute-links", "walk"))
    assert "/etc/os-release: missing" in str(checks["platform.os"]["summary"])


def test_fifos_are_results_not_hangs(world: Tuple[Path, h.Canary, Dict[str, Path]]) -> None:
    run = _run(world, "fifos", "openat2" if fs_mod.openat2_available() else "walk")
    assert run.elapsed_s < 5
    assert "not a regular file" in run.outputs["stdout"]


@pytest.mark.parametrize("name", ["link-fan-out", "many-files", "gz-bomb"])
def test_bounded_work_ends_well_within_the_budget(
    world: Tuple[Path, h.Canary, Dict[str, Path]], name: str
) -> None:
    """Not only inside the budget: these roots must not need it (no check times out)."""
    run = _run(world, name, "walk")
    assert run.elapsed_s < h.BUDGET_S / 2, run.elapsed_s
    assert '"timed_out": true' not in run.outputs["stdout"]


def test_journal_dir_linked_out_gives_no_journal(
    world: Tuple[Path, h.Canary, Dict[str, Path]],
) -> None:
    run = _run(world, "journal-dir-link", "walk")
    assert "no journal files" in run.outputs["stdout"]


def test_summary_figures(world: Tuple[Path, h.Canary, Dict[str, Path]]) -> None:
    summary = h.hostile_summary(roots=["absolute-links", "fifos", "journal-file-links"])
    assert summary["roots_tried"] == 3 and summary["runs"] >= 3
    for key in (
        "escapes",
        "runs_over_budget",
        "processes_left",
        "host_writes",
        "runaway_commands_over_timeout",
    ):
        assert summary[key] == 0, (key, summary)
    assert int(summary["gz_bomb_bytes_decompressed"]) <= (64 << 20) + (64 << 10)  # type: ignore[call-overload]
