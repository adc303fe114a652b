"""Replay equality over the whole scenario corpus (marker ``simulator``).

Each scenario of tests/scenarios runs as in test_simulator.py, but the command inside the
simulated host is ``gd-doctor bundle`` instead of ``check``: a live scenario's bundle is made
inside its booted container (real systemd, real journal, the fake IMDS and endpoints of its
namespace), a root scenario's from its assembled root. The bundle then replays here, offline,
and its replay must give the report the bundle holds (the live run's): the same verdict,
findings with their evidence lines, and every row (status, summary, evidence, data).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any, Dict, List

import pytest

from gd_doctor.bundle import open_bundle, replay
from gd_doctor.bundle import timeline as tl
from gd_doctor.redact import redact
from gd_doctor.report.json import render_json
from tests.bundle.conftest import comparable_doc, differences
from tests.simulator.runner import SECRETS, run_scenario
from tests.simulator.scenario import discover

SCENARIOS = discover()


def _texts(bundle: Path) -> Dict[str, str]:
    out: Dict[str, str] = {}
    with tarfile.open(bundle, "r:gz") as tar:
        for info in tar:
            fh = tar.extractfile(info)
            out[info.name] = (fh.read() if fh else b"").decode("utf-8", errors="replace")
    return out


def test_every_scenario_is_covered() -> None:
    assert len(SCENARIOS) >= 20
    assert {sc.kind for sc in SCENARIOS} == {"live", "root"}


@pytest.mark.simulator
@pytest.mark.parametrize("name", [sc.name for sc in SCENARIOS])
def test_scenario_bundle_replays_to_the_same_report(name: str, tmp_path: Path) -> None:
    sc = next(s for s in SCENARIOS if s.name == name)
    res = run_scenario(sc, bundle_dir=tmp_path)
    if res.skipped:
        pytest.skip(res.skipped)
    assert res.error is None, res.error
    assert res.bundle is not None and "bundle written to" in res.stdout, res.stdout + res.stderr
    live: Dict[str, Any] = res.report
    with open_bundle(res.bundle) as b:
        assert b.manifest["live"] is (sc.kind == "live")
        again = replay(b)
        assert b.problems == []
        # the simulated endpoints answer with a Date header of this machine's clock: the
        # timeline of the bundle measures no skew
        dated = [
            c
            for c in b.answers["calls"]
            if c["kind"] == "https" and "date" in (c.get("answer") or {}).get("headers", {})
        ]
        skew = tl.clock_skew(b.answers)
        assert len(skew) == (1 if dated else 0)
        assert all(e.text.startswith("clock: within") and not e.failure for e in skew)
    replayed = json.loads(redact(render_json(again.report)))
    assert replayed["host"]["root"].startswith(f"replay of bundle {res.bundle.name}")
    diff = differences(comparable_doc(live), comparable_doc(replayed))
    assert diff == [], "\n".join(diff)
    # the simulated IMDS hands out credentials: never in any member of the bundle
    leaked: List[str] = [n for n, t in _texts(res.bundle).items() if any(s in t for s in SECRETS)]
    assert leaked == []
