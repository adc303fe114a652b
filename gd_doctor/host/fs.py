"""Files under a root directory: the live ``/`` or a mounted or captured root (``--root``).

Checks always name the real absolute path (``"/etc/os-release"``); :class:`RootFS` maps it under
its root. Reads never raise for the usual trouble (missing, permission denied, a directory where a
file was expected, bytes that are not UTF-8): they return a :class:`FileRead` that says what went
wrong, so a check can turn it into a clear result and the run goes on.

A captured root comes from a machine nobody here controls, so every path under it is resolved
the way that machine would resolve it: symbolic links are followed as if the root were ``/`` (an
absolute target is re-anchored at the root, ``..`` never climbs above it). ``openat2(2)`` with
``RESOLVE_IN_ROOT`` does exactly that on Linux 5.6+; on older kernels a component-by-component
walk with ``O_PATH|O_NOFOLLOW`` and a link-count limit does the same. A path that would still
leave the root is refused ("points outside the root"), never read.

Opening is careful everywhere, on the live host too: the path is first opened with ``O_PATH``
(which opens nothing: no FIFO blocks, no device driver runs), ``fstat`` says what it is, and only
a regular file is reopened for reading (through ``/proc/self/fd``, so what is read is what was
checked). Directory listings and walks are capped and never visit a directory twice.
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import os
import posixpath
import stat as stat_mod
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import field
from pathlib import Path
from typing import IO, ClassVar, Deque, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.host.inroot import (
    O_PATH as _O_PATH,
)
from gd_doctor.host.inroot import (
    RESOLVE_IN_ROOT,
    RESOLVE_NO_MAGICLINKS,
    Refused,
    openat2,
    openat2_available,
    walk_in_root,
)

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
MAX_DIR_ENTRIES = 10_000  # names one listing returns (sorted; the rest are counted)
MAX_DIR_SCAN = 200_000  # names one listing reads at most, so a huge directory cannot stall
MAX_WALK_FILES = 5_000
# Directory listings one RootFS (one run) does at most: a real system needs hundreds; a caller
# that walks a directory full of links to itself without fs.walk() would otherwise list 100^depth
# of them until the budget runs out. Past the cap a listing is a clear problem.
MAX_LISTINGS = 20_000
LISTINGS_SPENT = "unreadable: directory listing budget spent (links that fan out?)"
# The same directory (device, inode) listed more often than this in one run is reached through
# links that lead back to it: refused, so a walk that follows links blindly stops there.
MAX_RELISTS = 32
RELISTED = "unreadable: listed too often (links that lead back to this directory?)"
OUTSIDE = "points outside the root"
NOT_REGULAR = "not a regular file"

_O_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_O_LIST = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # O_DIRECTORY: never opens a device


@dataclass(frozen=True)
class FileRead:
    """The outcome of reading one file.

    ``problem`` is ``None`` on success, else one of ``"missing"``, ``"permission denied"``,
    ``"not a regular file"``, ``"points outside the root"`` or ``"unreadable: <reason>"``.
    """

    path: str
    text: Optional[str] = None
    problem: Optional[str] = None
    truncated: bool = False
    binary: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None and self.text is not None


@dataclass(frozen=True)
class DirListing:
    """One directory's entry names (sorted, at most ``MAX_DIR_ENTRIES``) and what was left out."""

    path: str
    names: Tuple[str, ...] = ()
    left_out: int = 0  # entries not returned; with ``scan_capped`` a lower bound
    scan_capped: bool = False
    problem: Optional[str] = None


@dataclass
class Walk:
    """Regular files found under a directory, and what a bounded walk left out."""

    files: List[Tuple[str, os.stat_result]] = field(default_factory=list)
    left_out: int = 0  # files (and directories) not visited because of a cap
    problems: List[str] = field(default_factory=list)


