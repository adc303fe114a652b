"""How a check is declared, what it receives and what it returns.

A check is a small function ``(ctx: Context) -> Outcome`` wrapped by :func:`check`, which records
its metadata: a dotted id (``domain.subject``), a title, a category, the checks it requires (it is
skipped when one of them did not pass), the checks it merely reads facts from (it waits for them
but runs whatever they found), and where it applies (``live``: needs the live host; ``network``:
does network I/O and is worth running in parallel).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Iterable, Mapping, Optional, Tuple, Type, TypeVar

from gd_doctor.facts import Facts, producer_of, register_producer
from gd_doctor.host import Host
from gd_doctor.model import CheckResult, Outcome, SkipReason, Status
from gd_doctor.redact import redact

F = TypeVar("F", bound=Facts)

CATEGORIES: Tuple[str, ...] = ("platform", "agent", "ssm", "imds", "network")
NEEDS: Tuple[str, ...] = ("live", "network", "root-user")


@dataclass(frozen=True)
class Options:
    """The user's choices that checks read; how to reach the host's services (Region, endpoint
    URL, IMDS endpoint) is the host layer's :class:`~gd_doctor.host.settings.HostSettings`."""

    since: timedelta = timedelta(hours=24)


class Context:
    """What a running check sees: the host, the options, earlier results and its time left."""

    def __init__(
        self,
        host: Host,
        options: Options,
        results: Mapping[str, CheckResult],
        deadline: float,
    ) -> None:
        self.host = host
        self.options = options
        self._results = results
        self._deadline = deadline

    def facts(self, facts_type: Type[F]) -> Optional[F]:
        """The facts an earlier check produced, when it ran (the check must declare
        ``facts_type`` in ``reads``); None when that check was skipped, crashed or not run."""
        for res in self._results.values():
            if isinstance(res.facts, facts_type):
                return res.facts
        return None

    def remaining(self) -> float:
        """Seconds left in the run's budget."""
        return max(0.0, self._deadline - self.host.clock.monotonic())

    def timeout(self, default: float) -> float:
        """A per-call timeout: the default, but never past the run's deadline."""
        return max(0.05, min(default, self.remaining()))


CheckFunc = Callable[[Context], Outcome]


@dataclass(frozen=True)
class Check:
    """One registered check: metadata plus the function that does the work."""

    id: str
    title: str
    category: str
    func: CheckFunc
    requires: Tuple[str, ...] = ()
    after: Tuple[str, ...] = ()
    needs: Tuple[str, ...] = ()
    description: str = field(default="")
    facts: Optional[Type[Facts]] = None
    reads: Tuple[Type[Facts], ...] = ()

    def __call__(self, ctx: Context) -> Outcome:
        return self.func(ctx)

    @property
    def network(self) -> bool:
        return "network" in self.needs

    @property
    def waits_on(self) -> Tuple[str, ...]:
        """Every check id this one must wait for: requires, after, and producers of reads."""
        readers = tuple(producer_of(t) for t in self.reads)
        return tuple(dict.fromkeys((*self.requires, *self.after, *readers)))


def check(
    check_id: str,
    *,
    title: str,
    category: str,
    requires: Tuple[str, ...] = (),
    after: Tuple[str, ...] = (),
    needs: Tuple[str, ...] = (),
    facts: Optional[Type[Facts]] = None,
    reads: Tuple[Type[Facts], ...] = (),
) -> Callable[[CheckFunc], Check]:
    """Declare a check. The function's docstring becomes its description.

    ``facts`` is the one :class:`~gd_doctor.facts.Facts` type the check returns in its Outcome;
    ``reads`` the facts types of earlier checks it reads with :meth:`Context.facts` (the runner
    waits for their producers, as for ``after``).
    """
    if facts is not None:
        register_producer(facts, check_id)

    def wrap(func: CheckFunc) -> Check:
        return Check(
            id=check_id,
            title=title,
            category=category,
            func=func,
            requires=requires,
            after=after,
            needs=needs,
            description=(func.__doc__ or "").strip(),
            facts=facts,
            reads=reads,
        )

    return wrap


# Small constructors so a check body reads like prose.


def ok(
    summary: str,
    *,
    evidence: Iterable[str] = (),
    facts: Optional[Facts] = None,
) -> Outcome:
    return Outcome(Status.OK, summary, tuple(evidence), facts=facts)


def warn(
    summary: str,
    *,
    evidence: Iterable[str] = (),
    facts: Optional[Facts] = None,
) -> Outcome:
    return Outcome(Status.WARN, summary, tuple(evidence), facts=facts)


def fail(
    summary: str,
    *,
    evidence: Iterable[str] = (),
    facts: Optional[Facts] = None,
) -> Outcome:
    return Outcome(Status.FAIL, summary, tuple(evidence), facts=facts)


def skip(reason: str, summary: str, *, facts: Optional[Facts] = None) -> Outcome:
    """Not applicable here; ``reason`` is from :class:`gd_doctor.model.SkipReason`."""
    return Outcome(Status.SKIP, summary, skip_reason=reason, facts=facts)


def not_applicable(summary: str, *, facts: Optional[Facts] = None) -> Outcome:
    return skip(SkipReason.NOT_APPLICABLE, summary, facts=facts)


def judged(status: Status, summary: str, facts: Facts, evidence: Iterable[str] = ()) -> Outcome:
    """An Outcome carrying ``facts``; evidence lines are redacted here (raw host text)."""
    return Outcome(status, summary, evidence=tuple(redact(e) for e in evidence), facts=facts)


def error(
    summary: str,
    *,
    evidence: Iterable[str] = (),
    facts: Optional[Facts] = None,
) -> Outcome:
    """The check could not judge (unexpected host data); not a crash."""
    return Outcome(Status.ERROR, summary, tuple(evidence), facts=facts)
