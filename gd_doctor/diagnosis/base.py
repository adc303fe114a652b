"""How diagnosis rules are written: small pure functions over typed facts.

A rule declares the facts types it reads, ``@rule("agent.unit_masked", reads=(UnitFacts,))``,
and receives one argument per type: the instance its producing check returned, or None when
that check did not run or could not judge. It returns findings built with :func:`finding`,
which takes the finding's text (title, steps, issue row, rank) from the knowledge base, so rules
hold logic only. ``checks=`` and ``evidence_from=`` name facts types too; the engine turns them
into check ids and the producing checks' evidence lines.

Rules about the run itself (time budget) read :class:`RunResults`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence, Tuple, Type, Union

from gd_doctor.facts import Facts, producer_of
from gd_doctor.frozen import dataclass
from gd_doctor.knowledge import finding_specs
from gd_doctor.model import CheckResult, Finding, Severity
from gd_doctor.redact import redact


class RunResults:
    """What a rule about the run itself reads: every check's status and timing, no data."""

    def __init__(self, results: Sequence[CheckResult]) -> None:
        self.results = tuple(results)


RuleOutput = Union[None, Finding, Iterable[Finding]]
RuleFunc = Callable[..., RuleOutput]
Readable = Union[Type[Facts], Type[RunResults]]


@dataclass(frozen=True)
class Rule:
    """One registered diagnosis rule and the facts types (or :class:`RunResults`) it reads."""

    id: str
    func: RuleFunc
    description: str = ""
    reads: Tuple[Readable, ...] = ()

    def apply(self, results: Sequence[CheckResult]) -> RuleOutput:
        """Call the rule with the facts it declared, from these results."""
        return self.func(*(_argument(t, results) for t in self.reads))

    def __call__(self, results: Sequence[CheckResult]) -> RuleOutput:
        return self.apply(results)


def _argument(wanted: Readable, results: Sequence[CheckResult]) -> Any:
    if wanted is RunResults:
        return RunResults(results)
    for res in results:
        if isinstance(res.facts, wanted):
            return res.facts
    return None


def rule(rule_id: str, *, reads: Tuple[Readable, ...]) -> Callable[[RuleFunc], Rule]:
    """Declare a rule; its docstring says which situation it recognises."""

    def wrap(func: RuleFunc) -> Rule:
        return Rule(rule_id, func, (func.__doc__ or "").strip(), reads)

    return wrap


CheckRef = Union[str, Type[Facts]]


def check_id_of(ref: CheckRef) -> str:
    """A check id, from a facts type (its producer) or an id."""
    return ref if isinstance(ref, str) else producer_of(ref)


class _SafeFormat(dict):  # type: ignore[type-arg]
    """Leaves unknown ``{placeholders}`` as they are instead of raising KeyError."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(template: str, params: Mapping[str, object]) -> str:
    try:
        return template.format_map(_SafeFormat({k: str(v) for k, v in params.items()}))
    except (ValueError, IndexError):
        return template


def finding(
    spec_id: str,
    *,
    evidence: Iterable[str] = (),
    checks: Iterable[CheckRef] = (),
    evidence_from: Iterable[CheckRef] = (),
    **params: object,
) -> Finding:
    """Build the finding ``spec_id`` of the knowledge base, filling its placeholders.

    ``checks`` are the checks the finding explains (facts types or ids); the evidence lines of
    the checks in ``evidence_from`` are put before ``evidence`` by the engine.
    """
    spec = finding_specs()[spec_id]
    # steps for other failures than this one (a step's "when") are left out here; the engine
    # tailors the rest to the host
    kept = [(s, m) for s, m in zip(spec.steps, spec.step_specs) if m.wanted(params)]
    return Finding(
        finding_id=spec.id,
        title=_fill(spec.title, params),
        severity=Severity(spec.severity),
        issue_id=spec.issue,
        evidence=tuple(redact(e) for e in evidence if e),
        steps=tuple(_fill(s, params) for s, _ in kept),
        step_specs=tuple(m for _, m in kept),
        doc=spec.doc,
        rank=spec.rank,
        checks=tuple(dict.fromkeys(check_id_of(c) for c in checks)),
        evidence_from=tuple(check_id_of(c) for c in evidence_from),
    )