def _describe_os_error(exc: OSError) -> str:
    if isinstance(exc, Refused):
        return exc.problem
    if exc.errno == errno.ENOENT:
        return "missing"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EISDIR:
        return NOT_REGULAR
    if exc.errno == errno.EXDEV:
        return OUTSIDE
    if exc.errno == errno.ELOOP:
        return "unreadable: too many levels of symbolic links (a loop, or a /proc magic link)"
    return f"unreadable: {exc.strerror or exc}"


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RootFS:
    """Read-only access to the files of one root directory.

    ``resolver`` says how paths under a root that is not ``/`` are resolved: ``"auto"`` (openat2
    when the kernel has it, else the component walk), ``"openat2"`` or ``"walk"``; tests pick one
    with :meth:`with_resolver`. It is not a field, so subclasses keep their positional fields.
    """

    root: Path = Path("/")
    resolver: ClassVar[str] = "auto"

    @classmethod
    def with_resolver(cls, root: Path, resolver: str) -> RootFS:
        """A RootFS that resolves confined paths with ``resolver`` (``"openat2"``/``"walk"``)."""
        if resolver not in ("auto", "openat2", "walk"):
            raise ValueError(f"unknown resolver {resolver!r}")
        fs = cls(root)
        object.__setattr__(fs, "resolver", resolver)  # frozen: set once, here
        return fs

    @functools.cached_property
    def _root_real(self) -> str:
        return os.path.realpath(self.root)

    @functools.cached_property
    def _root_id(self) -> Optional[Tuple[int, int]]:
        """(device, inode) of the root directory, reached by opening ``root`` itself.

        Not through ``realpath``: a running container's root is ``/proc/PID/root``, a magic
        link whose readlink says ``/`` (the container's view) although the kernel, opening it,
        lands in the container's own root. Names would say "this machine"; the inode does not.
        """
        try:
            st = os.stat(self.root)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    @functools.cached_property
    def _listings(self) -> _Counter:
        return _Counter(MAX_LISTINGS)

    @property
    def is_live(self) -> bool:
        """True when the root is this machine's own ``/`` (the same directory, not the name:
        ``/proc/PID/root`` of a container is another root although its link reads ``/``)."""
        if self._root_id is None:
            return self._root_real == "/"
        live = os.stat("/")
        return self._root_id == (live.st_dev, live.st_ino)

    @property
    def confined(self) -> bool:
        """True when paths are resolved inside the root (every root but the live ``/``)."""
        return not self.is_live

    @property
    def uses_openat2(self) -> bool:
        """Whether confined paths go through openat2 (else the component walk)."""
        if self.resolver == "walk":
            return False
        return self.resolver == "openat2" or openat2_available()

    def path(self, abs_path: str) -> Path:
        """Map ``/etc/os-release`` to ``<root>/etc/os-release``, for messages: never open it.

        >>> RootFS(Path("/mnt/img")).path("/etc/os-release").as_posix()
        '/mnt/img/etc/os-release'
        """
        return self.root / abs_path.lstrip("/")

    # -- resolution ---------------------------------------------------------------------------

    def _open(self, abs_path: str, flags: int) -> int:
        """An fd for ``abs_path`` opened with ``flags``, resolved inside the root."""
        if "\x00" in abs_path:  # a path parsed from a hostile file; C would cut it there
            raise Refused("unreadable: the path holds a NUL byte")
        try:
            os.fsencode(abs_path)
        except UnicodeError:  # a lone surrogate, e.g. from a JSON "\ud800" escape
            raise Refused("unreadable: the path is not valid text") from None
        if not self.confined:
            return os.open(posixpath.join("/", abs_path), flags | os.O_CLOEXEC)
        # The root as named, so the kernel follows a /proc/PID/root magic link into the
        # container (its realpath would be "/", this machine's root).
        rootfd = os.open(self.root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            rel = abs_path.lstrip("/") or "."
            if self.uses_openat2:
                return openat2(
                    rootfd, rel, flags | os.O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
                )
            return walk_in_root(rootfd, rel, flags | os.O_CLOEXEC)
        finally:
            os.close(rootfd)

    @contextmanager
    def _fd(self, abs_path: str, flags: int = _O_PATH) -> Iterator[int]:
        fd = self._open(abs_path, flags)
        try:
            yield fd
        finally:
            os.close(fd)

    def _open_regular(self, abs_path: str) -> Tuple[int, os.stat_result]:
        """A read-only fd of a regular file and its stat; raises OSError (or Refused)."""
        with self._fd(abs_path) as pfd:
            st = os.fstat(pfd)
            if not stat_mod.S_ISREG(st.st_mode):
                raise Refused(NOT_REGULAR)
            try:
                # Reopen what was checked, not the name again: a swap cannot slip a FIFO in.
                fd = os.open(f"/proc/self/fd/{pfd}", _O_READ)
            except FileNotFoundError:  # no /proc here: resolve again and compare
                fd = self._open(abs_path, _O_READ)
        again = os.fstat(fd)
        if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) or not stat_mod.S_ISREG(
            again.st_mode
        ):
            os.close(fd)
            raise Refused("unreadable: the file changed while being opened")
        return fd, again

    def open_binary(self, abs_path: str) -> Tuple[Optional[IO[bytes]], Optional[str]]:
        """A binary file object for a regular file under the root, or the problem.

        The caller closes it (``with fh:``). Special files are refused without being opened.
        """
        try:
            fd, _ = self._open_regular(abs_path)
        except OSError as exc:
            return None, _describe_os_error(exc)
        return os.fdopen(fd, "rb"), None

    def host_path(self, abs_path: str) -> Tuple[Optional[str], Optional[str]]:
        """This machine's path of a regular file under the root, with no link left in it.

        For a tool that opens files by name (``journalctl --file``): the name it gets is the
        resolved one, checked to lie inside the root. Returns (path, None) or (None, problem).
        """
        try:
            with self._fd(abs_path) as pfd:
                st = os.fstat(pfd)
                if not stat_mod.S_ISREG(st.st_mode):
                    return None, NOT_REGULAR
                real = os.readlink(f"/proc/self/fd/{pfd}")
        except OSError as exc:
            return None, _describe_os_error(exc)
        if not self.confined:
            return real, None
        seen, name = self._root_names
        if seen is None or not real.startswith(seen.rstrip("/") + "/"):
            return None, OUTSIDE
        return name + real[len(seen.rstrip("/")) :], None

    @functools.cached_property
    def _root_names(self) -> Tuple[Optional[str], str]:
        """How the kernel names the root in fd links, and the name this machine opens it by.

        The same for a plain directory. For a container's ``/proc/PID/root`` the kernel names
        its files as the container sees them (``/var/log/...``): those must be reached through
        the magic link, not by that name on this machine.
        """
        try:
            with self._fd("/") as rootfd:
                seen = os.readlink(f"/proc/self/fd/{rootfd}")
            st = os.stat(seen)
        except OSError:
            return None, ""
        if (st.st_dev, st.st_ino) == self._root_id:
            return seen, seen.rstrip("/")
        return seen, str(self.root).rstrip("/")

    # -- metadata -----------------------------------------------------------------------------

    def stat(self, abs_path: str) -> Optional[os.stat_result]:
        """The stat of what ``abs_path`` leads to (links followed inside the root), or None."""
        try:
            with self._fd(abs_path) as fd:
                return os.fstat(fd)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return self._masked_stat(abs_path)
            return None

    def _masked_stat(self, abs_path: str) -> Optional[os.stat_result]:
        """A link to ``/dev/null`` (systemd's mask) is the null device even when the captured
        root has no ``dev/`` (it is a devtmpfs, never captured); only its metadata is used."""
        if not self.confined:
            return None
        parent, name = posixpath.split("/" + abs_path.lstrip("/"))
        try:
            with self._fd(parent) as dfd:
                target = os.readlink(name, dir_fd=dfd)
            return os.stat("/dev/null") if posixpath.normpath(target) == "/dev/null" else None
        except (OSError, ValueError):
            return None

    def exists(self, abs_path: str) -> bool:
        return self.stat(abs_path) is not None

    def is_file(self, abs_path: str) -> bool:
        st = self.stat(abs_path)
        return st is not None and stat_mod.S_ISREG(st.st_mode)

    def is_dir(self, abs_path: str) -> bool:
        st = self.stat(abs_path)
        return st is not None and stat_mod.S_ISDIR(st.st_mode)

    # -- reading ------------------------------------------------------------------------------

    def read_bytes(
        self, abs_path: str, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> Tuple[bytes, FileRead]:
        """Read at most ``max_bytes`` from the start of a file; the FileRead says what happened.

        /proc and /sys files are regular files of size 0: they are read to their end (or cap).
        """
        try:
            fd, _ = self._open_regular(abs_path)
        except OSError as exc:
            return b"", FileRead(abs_path, problem=_describe_os_error(exc))
        try:
            data = _read_up_to(fd, max_bytes + 1)
        except OSError as exc:
            return b"", FileRead(abs_path, problem=_describe_os_error(exc))
        finally:
            os.close(fd)
        truncated = len(data) > max_bytes
        return data[:max_bytes], FileRead(abs_path, truncated=truncated)

    def read(self, abs_path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> FileRead:
        """Read a text file; undecodable bytes are replaced, NUL bytes mark it as binary."""
        data, result = self.read_bytes(abs_path, max_bytes)
        if result.problem:
            return result
        return FileRead(
            abs_path,
            text=data.decode("utf-8", errors="replace"),
            truncated=result.truncated,
            binary=b"\x00" in data[:8192],
        )

    def read_tail(self, abs_path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> FileRead:
        """Read the last ``max_bytes`` of a text file (logs: the newest lines are at the end).

        ``truncated`` says the start was left out; the first line may then be partial.
        """
        try:
            fd, st = self._open_regular(abs_path)
        except OSError as exc:
            return FileRead(abs_path, problem=_describe_os_error(exc))
        try:
            start = max(0, st.st_size - max_bytes)
            if start:
                os.lseek(fd, start, os.SEEK_SET)
            # A size-0 pseudo-file (/proc, /sys) cannot seek from its end: read a bounded
            # amount forwards and keep its end.
            data = _read_up_to(fd, max_bytes if st.st_size else max(4 * max_bytes, 1 << 20))
        except OSError as exc:
            return FileRead(abs_path, problem=_describe_os_error(exc))
        finally:
            os.close(fd)
        cut = len(data) > max_bytes
        data = data[-max_bytes:] if max_bytes > 0 else b""
        return FileRead(
            abs_path,
            text=data.decode("utf-8", errors="replace"),
            truncated=start > 0 or cut,
            binary=b"\x00" in data[-8192:],
        )

    def read_text(self, abs_path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Optional[str]:
        """The file's text, or None when it cannot be read for any reason."""
        result = self.read(abs_path, max_bytes)
        return result.text if result.ok else None

    # -- directories --------------------------------------------------------------------------

    def list_dir(self, abs_path: str, limit: int = MAX_DIR_ENTRIES) -> DirListing:
        """The first ``limit`` entry names of a directory (sorted) and how many were left out."""
        if not self._listings.take():
            return DirListing(abs_path, problem=LISTINGS_SPENT)
        try:
            with self._fd(abs_path, _O_LIST) as fd:
                st = os.fstat(fd)
                if not self._listings.seen((st.st_dev, st.st_ino), MAX_RELISTS):
                    return DirListing(abs_path, problem=RELISTED)
                names: List[str] = []
                capped = False
                with os.scandir(fd) as it:
                    for entry in it:
                        if len(names) >= MAX_DIR_SCAN:
                            capped = True
                            break
                        names.append(entry.name)
        except OSError as exc:
            return DirListing(abs_path, problem=_describe_os_error(exc))
        names.sort()
        return DirListing(
            abs_path, tuple(names[:limit]), max(0, len(names) - limit) + capped, capped
        )

    def listdir(self, abs_path: str) -> Optional[List[str]]:
        """Sorted entry names of a directory (at most MAX_DIR_ENTRIES), or None when it is
        missing or unreadable."""
        listing = self.list_dir(abs_path)
        return None if listing.problem else list(listing.names)

    def listdir_problem(self, abs_path: str) -> Optional[str]:
        """Why a directory cannot be listed (same vocabulary as FileRead.problem), or None."""
        try:
            with self._fd(abs_path, _O_LIST):
                return None
        except OSError as exc:
            return _describe_os_error(exc)

    def glob(self, abs_dir: str, pattern: str) -> List[str]:
        """Absolute (root-relative) paths of entries of ``abs_dir`` matching a shell pattern."""
        names = self.listdir(abs_dir) or []
        base = abs_dir.rstrip("/")
        return [f"{base}/{name}" for name in names if fnmatch.fnmatch(name, pattern)]

    def walk(self, abs_dir: str, *, max_depth: int = 2, max_files: int = MAX_WALK_FILES) -> Walk:
        """Regular files under ``abs_dir`` down to ``max_depth``, each directory and file once.

        Links are followed inside the root, but a directory (or file) already seen by its
        (device, inode) is not visited again, so link loops and fan-out cost nothing.
        """
        out = Walk()
        seen: Set[Tuple[int, int]] = set()
        top = self.stat(abs_dir)
        if top is None or not stat_mod.S_ISDIR(top.st_mode):
            out.problems.append(f"{abs_dir}: {self.listdir_problem(abs_dir) or 'not a directory'}")
            return out
        seen.add((top.st_dev, top.st_ino))
        todo: Deque[Tuple[str, int]] = deque([(abs_dir.rstrip("/") or "/", 0)])
        while todo:
            d, depth = todo.popleft()
            listing = self.list_dir(d)
            if listing.problem:
                out.problems.append(f"{d}: {listing.problem}")
                continue
            out.left_out += listing.left_out
            for name in listing.names:
                p = f"{d.rstrip('/')}/{name}"
                if len(out.files) >= max_files:
                    out.left_out += 1
                    continue
                st = self.stat(p)
                if st is None or (st.st_dev, st.st_ino) in seen:
                    continue
                if stat_mod.S_ISDIR(st.st_mode):
                    if depth < max_depth:
                        seen.add((st.st_dev, st.st_ino))
                        todo.append((p, depth + 1))
                elif stat_mod.S_ISREG(st.st_mode):
                    seen.add((st.st_dev, st.st_ino))
                    out.files.append((p, st))
        return out

    def readlinks(self, abs_dir: str, names: Sequence[str]) -> Dict[str, str]:
        """The targets of the links among ``names`` in one directory (what :meth:`readlink`
        gives for each), the directory opened once: unit directories hold hundreds of entries,
        and one confined open per entry was the unit layer's largest cost."""
        out: Dict[str, str] = {}
        try:
            with self._fd(abs_dir or "/", _O_PATH | os.O_DIRECTORY) as dfd:
                for name in names:
                    if not name or "/" in name or name in (".", ".."):
                        continue
                    try:
                        out[name] = os.readlink(name, dir_fd=dfd)
                    except (OSError, ValueError):
                        continue  # not a link, or gone
        except (OSError, ValueError, Refused):
            return {}
        return out

    def readlink(self, abs_path: str) -> Optional[str]:
        """The target of a symbolic link as written in the link (``/dev/null`` for a masked
        unit), or None when ``abs_path`` is no link or cannot be read. Only the link's parent
        is resolved (inside the root); the target is not followed: callers resolve it as a
        path of the root."""
        parent, name = posixpath.split(abs_path.rstrip("/"))
        if not name:
            return None
        try:
            with self._fd(parent or "/", _O_PATH | os.O_DIRECTORY) as dfd:
                return os.readlink(name, dir_fd=dfd)
        except (OSError, ValueError, Refused):
            return None


class _Counter:
    """A thread-safe countdown and visit counter (checks run on several threads)."""

    def __init__(self, total: int) -> None:
        self.left = total
        self._lock = threading.Lock()
        self._seen: Dict[Tuple[int, int], int] = {}

    def seen(self, key: Tuple[int, int], most: int) -> bool:
        """Count one more visit of ``key``; False past ``most`` visits."""
        with self._lock:
            n = self._seen.get(key, 0) + 1
            self._seen[key] = n
            return n <= most

    def take(self) -> bool:
        with self._lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def _read_up_to(fd: int, limit: int) -> bytes:
    """Read until EOF or ``limit`` bytes (a pseudo-file's size says nothing)."""
    chunks: List[bytes] = []
    got = 0
    while got < limit:
        try:
            chunk = os.read(fd, min(1 << 20, limit - got))
        except BlockingIOError:
            break  # only special files block, and those are refused before
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
