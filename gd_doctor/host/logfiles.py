"""Reading log files from their end, within a time window and a byte budget.

Used for ``/var/log/amzn-guardduty-agent/``. A log directory may hold a GiB of rotated files;
gd-doctor reads each plain file backwards in blocks and stops once lines are older than
``--since`` (or the byte budget is spent); ``.gz`` files cannot be read backwards, so they are
streamed with a bounded buffer of their last lines, decompressed in bounded chunks so the byte
budget and the deadline hold inside a single line too (a small ``.gz`` can hold GiBs without a
newline). Lines are cut at ``max_line`` bytes, so one 10 MB line costs no more than a short one.
Files are opened through :class:`RootFS` (inside the root, regular files only) and listings are
bounded walks. Reads never raise for missing, unreadable, truncated or rotated-away files: each
:class:`LogFileRead` says what happened.
"""

from __future__ import annotations

import os
import re
import sys
import time
import zlib
from collections import deque
from dataclasses import field
from itertools import chain
from typing import IO, Callable, Deque, List, Optional, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.host.fs import RootFS
from gd_doctor.patterns import lazy

BLOCK = 64 * 1024
# A .gz that has expanded past BOMB_FLOOR bytes at more than BOMB_RATIO times its compressed
# size is a decompression bomb (text logs compress 5-50x): it is cut there, not at its time share.
BOMB_FLOOR = 64 * 1024 * 1024
BOMB_RATIO = 200
MAX_LOG_FILES = 1_000  # files one listing returns (newest first); the rest are counted
# Returns True when a line is older than the window: reading backwards stops there.
TooOld = Callable[[str], bool]


@dataclass
class LogFileRead:
    """The lines read from one file (oldest first) and what got in the way."""

    path: str
    size: int = 0
    # The lines as read: raw bytes, blank ones left out, each cut at max_line. The analysis
    # works on these (one C pass over the bytes beats a Python step per decoded line).
    raw_lines: List[bytes] = field(default_factory=list)
    problem: Optional[str] = None  # "permission denied", "truncated gzip", ...
    bytes_read: int = 0
    reached_window_start: bool = False  # stopped on a line older than --since
    capped: bool = False  # stopped on the byte budget, the deadline or the line cap

    @property
    def lines(self) -> List[str]:
        """The lines decoded (invalid UTF-8 replaced, NULs and trailing CRs removed)."""
        return decode_lines(self.raw_lines)


def _decode(raw: bytes, max_line: int = sys.maxsize) -> str:
    return raw[:max_line].replace(b"\x00", b"").decode("utf-8", errors="replace").rstrip("\r")


def decode_line(raw: bytes) -> str:
    """One raw line as :attr:`LogFileRead.lines` holds it."""
    return _decode(raw)


def decode_lines(raws: List[bytes]) -> List[str]:
    """``[decode_line(raw) for raw in raws]``, decoded in one call when no line needs cleaning
    (UTF-8 resynchronises at every newline, so the result is the same)."""
    if not raws:
        return []
    joined = b"\n".join(raws)
    if b"\x00" in joined:
        return [_decode(raw) for raw in raws]
    text = joined.decode("utf-8", errors="replace")
    if "\r" in text:
        return [line.rstrip("\r") for line in text.split("\n")]
    return text.split("\n")


_SPACE = b" \t\r\x0b\x0c"  # with b"\n", what bytes.strip() removes
_BLANK_AFTER = lazy(b"\n[" + re.escape(_SPACE) + b"\n]")  # a line that may be blank


def _body(parts: List[bytes], max_line: int, joined: Optional[bytes] = None) -> List[bytes]:
    """The non-blank lines of ``parts``, each cut at ``max_line`` bytes (``joined``: the parts
    joined by newlines, when the caller has them)."""
    body = parts
    if (
        not parts
        or not parts[0]
        or parts[0][0] in _SPACE
        or not parts[-1]
        or _BLANK_AFTER.search(b"\n".join(parts) if joined is None else joined)
    ):  # some line is empty or starts with a space: look at each (a C scan saw to the rest)
        body = [raw for raw in parts if raw.strip()]
    if body and max(map(len, body)) > max_line:
        body = [raw[:max_line] for raw in body]
    return body


