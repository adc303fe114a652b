"""Collecting a bundle's files: the paths the run read, resolved inside the root, as the run read
them, redacted, trimmed (dpkg entries, ELF headers, history copies) and cut to the size cap."""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import stat as stat_mod
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Collection, Dict, List, Optional, Tuple

from gd_doctor.bundle import history
from gd_doctor.bundle.kinds import Tally, kinds
from gd_doctor.bundle.record import Recorder
from gd_doctor.bundle.scrub import Scrubber
from gd_doctor.host.fs import RootFS
from gd_doctor.host.packages import DPKG_STATUS, DPKG_UPDATES, MAX_DPKG_BYTES
from gd_doctor.parsers.dpkg_status import stanzas
from gd_doctor.patterns import lazy
from gd_doctor.redact import MASK, redact

TOTAL_CAP = 20 << 20  # bytes of all members together (before compression)
FILE_CAP = 4 << 20  # one collected file: its newest bytes are kept
MIN_CUT = 64 << 10  # the cap never cuts a file below this
MAX_LINK_HOPS = 40
ELF_HEAD = 4096
LISTING_CAP = 2000
# Binary files are kept only where a parser of gd-doctor reads their bytes (the rpm database);
# any other binary file (journal files: their entries are in answers.json) is an empty stand-in
# so that replay still finds it where the run found it.
KEEP_BINARY = ("/var/lib/rpm/", "/usr/lib/sysimage/rpm/")
_STAMP = lazy(rb"^\[?(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})")


@dataclass
class Item:
    name: str  # member name
    source: str
    data: bytes
    mode: int = 0o644
    mtime: float = 0.0
    original_size: int = 0
    cut: Optional[str] = None
    redactions: Dict[str, int] = field(default_factory=dict)
    note: Optional[str] = None
    # bytes at the start of ``data`` (of its decompressed text for a .gz log) stamped before
    # the window: what the size cap cuts first
    old: int = 0


@dataclass
class Collected:
    files: Dict[str, Tuple[os.stat_result, str]] = field(default_factory=dict)  # path -> st, via
    dirs: Dict[str, List[str]] = field(default_factory=dict)
    links: Dict[str, str] = field(default_factory=dict)
    problems: List[str] = field(default_factory=list)
    sizes: Dict[str, int] = field(default_factory=dict)  # path -> its size when the run read it
    snapshots: Dict[str, bytes] = field(default_factory=dict)  # path -> the bytes the run read


