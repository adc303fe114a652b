"""Reading log files from their end, within a time window and a byte budget.

Used for ``/var/log/amzn-guardduty-agent/``. A log directory may hold a GiB of rotated files;
gd-doctor reads each plain file backwards in blocks and stops once lines are older than
``--since`` (or the byte budget is spent); ``.gz`` files cannot be read backwards, so they are
streamed with a bounded buffer of their last lines. Lines are cut at ``max_line`` bytes, so one
10 MB line costs no more than a short one. Reads never raise for missing, unreadable, truncated
or rotated-away files: each :class:`LogFileRead` says what happened.
"""

from __future__ import annotations

import gzip
import os
import stat as stat_mod
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, List, Optional

from gd_doctor.host.fs import RootFS

BLOCK = 64 * 1024
# Returns True when a line is older than the window: reading backwards stops there.
TooOld = Callable[[str], bool]


@dataclass
class LogFileRead:
    """The lines read from one file (oldest first) and what got in the way."""

    path: str
    size: int = 0
    lines: List[str] = field(default_factory=list)
    problem: Optional[str] = None  # "permission denied", "truncated gzip", ...
    bytes_read: int = 0
    reached_window_start: bool = False  # stopped on a line older than --since
    capped: bool = False  # stopped on the byte budget


def _decode(raw: bytes, max_line: int) -> str:
    return raw[:max_line].replace(b"\x00", b"").decode("utf-8", errors="replace").rstrip("\r")


def _problem(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "missing (rotated away while reading?)"
    return f"unreadable: {exc.strerror or exc}"


def tail_plain(
    path: str, too_old: TooOld, *, max_bytes: int, max_line: int, max_lines: int, deadline: float
) -> LogFileRead:
    """Read ``path`` backwards until a line is too old, or a budget runs out."""
    out = LogFileRead(path)
    lines: Deque[str] = deque()
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat_mod.S_ISREG(st.st_mode):
                out.problem = "not a regular file"
                return out
            out.size = pos = st.st_size  # a file growing while read: stay with what it was
            carry = b""  # the start of a line whose beginning is in an earlier block
            carry_cut = False
            while pos > 0:
                if out.bytes_read >= max_bytes:
                    out.capped = True
                    break
                if time.monotonic() > deadline:
                    out.capped = True
                    break
                step = min(BLOCK, pos)
                pos -= step
                fh.seek(pos)
                block = fh.read(step)
                if len(block) < step:  # truncated under us (rotation with copytruncate)
                    out.problem = "file shrank while being read"
                    break
                out.bytes_read += step
                parts = (block + carry).split(b"\n")
                carry = parts[0]
                if len(carry) > max_line:
                    carry, carry_cut = carry[:max_line], True
                stop = False
                for raw in reversed(parts[1:]):
                    if not raw.strip():
                        continue
                    line = _decode(raw, max_line)
                    if too_old(line):
                        out.reached_window_start = stop = True
                        break
                    lines.appendleft(line)
                    if len(lines) >= max_lines:
                        stop = True
                        out.capped = True
                        break
                if stop:
                    break
            else:
                if carry.strip():
                    line = _decode(carry, max_line)
                    if too_old(line):
                        out.reached_window_start = True
                    else:
                        lines.appendleft(line)
            del carry_cut
    except OSError as exc:
        out.problem = _problem(exc)
    out.lines = list(lines)
    return out


def stream_gzip(
    path: str, too_old: TooOld, *, max_bytes: int, max_line: int, max_lines: int, deadline: float
) -> LogFileRead:
    """Stream a ``.gz`` file forwards, keeping the last ``max_lines`` lines in the window."""
    out = LogFileRead(path)
    kept: Deque[str] = deque(maxlen=max_lines)
    try:
        out.size = os.stat(path).st_size
        with gzip.open(path, "rb") as fh:
            while True:
                raw = fh.readline(max_line + 1)
                if not raw:
                    break
                out.bytes_read += len(raw)
                if len(raw) > max_line and not raw.endswith(b"\n"):
                    # skip the rest of an over-long line without holding it
                    while True:
                        rest = fh.readline(BLOCK)
                        out.bytes_read += len(rest)
                        if not rest or rest.endswith(b"\n"):
                            break
                if raw.strip():
                    line = _decode(raw.rstrip(b"\n"), max_line)
                    if not too_old(line):
                        kept.append(line)
                if out.bytes_read >= max_bytes or time.monotonic() > deadline:
                    out.capped = True
                    break
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        out.problem = f"truncated or corrupt gzip ({exc})"
    except OSError as exc:
        out.problem = _problem(exc)
    out.lines = list(kept)
    return out


def read_log_file(
    fs: RootFS,
    abs_path: str,
    too_old: TooOld,
    *,
    max_bytes: int,
    max_line: int,
    max_lines: int,
    timeout: float,
) -> LogFileRead:
    """Read one log file under ``fs``'s root, from the end, within the given budgets."""
    deadline = time.monotonic() + timeout
    real = str(fs.path(abs_path))
    reader = stream_gzip if abs_path.endswith(".gz") else tail_plain
    res = reader(
        real, too_old, max_bytes=max_bytes, max_line=max_line, max_lines=max_lines,
        deadline=deadline,
    )  # fmt: skip
    res.path = abs_path
    return res


def list_log_files(fs: RootFS, abs_dir: str, max_depth: int = 2) -> List[str]:
    """Every regular file under ``abs_dir`` (rotated and compressed ones too), newest first."""
    found: List[tuple] = []  # type: ignore[type-arg]

    def walk(d: str, depth: int) -> None:
        for name in fs.listdir(d) or []:
            p = f"{d.rstrip('/')}/{name}"
            st = fs.stat(p)
            if st is None:
                continue
            if stat_mod.S_ISDIR(st.st_mode) and depth < max_depth:
                walk(p, depth + 1)
            elif stat_mod.S_ISREG(st.st_mode):
                found.append((st.st_mtime, p))

    walk(abs_dir, 0)
    return [p for _, p in sorted(found, key=lambda t: (-t[0], t[1]))]
