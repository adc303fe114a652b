"""The platform domain on the typed-facts contract: every check returns the facts it declares,
on every fixture root, and no platform failure is left without a rule that explains it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gd_doctor.checks import ALL_CHECKS, PLATFORM_CHECKS, kernel, platform
from gd_doctor.checks import node as node_checks
from gd_doctor.diagnosis.engine import UNEXPLAINED
from gd_doctor.facts import to_data
from gd_doctor.host import Host
from gd_doctor.host.settings import HostSettings
from gd_doctor.model import Status
from tests.hostkit import FIXTURES, make_host, run_pipeline

ROOTS = sorted(p for p in (FIXTURES / "roots").iterdir() if p.is_dir())
JUDGED = (Status.OK, Status.WARN, Status.FAIL)
DIAGNOSIS = Path(__file__).resolve().parents[2] / "gd_doctor" / "diagnosis"


def test_the_three_modules_make_the_platform_domain() -> None:
    # checks/node.py adds the kind of node (Bottlerocket, EKS/ECS) to the machine and kernel
    assert set(PLATFORM_CHECKS) == {*platform.CHECKS, *kernel.CHECKS, *node_checks.CHECKS}
    assert len(PLATFORM_CHECKS) == len(platform.CHECKS) + len(kernel.CHECKS) + len(
        node_checks.CHECKS
    )
    assert ALL_CHECKS[: len(PLATFORM_CHECKS)] == PLATFORM_CHECKS
    for chk in PLATFORM_CHECKS:
        assert chk.id.startswith("platform.") and chk.category == "platform", chk.id
        assert chk.facts is not None, f"{chk.id} declares no facts"
        assert chk.after == (), f"{chk.id}: platform-internal reads go through reads="


@pytest.mark.parametrize("case", ROOTS, ids=[p.name for p in ROOTS])
def test_every_platform_check_returns_its_declared_facts(case: Path) -> None:
    host = Host.from_root(case / "root", HostSettings())
    run, diagnosis, _ = run_pipeline(host, checks=PLATFORM_CHECKS)
    by_id = {r.check_id: r for r in run.results}
    for chk in PLATFORM_CHECKS:
        res = by_id[chk.id]
        assert res.status in JUDGED, f"{chk.id}: {res.status.value} {res.summary}"
        assert chk.facts is not None and isinstance(res.facts, chk.facts), chk.id
        assert dict(res.data) == to_data(res.facts), chk.id
    assert UNEXPLAINED not in [f.finding_id for f in diagnosis.findings]


def test_an_empty_root_still_gives_every_check_its_facts(tmp_path: Path) -> None:
    """Nothing readable is a judgement too ("cannot tell"), carried by the facts' None values."""
    run, diagnosis, _ = run_pipeline(make_host(tmp_path, live=False), checks=PLATFORM_CHECKS)
    for res, chk in zip(run.results, PLATFORM_CHECKS):
        assert res.check_id == chk.id
        assert chk.facts is not None and isinstance(res.facts, chk.facts), chk.id
    assert UNEXPLAINED not in [f.finding_id for f in diagnosis.findings]


@pytest.mark.parametrize("case", ROOTS, ids=[p.name for p in ROOTS])
def test_no_failing_platform_check_is_unexplained_in_a_full_run(case: Path) -> None:
    host = Host.from_root(case / "root", HostSettings())
    _, diagnosis, _ = run_pipeline(host)
    generic = [c for f in diagnosis.findings if f.finding_id == UNEXPLAINED for c in f.checks]
    assert [c for c in generic if c.startswith("platform.")] == []


def test_diagnosis_never_imports_checks() -> None:
    offenders = []
    for path in sorted(DIAGNOSIS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("gd_doctor.checks")]
    assert offenders == []
