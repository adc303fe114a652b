"""agent.logs over synthetic log directories (tests/fixtures/agent-logs/README.md) and bad input."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List

import pytest

from gd_doctor.checks import agent_logs as agent
from gd_doctor.facts import to_data
from gd_doctor.facts.agent_logs import LogFacts
from gd_doctor.host.fs import RootFS
from gd_doctor.host.logfiles import read_log_file
from gd_doctor.model import Outcome, Status
from tests.hostkit import FIXTURES, NOW, make_host, run_one

LOGS = FIXTURES / "agent-logs"
LOG_DIR = "var/log/amzn-guardduty-agent"


def _install(root: Path, fmt: str) -> Path:
    target = root / LOG_DIR
    shutil.copytree(LOGS / fmt, target)
    plain = target / "agent.log.2"
    if plain.exists():  # the rotated-and-compressed file is made here, not committed
        with gzip.open(target / "agent.log.2.gz", "wb") as fh:
            fh.write(plain.read_bytes())
        plain.unlink()
    stamp = NOW.timestamp() - 60
    for f in target.iterdir():
        os.utime(f, (stamp, stamp))
    return target


def _facts(out: Outcome) -> LogFacts:
    assert isinstance(out.facts, LogFacts)
    return out.facts


def _ids(out: Outcome) -> Dict[str, int]:
    return {s.id: s.count for s in _facts(out).signatures}


def test_tracing_text_rotated_and_gzipped(tmp_path: Path) -> None:
    _install(tmp_path, "tracing")
    out = run_one(agent.logs, make_host(tmp_path))
    assert out.status == Status.WARN
    # the AccessDenied line of 2026-11-28 is outside the 24 h window; the one of 11-29 is in
    assert _ids(out) == {"dns": 2, "connect-timeout": 1, "access-denied": 1, "tls": 1}
    text = "\n".join(out.evidence)
    assert "hunter2" not in text and "hunter2" not in repr(to_data(out.facts))
    assert "agent.log.2.gz" in text  # the gzipped file was read


def test_json_lines(tmp_path: Path) -> None:
    _install(tmp_path, "json")
    out = run_one(agent.logs, make_host(tmp_path))
    assert _ids(out) == {"imds": 1, "memlock": 1}
    assert any("2026-11-30T10:00:01" in e for e in out.evidence)


def test_lines_without_timestamps(tmp_path: Path) -> None:
    _install(tmp_path, "envlogger")
    out = run_one(agent.logs, make_host(tmp_path))
    assert _ids(out) == {"btf-missing": 2, "bpf-load-failed": 2}


def test_missing_directory_is_not_applicable(tmp_path: Path) -> None:
    out = run_one(agent.logs, make_host(tmp_path))
    assert out.status == Status.SKIP and "does not exist" in out.summary
    assert not _facts(out).exists and _facts(out).unreadable is None


def test_clean_log_is_ok(tmp_path: Path) -> None:
    d = tmp_path / LOG_DIR
    d.mkdir(parents=True)
    (d / "agent.log").write_text("2026-11-30T11:00:00Z INFO started\n")
    out = run_one(agent.logs, make_host(tmp_path))
    assert out.status == Status.OK and _facts(out).files_read == 1 and not _facts(out).signatures


def test_bad_input_gives_clear_results(tmp_path: Path) -> None:
    d = tmp_path / LOG_DIR
    d.mkdir(parents=True)
    (d / "garbage.bin").write_bytes(os.urandom(200_000) + b"\x00" * 1000)
    (d / "huge-line.log").write_bytes(
        b"x" * (10 * 1024 * 1024)
        + b" dns error\n"
        + b"2026-11-30T11:00:00Z ERROR dns error: no such host\n"
    )
    good = gzip.compress(b"2026-11-30T11:00:00Z ERROR Connection refused (os error 111)\n" * 50)
    (d / "truncated.log.1.gz").write_bytes(good[: len(good) // 2])
    (d / "subdir").mkdir()
    out = run_one(agent.logs, make_host(tmp_path))
    assert out.status == Status.WARN
    problems = " ".join(_facts(out).problems)
    assert "truncated or corrupt gzip" in problems
    assert "dns" in _ids(out)
    assert all(len(e) < 1000 for e in out.evidence)


def test_reading_backwards_stops_at_the_window(tmp_path: Path) -> None:
    old = "".join(
        f"2026-11-{d:02d}T00:00:00Z INFO line {i}\n" for d in range(1, 29) for i in range(2000)
    )
    new = "2026-11-30T10:00:00Z ERROR dns error\n"
    p = tmp_path / "big.log"
    p.write_text(old + new)
    res = read_log_file(
        RootFS(tmp_path),
        "/big.log",
        lambda line: not line.startswith("2026-11-30"),
        max_bytes=1 << 30,
        max_line=8192,
        max_lines=100,
        timeout=5,
    )
    assert res.lines == [new.strip()] and res.reached_window_start
    assert res.bytes_read < 200_000 < p.stat().st_size


def test_file_rotated_away_while_reading(tmp_path: Path) -> None:
    res = read_log_file(
        RootFS(tmp_path),
        "/gone.log",
        lambda line: False,
        max_bytes=1 << 20,
        max_line=8192,
        max_lines=10,
        timeout=5,
    )
    assert res.problem and "missing" in res.problem and res.lines == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_files_when_not_root(tmp_path: Path) -> None:
    d = tmp_path / LOG_DIR
    d.mkdir(parents=True)
    (d / "agent.log").write_text("x\n")
    (d / "agent.log").chmod(0)
    out = run_one(agent.logs, make_host(tmp_path, euid=1000))
    assert out.status == Status.SKIP and out.skip_reason == "NEEDS_ROOT"
    assert _facts(out).unreadable == "permission denied"  # not "no error lines"


def test_lines_are_parsed_in_every_format() -> None:
    from gd_doctor.parsers.agent_log import parse_agent_log_line

    lines: List[str] = []
    for f in sorted(LOGS.rglob("*")):
        if f.is_file() and f.name != "README.md":
            lines += f.read_text().splitlines()
    parsed = [parse_agent_log_line(x) for x in lines]
    assert sum(p.timestamp is not None for p in parsed) == len(lines) - 3  # the libbpf lines
    assert {p.level for p in parsed} >= {"INFO", "ERROR", "WARN"}


def test_the_region_the_agent_talks_to_comes_from_its_own_lines(tmp_path: Path) -> None:
    from gd_doctor.checks import network
    from gd_doctor.diagnosis import ALL_RULES
    from gd_doctor.diagnosis.engine import diagnose
    from gd_doctor.facts.imds import ImdsIdentityFacts
    from gd_doctor.facts.network import RegionFacts
    from gd_doctor.model import CheckResult, Status
    from tests.hostkit import NOW, make_host, run_one

    stamp = (NOW.replace(minute=5)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    log = (
        f"{stamp} ERROR amazon_guardduty_agent::client: failed to connect to "
        "guardduty-data.eu-west-1.amazonaws.com:443: connection timed out\n"
    )
    host = make_host(tmp_path, files={"/var/log/amzn-guardduty-agent/agent.log": log})
    out = run_one(agent.logs, host)
    assert _facts(out).region == "eu-west-1"
    assert _facts(out).endpoint_hosts == ("guardduty-data.eu-west-1.amazonaws.com",)
    logs_result = CheckResult(
        "agent.logs", "logs", "agent", out.status, out.summary, to_data(out.facts), facts=out.facts
    )
    doc = ImdsIdentityFacts(True, 200, None, instance_id="i-0abc12345def67890", region="us-east-1")
    identity = CheckResult("imds.identity", "identity", "imds", Status.OK, "ok", facts=doc)
    region = run_one(
        network.region_and_endpoint, host, {"agent.logs": logs_result, "imds.identity": identity}
    )
    assert isinstance(region.facts, RegionFacts)
    assert region.facts.agent_region == "eu-west-1"
    assert region.facts.instance_region == "us-east-1"
    region_result = CheckResult(
        "network.region", "r", "network", region.status, region.summary, facts=region.facts
    )
    ids = [
        f.finding_id for f in diagnose([identity, logs_result, region_result], ALL_RULES).findings
    ]
    assert "network.region-mismatch" in ids


def _fixture_lines() -> List[str]:
    lines = []
    for f in sorted(p for p in LOGS.rglob("*") if p.is_file() and p.suffix != ".md"):
        lines.extend(f.read_text(errors="replace").splitlines())
    assert len(lines) > 10
    # variants the fast paths must decline or read the same: zones, cases, odd digits, junk
    variants = []
    for line in lines[:40]:
        variants += [
            line,
            " " + line,
            line.replace("Z ", "+02:00 ", 1),
            line.replace("T", "t", 1),
            line.replace("Z", "z", 1),
            line.replace("-11-", "-13-", 1),
            line.replace(":", "\u0663", 1),
            line.replace("ERROR", "ıMDS error", 1),
            "[" + line,
            line[:24] + line[24:].upper(),
        ]
    return lines + variants + ["2026-11-30T24:00:00Z INFO x", "2026-11-30 11:59:01,5 WARN y"]


def test_line_timestamp_is_the_full_parse_timestamp() -> None:
    from gd_doctor.parsers.agent_log import line_timestamp, parse_agent_log_line

    lines = _fixture_lines()
    fast = [line_timestamp(x, 2026) for x in lines]
    assert fast == [parse_agent_log_line(x, 2026).timestamp for x in lines]
    assert sum(t is not None for t in fast) > len(lines) // 4


def test_prefilter_keeps_every_line_a_signature_or_endpoint_matches() -> None:
    from gd_doctor.parsers.agent_log import endpoint_host_in, parse_agent_log_line

    lines = _fixture_lines()
    wanted = [
        i
        for i, x in enumerate(lines)
        if endpoint_host_in(parse_agent_log_line(x).message)
        or any(s.pattern.search(parse_agent_log_line(x).message) for s in agent.signatures())
    ]
    assert wanted  # the fixtures hold error lines
    picked = set(agent._candidates(lines, agent.prefilter_literals()))
    assert set(wanted) <= picked
    ascii_plain = [x for x in lines if x.isascii() and not x.lstrip().startswith("{")]
    assert set(agent._candidates(ascii_plain, agent.prefilter_literals())) < set(
        range(len(ascii_plain))
    )  # it does leave lines out


def test_signature_hits_are_those_of_every_expression_on_every_line() -> None:
    from gd_doctor.parsers.agent_log import parse_agent_log_line

    lines = _fixture_lines()
    fast = agent.SignatureMatches()
    for x in lines:
        p = parse_agent_log_line(x, 2026)
        fast.feed(p.timestamp, p.message, "f")
    slow: Dict[str, int] = {}
    for x in lines:
        msg = parse_agent_log_line(x, 2026).message
        sig = next((s for s in agent.signatures() if s.pattern.search(msg)), None)
        if sig is not None:
            slow[sig.id] = slow.get(sig.id, 0) + 1
    assert {h.id: h.count for h in fast.hits()} == slow and slow


def test_prefilter_searches_the_text_when_lines_do_not_repeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both ways of the prefilter (distinct folded lines, or a search of the folded text when
    few lines repeat) keep the same lines, and every line a signature matches."""
    from gd_doctor.parsers import log_signatures as sigs
    from gd_doctor.parsers.agent_log import endpoint_host_in, parse_agent_log_line

    lines = _fixture_lines()
    lines += [
        f"2026-11-30T10:{i % 60:02d}:00Z INFO heartbeat request_id={os.urandom(6).hex()}"
        for i in range(3000)
    ]
    lines += ['{"msg": "dns error", "level": "ERROR"}', "r\u00e9seau: Connection refused"]
    raws = [x.encode() for x in lines]
    monkeypatch.setattr(sigs, "MANY_DISTINCT", 10**9)
    by_distinct = sigs.candidate_indexes(raws)
    monkeypatch.setattr(sigs, "MANY_DISTINCT", 10)
    by_search = sigs.candidate_indexes(raws)
    assert by_search == by_distinct
    wanted = [
        i
        for i, x in enumerate(lines)
        if endpoint_host_in(parse_agent_log_line(x).message)
        or sigs.first_match(parse_agent_log_line(x).message) is not None
    ]
    assert wanted and set(wanted) <= set(by_search)
    assert len(by_search) < len(lines) // 2  # the heartbeats are left out