def _problem(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "missing (rotated away while reading?)"
    return f"unreadable: {exc.strerror or exc}"


def _tail_plain(
    fh: IO[bytes],
    out: LogFileRead,
    too_old: TooOld,
    *,
    max_bytes: int,
    max_line: int,
    max_lines: int,
    deadline: float,
) -> None:
    """Read ``fh`` backwards until a line is too old, or a budget runs out."""
    blocks: List[List[bytes]] = []  # newest first, each in file order
    count = 0
    out.size = pos = os.fstat(fh.fileno()).st_size  # a growing file: stay with what it was
    carry = b""  # the start of a line whose beginning is in an earlier block
    blocks_read = 0
    try:
        while pos > 0:
            if out.bytes_read >= max_bytes or time.monotonic() > deadline:
                out.capped = True
                break
            # the first block is small (the window is often at the very end), later ones grow:
            # fewer, larger steps cost less per byte; none reads past max_bytes
            step = min(BLOCK << min(blocks_read, 4), pos, max(1, max_bytes - out.bytes_read))
            blocks_read += 1
            pos -= step
            fh.seek(pos)
            block = fh.read(step)
            if len(block) < step:  # truncated under us (rotation with copytruncate)
                out.problem = "file shrank while being read"
                break
            out.bytes_read += step
            buf = block + carry
            parts = buf.split(b"\n")
            carry = parts[0][:max_line]
            body = _body(parts[1:], max_line, buf[len(parts[0]) + 1 :])
            if not body:
                continue
            # Log lines are written in time order: when the block's oldest line is inside the
            # window, so is the rest of the block, and no other line's time is read.
            start = 0
            if too_old(_decode(body[0])):
                start = len(body)
                while start > 0 and not too_old(_decode(body[start - 1])):
                    start -= 1
            room = max_lines - count
            if len(body) - start >= room:
                blocks.append(body[len(body) - room :] if room > 0 else [])
                out.capped = True
                break
            blocks.append(body[start:])
            count += len(body) - start
            if start > 0:
                out.reached_window_start = True
                break
        else:
            if carry.strip():
                if too_old(_decode(carry)):
                    out.reached_window_start = True
                else:
                    blocks.append([carry])
    except OSError as exc:
        out.problem = _problem(exc)
    out.raw_lines = list(chain.from_iterable(reversed(blocks)))


class _LineCutter:
    """Splits a byte stream into lines of at most ``max_line`` bytes, holding no more than that:
    the rest of an over-long line is dropped as it arrives."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.pending = bytearray()
        self.skipping = False  # inside the dropped rest of an over-long line

    def feed(self, data: bytes) -> List[bytes]:
        parts = data.split(b"\n")  # one split per chunk: no Python step per line
        if len(parts) == 1:
            return self._partial(parts[0])
        lines: List[bytes] = []
        if not self.skipping:
            self.pending += parts[0][: max(0, self.max_line - len(self.pending))]
            lines.append(bytes(self.pending))
        self.pending.clear()
        self.skipping = False
        middle = parts[1:-1]
        if middle and max(map(len, middle)) > self.max_line:
            middle = [p[: self.max_line] for p in middle]
        lines.extend(middle)
        lines.extend(self._partial(parts[-1]))
        return lines

    def _partial(self, part: bytes) -> List[bytes]:
        """The start of a line whose end has not arrived; it counts once it is max_line long."""
        if self.skipping:
            return []
        self.pending += part[: max(0, self.max_line - len(self.pending))]
        if len(self.pending) >= self.max_line:
            cut = bytes(self.pending)
            self.pending.clear()
            self.skipping = True
            return [cut]
        return []

    def finish(self) -> List[bytes]:
        rest = [] if self.skipping or not self.pending else [bytes(self.pending)]
        self.pending.clear()
        return rest


def _stream_gzip(
    fh: IO[bytes],
    out: LogFileRead,
    too_old: TooOld,
    *,
    max_bytes: int,
    max_line: int,
    max_lines: int,
    deadline: float,
) -> None:
    """Stream a ``.gz`` file forwards, keeping the last ``max_lines`` lines in the window.

    Decompression goes in steps of at most BLOCK output bytes (``max_length``), so neither
    memory nor time depends on how much one compressed block expands to. Concatenated gzip
    members (``cat a.gz b.gz``) are read one after the other, as gzip does.
    """
    kept: Deque[bytes] = deque(maxlen=max(1, max_lines))
    out.size = os.fstat(fh.fileno()).st_size
    cutter = _LineCutter(max_line)
    dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
    compressed = 0
    pending_in = b""
    ended = True  # no member started yet: an empty file is an empty log

    def take(raws: List[bytes]) -> None:
        # Lines are in time order: a chunk whose newest line is older than the window is
        # dropped by that one line's time, one whose oldest line is inside is kept whole.
        newest = next((raw for raw in reversed(raws) if raw.strip()), None)
        if newest is None or too_old(_decode(newest)):
            return
        body = _body(raws, max_line)
        if too_old(_decode(body[0])):
            body = [raw for raw in body if not too_old(_decode(raw))]
        kept.extend(body)

    try:
        while True:
            if out.bytes_read >= max_bytes or time.monotonic() > deadline:
                out.capped = True
                break
            if compressed > max_bytes + BLOCK:  # members that expand to nothing, endlessly
                out.capped = True
                break
            if out.bytes_read > BOMB_FLOOR and out.bytes_read > BOMB_RATIO * compressed:
                # text logs compress 5-50x; far beyond that it is a bomb, not a log
                out.capped = True
                out.problem = f"expands more than {BOMB_RATIO}x: not a log (a gzip bomb?)"
                break
            if not pending_in:
                pending_in = fh.read(BLOCK)
                compressed += len(pending_in)
                if not pending_in:
                    if not ended:
                        out.problem = "truncated or corrupt gzip (it ends inside a member)"
                    take(cutter.finish())
                    break
            ended = False
            data = dec.decompress(pending_in, BLOCK)
            pending_in = dec.unconsumed_tail
            out.bytes_read += len(data)
            take(cutter.feed(data))
            if dec.eof:  # one member done; the next (if any) starts in unused_data
                # at the end of a member the rest of the input is in unused_data only (the
                # unconsumed_tail then repeats it)
                pending_in = dec.unused_data
                dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
                ended = True
                if not pending_in.strip(b"\x00"):  # trailing zero padding, as gzip allows
                    pending_in = b""
    except zlib.error as exc:
        out.problem = f"truncated or corrupt gzip ({exc})"
    except OSError as exc:
        out.problem = _problem(exc)
    out.raw_lines = list(kept)


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
    out = LogFileRead(abs_path)
    fh, problem = fs.open_binary(abs_path)
    if fh is None:
        out.problem = problem if problem != "missing" else "missing (rotated away while reading?)"
        return out
    reader = _stream_gzip if abs_path.endswith(".gz") else _tail_plain
    with fh:
        reader(
            fh,
            out,
            too_old,
            max_bytes=max_bytes,
            max_line=max_line,
            max_lines=max_lines,
            deadline=deadline,
        )
    return out


def log_listing(
    fs: RootFS, abs_dir: str, max_depth: int = 2, max_files: int = MAX_LOG_FILES
) -> Tuple[List[str], int]:
    """Regular files under ``abs_dir`` (rotated and compressed ones too), newest first, and
    how many were left out by the cap. Each file once, however many links lead to it."""
    walk = fs.walk(abs_dir, max_depth=max_depth, max_files=max_files)
    found = sorted(((st.st_mtime, p) for p, st in walk.files), key=lambda t: (-t[0], t[1]))
    return [p for _, p in found], walk.left_out


def list_log_files(fs: RootFS, abs_dir: str, max_depth: int = 2) -> List[str]:
    """Every regular file under ``abs_dir``, newest first, at most MAX_LOG_FILES of them."""
    return log_listing(fs, abs_dir, max_depth)[0]
