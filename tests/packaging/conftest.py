"""Fixtures for the packaging tests: the built artifacts, the cached Debian roots, chroots.

Heavy tests are marked ``packaging``; they skip (with the reason) when dist/ has not been built
(packaging/build.sh), when not root, or when a root is not cached (packaging/testroots.sh).
Nothing here reaches the network: ci.sh downloads everything before the tests run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
PACKAGING = TOP / "packaging"
DIST = Path(os.environ.get("GD_DOCTOR_DIST", str(TOP / "dist")))
CACHE = Path(os.environ.get("GD_DOCTOR_CACHE", "/var/cache/gd-doctor-tests")) / "packaging"


def project_version() -> str:
    text = (TOP / "gd_doctor" / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.MULTILINE)
    assert m, "gd_doctor/__init__.py has no __version__"
    return m.group(1)


VERSION = project_version()
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def deb_path(arch: str) -> Path:
    return DIST / f"gd-doctor_{VERSION}_{DEB_ARCH[arch]}.deb"


def rpm_path(arch: str) -> Path:
    return DIST / f"gd-doctor-{VERSION}.{arch}.rpm"


def need_tool(*names: str) -> None:
    for name in names:
        if shutil.which(name) is None:
            pytest.skip(f"{name} is not installed (packaging/ci.sh installs it)")


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (chroot, rpm --root)")


@pytest.fixture(scope="session")
def built() -> Path:
    """The four artifacts, or skip."""
    missing = [p.name for a in DEB_ARCH for p in (deb_path(a), rpm_path(a)) if not p.exists()]
    if missing:
        pytest.skip(f"not built: {', '.join(missing)} (run packaging/build.sh)")
    return DIST


def cached_root(suite: str) -> Path:
    root = CACHE / "roots" / suite
    if not (root / ".gd-doctor-root-ok").exists():
        pytest.skip(f"no cached {suite} root in {root} (run packaging/testroots.sh {suite})")
    return root


@pytest.fixture
def root_copy(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Factory: a private copy of a cached root, so the cache stays pristine."""
    made: list[Path] = []

    def make(suite: str) -> Path:
        need_root()
        src = cached_root(suite)
        dest = tmp_path / f"root-{suite}-{len(made)}"
        subprocess.run(["cp", "-a", "--reflink=auto", str(src), str(dest)], check=True)
        made.append(dest)
        return dest

    yield make
    for d in made:
        assert not is_mounted(d / "proc"), f"{d}/proc left mounted"
        shutil.rmtree(d, ignore_errors=True)


def is_mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mounts", encoding="utf-8") as f:
        return any(line.split()[1] == target for line in f)


@contextlib.contextmanager
def proc_mounted(root: Path) -> Iterator[None]:
    """/proc inside the chroot for the duration; always unmounted afterwards."""
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(proc)], check=False)


CHROOT_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "HOME": "/root",
}


def chroot(
    root: Path,
    *cmd: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    full_env = dict(CHROOT_ENV, **(env or {}))
    p = subprocess.run(
        ["chroot", str(root), *cmd],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    if check and p.returncode != 0:
        raise AssertionError(
            f"chroot {' '.join(cmd)} -> {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        )
    return p