def _gz(path: Path, text: str, mtime: float) -> None:
    with gzip.open(path, "wb") as fh:
        fh.write(text.encode())
    os.utime(path, (mtime, mtime))


def test_a_gz_file_is_read_to_its_end_after_plain_files_spent_their_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The .gz file's in-window lines are at its end: a newer plain file that used the whole
    byte budget does not take the .gz file's turn, and its old lines are read through."""
    monkeypatch.setattr(agent, "LOG_BYTES_TOTAL", 64 * 1024)
    d = tmp_path / LOG_DIR
    d.mkdir(parents=True)
    stamp = NOW.timestamp() - 60
    plain = "".join(f"2026-11-30T11:00:{i % 60:02d}Z INFO heartbeat {i}\n" for i in range(20_000))
    (d / "agent.log").write_text(plain)
    os.utime(d / "agent.log", (stamp, stamp))
    old = "".join(f"2026-11-{1 + i % 27:02d}T00:00:00Z INFO old {i}\n" for i in range(200_000))
    new = "".join(
        f"2026-11-30T0{i % 10}:00:00Z ERROR dns error: no such host ({i})\n" for i in range(40)
    )
    _gz(d / "agent.log.1.gz", old + new, stamp - 3600)
    out = run_one(agent.logs, make_host(tmp_path))
    files = {Path(f.path).name: f for f in _facts(out).files}
    assert files["agent.log"].capped and files["agent.log.1.gz"].lines == 40
    assert _ids(out) == {"dns": 40}


