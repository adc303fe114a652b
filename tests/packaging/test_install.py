"""Install the built packages into debootstrapped Debian roots and run them there.

Debian 11 (Python 3.9.2, python3-systemd 234, the supported floor): the .deb with apt and the
.rpm with ``rpm --root --nodeps``; Debian 12: the same .deb. Each time: ``gd-doctor --version``,
``gd-doctor check --root <fixture> --format json`` validated against the report schema, and an
uninstall that leaves the root as it was. Also: an old Python is refused with a clear message,
and the project's test suite runs on the root's Python 3.9. Needs root and the cached roots
(packaging/testroots.sh); never touches the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.packaging.conftest import (
    CACHE,
    DIST,
    TOP,
    VERSION,
    chroot,
    deb_path,
    need_tool,
    proc_mounted,
    rpm_path,
)

pytestmark = pytest.mark.packaging

ARCH = os.uname().machine
SCHEMA = TOP / "gd_doctor" / "knowledge" / "report.schema.json"
FIXTURES = TOP / "tests" / "fixtures" / "roots"
# Paths that package managers and the chroot itself change: not part of "left behind".
VOLATILE = (
    "var/lib/dpkg/",
    "var/lib/apt/",
    "var/cache/",
    "var/log/",
    "var/lib/rpm/",
    "tmp/",
    "proc/",
    "root/",
    "etc/ld.so.cache",
    ".gd-doctor-",
)

RootFactory = Callable[[str], Path]


@pytest.fixture(autouse=True)
def _native_arch_only(built: Path) -> None:
    if ARCH not in ("x86_64", "aarch64"):
        pytest.skip(f"no packages for {ARCH}")


def snapshot(root: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel + "/"
        for name in dirnames + filenames:
            path = rel + name
            if not path.startswith(VOLATILE):
                out.add(path)
    return out


def fixture_root(dest: Path) -> str:
    """Copy a host fixture into the root (or make a minimal one); return its path inside."""
    candidates = sorted(FIXTURES.glob(f"*-{ARCH}")) if FIXTURES.is_dir() else []
    target = dest / "tmp" / "fixture"
    if candidates:
        # each fixture is <name>/root/ (the filesystem) beside its expected.json
        source = candidates[0] / "root" if (candidates[0] / "root").is_dir() else candidates[0]
        shutil.copytree(source, target, symlinks=True)
    else:
        (target / "etc").mkdir(parents=True)
        (target / "etc" / "os-release").write_text(
            'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nID_LIKE="fedora"\n'
            'VERSION_ID="2023"\nPLATFORM_ID="platform:al2023"\n'
            'PRETTY_NAME="Amazon Linux 2023"\n'
        )
    return "/tmp/fixture"


def run_installed(root: Path) -> None:
    """--version and a JSON check of a fixture root, as a user would run them."""
    p = chroot(root, "gd-doctor", "--version")
    assert VERSION in p.stdout
    fx = fixture_root(root)
    with proc_mounted(root):
        p = chroot(
            root,
            "gd-doctor", "check", "--root", fx, "--format", "json", "--timeout", "60",
            check=False,
        )  # fmt: skip
    assert p.returncode in (0, 1), f"rc={p.returncode}\n{p.stderr}"
    report: dict[str, Any] = json.loads(p.stdout)
    assert report["tool"]["version"] == VERSION
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(report, json.loads(SCHEMA.read_text(encoding="utf-8")))


def python_version(root: Path) -> str:
    return chroot(root, "python3", "-c", "import sys; print(sys.version.split()[0])").stdout.strip()


def test_deb_on_debian11(root_copy: RootFactory) -> None:
    root = root_copy("bullseye")
    assert python_version(root).startswith("3.9.")
    before = snapshot(root)
    shutil.copy(deb_path(ARCH), root / "tmp")
    chroot(root, "apt-get", "install", "-y", f"/tmp/{deb_path(ARCH).name}")
    # postinst compiled bytecode for the Python the launcher uses
    lib = root / "usr/lib/gd-doctor/gd_doctor"
    assert list((lib / "__pycache__").glob("entry.cpython-39.pyc"))
    assert list((lib / "cli/__pycache__").glob("__init__.cpython-39.pyc"))
    p = chroot(root, "python3", "-c", "import systemd.journal; print(systemd.journal.__file__)")
    assert "dist-packages" in p.stdout  # the recommended python3-systemd is importable
    run_installed(root)
    chroot(root, "apt-get", "purge", "-y", "gd-doctor")
    assert snapshot(root) == before


def test_rpm_on_debian11(root_copy: RootFactory) -> None:
    need_tool("rpm")
    root = root_copy("bullseye")
    before = snapshot(root)
    rpm = rpm_path(ARCH)
    base = ["rpm", "--root", str(root)]
    subprocess.run([*base, "--initdb"], check=True)
    p = subprocess.run([*base, "-ivh", "--nodeps", str(rpm)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert list((root / "usr/lib/gd-doctor/gd_doctor/__pycache__").glob("*.cpython-39.pyc"))
    run_installed(root)
    verify = subprocess.run([*base, "-V", "--nodeps", "gd-doctor"], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    subprocess.run([*base, "-e", "--nodeps", "gd-doctor"], check=True, capture_output=True)
    assert not (root / "usr/lib/gd-doctor").exists()
    # rpm made the parent /usr/share/licenses, which Debian lacks and RPM distros' filesystem
    # package owns; it is empty again.
    assert not any((root / "usr/share/licenses").iterdir())
    assert snapshot(root) - {"usr/share/licenses"} == before


def test_deb_on_debian12(root_copy: RootFactory) -> None:
    root = root_copy("bookworm")
    assert python_version(root).startswith("3.11.")
    before = snapshot(root)
    shutil.copy(deb_path(ARCH), root / "tmp")
    chroot(root, "apt-get", "install", "-y", f"/tmp/{deb_path(ARCH).name}")
    run_installed(root)
    chroot(root, "apt-get", "purge", "-y", "gd-doctor")
    assert snapshot(root) == before


FAKE_OLD_PYTHON = """#!/bin/sh
# a Python 3.7 stand-in: fails the >= 3.9 test, reports its version
case "$*" in
    *"version_info < (3, 9)"*) exit 1 ;;
    *) echo 3.7.16 ;;
