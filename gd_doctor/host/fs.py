"""Files under a root directory: the live ``/`` or a mounted or captured root (``--root``).

Checks always name the real absolute path (``"/etc/os-release"``); :class:`RootFS` maps it under
its root. Reads never raise for the usual trouble (missing, permission denied, a directory where a
file was expected, bytes that are not UTF-8): they return a :class:`FileRead` that says what went
wrong, so a check can turn it into a clear result and the run goes on.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat as stat_mod
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

DEFAULT_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class FileRead:
    """The outcome of reading one file.

    ``problem`` is ``None`` on success, else one of ``"missing"``, ``"permission denied"``,
    ``"not a regular file"`` or ``"unreadable: <reason>"``.
    """

    path: str
    text: Optional[str] = None
    problem: Optional[str] = None
    truncated: bool = False
    binary: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None and self.text is not None


def _describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "missing"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EISDIR:
        return "not a regular file"
    return f"unreadable: {exc.strerror or exc}"


@dataclass(frozen=True)
class RootFS:
    """Read-only access to the files of one root directory."""

    root: Path = Path("/")

    @property
    def is_live(self) -> bool:
        """True when the root is this machine's own ``/``."""
        return str(self.root.resolve()) == "/"

    def path(self, abs_path: str) -> Path:
        """Map ``/etc/os-release`` to ``<root>/etc/os-release``.

        >>> RootFS(Path("/mnt/img")).path("/etc/os-release").as_posix()
        '/mnt/img/etc/os-release'
        """
        return self.root / abs_path.lstrip("/")

    def exists(self, abs_path: str) -> bool:
        try:
            return self.path(abs_path).exists()
        except OSError:
            return False

    def is_file(self, abs_path: str) -> bool:
        try:
            return self.path(abs_path).is_file()
        except OSError:
            return False

    def is_dir(self, abs_path: str) -> bool:
        try:
            return self.path(abs_path).is_dir()
        except OSError:
            return False

    def read_bytes(
        self, abs_path: str, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> Tuple[bytes, FileRead]:
        """Read at most ``max_bytes`` from the start of a file; the FileRead says what happened."""
        target = self.path(abs_path)
        try:
            st = target.stat()
            if not stat_mod.S_ISREG(st.st_mode) and not abs_path.startswith(("/proc/", "/sys/")):
                return b"", FileRead(abs_path, problem="not a regular file")
            with open(target, "rb") as fh:
                data = fh.read(max_bytes + 1)
        except OSError as exc:
            return b"", FileRead(abs_path, problem=_describe_os_error(exc))
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
        target = self.path(abs_path)
        try:
            st = target.stat()
            if not stat_mod.S_ISREG(st.st_mode):
                return FileRead(abs_path, problem="not a regular file")
            with open(target, "rb") as fh:
                start = max(0, st.st_size - max_bytes)
                fh.seek(start)
                data = fh.read(max_bytes)
        except OSError as exc:
            return FileRead(abs_path, problem=_describe_os_error(exc))
        return FileRead(
            abs_path,
            text=data.decode("utf-8", errors="replace"),
            truncated=start > 0,
            binary=b"\x00" in data[-8192:],
        )

    def read_text(self, abs_path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Optional[str]:
        """The file's text, or None when it cannot be read for any reason."""
        result = self.read(abs_path, max_bytes)
        return result.text if result.ok else None

    def listdir(self, abs_path: str) -> Optional[List[str]]:
        """Sorted entry names of a directory, or None when it is missing or unreadable."""
        try:
            return sorted(os.listdir(self.path(abs_path)))
        except OSError:
            return None

    def listdir_problem(self, abs_path: str) -> Optional[str]:
        """Why a directory cannot be listed (same vocabulary as FileRead.problem), or None."""
        try:
            os.listdir(self.path(abs_path))
        except OSError as exc:
            return _describe_os_error(exc)
        return None

    def glob(self, abs_dir: str, pattern: str) -> List[str]:
        """Absolute (root-relative) paths of entries of ``abs_dir`` matching a shell pattern."""
        names = self.listdir(abs_dir) or []
        base = abs_dir.rstrip("/")
        return [f"{base}/{name}" for name in names if fnmatch.fnmatch(name, pattern)]

    def stat(self, abs_path: str) -> Optional[os.stat_result]:
        try:
            return self.path(abs_path).stat()
        except OSError:
            return None

    def readlink(self, abs_path: str) -> Optional[str]:
        """The target of a symbolic link as written in the link (``/dev/null`` for a masked
        unit), or None when ``abs_path`` is no link or cannot be read. The target is not
        followed: callers resolve it as a path of the root."""
        try:
            return os.readlink(self.path(abs_path))
        except (OSError, ValueError):
            return None
