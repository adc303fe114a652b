"""The clock check (``platform.clock``): is the host's clock synchronised?

The agent signs every call with SigV4, which AWS refuses when the clock is more than 5 minutes
off. Read-only sources, most specific first:

* live: ``chronyc -h 127.0.0.1 -n -c tracking`` when chronyd runs. Over UDP on purpose: by
  default chronyc talks to chronyd through its Unix socket, and to do so it binds a socket file
  of its own under /run/chrony, a write. ``tracking`` is one of the monitoring commands chronyd
  answers from localhost over UDP (chronyc(1)); ``-n`` keeps chronyc from resolving names.
* live: ``timedatectl show``, the kernel's synchronisation flag (NTPSynchronized, set by
  chronyd, ntpd or systemd-timesyncd alike) through systemd-timedated's read-only D-Bus
  properties. ntpd has no query of its own here: ``ntpq`` would add nothing this flag does not
  already say.
* files, also under ``--root``: ``/run/systemd/timesync/synchronized`` (systemd-timesyncd
  creates it once synchronised, systemd >= 239), and whether the configurations of chrony, ntpd
  and timesyncd name the Amazon Time Sync Service (169.254.169.123, fd00:ec2::123).

AWS's own clock, from IMDS's ``Date`` header, is in ``ImdsReachableFacts``; the rule in
``diagnosis/clock.py`` weighs both.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from gd_doctor.checks.base import Check, Context, check, judged, skip
from gd_doctor.facts.clock import ClockFacts, thresholds
from gd_doctor.host import timeouts
from gd_doctor.model import Outcome, SkipReason, Status
from gd_doctor.parsers.time_sync import (
    ChronyTracking,
    names_time_sync_service,
    parse_chrony_tracking,
    parse_timedatectl_show,
    yes_no,
)

SMALL = 64 * 1024
TIMESYNCD_SYNCHRONIZED = "/run/systemd/timesync/synchronized"
CHRONYC = ("chronyc", "-h", "127.0.0.1", "-n", "-c", "tracking")
TIMEDATECTL = ("timedatectl", "show")
BIN_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin")
# Daemon -> (its binaries, its configuration files, directories of drop-in configurations).
DAEMONS: Tuple[Tuple[str, Tuple[str, ...], Tuple[str, ...], Tuple[str, ...]], ...] = (
    (
        "chronyd",
        ("/usr/sbin/chronyd", "/sbin/chronyd"),
        ("/etc/chrony.conf", "/etc/chrony/chrony.conf"),
        ("/etc/chrony.d", "/etc/chrony/conf.d", "/etc/chrony/sources.d"),
    ),
    (
        "systemd-timesyncd",
        ("/usr/lib/systemd/systemd-timesyncd", "/lib/systemd/systemd-timesyncd"),
        ("/etc/systemd/timesyncd.conf",),
        ("/etc/systemd/timesyncd.conf.d",),
    ),
    ("ntpd", ("/usr/sbin/ntpd", "/sbin/ntpd"), ("/etc/ntp.conf", "/etc/ntpsec/ntp.conf"), ()),
)
CHRONYD_PID = ("/run/chrony/chronyd.pid", "/var/run/chrony/chronyd.pid", "/run/chronyd.pid")


def _installed(ctx: Context, name: str) -> bool:
    return any(ctx.host.fs.exists(f"{d}/{name}") for d in BIN_DIRS)


def _configs(ctx: Context) -> Tuple[Tuple[str, ...], Tuple[str, ...], Optional[bool]]:
    """Installed daemons, configuration files read, and whether one names Time Sync."""
    daemons: List[str] = []
    files: List[str] = []
    names_it = False
    for daemon, binaries, configs, dirs in DAEMONS:
        if any(ctx.host.fs.exists(b) for b in binaries):
            daemons.append(daemon)
        paths = [*configs, *(p for d in dirs for p in sorted(ctx.host.fs.glob(d, "*.conf"))[:20])]
        paths += [p for d in dirs for p in sorted(ctx.host.fs.glob(d, "*.sources"))[:20]]
        for path in paths:
            text = ctx.host.fs.read_text(path, SMALL)
            if text is None:
                continue
            files.append(path)
            names_it = names_it or names_time_sync_service(text)
    return tuple(daemons), tuple(files), (names_it if files else None)


def _chrony(ctx: Context, problems: List[str]) -> Optional[ChronyTracking]:
    if not _installed(ctx, "chronyc") or not any(ctx.host.fs.exists(p) for p in CHRONYD_PID):
        return None  # no chronyd running: nothing would answer
    res = ctx.host.run.run(CHRONYC, timeout=ctx.timeout(timeouts.COMMAND))
    if not res.ok:
        why = res.problem or f"exit {res.returncode}: {res.stderr.strip()[:200]}"
        problems.append(f"{' '.join(CHRONYC)}: {why}")
        return None
    tracking = parse_chrony_tracking(res.stdout)
    if tracking is None:
        problems.append(f"{' '.join(CHRONYC)}: output is not a tracking report")
    return tracking


def _timedatectl(ctx: Context, problems: List[str]) -> Tuple[Optional[bool], Optional[bool]]:
    """(NTPSynchronized, NTP) from ``timedatectl show``; None where it did not say."""
    if not _installed(ctx, "timedatectl") or not ctx.host.fs.is_dir("/run/systemd/system"):
        return None, None  # timedated needs a booted systemd
    res = ctx.host.run.run(TIMEDATECTL, timeout=ctx.timeout(timeouts.COMMAND))
    if not res.ok:
        why = res.problem or f"exit {res.returncode}: {res.stderr.strip()[:200]}"
        problems.append(f"{' '.join(TIMEDATECTL)}: {why}")
        return None, None
    props = parse_timedatectl_show(res.stdout)
    return yes_no(props.get("NTPSynchronized")), yes_no(props.get("NTP"))


def _facts(ctx: Context) -> Tuple[ClockFacts, List[str]]:
    problems: List[str] = []
    evidence: List[str] = []
    daemons, files, names_it = _configs(ctx)
    tracking = _chrony(ctx, problems) if ctx.host.live else None
    synced, ntp = _timedatectl(ctx, problems) if ctx.host.live else (None, None)
    timesyncd_file = ctx.host.fs.exists(TIMESYNCD_SYNCHRONIZED)
    decided: Optional[str] = None
    synchronized: Optional[bool] = None
    if tracking is not None:
        synchronized, decided = tracking.synchronised, "chronyc -c tracking"
        evidence.append(
            f"chronyc tracking: reference {tracking.reference} (stratum {tracking.stratum}), "
            f"system time offset {tracking.system_offset_s:+.6f} s, leap status "
            f"{tracking.leap_status}"
        )
    if synced is not None:
        evidence.append(f"timedatectl show: NTPSynchronized={'yes' if synced else 'no'}")
        if synchronized is None:
            synchronized, decided = synced, "timedatectl show"
    if ntp is not None:
        evidence.append(f"timedatectl show: NTP={'yes' if ntp else 'no'}")
    if timesyncd_file:
        evidence.append(f"{TIMESYNCD_SYNCHRONIZED} exists (systemd-timesyncd synchronised)")
        if synchronized is None:
            synchronized, decided = True, TIMESYNCD_SYNCHRONIZED
    if names_it is not None:
        said = "names" if names_it else "does not name"
        evidence.append(f"time configuration ({', '.join(files[:4])}) {said} 169.254.169.123")
    facts = ClockFacts(
        synchronized=synchronized,
        decided_by=decided,
        daemons=daemons,
        ntp_enabled=ntp,
        reference=tracking.reference if tracking else None,
        stratum=tracking.stratum if tracking else None,
        leap_status=tracking.leap_status if tracking else None,
        offset_s=tracking.system_offset_s if tracking else None,
        time_sync_service=names_it,
        config_files=files,
        problems=tuple(problems),
    )
    return facts, evidence + problems


@check(
    "platform.clock",
    title="The clock is synchronised (SigV4 refuses more than 5 minutes of skew)",
    category="platform",
    facts=ClockFacts,
)
def clock(ctx: Context) -> Outcome:
    """Asks chronyd (over UDP, read-only) and timedatectl whether the clock is synchronised,
    and reads which time source the configuration names; under --root only the files."""
    facts, evidence = _facts(ctx)
    max_skew, warn_at = thresholds()
    offset = abs(facts.offset_s) if facts.offset_s is not None else None
    if offset is not None and facts.synchronized is not False and offset > max_skew:
        summary = f"chronyd measures the clock {offset:.0f} s off its reference (over 5 min)"
        return judged(Status.FAIL, summary, facts, evidence)
    if facts.synchronized is False:
        summary = f"the clock is not synchronised ({facts.decided_by})"
        return judged(Status.WARN, summary, facts, evidence)
    if offset is not None and offset >= warn_at:
        summary = f"chronyd measures the clock {offset:.0f} s off its reference"
        return judged(Status.WARN, summary, facts, evidence)
    if facts.synchronized:
        source = f", reference {facts.reference}" if facts.reference else ""
        return judged(Status.OK, f"synchronised ({facts.decided_by}{source})", facts, evidence)
    if not ctx.host.live:
        return skip(
            SkipReason.UNAVAILABLE_WITH_ROOT,
            "whether the clock is synchronised is run-time state of the live host",
            facts=facts,
        )
    summary = "cannot tell whether the clock is synchronised (no time daemon answered)"
    return judged(Status.WARN, summary, facts, evidence)


CHECKS: Tuple[Check, ...] = (clock,)
