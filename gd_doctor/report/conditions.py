"""Conditions that change the meaning of a whole run, for the banner above the problems.

A reader who misses "this ran inside a container" or "this was not root" reads every line below
it wrongly, so these come first. Pure functions of the Report (its checks' typed facts and the
host summary); the renderers decide how to draw them.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from gd_doctor.facts.platform import ContainerFacts, Ec2Facts
from gd_doctor.frozen import dataclass
from gd_doctor.limits import MAX_LIST
from gd_doctor.model import CheckResult, Report, SkipReason, Status

# How many check ids a banner names before it says "and N more".
_NAMED = 6


@dataclass(frozen=True)
class Condition:
    """One banner line: a short key (for tests and JSON) and the sentence a reader sees."""

    key: str  # offline | container | not-ec2 | not-root | no-region
    text: str


def _check(report: Report, check_id: str) -> Optional[CheckResult]:
    return next((c for c in report.checks if c.check_id == check_id), None)


def _names(ids: Tuple[str, ...]) -> str:
    shown = ", ".join(ids[:_NAMED])
    return shown + (f" and {len(ids) - _NAMED} more" if len(ids) > _NAMED else "")


def needs_root(report: Report) -> Tuple[str, ...]:
    """The checks that were skipped because they need root (their results are missing)."""
    return tuple(
        c.check_id
        for c in report.checks[:MAX_LIST]
        if c.status == Status.SKIP and (c.skip_reason or "").startswith(SkipReason.NEEDS_ROOT)
    )


def _offline(report: Report) -> Optional[Condition]:
    if report.host.live:
        return None
    return Condition(
        "offline",
        f"Offline analysis of the root {report.host.root}: the live unit state, IMDS and the "
        "network path are not checked.",
    )


def _container(report: Report) -> Optional[Condition]:
    res = _check(report, "platform.container")
    facts = res.facts if res is not None else None
    if not (isinstance(facts, ContainerFacts) and facts.in_container):
        return None
    signs = "; ".join(facts.signals[:2])
    return Condition(
        "container",
        f"Inside a container ({signs}): the results describe the container, not the EC2 host; "
        "run gd-doctor on the host itself.",
    )


def _not_ec2(report: Report) -> Optional[Condition]:
    if report.host.instance_id:  # an identity document from IMDS is EC2 evidence enough
        return None
    res = _check(report, "platform.ec2")
    facts = res.facts if res is not None else None
    is_ec2 = facts.is_ec2 if isinstance(facts, Ec2Facts) else report.host.is_ec2
    if is_ec2 is not False:
        return None
    why = ""
    if isinstance(facts, Ec2Facts) and facts.evidence_against:
        why = f" ({facts.evidence_against[0]})"
    return Condition(
        "not-ec2",
        f"Not an EC2 instance{why}: GuardDuty Runtime Monitoring for EC2 does not cover this "
        "machine, so the findings below say what would block it on EC2.",
    )


def _not_root(report: Report) -> Optional[Condition]:
    if report.host.euid is None or report.host.euid == 0:
        return None
    partial = needs_root(report)
    if not partial and not report.host.live:
        return None  # reading a captured root needs no privilege beyond its files
    who = f"Not running as root (uid {report.host.euid})"
    if partial:
        n = len(partial)
        what = (
            f"{n} checks could not read what they need"
            if n != 1
            else ("1 check could not read what it needs")
        )
        text = f"{who}: {what} ({_names(partial)}); results are partial. Re-run with sudo."
    else:
        text = f"{who}: some files may have been unreadable; re-run with sudo to be sure."
    return Condition("not-root", text)


def untested_network(report: Report) -> Tuple[str, ...]:
    """The network checks a live run could not make because it had no Region (none offline or
    when the Region was known)."""
    if not report.host.live or report.host.region:
        return ()
    return tuple(
        c.check_id
        for c in report.checks
        if c.category == "network"
        and c.status in (Status.SKIP, Status.ERROR)
        and (c.skip_reason or "").startswith(SkipReason.BLOCKED_BY)
    )


def _no_region(report: Report) -> Optional[Condition]:
    blocked = untested_network(report)
    if not blocked:
        return None
    return Condition(
        "no-region",
        f"The network path to GuardDuty was not tested ({_names(blocked)}): IMDS gave no "
        "Region. Re-run with --region REGION.",
    )


def run_conditions(report: Report) -> List[Condition]:
    """Every condition that holds for this run, most far-reaching first."""
    found = (_offline, _container, _not_ec2, _not_root, _no_region)
    return [c for c in (f(report) for f in found) if c is not None]
