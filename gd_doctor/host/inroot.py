"""Opening a path of a root as that root's own system would resolve it: ``openat2(2)`` with
``RESOLVE_IN_ROOT`` (Linux 5.6+, through ctypes: Python has no binding), or the same walk done
one component at a time with ``O_PATH|O_NOFOLLOW`` and a link-count limit."""

from __future__ import annotations

import errno
import functools
import os
import stat as stat_mod
from collections import deque
from typing import Any, Deque, List, Optional, Tuple

MAX_SYMLINKS = 40  # as the kernel's MAXSYMLINKS
O_PATH = getattr(os, "O_PATH", 0o10000000)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
SYS_OPENAT2 = 437  # the same number on every architecture (the generic syscall table)


class Refused(OSError):
    """A path resolution gd-doctor refuses; ``str()`` is the problem to report."""

    def __init__(self, problem: str) -> None:
        super().__init__(errno.EPERM, problem)
        self.problem = problem

    def __str__(self) -> str:
        return self.problem


# ---------------------------------------------------------------------------------------------
# openat2(2), through ctypes: Python has no binding for it. ctypes loads only when a root other
# than the live "/" is resolved (7 million instructions a live run does not need).


@functools.lru_cache(maxsize=1)
def _libc_syscall() -> Optional[Tuple[Any, Any]]:
    """libc's ``syscall`` and the ``struct open_how`` type, or None without them."""
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).syscall
    except (ImportError, OSError, AttributeError):
        return None
    fn.restype = ctypes.c_long

    class OpenHow(ctypes.Structure):
        _fields_ = [
            ("flags", ctypes.c_uint64),
            ("mode", ctypes.c_uint64),
            ("resolve", ctypes.c_uint64),
        ]

    return fn, OpenHow


def openat2(dirfd: int, rel: str, flags: int, resolve: int) -> int:
    """``openat2(dirfd, rel, {flags, 0, resolve})``; raises OSError like ``os.open``."""
    found = _libc_syscall()
    if found is None:
        raise OSError(errno.ENOSYS, "no libc syscall()")
    import ctypes  # loaded by _libc_syscall

    fn, open_how = found
    how = open_how(flags, 0, resolve)
    path = os.fsencode(rel)
    for _ in range(4):  # EAGAIN: a concurrent rename raced the ".." check; the kernel says retry
        fd = fn(
            ctypes.c_long(SYS_OPENAT2),
            ctypes.c_int(dirfd),
            ctypes.c_char_p(path),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err != errno.EAGAIN:
            raise OSError(err, os.strerror(err), rel)
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), rel)


@functools.lru_cache(maxsize=1)
def openat2_available() -> bool:
    """True when this kernel (5.6+) and its seccomp policy let us call openat2."""
    try:
        fd = openat2(-100, "/", O_PATH | os.O_CLOEXEC, RESOLVE_IN_ROOT)  # AT_FDCWD
    except OSError:
        return False  # ENOSYS (old kernel), EPERM (a seccomp filter), EINVAL, ...
    os.close(fd)
    return True


# ---------------------------------------------------------------------------------------------
# The fallback: the kernel's RESOLVE_IN_ROOT walk, done one component at a time.


def _components(path: str) -> List[str]:
    return [c for c in path.split("/") if c and c != "."]


def walk_in_root(rootfd: int, rel: str, final_flags: int) -> int:
    """Resolve ``rel`` under ``rootfd`` as if it were ``/``; return an fd opened ``final_flags``.

    ``stack`` holds the directories walked so far (the root at the bottom), so ``..`` goes back
    to the real parent of what a link led to, and never below the root. Links are read, never
    followed by the kernel: an absolute target restarts at the root.
    """
    stack: List[int] = [os.dup(rootfd)]
    todo: Deque[str] = deque(_components(rel))
    must_be_dir = rel.endswith("/")  # "x/" names a directory, as for the kernel
    links = 0
    try:
        while todo:
            comp = todo.popleft()
            if comp == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            cur = stack[-1]
            fd = os.open(comp, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            st = os.fstat(fd)
            if stat_mod.S_ISLNK(st.st_mode):
                os.close(fd)
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), rel)
                target = os.readlink(comp, dir_fd=cur)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo.extendleft(reversed(_components(target)))
                continue
            if todo or must_be_dir:  # an intermediate component (or "x/"): a directory
                if not stat_mod.S_ISDIR(st.st_mode):
                    os.close(fd)
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), rel)
                if todo:
                    stack.append(fd)
                    continue
            if final_flags & O_PATH:
                return fd
            os.close(fd)
            # Not a link (checked above); O_NOFOLLOW keeps a swap to a link from being followed.
            return os.open(comp, final_flags | os.O_NOFOLLOW, dir_fd=cur)
        return os.open(".", final_flags, dir_fd=stack[-1])
    finally:
        for fd in stack:
            os.close(fd)
