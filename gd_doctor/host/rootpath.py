"""Paths of a root (the live ``/`` or a ``--root``) resolved the way that system resolves them.

:func:`real_path` follows symbolic links component by component as if the root were ``/``: an
absolute target starts again at the root, ``..`` never climbs above it. :class:`ConfinedFS`
puts every :class:`RootFS` call of the unit and package layers behind it, so a link in a
captured root (``/etc/systemd/system -> /elsewhere``, an environment file linked to
``/etc/shadow``) is followed into that root's own files and never into the machine gd-doctor
runs on.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import replace
from typing import Dict, List, Optional, Sequence

from gd_doctor.host.fs import FileRead, RootFS

MAX_LINK_HOPS = 40


def join_in_root(base_dir: str, target: str) -> str:
    """A link target as a normalised path of the root (``..`` never climbs above ``/``)."""
    raw = target if target.startswith("/") else f"{base_dir}/{target}"
    parts: List[str] = []
    for part in raw.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def real_path(fs: RootFS, path: str) -> str:
    """``path`` with every symlink resolved as the root sees it (absolute targets start at the
    root, ``..`` stops there); resolution ends at the first component that is no link."""
    done: List[str] = []
    todo = [p for p in path.split("/") if p not in ("", ".")]
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        link = fs.readlink("/" + "/".join([*done, part]))
        if link is None or hops >= MAX_LINK_HOPS:
            done.append(part)
            continue
        hops += 1
        if link.startswith("/"):
            done = []
        todo = [p for p in link.split("/") if p not in ("", ".")] + todo
    return "/" + "/".join(done)


class ConfinedFS:
    """The RootFS calls this layer makes, each path first resolved inside the root with
    :func:`real_path`, so a link in a captured root (``/etc/systemd/system -> /elsewhere``, an
    EnvironmentFile linked to ``/etc/shadow``) is followed as that system would follow it and
    never into the machine gd-doctor runs on. Results name the path as asked."""

    def __init__(self, fs: RootFS) -> None:
        self.fs = fs
        # One listing per directory per run: unit resolution looks at the same dozen search
        # directories for every unit, and RootFS caps how often one directory may be listed
        # (a defence against link fan-out), so the layer must not spend that on repeats.
        self._listings: Dict[str, Optional[List[str]]] = {}

    def _in(self, path: str) -> str:
        # On the live "/" the kernel follows every link as real_path would (absolute targets
        # start at "/", ".." stops there), so the component walk (a readlink per component)
        # is only needed inside a captured root.
        if not self.fs.confined:
            return path
        return real_path(self.fs, path)

    def read(self, path: str, max_bytes: int) -> FileRead:
        return replace(self.fs.read(self._in(path), max_bytes=max_bytes), path=path)

    def stat(self, path: str) -> Optional[os.stat_result]:
        return self.fs.stat(self._in(path))

    def exists(self, path: str) -> bool:
        return self.fs.exists(self._in(path))

    def is_file(self, path: str) -> bool:
        return self.fs.is_file(self._in(path))

    def is_dir(self, path: str) -> bool:
        return self.fs.is_dir(self._in(path))

    def listdir(self, path: str) -> Optional[List[str]]:
        real = self._in(path)
        if real not in self._listings:
            self._listings[real] = self.fs.listdir(real)
        names = self._listings[real]
        return None if names is None else list(names)

    def glob(self, directory: str, pattern: str) -> List[str]:
        base = directory.rstrip("/")
        names = self.listdir(directory) or []
        return [f"{base}/{name}" for name in names if fnmatch.fnmatch(name, pattern)]

    def readlink(self, path: str) -> Optional[str]:
        """The link ``path`` itself (its directory resolved, its last component not)."""
        directory, _, base = path.rstrip("/").rpartition("/")
        return self.fs.readlink(f"{self._in(directory or '/').rstrip('/')}/{base}")

    def readlinks(self, directory: str, names: Sequence[str]) -> Dict[str, str]:
        """:meth:`readlink` of each of ``names`` in ``directory`` (resolved once)."""
        return self.fs.readlinks(self._in(directory or "/"), names)

    def host_path(self, path: str) -> str:
        """Where ``path`` of the root is on this machine (for SQLite, which opens by name)."""
        return str(self.fs.path(self._in(path)))
