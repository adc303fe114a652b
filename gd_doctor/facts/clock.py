"""Facts of the clock check (``platform.clock``): whether the host's clock is synchronised.

The agent signs its calls with SigV4, which AWS refuses beyond 5 minutes of skew. The offset
from AWS's own clock is measured from IMDS's ``Date`` header (``ImdsReachableFacts``); these
facts say what the host's time daemons report. ``synchronized`` is None when nothing could
tell (a root without run-time state, no daemon answering), never False by default.
"""

from __future__ import annotations

from typing import Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.knowledge import load
from gd_doctor.model import Facts


@dataclass(frozen=True)
class ClockFacts(Facts):
    """platform.clock: synchronisation state and the configuration of the time daemons.

    ``decided_by`` names the source of ``synchronized`` (``chronyc -c tracking``,
    ``timedatectl show``, ``/run/systemd/timesync/synchronized``); ``offset_s`` is chronyd's
    estimate of the system clock's offset from its reference (positive: slow of NTP time);
    ``time_sync_service`` is whether a daemon's configuration names 169.254.169.123 or
    fd00:ec2::123 (None: no configuration was found).
    """

    synchronized: Optional[bool]
    decided_by: Optional[str]
    daemons: Tuple[str, ...]
    ntp_enabled: Optional[bool] = None
    reference: Optional[str] = None
    stratum: Optional[int] = None
    leap_status: Optional[str] = None
    offset_s: Optional[float] = None
    time_sync_service: Optional[bool] = None
    config_files: Tuple[str, ...] = ()
    problems: Tuple[str, ...] = ()


def thresholds() -> Tuple[float, float]:
    """(SigV4's maximum skew, the offset worth a warning) in seconds, from findings/time.json."""
    clock = load("findings/time.json")["clock"]
    return float(clock["sigv4_max_skew_s"]), float(clock["warn_offset_s"])
