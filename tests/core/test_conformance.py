"""Registry and knowledge-base invariants (sos-style conformance tests)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Optional

import gd_doctor.checks as checks_pkg
import gd_doctor.diagnosis as diagnosis_pkg
from gd_doctor.checks import ALL_CHECKS
from gd_doctor.checks.base import CATEGORIES, NEEDS, Check
from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.base import Rule
from gd_doctor.knowledge import (
    HERE,
    FindingSpec,
    all_coverage_issues,
    coverage_issues,
    finding_specs,
    load,
)

ID = re.compile(r"^[a-z0-9]+(\.[a-z0-9_]+)+$")


def _defined(kind: type, package: object) -> list:  # type: ignore[type-arg]
    found = []
    for info in pkgutil.iter_modules(package.__path__):  # type: ignore[attr-defined]
        mod = importlib.import_module(f"{package.__name__}.{info.name}")  # type: ignore[attr-defined]
        found.extend(v for v in vars(mod).values() if isinstance(v, kind))
    return found


def test_check_ids_are_unique_and_dotted() -> None:
    ids = [c.id for c in ALL_CHECKS]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if not ID.match(i)] == []


def test_every_defined_check_is_registered() -> None:
    registered = {id(c) for c in ALL_CHECKS}
    missing = [c.id for c in _defined(Check, checks_pkg) if id(c) not in registered]
    assert missing == []


def test_checks_declare_known_metadata() -> None:
    for c in ALL_CHECKS:
        assert c.title.strip(), c.id
        assert c.category in CATEGORIES, c.id
        assert c.id.split(".")[0] == c.category, f"{c.id} is not in its category {c.category}"
        assert set(c.needs) <= set(NEEDS), c.id
        assert c.description, f"{c.id} has no docstring"


def test_prerequisites_name_earlier_checks() -> None:
    seen: set = set()  # type: ignore[type-arg]
    for c in ALL_CHECKS:
        for dep in c.waits_on:
            assert dep in seen, f"{c.id} waits on {dep}, which is not registered before it"
        seen.add(c.id)


def test_every_defined_rule_is_registered_and_unique() -> None:
    ids = [r.id for r in ALL_RULES]
    assert len(ids) == len(set(ids))
    registered = {id(r) for r in ALL_RULES}
    assert [r.id for r in _defined(Rule, diagnosis_pkg) if id(r) not in registered] == []


def test_coverage_table_is_complete_and_well_formed() -> None:
    data = load("coverage_issues.json")
    assert data["source"].startswith("https://docs.aws.amazon.com/guardduty/")
    assert re.match(r"^\d{4}-\d{2}-\d{2}$", data["date"])
    rows = coverage_issues()
    assert [r.number for r in rows.values()] == list(range(1, 18))
    for r in rows.values():
        assert r.host_observable in ("yes", "partly", "no")
        assert r.steps and r.doc.startswith("https://")
        re.compile(r.pattern)
        assert (r.message == "") == (r.pattern == "^$")
    assert {r.type for r in rows.values()} == {
        "No Agent Reporting",
        "Agent Not Provisioned",
        "SSM Association Creation Failed",
        "SSM Association Updation Failed",
        "SSM Association Deletion Failed",
        "SSM Instance Association Execution Failed",
        "VPC Endpoint Creation Failed",
        "Shared VPC Endpoint Deletion Failed",
        "Agent not reporting",
    }


def test_finding_specs_point_at_real_rows_and_checks() -> None:
    rows = all_coverage_issues()  # the EC2 table and the Bottlerocket one
    check_ids = {c.id for c in ALL_CHECKS}
    for spec in finding_specs().values():
        assert re.match(r"^[a-z0-9]+(\.[a-z0-9-]+)+$", spec.id), spec.id
        assert spec.severity in ("fail", "warn", "info"), spec.id
        assert spec.issue is None or spec.issue in rows, f"{spec.id}: unknown row {spec.issue}"
        assert spec.title.strip(), spec.id
        assert set(spec.checks) <= check_ids, (
            f"{spec.id}: unknown checks {set(spec.checks) - check_ids}"
        )
        if spec.severity == "fail":
            assert spec.steps, f"{spec.id}: a failing finding needs fix steps"


def _distro_variants(spec: FindingSpec) -> list:  # type: ignore[type-arg]
    """The hosts whose steps differ: each distribution a step names, and an unknown one (the
    engine keeps every step when the distribution is not known)."""
    named = {d for m in spec.step_specs for d in m.distros}
    return [None, *sorted(named)]


def _fix_steps_for(spec: FindingSpec, distro: Optional[str]) -> list:  # type: ignore[type-arg]
    """The marked fix steps the engine keeps on ``distro`` (see engine._applies)."""
    return [
        m
        for m in spec.step_specs
        if m.fix and (distro is None or not m.distros or distro in m.distros)
    ]


def test_every_problem_marks_its_fix_step_or_declares_none() -> None:
    """A FAIL/WARN finding with steps marks the step that fixes the cause (the report's arrow,
    ``fix_step``) on every distribution variant, or says ``"fix_step": false``."""
    unmarked, marked_none, twice = [], [], []
    for spec in finding_specs().values():
        if spec.severity == "info" or not spec.steps:
            continue
        if not spec.has_fix_step:
            if any(m.fix for m in spec.step_specs):
                marked_none.append(spec.id)
            continue
        for distro in _distro_variants(spec):
            if not _fix_steps_for(spec, distro):
                unmarked.append(f"{spec.id} ({distro or 'any distribution'})")
        # two fix steps for the same hosts and the same parameters: one of them is no fix
        keys = [(m.distros, m.when) for m in spec.step_specs if m.fix]
        if len(keys) != len(set(keys)):
            twice.append(spec.id)
    assert unmarked == [], "no step marked fix"
    assert marked_none == [], '"fix_step": false but a step is marked fix'
    assert twice == [], "several fix steps for the same variant"


def test_fix_step_key_is_only_ever_false() -> None:
    """``fix_step`` only says a finding has none (false); true is the default, and anything else
    would be a typo the loader turns into a boolean silently."""
    for path in sorted((HERE / "findings").glob("*.json")):
        for raw in load(f"findings/{path.name}")["findings"]:
            assert raw.get("fix_step", True) in (True, False), raw["id"]
            assert raw.get("fix_step", False) is not True, f"{raw['id']}: true is the default"


def test_decisive_names_one_of_the_finding_checks() -> None:
    """``decisive`` is the check whose evidence line proves the finding: one of its ``checks``,
    and named whenever there are several to choose from."""
    wrong, missing = [], []
    for spec in finding_specs().values():
        if spec.decisive is not None and spec.decisive not in spec.checks:
            wrong.append(f"{spec.id}: {spec.decisive} not in {spec.checks}")
        if len(spec.checks) > 1 and spec.decisive is None:
            missing.append(spec.id)
    assert wrong == []
    assert missing == [], "several checks and no decisive one"


def test_knowledge_files_name_source_and_date() -> None:
    from gd_doctor.knowledge import HERE

    for path in sorted(HERE.rglob("*.json")):
        if path.name == "report.schema.json":
            continue
        data = load(str(path.relative_to(HERE)))
        assert data.get("source"), f"{path.name} has no source"
        assert re.match(r"^\d{4}-\d{2}-\d{2}$", data.get("date", "")), f"{path.name} has no date"


# --- the typed-facts contract ---------------------------------------------------------------

from dataclasses import fields, is_dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from gd_doctor.facts import Facts, producers  # noqa: E402

# categories on typed facts; every category once the migration lands
MIGRATED = set(CATEGORIES)  # every domain is on typed facts
PACKAGE = Path(__file__).resolve().parents[2] / "gd_doctor"


def test_every_check_declares_one_facts_type_of_its_own() -> None:
    produced = {}
    for c in ALL_CHECKS:
        if c.category not in MIGRATED:
            continue
        assert c.facts is not None, f"{c.id} declares no facts type"
        assert issubclass(c.facts, Facts) and is_dataclass(c.facts), c.id
        assert c.facts.__dataclass_params__.frozen, f"{c.facts.__name__} is not frozen"  # type: ignore[attr-defined]
        assert c.facts not in produced, f"{c.facts.__name__}: {produced.get(c.facts)} and {c.id}"
        produced[c.facts] = c.id
        assert producers()[c.facts] == c.id


def test_checks_and_rules_read_only_produced_types() -> None:
    registered = {c.facts for c in ALL_CHECKS if c.facts is not None}
    for c in ALL_CHECKS:
        for t in c.reads:
            assert t in registered, f"{c.id} reads {t.__name__}, which no registered check produces"
    for r in ALL_RULES:
        for t in r.reads or ():
            if isinstance(t, type) and issubclass(t, Facts):
                assert t in registered, f"rule {r.id} reads {t.__name__}, never produced"


def test_facts_fields_are_json_safe_types() -> None:
    """Fields are str/int/float/bool/None, tuples, mappings and nested facts: no dicts or lists
    that a rule could mutate, no arbitrary objects the JSON report cannot hold."""
    import typing

    allowed = (str, int, float, bool, type(None))

    def ok(tp: object) -> bool:
        origin = typing.get_origin(tp)
        if origin is None:
            return tp in allowed or (isinstance(tp, type) and is_dataclass(tp))
        if origin is typing.Union:
            return all(ok(a) for a in typing.get_args(tp))
        if origin is tuple:
            return all(ok(a) for a in typing.get_args(tp) if a is not Ellipsis)
        if origin in (typing.Mapping, __import__("collections.abc").abc.Mapping):
            return all(ok(a) for a in typing.get_args(tp))
        return False

    for c in ALL_CHECKS:
        if c.facts is None:
            continue
        hints = typing.get_type_hints(c.facts)
        for f in fields(c.facts):
            assert ok(hints[f.name]), f"{c.facts.__name__}.{f.name}: {hints[f.name]}"


def test_no_string_lookups_of_check_data() -> None:
    """Checks, rules and the report read typed facts, not check data by string (issue 10)."""
    needles = ("r.data(", "ctx.fact(", ".data.get(", "ctx.result(")
    offenders = []
    for sub in ("checks", "diagnosis", "report"):
        for path in sorted((PACKAGE / sub).rglob("*.py")):
            if sub == "checks" and path.name == "base.py":
                continue  # Context's own (transitional) accessors are defined there
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if any(x in line for x in needles):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}")
    assert offenders == []


def test_no_cross_domain_markers_left() -> None:
    marked = [
        f"{p.relative_to(PACKAGE)}:{n}"
        for p in sorted(PACKAGE.rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "TODO(facts)" in line
    ]
    assert marked == []


# --- the contract, run over every fixture root ----------------------------------------------

import pytest  # noqa: E402

from gd_doctor.diagnosis.engine import UNEXPLAINED  # noqa: E402
from gd_doctor.facts import to_data  # noqa: E402
from gd_doctor.host import Host  # noqa: E402
from gd_doctor.host.settings import HostSettings  # noqa: E402
from gd_doctor.model import Status  # noqa: E402
from tests.hostkit import FIXTURES, make_host, run_pipeline  # noqa: E402

FIXTURE_ROOTS = sorted(p for p in (FIXTURES / "roots").iterdir() if p.is_dir())
JUDGED = (Status.OK, Status.WARN, Status.FAIL)


def _assert_contract(results: object) -> None:
    by_check = {c.id: c for c in ALL_CHECKS}
    for res in results:  # type: ignore[attr-defined]
        chk = by_check[res.check_id]
        if res.status in JUDGED:
            # a judged outcome always carries its declared facts, and the JSON data is them
            assert chk.facts is not None and isinstance(res.facts, chk.facts), (
                f"{chk.id} ({res.status.value}) returned {type(res.facts).__name__}"
            )
            assert dict(res.data) == to_data(res.facts), chk.id
        elif res.facts is not None:
            assert chk.facts is not None and isinstance(res.facts, chk.facts), chk.id


@pytest.mark.parametrize("case", FIXTURE_ROOTS, ids=[p.name for p in FIXTURE_ROOTS])
def test_every_check_returns_its_declared_facts_on_fixture_roots(case: Path) -> None:
    run, diagnosis, _ = run_pipeline(Host.from_root(case / "root", HostSettings()))
    _assert_contract(run.results)
    generic = [c for f in diagnosis.findings if f.finding_id == UNEXPLAINED for c in f.checks]
    assert generic == [], f"failing checks no rule explains: {generic}"


def test_every_check_returns_its_declared_facts_on_a_live_host(tmp_path: Path) -> None:
    run, diagnosis, _ = run_pipeline(make_host(tmp_path))
    assert len(run.results) == len(ALL_CHECKS)
    _assert_contract(run.results)
    assert UNEXPLAINED not in [f.finding_id for f in diagnosis.findings]
