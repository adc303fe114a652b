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
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

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


@dataclass(frozen=True)
class FindingSpec:
    """What a diagnosis rule concludes: title and steps may hold ``{placeholders}``."""

    id: str
    title: str
    severity: str
    issue: Optional[str]
    rank: int
    steps: Tuple[str, ...]
    doc: Optional[str]
    source_file: str
    checks: Tuple[str, ...] = ()


@cache
def finding_specs() -> Mapping[str, FindingSpec]:
    """Every finding the rules can produce, from all files under ``findings/``."""
    specs: Dict[str, FindingSpec] = {}
    for path in sorted((HERE / "findings").glob("*.json")):
        data = load(f"findings/{path.name}")
        for raw in data["findings"]:
            if raw["id"] in specs:
                raise ValueError(f"finding {raw['id']} defined twice ({path.name})")
            specs[raw["id"]] = FindingSpec(
                id=raw["id"],
                title=raw["title"],
                severity=raw["severity"],
                issue=raw.get("issue"),
                rank=int(raw.get("rank", 500)),
                steps=tuple(raw.get("steps", ())),
                doc=raw.get("doc"),
                source_file=path.name,
                checks=tuple(raw.get("checks", ())),
            )
    return {k: _with_notes(v) for k, v in specs.items()}


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
    extra = tuple(str(n["text"]) for n in load("timing.json")["notes"] if _note_applies(n, spec))
    if not extra:
        return spec
    return replace(spec, steps=spec.steps + tuple(e for e in extra if e not in spec.steps))


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
    dates = [str(load("coverage_issues.json")["date"])]
    for name in (
        "support_matrix.json",
        "log_signatures.json",
        "bottlerocket.json",
        "endpoints.json",
        "ssm_signatures.json",
        "timing.json",
    ):
        if (HERE / name).exists():
            dates.append(str(load(name)["date"]))
    return max(dates)
