"""platform.clock and the clock rule: chronyd, timedatectl and timesyncd state, and the offset
from AWS's clock that IMDS's Date header measures (SigV4 refuses beyond 5 minutes)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

from gd_doctor.checks import clock as clock_check
from gd_doctor.checks import select_checks
from gd_doctor.diagnosis import ALL_RULES
from gd_doctor.diagnosis.engine import UNEXPLAINED, diagnose
from gd_doctor.facts.agent_logs import LogFacts, SignatureHit
from gd_doctor.facts.clock import ClockFacts
from gd_doctor.facts.imds import ImdsReachableFacts
from gd_doctor.host.imds import HttpImds
from gd_doctor.model import Severity, SkipReason, Status
from gd_doctor.parsers.time_sync import (
    names_time_sync_service,
    parse_chrony_tracking,
    parse_http_date,
    parse_timedatectl_show,
)
from tests.fakes.imds import FakeImds
from tests.hostkit import facts_with, make_host, result, run_one, run_pipeline

# `timedatectl show` of systemd 252 (AL2023), as printed: one Key=value per property.
TIMEDATECTL_SYNCED = """Timezone=UTC
LocalRTC=no
CanNTP=yes
NTP=yes
NTPSynchronized=yes
TimeUSec=Tue 2026-12-01 14:20:07 UTC
RTCTimeUSec=Tue 2026-12-01 14:20:07 UTC
"""
TIMEDATECTL_UNSYNCED = TIMEDATECTL_SYNCED.replace("NTPSynchronized=yes", "NTPSynchronized=no")
# `chronyc -c tracking`: the 14 fields of chrony's tracking report, in its CSV form.
CHRONY_SYNCED = (
    "A9FEA97B,169.254.169.123,4,1764598800.123456789,0.000012345,-0.000004567,0.000023456,"
    "-12.345,-0.001,0.035,0.000345678,0.000123456,64.5,Normal\n"
)
CHRONY_UNSYNCED = (
    "00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,"
    "1.000000000,1.000000000,0.0,Not synchronised\n"
)
CHRONY_SKEWED = CHRONY_SYNCED.replace(",0.000012345,", ",-431.250000000,")
AL2023_CHRONY_CONF = """# Use Amazon Time Sync Service
server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4
driftfile /var/lib/chrony/drift
makestep 1.0 3
rtcsync
"""
CHRONY_FILES: Dict[str, str] = {
    "/usr/sbin/chronyd": "",
    "/usr/bin/chronyc": "",
    "/run/chrony/chronyd.pid": "612\n",
    "/etc/chrony.conf": AL2023_CHRONY_CONF,
    "/usr/bin/timedatectl": "",
    "/run/systemd/system/.keep": "",
}


def _live(tmp_path: Path, chrony: str, timedatectl: str = TIMEDATECTL_SYNCED) -> Tuple:  # type: ignore[type-arg]
    host = make_host(
        tmp_path,
        files=CHRONY_FILES,
        commands={clock_check.CHRONYC: chrony, clock_check.TIMEDATECTL: timedatectl},
    )
    out = run_one(clock_check.clock, host)
    return out, host


def test_parsers_read_the_real_formats() -> None:
    props = parse_timedatectl_show(TIMEDATECTL_SYNCED)
    assert props["NTPSynchronized"] == "yes" and props["TimeUSec"].endswith("UTC")
    synced = parse_chrony_tracking(CHRONY_SYNCED)
    assert synced is not None and synced.synchronised and synced.uses_time_sync_service
    unsynced = parse_chrony_tracking(CHRONY_UNSYNCED)
    assert unsynced is not None and not unsynced.synchronised
    assert parse_chrony_tracking("506 Cannot talk to daemon\n") is None
    assert parse_chrony_tracking("A,b,c,d,e,f,g,h,i,j,k,l,m,n") is None
    assert parse_http_date("Tue, 01 Dec 2026 14:20:07 GMT") is not None
    assert parse_http_date("Tue, 99 Foo 2026") is None
    assert names_time_sync_service(AL2023_CHRONY_CONF)
    assert names_time_sync_service("[Time]\nNTP=169.254.169.123\n")
    assert not names_time_sync_service("pool 2.debian.pool.ntp.org iburst\n")


def test_chrony_synchronised_to_time_sync_is_ok(tmp_path: Path) -> None:
    out, host = _live(tmp_path, CHRONY_SYNCED)
    assert out.status == Status.OK, out.summary
    facts = out.facts
    assert isinstance(facts, ClockFacts)
    assert (facts.synchronized, facts.reference, facts.time_sync_service) == (
        True,
        "169.254.169.123",
        True,
    )
    assert facts.daemons == ("chronyd",) and facts.decided_by == "chronyc -c tracking"
    # chronyc over UDP (never its Unix socket, which would create a file under /run/chrony)
    argvs = [argv for argv, _ in host.run.calls]  # type: ignore[attr-defined]
    assert ("chronyc", "-h", "127.0.0.1", "-n", "-c", "tracking") in argvs
    assert all(timeout <= 5.0 for _, timeout in host.run.calls)  # type: ignore[attr-defined]


def test_an_unsynchronised_clock_warns_and_the_rule_says_why(tmp_path: Path) -> None:
    out, _ = _live(tmp_path, CHRONY_UNSYNCED, TIMEDATECTL_UNSYNCED)
    assert out.status == Status.WARN and out.facts.synchronized is False  # type: ignore[union-attr]
    found = diagnose([result("platform.clock", "warn", facts=out.facts)], ALL_RULES).findings
    assert [f.finding_id for f in found] == ["platform.clock-unsynchronised"]
    assert found[0].severity == Severity.WARN
    assert "169.254.169.123" in (found[0].fix_step or "")


def test_chronyd_measuring_more_than_five_minutes_fails(tmp_path: Path) -> None:
    out, _ = _live(tmp_path, CHRONY_SKEWED)
    assert out.status == Status.FAIL, out.summary
    diagnosis = diagnose([result("platform.clock", "fail", facts=out.facts)], ALL_RULES)
    ids = [f.finding_id for f in diagnosis.findings]
    assert ids == ["platform.clock-skewed"], ids
    # chrony prints a negative system time offset for a clock fast of NTP time
    assert "7 min 11 s ahead of" in diagnosis.findings[0].title


def test_timedatectl_alone_decides_without_chrony(tmp_path: Path) -> None:
    files = {"/usr/bin/timedatectl": "", "/run/systemd/system/.keep": ""}
    host = make_host(
        tmp_path, files=files, commands={clock_check.TIMEDATECTL: TIMEDATECTL_UNSYNCED}
    )
    out = run_one(clock_check.clock, host)
    assert out.status == Status.WARN and out.facts.decided_by == "timedatectl show"  # type: ignore[union-attr]


def test_under_root_only_files_are_read(tmp_path: Path) -> None:
    files = {**CHRONY_FILES, "/run/systemd/timesync/synchronized": ""}
    host = make_host(tmp_path, files=files, live=False)
    out = run_one(clock_check.clock, host)  # the FakeRunner would fail on any command
    assert out.status == Status.OK and out.facts.decided_by.endswith("synchronized")  # type: ignore[union-attr]
    bare = make_host(
        tmp_path / "bare", files={"/etc/chrony.conf": "pool pool.ntp.org\n"}, live=False
    )
    skipped = run_one(clock_check.clock, bare)
    assert skipped.status == Status.SKIP and skipped.skip_reason == SkipReason.UNAVAILABLE_WITH_ROOT
    assert isinstance(skipped.facts, ClockFacts) and skipped.facts.time_sync_service is False


def _imds(offset: float) -> ImdsReachableFacts:
    facts: ImdsReachableFacts = facts_with(
        ImdsReachableFacts,
        reachable=True,
        usable=True,
        disabled=False,
        token_mode="required",
        server_date="Tue, 01 Dec 2026 14:13:00 GMT",
        clock_offset_s=offset,
    )
    return facts


def _skew_hit() -> LogFacts:
    line = "SendSecurityTelemetry failed: Signature expired: 20261201T142000Z is now earlier than 20261201T142512Z"
    hit = facts_with(SignatureHit, id="clock-skew", finding="agent.log-clock-skew")
    hit = type(hit)(**{**hit.__dict__, "lines": (line,), "show": "skew", "count": 3})
    logs = facts_with(LogFacts, directory="/var/log/amzn-guardduty-agent", exists=True)
    return type(logs)(**{**logs.__dict__, "signatures": (hit,)})  # type: ignore[no-any-return]


def test_the_imds_offset_decides_and_folds_the_agents_refusals() -> None:
    synced = facts_with(ClockFacts, synchronized=True, decided_by="timedatectl show")
    results = [
        result("platform.clock", "ok", facts=synced),
        result("imds.reachable", "ok", facts=_imds(-400.0)),
        result("agent.logs", "warn", facts=_skew_hit()),
    ]
    diagnosis = diagnose(results, ALL_RULES)
    ids = [f.finding_id for f in diagnosis.findings]
    assert ids[0] == "platform.clock-skewed" and "agent.log-clock-skew" not in ids, ids
    top = diagnosis.findings[0]
    assert top.severity == Severity.FAIL and "behind AWS's" in top.title
    assert [c.finding_id for c in top.consequences] == ["agent.log-clock-skew"]
    assert UNEXPLAINED not in ids


def test_one_to_five_minutes_warns_and_under_a_minute_is_quiet() -> None:
    synced = facts_with(ClockFacts, synchronized=True, decided_by="timedatectl show")
    for offset, expected in ((150.0, ["platform.clock-drifting"]), (0.6, [])):
        results = [
            result("platform.clock", "ok", facts=synced),
            result("imds.reachable", "ok", facts=_imds(offset)),
        ]
        ids = [f.finding_id for f in diagnose(results, ALL_RULES).findings]
        assert [i for i in ids if i.startswith("platform.clock")] == expected, (offset, ids)


def test_an_unsynchronised_clock_is_the_cause_of_the_agents_skew_refusals() -> None:
    unsynced = facts_with(ClockFacts, synchronized=False, decided_by="chronyc -c tracking")
    results = [
        result("platform.clock", "warn", facts=unsynced),
        result("agent.logs", "warn", facts=_skew_hit()),
    ]
    found = diagnose(results, ALL_RULES).findings
    top = found[0]
    assert top.finding_id == "platform.clock-unsynchronised"
    assert top.severity == Severity.FAIL  # the refusals it explains make the host fail
    assert "agent.log-clock-skew" not in [f.finding_id for f in found]


def test_the_date_header_of_a_live_imds_measures_the_offset(tmp_path: Path) -> None:
    """Through the real HTTP client and the CLI's pipeline: "AWS" (the fake IMDS) is 7 minutes
    behind this machine, so the host runs 7 minutes ahead and SigV4 would refuse it."""
    checks, _ = select_checks(only=("imds.reachable", "platform.clock"))
    with FakeImds(tokens="required", clock_offset_s=-420.0) as fake:
        host = make_host(tmp_path, imds=HttpImds(fake.url))
        run, diagnosis, _ = run_pipeline(host, checks=checks)
    reach = next(r.facts for r in run.results if r.check_id == "imds.reachable")
    assert isinstance(reach, ImdsReachableFacts) and reach.server_date
    assert reach.clock_offset_s is not None and 419 <= reach.clock_offset_s <= 422
    skew = next(f for f in diagnosis.findings if f.finding_id == "platform.clock-skewed")
    assert "7 min" in skew.title and "ahead of AWS's" in skew.title
    with FakeImds(tokens="required") as fake:
        host = make_host(tmp_path, imds=HttpImds(fake.url))
        run, diagnosis, _ = run_pipeline(host, checks=checks)
    reach = next(r.facts for r in run.results if r.check_id == "imds.reachable")
    assert isinstance(reach, ImdsReachableFacts) and reach.clock_offset_s is not None
    assert -1 <= reach.clock_offset_s < 2  # a Date header has whole seconds
    assert not [f for f in diagnosis.findings if f.finding_id.startswith("platform.clock-")]


def test_http_dates_read_as_the_standard_librarys_rfc_5322_reader_reads_them() -> None:
    # The three forms RFC 9110 5.6.7 makes a recipient accept, and numeric zones, over many
    # instants: gd-doctor's reader agrees with email.utils (which it does not import).
    import random
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime, parsedate_to_datetime

    rng = random.Random(9110)
    for _ in range(2000):
        when = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(
            seconds=rng.randrange(0, 4_000_000_000)
        )
        forms = [
            format_datetime(when, usegmt=True),  # IMF-fixdate
            when.strftime("%A, %d-%b-%y %H:%M:%S GMT"),  # RFC 850
            when.strftime("%a %b ") + f"{when.day:2d}" + when.strftime(" %H:%M:%S %Y"),  # asctime
        ]
        zone = timezone(timedelta(minutes=rng.randrange(-720, 841, 15)))
        forms.append(format_datetime(when.astimezone(zone)))  # "+hhmm"
        for form in forms:
            expected = parsedate_to_datetime(form)
            if expected.tzinfo is None:
                expected = expected.replace(tzinfo=timezone.utc)
            assert parse_http_date(form) == expected, form
    for broken in (
        "Tue, 32 Dec 2026 14:20:00 GMT",
        "Tue, 01 Dec 2026 25:20:00 GMT",
        "Tue, 01 Dec 2026 14:20:00 EST5",
        "01 Dec 2026",
        "",
    ):
        assert parse_http_date(broken) is None, broken
