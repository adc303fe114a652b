"""The knowledge base, as data shipped inside the package.

Each JSON file names its source and its date, so it can be updated without touching logic:

* ``coverage_issues.json``: AWS's EC2 coverage-issue table (every issue type and message);
* ``bottlerocket.json``: AWS's ECS-EC2 Bottlerocket coverage table, variants, host container,
  ECR registry accounts and endpoints;
* ``endpoints.json``: endpoint names per partition (GuardDuty, SSM, S3 for Distributor, IMDS);
* ``timing.json``: notes on how long the console takes to catch up, added to the fixes that need it;
* ``support_matrix.json``: verified distributions, kernels and architectures, with agent versions;
* ``log_signatures.json``: error signatures of the agent's logs;
* ``findings/*.json``: what each diagnosis rule can conclude, with its fix steps;
* ``report.schema.json``: the JSON Schema of the report.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from gd_doctor.frozen import dataclass

HERE = Path(__file__).resolve().parent


@cache
def load(name: str) -> Any:
    """Parse one data file of the knowledge base (cached: the files never change at run time)."""
    with open(HERE / name, encoding="utf-8") as fh:
        return json.load(fh)


@dataclass(frozen=True)
class CoverageIssue:
    """One row of AWS's EC2 coverage-issue table."""

    id: str
    number: int
    type: str
    message: str
    pattern: str
    host_observable: str
    in_seed: bool
    steps: Tuple[str, ...]
    doc: str
    seed_message: str = ""
    table: str = "ec2"  # "ec2" | "bottlerocket": which of AWS's coverage tables holds the row


def _issue_rows(name: str, table: str) -> Mapping[str, CoverageIssue]:
    rows: Dict[str, CoverageIssue] = {}
    for raw in load(name)["issues"]:
        rows[raw["id"]] = CoverageIssue(
            id=raw["id"],
            number=int(raw["number"]),
            type=raw["type"],
            message=raw["message"],
            pattern=raw["pattern"],
            host_observable=raw["host_observable"],
            in_seed=bool(raw["in_seed"]),
            steps=tuple(raw["steps"]),
            doc=raw["doc"],
            seed_message=raw.get("seed_message", ""),
            table=table,
        )
    return rows


@cache
def coverage_issues() -> Mapping[str, CoverageIssue]:
    """The EC2 coverage-issue rows by id, in table order."""
    return _issue_rows("coverage_issues.json", "ec2")


@cache
def bottlerocket_issues() -> Mapping[str, CoverageIssue]:
    """The ECS-EC2 Bottlerocket coverage-issue rows by id, in table order."""
    return _issue_rows("bottlerocket.json", "bottlerocket")


@cache
def all_coverage_issues() -> Mapping[str, CoverageIssue]:
    """Both tables' rows by id: the EC2 table first, then the Bottlerocket one."""
    return {**coverage_issues(), **bottlerocket_issues()}


WHERE = ("instance", "workstation")


@dataclass(frozen=True)
class StepSpec:
    """How one fix step applies: the fix itself or a diagnosis step, on which distributions
    (os-release ``ID``/``ID_LIKE`` values; empty: all), where it runs, and ``when``: the values
    of the finding's parameters it is for (``{"failure": ["timeout"]}``; empty: always)."""

    fix: bool = False
    distros: Tuple[str, ...] = ()
    where: Optional[str] = None  # "instance" | "workstation" (AWS credentials) | None
    when: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()

    def wanted(self, params: Mapping[str, object]) -> bool:
        """The step applies to a finding built with these parameters."""
        return all(str(params.get(key)) in values for key, values in self.when)


@dataclass(frozen=True)
class FindingSpec:
    """What a diagnosis rule concludes: title and steps may hold ``{placeholders}``.

    ``folds`` names the findings that are consequences of this one: when both are found, the
    engine lists them under this cause instead of as problems of their own. ``decisive`` names
    the check whose first evidence line proves the finding (default: the first line).
    ``has_fix_step`` is False (``"fix_step": false`` in the JSON) for a finding that has no fix
    step on the host: a pure diagnosis (the cause is on the AWS side, or in how gd-doctor was
    run), so none of its steps is marked ``fix``.
    """

    id: str
    title: str
    severity: str
    issue: Optional[str]
    rank: int
    steps: Tuple[str, ...]
    doc: Optional[str]
    source_file: str
    checks: Tuple[str, ...] = ()
    step_specs: Tuple[StepSpec, ...] = ()
    folds: Tuple[str, ...] = ()
    decisive: Optional[str] = None
    has_fix_step: bool = True

    @property
    def fix(self) -> Optional[str]:
        """The step marked as the fix; the first step when none is marked (the steps of
        findings that only guide a diagnosis)."""
        marked = [t for t, m in zip(self.steps, self.step_specs) if m.fix]
        return marked[0] if marked else (self.steps[0] if self.steps else None)