def _norm(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/"))


def materialise(fs: RootFS, rec: Recorder) -> Collected:
    """Every recorded path resolved component by component inside the root: the links met on
    the way (kept as links), the directory with the names the run listed, the regular file at
    the end. A path the run tried and did not find contributes its links only: a file that
    appeared since is not the run's evidence."""
    out = Collected()
    todo = sorted(set(rec.paths) | set(rec.links))
    for path in todo:
        if "\x00" in path:
            continue
        try:
            os.fsencode(path)
        except UnicodeError:
            continue
        real = _resolve(fs, _norm(path), out)
        if real is None or (path in rec.paths and path not in rec.found):
            continue
        st = fs.stat(real)
        if st is None and path in rec.snapshots:
            st = _gone(rec.started)  # a /proc/PID file of a process gone since: as read
        if st is None:
            continue
        if stat_mod.S_ISREG(st.st_mode):
            out.files.setdefault(real, (st, path))
            if path in rec.sizes:
                out.sizes[real] = max(out.sizes.get(real, 0), rec.sizes[path])
            if path in rec.snapshots:
                out.snapshots.setdefault(real, rec.snapshots[path])
        elif stat_mod.S_ISDIR(st.st_mode):
            # a directory the run only tested for is kept empty: the run never saw its names
            names = rec.listings.get(path, ()) + rec.listings.get(_norm(path), ())
            out.dirs[real] = sorted(set(out.dirs.get(real, [])) | set(names[:LISTING_CAP]))
    return out


def _gone(at: Optional[datetime]) -> os.stat_result:
    """The stat of a pseudo-file that is gone: a read-only regular file of size 0."""
    t = at.timestamp() if at else time.time()
    return os.stat_result((stat_mod.S_IFREG | 0o444, 0, 0, 1, 0, 0, 0, int(t), int(t), int(t)))


def _resolve(fs: RootFS, path: str, out: Collected) -> Optional[str]:
    """``path`` with every link in it followed inside the root; each link met is noted."""
    parts = [p for p in path.split("/") if p]
    done = ""
    hops = 0
    while parts:
        cur = f"{done}/{parts.pop(0)}"
        target = fs.readlink(cur)
        if target is None:
            done = cur
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            return None
        out.links[cur] = target
        base = "/" if target.startswith("/") else (done or "/")
        rest = [p for p in posixpath.join(base, target).split("/") if p]
        # a ".." above the root stays at the root, as openat2's RESOLVE_IN_ROOT does
        parts = _collapse(rest) + parts
        done = ""
    return done or "/"


def _collapse(parts: List[str]) -> List[str]:
    out: List[str] = []
    for p in parts:
        if p == "..":
            if out:
                out.pop()
        elif p != ".":
            out.append(p)
    return out


def _read_file(
    fs: RootFS, path: str, st: os.stat_result, seen: Optional[int]
) -> Tuple[bytes, bool, Optional[str]]:
    """The file's bytes as the run saw them: its first ``seen`` bytes when it has grown since
    the run opened it (a log being written), and of those the newest FILE_CAP (logs grow at
    their end). Returns the bytes, whether the cap cut them, and a note."""
    size = st.st_size
    note = None
    if seen and seen < size:
        note = f"as the run read it: its first {seen} bytes (it has {size} bytes now)"
        size = seen
    if size <= FILE_CAP and note is None:
        data, res = fs.read_bytes(path, FILE_CAP)
        return data, res.truncated, None
    fh, _problem = fs.open_binary(path)
    if fh is None:
        return b"", False, None
    with fh:
        start = max(0, size - FILE_CAP)
        fh.seek(start)
        return fh.read(size - start), start > 0, note


_ENVIRON = lazy(r"^/proc/(?:\d+|self)/environ$")


def _redact_environ(data: bytes, scrub: Optional[Scrubber]) -> Tuple[bytes, Dict[str, int]]:
    """A process environment (NUL-separated ``NAME=value``), each variable redacted: a
    secret-named one masked whole, a secret in any value masked; the masks by kind."""
    tally = Tally()
    then: Callable[[str], str] = scrub if scrub is not None else (lambda t: t)
    out: List[bytes] = []
    for raw in data.split(b"\x00"):
        text = raw.decode("utf-8", errors="surrogateescape")
        name, sep, value = text.partition("=")
        if sep:
            ((k, v),) = tally.redact_map({name: value}, then).items()
            masked = f"{k}={v if isinstance(v, str) else MASK}"
        else:
            masked = then(tally.redact(text))
        out.append(masked.encode("utf-8", "surrogateescape"))
    return b"\x00".join(out), dict(tally.counts)


def _redact_text(data: bytes, scrub: Optional[Scrubber]) -> Tuple[bytes, Dict[str, int]]:
    """The text redacted (then scrubbed) and its masks by kind (bundle/kinds.py)."""
    text = data.decode("utf-8", errors="surrogateescape")
    masked = redact(text)
    counts = kinds(text, masked)
    if scrub is not None:
        masked = scrub(masked)
    return masked.encode("utf-8", errors="surrogateescape"), counts


def window_offset(data: bytes, since: Optional[datetime]) -> int:
    """Where the lines stamped at or after ``since`` begin: only whole leading lines, and only
    while their stamps say they are older (an unstamped line ends the old part)."""
    if since is None:
        return 0
    limit = since.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S").encode()
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        m = _STAMP.match(data[pos : pos + 40])
        if not m or m.group(1) + b" " + m.group(2) >= limit:
            break
        pos = end
    return pos


def _is_log(path: str) -> bool:
    return path.startswith("/var/log/") or "/log/" in path or path.endswith(".log")


def _history_copy(
    fs: RootFS, path: str, since: Optional[datetime], scrub: Optional[Scrubber]
) -> "Tuple[bytes, Dict[str, int], str] | str":
    """A dnf/yum history database as the bundle holds it, or why it could not be read."""
    start = since or datetime(1970, 1, 2, tzinfo=timezone.utc)
    trans, problem = history.read_db(fs, path, start)
    if problem:
        return problem
    more: Callable[[str], str] = scrub if scrub is not None else (lambda t: t)
    data = history.bundle_copy(trans, path, lambda t: more(redact(t)))
    masks: Dict[str, int] = {}
    for t in trans:  # the command lines were redacted as read: their masks are of unknown kind
        if t.cmdline.count(MASK):
            masks["secret"] = masks.get("secret", 0) + t.cmdline.count(MASK)
    return data, masks, f"{len(trans)} transaction(s) of the window, command lines redacted"


def _dpkg_entries(data: bytes, packages: Collection[str]) -> Tuple[bytes, int, int]:
    """The stanzas of a dpkg status (or updates journal) file that name one of ``packages``,
    split as the package layer reads them: the bundle needs the packages the checks asked
    about, not the host's whole software list."""
    found = list(stanzas(data.decode("utf-8", "replace")))
    kept = [text for name, text in found if name in packages]
    return ("\n\n".join(kept) + "\n" if kept else "").encode(), len(kept), len(found)


def _is_dpkg_database(path: str) -> bool:
    return path == DPKG_STATUS or path.startswith(DPKG_UPDATES + "/")


def collect_items(
    fs: RootFS,
    got: Collected,
    *,
    since: Optional[datetime],
    scrub: Optional[Scrubber],
    deadline: float,
    packages: Optional[Collection[str]] = None,
) -> Tuple[List[Item], List[str], List[str]]:
    """The root/ members (redacted, window-cut), the empty stand-ins, what was left out."""
    items: List[Item] = []
    standins: List[str] = []
    skipped: List[str] = []
    for path, (st, via) in sorted(got.files.items()):
        if time.monotonic() > deadline:
            skipped.append(f"{path}: the time budget was spent")
            continue
        snap = got.snapshots.get(path)
        note: Optional[str]
        if snap is not None:
            raw, capped, note = snap, False, "as the run read it"
        else:
            raw, capped, note = _read_file(fs, path, st, got.sizes.get(path))
        item = Item(
            name="root" + path,
            source=via if via == path else f"{via} -> {path}",
            data=raw,
            mode=stat_mod.S_IMODE(st.st_mode) & 0o777,
            mtime=st.st_mtime,
            original_size=st.st_size or len(raw),
            cut="cap" if capped else None,
            note=note if snap is None else None,
        )
        if history.is_history_db(path):
            # not the host's database: a new one of the window's transactions, redacted
            got_db = _history_copy(fs, path, since, scrub)
            if isinstance(got_db, str):
                skipped.append(got_db)
                standins.append(path)
                continue
            item.data, item.redactions, item.note = got_db
        elif (
            packages is not None
            and _is_dpkg_database(path)
            and not capped
            and len(raw) <= MAX_DPKG_BYTES  # a database too big to read stays as the run saw it
        ):
            data, kept, total = _dpkg_entries(raw, packages)
            item.data, item.redactions = _redact_text(data, scrub)
            item.note = f"the {kept} of its {total} entries for the packages the checks asked about"
        elif _ENVIRON.match(path):
            item.data, item.redactions = _redact_environ(raw, scrub)
        elif path.endswith(".gz") and raw[:2] == b"\x1f\x8b":
            try:
                inner = gzip.GzipFile(fileobj=io.BytesIO(raw)).read(FILE_CAP + 1)
            except (OSError, EOFError, ValueError):
                skipped.append(f"{path}: not a readable gzip file")
                standins.append(path)
                continue
            inner, item.redactions = _redact_text(inner[:FILE_CAP], scrub)
            item.old = window_offset(inner, since)
            item.data = gzip.compress(inner, mtime=0)
        elif raw[:4] == b"\x7fELF":
            item.data = raw[:ELF_HEAD]  # the architecture is in the header; code is not evidence
            item.note = f"ELF file, its first {ELF_HEAD} bytes"
            item.cut = "cap"
        elif b"\x00" in raw[:8192]:
            if not path.startswith(KEEP_BINARY):
                standins.append(path)
                continue
            item.note = "binary, kept as read"
        else:
            item.data, item.redactions = _redact_text(raw, scrub)
            if _is_log(path):
                item.old = window_offset(item.data, since)
        items.append(item)
    return items, standins, skipped


def _mark(item: Item, how: str) -> None:
    if item.cut is None:
        item.cut = how
    elif how not in item.cut.split("+"):
        item.cut = f"{item.cut}+{how}"


def _cut_window(item: Item) -> int:
    """Drop the lines of ``item`` stamped before the window; the bytes saved."""
    before = len(item.data)
    if item.name.endswith(".gz"):
        inner = gzip.decompress(item.data)
        item.data = gzip.compress(inner[item.old :], mtime=0)
    else:
        item.data = item.data[item.old :]
    item.old = 0
    _mark(item, "window")
    return before - len(item.data)


def apply_total_cap(items: List[Item], budget: int) -> None:
    """Make everything fit ``budget``: first the lines of the largest logs stamped before the
    window, then the largest logs' oldest half, again and again.

    Nothing is cut while everything fits: gd-doctor's checks read a log's older lines too (the
    last entry, the signatures before the window), and a replay must see what the run saw."""
    total = sum(len(i.data) for i in items)
    while total > budget:
        old = [i for i in items if i.old > 0]
        if not old:
            break
        total -= _cut_window(max(old, key=lambda i: len(i.data)))
    while total > budget:
        cuttable = [i for i in items if len(i.data) > MIN_CUT and not i.name.endswith(".gz")]
        if not cuttable:
            cuttable = [i for i in items if len(i.data) > 0]
            if not cuttable:
                return
        big = max(cuttable, key=lambda i: (_is_log(i.name[4:]), len(i.data)))
        keep = max(MIN_CUT if len(big.data) > MIN_CUT else 0, len(big.data) // 2)
        if big.name.endswith(".gz") or keep == 0:
            keep = 0
        data = big.data[len(big.data) - keep :] if keep else b""
        nl = data.find(b"\n")
        if 0 <= nl < len(data) - 1:
            data = data[nl + 1 :]  # whole lines only
        total -= len(big.data) - len(data)
        big.data = data
        _mark(big, "cap")
