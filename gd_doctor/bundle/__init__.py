"""Support bundles: the evidence one run read, redacted, in one archive that replays offline.

``make_bundle`` runs the ordinary pipeline on a recording Host (record.py), then writes the
files and answers it saw (write.py). ``replay`` verifies and unpacks a bundle (replay.py) and
runs the same pipeline on a Host whose ports answer from the recording.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from gd_doctor.bundle.collect import TOTAL_CAP
from gd_doctor.bundle.record import recording_host
from gd_doctor.bundle.replay import BundleRefused, OpenedBundle, open_bundle
from gd_doctor.bundle.replay_ports import replay_host
from gd_doctor.bundle.write import default_name, write_bundle
from gd_doctor.checks.base import Check, Options
from gd_doctor.host import Host
from gd_doctor.pipeline import Run, run_doctor
from gd_doctor.report.json import render_json

__all__ = [
    "BundleRefused",
    "Made",
    "OpenedBundle",
    "default_name",
    "make_bundle",
    "open_bundle",
    "replay",
    "replay_host",
]


@dataclass(frozen=True)
class Made:
    """A written bundle: where, its manifest, and the run it recorded."""

    path: Path
    manifest: Dict[str, Any]
    run: Run


def make_bundle(
    host: Host,
    output: Optional[Path],
    *,
    options: Optional[Options] = None,
    budget_s: float = 20.0,
    redact_more: bool = False,
    total_cap: int = TOTAL_CAP,
    directory: Path = Path("."),
    checks: Optional[Sequence[Check]] = None,
) -> Made:
    """One run on ``host`` under ``budget_s`` (the checks get most of it, the writing the rest)
    and its bundle at ``output`` (default: a name with host, instance and time in
    ``directory``)."""
    opts = options or Options()
    wrapped, rec = recording_host(host)
    # The timeline's files first (package logs and databases, the SSM Agent's log: the bundle
    # holds them as read); its journal queries go to the live journal unrecorded, or a replay
    # (which never runs the timeline first) would get the timeline's answers for the checks'
    # own queries of the same units. The run closes the journal's runner at its end.
    from gd_doctor.bundle import timeline

    timeline.build(
        replace(wrapped, journal=host.journal),
        (rec.started or datetime.now(timezone.utc)) - opts.since,
        timeout=min(10.0, budget_s * 0.1),
    )
    run = run_doctor(
        wrapped, checks=checks, options=opts, budget_s=budget_s * 0.7, started_at=rec.started
    )
    h = run.report.host
    info: Dict[str, Any] = {
        "hostname": h.hostname,
        "instance_id": h.instance_id,
        "region": h.region,
        "root": h.root,
        "euid": host.euid,
    }
    path = output or directory / default_name(info, rec.started or datetime.now(timezone.utc))
    manifest = write_bundle(
        path,
        fs=host.fs,
        rec=rec,
        report_json=render_json(run.report),
        host_info=info,
        live=host.live,
        since=opts.since,
        redact_more=redact_more,
        total_cap=total_cap,
        budget_s=max(1.0, budget_s * 0.2),
        packages=frozenset(wrapped.packages.asked),
    )
    return Made(path, manifest, run)


def replay(
    bundle: OpenedBundle,
    *,
    options: Optional[Options] = None,
    budget_s: float = 20.0,
    checks: Optional[Sequence[Check]] = None,
) -> Run:
    """The pipeline over a bundle; the report's root says it is a replay, of what, from when."""
    host = replay_host(bundle)
    if options is None:
        window = since_of(bundle.manifest)
        options = Options(since=window) if window is not None else Options()
    done = run_doctor(
        host, checks=checks, options=options, budget_s=budget_s, started_at=bundle.recorded_at
    )
    report = replace(done.report, host=replace(done.report.host, root=bundle.describe()))
    return Run(done.outcome, done.diagnosis, report)


def since_of(manifest: Dict[str, Any]) -> Optional[timedelta]:
    """The window the bundle was made with (replay uses the same by default)."""
    from datetime import datetime

    try:
        start = datetime.fromisoformat(str(manifest["window_start"]))
        at = datetime.fromisoformat(str(manifest["recorded_at"]))
    except (KeyError, ValueError):
        return None
    return at - start
