"""Compressed agent logs: the byte cap and the deadline hold inside one over-long line."""

from __future__ import annotations

import gzip
import time
import zlib
from pathlib import Path

from gd_doctor.host.fs import RootFS
from gd_doctor.host.logfiles import BLOCK, read_log_file
from tests.faults.hostile import write_gz_bomb


def _read(root: Path, name: str, *, max_bytes: int, timeout: float = 5.0, max_line: int = 8192):  # type: ignore[no-untyped-def]
    return read_log_file(
        RootFS(root),
        f"/{name}",
        lambda line: False,
        max_bytes=max_bytes,
        max_line=max_line,
        max_lines=100,
        timeout=timeout,
    )


def test_4_gib_without_a_newline_stops_at_the_cap(tmp_path: Path) -> None:
    write_gz_bomb(tmp_path / "bomb.gz", 4 << 30)
    assert (tmp_path / "bomb.gz").stat().st_size < 8 << 20
    start = time.monotonic()
    res = _read(tmp_path, "bomb.gz", max_bytes=8 << 20)
    assert time.monotonic() - start < 2.0
    assert res.capped and res.bytes_read <= (8 << 20) + BLOCK
    assert all(len(line) <= 8192 for line in res.lines)


def test_the_deadline_holds_inside_a_line(tmp_path: Path) -> None:
    write_gz_bomb(tmp_path / "bomb.gz", 4 << 30)
    start = time.monotonic()
    res = _read(tmp_path, "bomb.gz", max_bytes=1 << 40, timeout=0.3)
    assert time.monotonic() - start < 0.3 + 0.5
    assert res.capped and res.bytes_read < 4 << 30


def test_one_member_bomb(tmp_path: Path) -> None:
    """A single gzip member (no concatenation) is bounded the same way."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    data = b"".join(comp.compress(b"B" * (1 << 20)) for _ in range(64)) + comp.flush()
    (tmp_path / "one.gz").write_bytes(data)
    res = _read(tmp_path, "one.gz", max_bytes=1 << 20)
    assert res.capped and res.bytes_read <= (1 << 20) + BLOCK


def test_over_long_lines_are_cut_and_the_next_lines_kept(tmp_path: Path) -> None:
    body = b"x" * 100_000 + b"\n" + b"2026-11-30T10:00:00Z ERROR next\n" + b"y" * 9000
    with gzip.open(tmp_path / "a.gz", "wb") as fh:
        fh.write(body)
    res = _read(tmp_path, "a.gz", max_bytes=1 << 20, max_line=1000)
    assert res.lines == ["x" * 1000, "2026-11-30T10:00:00Z ERROR next", "y" * 1000]
    assert res.problem is None and not res.capped


def test_concatenated_members_are_all_read(tmp_path: Path) -> None:
    one = gzip.compress(b"2026-11-30T10:00:00Z INFO one\n")
    two = gzip.compress(b"2026-11-30T10:00:01Z INFO two\n")
    (tmp_path / "cat.gz").write_bytes(one + two)
    assert _read(tmp_path, "cat.gz", max_bytes=1 << 20).lines == [
        "2026-11-30T10:00:00Z INFO one",
        "2026-11-30T10:00:01Z INFO two",
    ]


def test_truncated_and_corrupt_gzip_are_clear_results(tmp_path: Path) -> None:
    good = gzip.compress(b"2026-11-30T10:00:00Z INFO line\n" * 1000)
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])
    (tmp_path / "junk.gz").write_bytes(b"\x1f\x8bnot gzip at all" * 10)
    (tmp_path / "empty.gz").write_bytes(b"")
    cut = _read(tmp_path, "cut.gz", max_bytes=1 << 20)
    assert cut.problem and "truncated" in cut.problem and cut.lines
    junk = _read(tmp_path, "junk.gz", max_bytes=1 << 20)
    assert junk.problem and "corrupt" in junk.problem
    assert _read(tmp_path, "empty.gz", max_bytes=1 << 20).problem is None