esac
"""


def make_python_old(root: Path) -> None:
    for name in ("python3", "python3.9"):
        (root / "usr/bin" / name).unlink()
    (root / "usr/bin/python3").write_text(FAKE_OLD_PYTHON)
    (root / "usr/bin/python3").chmod(0o755)


def test_old_python_is_refused_clearly(root_copy: RootFactory) -> None:
    """dpkg and rpm installs fail with a message, the launcher exits 3: no traceback."""
    need_tool("rpm")
    root = root_copy("bullseye")
    make_python_old(root)
    shutil.copy(deb_path(ARCH), root / "tmp")
    p = chroot(root, "dpkg", "-i", f"/tmp/{deb_path(ARCH).name}", check=False)
    assert p.returncode != 0
    assert "needs Python >= 3.9, but /usr/bin/python3 is 3.7.16" in p.stderr
    assert not (root / "usr/bin/gd-doctor").exists()
    chroot(root, "dpkg", "--purge", "gd-doctor")

    base = ["rpm", "--root", str(root)]
    subprocess.run([*base, "--initdb"], check=True)
    p = subprocess.run(
        [*base, "-i", "--nodeps", str(rpm_path(ARCH))], capture_output=True, text=True
    )
    assert p.returncode != 0
    assert "needs Python >= 3.9" in p.stderr
    assert not (root / "usr/bin/gd-doctor").exists()

    # the launcher alone (e.g. python3 downgraded after installing)
    (root / "usr/lib/gd-doctor").mkdir(parents=True)
    shutil.copy(TOP / "packaging" / "gd-doctor.sh", root / "usr/bin/gd-doctor")
    p = chroot(root, "sh", "/usr/bin/gd-doctor", "--version", check=False)
    assert p.returncode == 3
    assert "needs Python >= 3.9; found only: /usr/bin/python3 (3.7.16)" in p.stderr
    assert "Traceback" not in p.stderr


#: tests that need more than a plain Python 3.9 (root services, namespaces, the packages)
SUITE_MARKERS = "not container and not netns and not packaging and not simulator"


def test_suite_on_python39(root_copy: RootFactory) -> None:
    """The project's tests (minus the heavy markers) pass on Debian 11's Python 3.9."""
    deps = CACHE / "py39-testdeps"
    if not (deps / ".reqs").exists():
        pytest.skip(f"no Python 3.9 test dependencies in {deps} (packaging/ci.sh fetches them)")
    vendor = DIST / ".build" / f"stage-{ARCH}" / "usr/lib/gd-doctor/vendor"
    if not vendor.is_dir():
        pytest.skip("no staged vendor tree (run packaging/build.sh)")
    root = root_copy("bullseye")
    src = root / "src"
    src.mkdir()
    # caches only: the fixture roots and scenarios hold dot files that matter (.keep, .gitkeep,
    # .dockerenv)
    ignore = shutil.ignore_patterns(
        "__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.egg-info"
    )
    for name in ("gd_doctor", "tests", "benchmarks", "docs"):
        shutil.copytree(TOP / name, src / name, ignore=ignore, symlinks=True)
    for name in ("pyproject.toml", "README.md"):  # the docs tests read them
        shutil.copy(TOP / name, src)
    shutil.copytree(vendor, root / "opt/vendor")
    shutil.copytree(deps, root / "opt/testdeps", symlinks=True)
    # a .pth file, not PYTHONPATH, so that subprocesses the tests start (even with a clean
    # environment) see the same modules
    (root / "usr/lib/python3/dist-packages/gd-doctor-tests.pth").write_text(
        "/src\n/opt/vendor\n/opt/testdeps\n"
    )
    env = {"TYPER_USE_RICH": "0"}
    with proc_mounted(root):
        p = chroot(
            root,
            "sh", "-c",
            'cd /src && exec python3 -m pytest -q -p no:cacheprovider --ignore=tests/packaging'
            # What depends on the chroot rather than on Python 3.9 is left to the main run: a
            # pseudo-terminal (no devpts here), the container fixture's golden text (the chroot
            # is itself seen as a container), DuckDB's wheel for this Python.
            " --ignore=tests/core/test_terminal.py --ignore=tests/fleet/test_athena.py"
            " --deselect 'tests/core/test_golden_roots.py::test_fixture_root_text_report_matches_golden[container-docker]'"
            f' -m "{SUITE_MARKERS}"',
            env=env,
            check=False,
            timeout=2400,  # the whole fast suite, on a 2-core machine
        )  # fmt: skip
    tail = "\n".join(p.stdout.splitlines()[-80:])
    assert p.returncode in (0, 5), f"pytest on Python 3.9 exited {p.returncode}\n{tail}\n{p.stderr}"