class _Left:
    def __init__(self, left: float) -> None:
        self.left = left

    def remaining(self) -> float:
        return self.left


def test_time_shares_weigh_gz_files_and_leave_a_reserve() -> None:
    paths = ["/l/agent.log", "/l/agent.log.1.gz", "/l/agent.log.2"]
    ctx: Any = _Left(4.5)
    share = agent._time_share(ctx, paths)
    # a quarter of the 4 s after the reserve for the plain file, half of it for the .gz file
    assert share == pytest.approx((4.5 - agent.LOG_TIME_RESERVE) / 4)
    assert agent._time_share(ctx, paths[1:]) == pytest.approx(
        (4.5 - agent.LOG_TIME_RESERVE) * 2 / 3
    )
    assert agent._time_share(_Left(100.0), paths[1:2]) == agent.timeouts.LOG_FILE * 2  # capped
    assert agent._time_share(_Left(0.0), paths) == 0.05


def test_a_gzip_bomb_is_cut_by_its_expansion_not_by_its_time_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A .gz is read to its end within its time share, but one that expands hundreds of times
    is no log: it stops just past BOMB_FLOOR, whatever the byte cap and time allow."""
    import gzip

    from gd_doctor.host import logfiles
    from gd_doctor.host.fs import RootFS
    from gd_doctor.host.logfiles import BLOCK, read_log_file
    from tests.faults.hostile import write_gz_bomb

    # a floor below the real log's size, so that the ratio, not the floor, lets the log through
    monkeypatch.setattr(logfiles, "BOMB_FLOOR", 1 << 20)
    BOMB_FLOOR = logfiles.BOMB_FLOOR

    write_gz_bomb(tmp_path / "bomb.log.gz", 2 << 30)
    # a real log's repetition (a heartbeat a second) compresses far less than a bomb
    lines = "".join(
        f"2026-11-30T{h:02d}:{m:02d}:{s:02d}.000000Z  INFO amazon_guardduty_agent: heartbeat ok\n"
        for h in range(12)
        for m in range(60)
        for s in range(60)
    )
    (tmp_path / "agent.log.1.gz").write_bytes(gzip.compress(lines.encode()))
    fs = RootFS(tmp_path)
    kw = dict(max_line=8192, max_lines=100, timeout=30.0)
    bomb = read_log_file(fs, "/bomb.log.gz", lambda line: False, max_bytes=1 << 30, **kw)
    assert bomb.capped and "gzip bomb" in (bomb.problem or "")
    # cut after its first compressed blocks, far below the 1 GiB cap and the bomb's 2 GiB
    assert BOMB_FLOOR < bomb.bytes_read <= max(BOMB_FLOOR, logfiles.BOMB_RATIO * 4 * BLOCK)
    log = read_log_file(fs, "/agent.log.1.gz", lambda line: False, max_bytes=1 << 30, **kw)
    assert not log.capped and log.problem is None
    assert log.bytes_read == len(lines) > 2 * BOMB_FLOOR