def _step(raw: Any, where: str) -> Tuple[str, StepSpec]:
    """A step is a string, or ``{"text", "fix", "distros", "where"}``."""
    if isinstance(raw, str):
        return raw, StepSpec()
    place = raw.get("where")
    if place is not None and place not in WHERE:
        raise ValueError(f"{where}: step 'where' must be one of {WHERE}, not {place!r}")
    when = raw.get("when") or {}
    spec = StepSpec(
        fix=bool(raw.get("fix", False)),
        distros=tuple(raw.get("distros", ())),
        where=place,
        when=tuple((str(k), tuple(str(v) for v in vals)) for k, vals in when.items()),
    )
    return str(raw["text"]), spec


class _FindingSpecs(Mapping[str, "FindingSpec"]):
    """Finding specs by id, each built from its JSON when first asked for: a run produces a
    handful of the ~150 findings, and building them all cost more CPU than a run's rules.
    Two threads asking for one spec at once may both build it; the values are equal."""

    def __init__(self, raw: Dict[str, Tuple[Mapping[str, Any], str]]) -> None:
        self._raw = raw
        self._built: Dict[str, FindingSpec] = {}

    def __getitem__(self, finding_id: str) -> "FindingSpec":
        spec = self._built.get(finding_id)
        if spec is None:
            raw, file_name = self._raw[finding_id]
            spec = self._built[finding_id] = _with_notes(_finding_spec(raw, file_name))
        return spec

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _finding_spec(raw: Mapping[str, Any], file_name: str) -> "FindingSpec":
    steps = [_step(s, f"{file_name}: {raw['id']}") for s in raw.get("steps", ())]
    return FindingSpec(
        id=raw["id"],
        title=raw["title"],
        severity=raw["severity"],
        issue=raw.get("issue"),
        rank=int(raw.get("rank", 500)),
        steps=tuple(text for text, _ in steps),
        doc=raw.get("doc"),
        source_file=file_name,
        checks=tuple(raw.get("checks", ())),
        step_specs=tuple(meta for _, meta in steps),
        folds=tuple(raw.get("folds", ())),
        decisive=raw.get("decisive"),
        has_fix_step=bool(raw.get("fix_step", True)),
    )


@cache
def finding_specs() -> Mapping[str, FindingSpec]:
    """Every finding the rules can produce, from all files under ``findings/`` (an id defined
    twice is refused here; each spec is built when first looked up)."""
    raw: Dict[str, Tuple[Mapping[str, Any], str]] = {}
    for path in sorted((HERE / "findings").glob("*.json")):
        for entry in load(f"findings/{path.name}")["findings"]:
            if entry["id"] in raw:
                raise ValueError(f"finding {entry['id']} defined twice ({path.name})")
            raw[entry["id"]] = (entry, path.name)
    return _FindingSpecs(raw)


def _note_applies(note: Mapping[str, Any], spec: "FindingSpec") -> bool:
    if spec.id in note.get("except", ()):
        return False
    if spec.id in note.get("findings", ()):
        return True
    # "every finding that names a coverage-issue row": the console shows that row until it
    # re-evaluates, so the fix needs the console to catch up.
    return bool(note.get("applies_to")) and spec.issue is not None and spec.severity != "info"


def _with_notes(spec: "FindingSpec") -> "FindingSpec":
    """The spec with the timing and tag notes of timing.json that apply to it, as last steps."""
    notes = load("timing.json")["notes"]
    extra = [str(n["text"]) for n in notes if _note_applies(n, spec)]
    extra = [e for e in dict.fromkeys(extra) if e not in spec.steps]
    if not extra:
        return spec
    # a note is neither the fix nor tied to a distribution: a plain step, always kept
    return replace(
        spec,
        steps=spec.steps + tuple(extra),
        step_specs=spec.step_specs + (StepSpec(),) * len(extra),
    )


def tag_key_allowed(key: str) -> bool:
    """Whether IMDS's 'Allow tags in metadata' accepts an instance tag key (timing.json).

    >>> tag_key_allowed("GuardDutyManaged"), tag_key_allowed("kubernetes.io/cluster/prod")
    (True, False)
    >>> tag_key_allowed("_index"), tag_key_allowed("team name")
    (False, False)
    """
    import re

    rules = load("timing.json")["tag_keys"]
    return key not in rules["forbidden"] and re.match(rules["allowed"], key) is not None


def knowledge_date() -> str:
    """The date of the newest knowledge file (ISO), printed in every report and --version."""
    from gd_doctor import knowledge_date as newest  # the one walk, shared with --version

    return newest(load)  # the files the run has parsed already
