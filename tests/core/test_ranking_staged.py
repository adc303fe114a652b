"""Rank order over every pair of causes the simulator's root scenarios stage (issue 12 section 2).

Driven by the scenario corpus (tests/scenarios/*/scenario.json), not by a hand-written list:
every ``root`` scenario that stages one cause (an ``expect.top_finding``, no other expected
finding) is built the way the simulator builds it, on top of the base root it extends; every
pair of them whose file changes do not touch the same path is staged together in one root. The
real checks and rules run on it (offline, as ``--root`` does), and the report must list one of
the two causes first: the one that folds the other (knowledge base ``folds``), else the one the
engine ranks first on its own; the other is listed under it as a consequence or after it, never
lost, and no third finding comes before either.
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

from gd_doctor.host import Host
from gd_doctor.host.clock import FixedClock
from gd_doctor.host.settings import HostSettings
from gd_doctor.knowledge import finding_specs
from gd_doctor.model import Finding, Report, Severity
from gd_doctor.pipeline import run_doctor
from tests.hostkit import NOW
from tests.simulator.pairs import expected_first
from tests.simulator.scenario import CORPUS, Scenario, discover, load

# What the in-process run cannot stage: command-line arguments, journal files (built with
# systemd's tools) and recorded known gaps are the simulator's business.
_NOT_STAGED = ("args", "journal_exports", "recorded", "known_gap", "env")


def _single_causes() -> List[Scenario]:
    out = []
    for sc in discover():
        expect = sc.expect
        if sc.kind != "root" or not expect.get("top_finding") or expect.get("findings"):
            continue
        if any(sc.spec.get(key) for key in _NOT_STAGED):
            continue
        if expect.get("verdict") == "unknown":  # no cause to rank: the scope decides
            continue
        out.append(sc)
    return out


SINGLES = _single_causes()
# the base each extends last (its own bases come before it in ``sources``)
BASES = {sc.sources[-1] for sc in SINGLES if sc.sources}


def _build_root(sc: Scenario, root: Path) -> None:
    """The scenario's files, links, appends, deletions and units in ``root``, as the
    simulator's runner lays them out (the scenarios staged here have no journal exports, see
    _NOT_STAGED, so the runner needs none of its tools)."""
    from tests.simulator.runner import build_root

    build_root(sc, root)


def _tree(root: Path) -> Dict[str, bytes]:
    """Every file and symlink of a root: path -> content (a link's target for a link)."""
    out: Dict[str, bytes] = {}
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = b"->" + str(p.readlink()).encode()
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def _changes(base: Dict[str, bytes], tree: Dict[str, bytes]) -> Dict[str, Optional[bytes]]:
    """What a scenario changes in its base: path -> new content, None when it deletes it."""
    changed: Dict[str, Optional[bytes]] = {p: c for p, c in tree.items() if base.get(p) != c}
    changed.update({p: None for p in base if p not in tree})
    return changed


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Path, Dict[str, Dict]]]:
    """The base root, and each single-cause scenario's changes to it."""
    (base_dir,) = BASES  # every root scenario extends the one captured root
    top = tmp_path_factory.mktemp("staged")
    base_root = top / "base"
    base_root.mkdir()
    _build_root(load(base_dir), base_root)
    base = _tree(base_root)
    changes = {}
    for sc in SINGLES:
        root = top / sc.name
        root.mkdir()
        _build_root(sc, root)
        changes[sc.name] = _changes(base, _tree(root))
    yield base_root, changes
    shutil.rmtree(top, ignore_errors=True)


def _report(root: Path) -> Report:
    host = Host.from_root(root, HostSettings())
    host = dataclasses.replace(host, euid=0, clock=FixedClock(NOW))
    return run_doctor(host, budget_s=30.0, started_at=NOW).report


def _stage(base_root: Path, into: Path, *changes: Dict[str, Optional[bytes]]) -> Path:
    shutil.copytree(base_root, into, symlinks=True)
    for change in changes:
        for rel, content in change.items():
            target = into / rel
            if target.is_symlink() or target.exists():
                target.unlink()
            if content is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if content.startswith(b"->"):
                target.symlink_to(content[2:].decode())
            else:
                target.write_bytes(content)
    return into


def _problems(report: Report) -> List[Finding]:
    return [f for f in report.findings if f.severity != Severity.INFO]


def test_the_corpus_stages_enough_single_causes() -> None:
    # a change of the corpus that leaves this test nothing to pair must be noticed
    assert len(SINGLES) >= 5, [sc.name for sc in SINGLES]
    assert len(BASES) == 1, BASES
    assert all(sc.expect["top_finding"] in finding_specs() for sc in SINGLES)


def test_each_single_cause_is_first_when_staged_alone(
    staged: Tuple[Path, Dict[str, Dict]], tmp_path: Path
) -> None:
    base_root, changes = staged
    for sc in SINGLES:
        report = _report(_stage(base_root, tmp_path / sc.name, changes[sc.name]))
        problems = _problems(report)
        assert problems and problems[0].finding_id == sc.expect["top_finding"], (
            sc.name,
            [f.finding_id for f in problems],
        )


def _where(problems: List[Finding], finding_id: str) -> Tuple[Optional[int], bool]:
    """The index of the finding listed as ``finding_id``, or of the cause it is folded into
    (True)."""
    for n, f in enumerate(problems):
        if f.finding_id == finding_id:
            return n, False
        if finding_id in {c.finding_id for c in f.consequences}:
            return n, True
    return None, False


def _cause_checks(report: Report, finding_id: str) -> Dict[str, str]:
    """The status of every check the cause's finding explains."""
    (cause,) = [f for f in report.findings if f.finding_id == finding_id]
    return {c.check_id: c.status.value for c in report.checks if c.check_id in cause.checks}


def test_every_stageable_pair_lists_the_cause_first(
    staged: Tuple[Path, Dict[str, Dict]], tmp_path: Path
) -> None:
    base_root, changes = staged
    alone = {
        sc.name: _cause_checks(
            _report(_stage(base_root, tmp_path / sc.name, changes[sc.name])),
            sc.expect["top_finding"],
        )
        for sc in SINGLES
    }
    staged_pairs: Set[Tuple[str, str]] = set()
    for one, two in itertools.combinations(SINGLES, 2):
        if set(changes[one.name]) & set(changes[two.name]):
            continue  # both change the same file: the corpus cannot stage them together
        a, b = one.expect["top_finding"], two.expect["top_finding"]
        root = _stage(
            base_root, tmp_path / f"{one.name}+{two.name}", changes[one.name], changes[two.name]
        )
        report = _report(root)
        statuses = {c.check_id: c.status.value for c in report.checks}
        if any(
            statuses.get(check) != status
            for sc in (one, two)
            for check, status in alone[sc.name].items()
        ):
            # One undoes the other (a kernel of its own makes the other's /boot/config-<release>
            # moot): the checks that proved a cause alone do not prove it together.
            continue
        staged_pairs.add((one.name, two.name))
        problems = _problems(report)
        ids = [f.finding_id for f in problems]
        first = expected_first(a, b)
        other = b if first == a else a
        where = (one.name, two.name, ids)
        assert problems and problems[0].finding_id == first, where
        at, folded = _where(problems, other)
        assert at is not None, f"{other} is lost: {where}"
        assert at > 0 or folded, where  # under the cause, or after it
    # pairs exist that the corpus can stage: the test is not vacuous
    assert len(staged_pairs) >= 6, staged_pairs


def test_the_corpus_root_dir_is_the_simulators() -> None:
    assert CORPUS.is_dir() and all(sc.path.parent == CORPUS for sc in SINGLES)
