"""Diagnosis rule over the clock: skew that SigV4 refuses, drift, an unsynchronised clock.

Two measurements: AWS's own clock against the host's, from IMDS's ``Date`` header
(``ImdsReachableFacts.clock_offset_s``, live only), and chronyd's estimate of the offset from
its reference (``ClockFacts.offset_s``). The larger one decides. The findings fold the agent's
and the SSM Agent's clock-skew refusals (``agent.log-clock-skew``, ``ssm.clock-skew``): the
clock is their cause (knowledge/findings/time.json).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from gd_doctor.diagnosis.base import Rule, RuleOutput, finding, rule
from gd_doctor.facts.clock import ClockFacts, thresholds
from gd_doctor.facts.imds import ImdsReachableFacts


def _duration(seconds: float) -> str:
    """``7 min 12 s``, ``45 s``, ``3 h 2 min``.

    >>> _duration(432.4), _duration(45), _duration(10980)
    ('7 min 12 s', '45 s', '3 h 3 min')
    """
    s = round(abs(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min {s % 60} s"
    return f"{s} s"


def _offsets(
    clock: Optional[ClockFacts], imds: Optional[ImdsReachableFacts]
) -> List[Tuple[float, str, str]]:
    """(offset, "ahead of"/"behind", how it was measured) of each measurement available."""
    found: List[Tuple[float, str, str]] = []
    if imds is not None and imds.clock_offset_s is not None:
        ahead = imds.clock_offset_s > 0
        how = f"IMDS Date header {imds.server_date}"
        found.append((abs(imds.clock_offset_s), "ahead of" if ahead else "behind", how))
    if clock is not None and clock.offset_s is not None and clock.synchronized is not False:
        # chronyc: a positive system time offset means the clock is slow of NTP time
        slow = clock.offset_s > 0
        how = f"chronyd against {clock.reference or 'its reference'}"
        found.append((abs(clock.offset_s), "behind" if slow else "ahead of", how))
    return found


@rule("platform.clock", reads=(ClockFacts, ImdsReachableFacts))
def clock_state(clock: Optional[ClockFacts], imds: Optional[ImdsReachableFacts]) -> RuleOutput:
    """More than 5 minutes off AWS's clock (fail), 1 to 5 minutes (warn), or not synchronised."""
    max_skew, warn_at = thresholds()
    offsets = sorted(_offsets(clock, imds), reverse=True)
    if offsets and offsets[0][0] >= warn_at:
        offset, direction, how = offsets[0]
        spec = "platform.clock-skewed" if offset > max_skew else "platform.clock-drifting"
        lines = [f"offset {offset:+.1f} s ({h})" for offset, _, h in offsets]
        return finding(
            spec,
            evidence=lines,
            checks=(ClockFacts, ImdsReachableFacts),
            evidence_from=(ClockFacts,),
            offset=_duration(offset),
            direction=direction,
            measured_by=how,
        )
    if clock is not None and clock.synchronized is False:
        return finding(
            "platform.clock-unsynchronised",
            checks=(ClockFacts,),
            evidence_from=(ClockFacts,),
            decided_by=clock.decided_by or "the time daemon",
        )
    return None


RULES: Tuple[Rule, ...] = (clock_state,)
