"""The launcher, the build and CI scripts, pkgtool and the completion: fast, no root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.conftest import PACKAGING, TOP, VERSION

SH_SCRIPTS = [
    "gd-doctor.sh",
    "build.sh",
    "testroots.sh",
    "ci.sh",
    "scripts/pycheck.sh",
    "ssm/install.sh",
    "ssm/run.sh",
    "ssm/report.sh",
    "ssm/bundle.sh",
]
PYENV = Path("/root/.pyenv/versions")


def shellcheck(path: Path, shell: str) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (packaging/ci.sh installs it)")
    p = subprocess.run(["shellcheck", "-s", shell, str(path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


@pytest.mark.parametrize("name", SH_SCRIPTS)
def test_shellcheck_sh(name: str) -> None:
    shellcheck(PACKAGING / name, "sh")


def test_shellcheck_bash_completion() -> None:
    shellcheck(PACKAGING / "gd-doctor.bash-completion", "bash")


def test_bash_completion_completes() -> None:
    bash = shutil.which("bash")
    assert bash
    script = f"""
source {PACKAGING / "gd-doctor.bash-completion"}
COMP_WORDS=(gd-doctor check --format ""); COMP_CWORD=3; _gd_doctor; echo "${{COMPREPLY[*]}}"
COMP_WORDS=(gd-doctor ch); COMP_CWORD=1; _gd_doctor; echo "${{COMPREPLY[*]}}"
"""
    out = subprocess.run([bash, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["text json ssm", "check checks"]


def python_at(version: str) -> Path:
    for d in sorted(PYENV.glob(f"{version}.*")):
        exe = d / "bin" / f"python{version}"
        if exe.exists():
            return exe
    found = shutil.which(f"python{version}")
    if found is None:
        pytest.skip(f"no python{version} on this machine")
    return Path(found)


def fake_libdir(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "gd-doctor.py").write_text(
        "import os, sys\n"
        "print('%d.%d' % sys.version_info[:2], os.environ.get('TYPER_USE_RICH'),"
        " sys.flags.isolated, sys.flags.dont_write_bytecode, *sys.argv[1:])\n"
        "sys.exit(7)\n"
    )
    return lib


def launch(tmp_path: Path, python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "GD_DOCTOR_PYTHON": str(python),
        "GD_DOCTOR_LIBDIR": str(fake_libdir(tmp_path)),
        "PYTHONPATH": "/nonexistent-hostile",
    }
    return subprocess.run(
        ["/bin/sh", str(PACKAGING / "gd-doctor.sh"), *args], capture_output=True, text=True, env=env
    )


def test_launcher_runs_python39_isolated(tmp_path: Path) -> None:
    p = launch(tmp_path, python_at("3.9"), "check", "--format", "json")
    assert p.returncode == 7, p.stderr  # the program's own exit code is passed through
    assert p.stdout.split() == ["3.9", "0", "1", "1", "check", "--format", "json"]


@pytest.mark.parametrize("version", ["3.7", "3.8"])
def test_launcher_refuses_old_python(tmp_path: Path, version: str) -> None:
    p = launch(tmp_path, python_at(version), "--version")
    assert p.returncode == 3
    assert p.stdout == ""
    assert "needs Python >= 3.9" in p.stderr
    assert f"({version}." in p.stderr
    assert "Traceback" not in p.stderr


def test_launcher_without_any_python(tmp_path: Path) -> None:
    p = launch(tmp_path, tmp_path / "no-such-python")
    assert p.returncode == 3
    assert "needs Python >= 3.9" in p.stderr


def pkgtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PACKAGING / "pkgtool.py"), *args], capture_output=True, text=True
    )


def test_version_comes_from_the_package() -> None:
    assert pkgtool("version", str(TOP)).stdout.strip() == VERSION


def test_changelog_has_an_entry_for_the_version() -> None:
    p = pkgtool("changelog-version", str(PACKAGING / "changelog"))
    assert p.stdout.strip() == VERSION, "add a packaging/changelog entry for the new version"
    rpm = pkgtool("rpm-changelog", str(PACKAGING / "changelog")).stdout
    assert rpm.startswith("* ") and f" - {VERSION}-1\n" in rpm


def test_version_is_not_written_anywhere_else() -> None:
    for path in [*PACKAGING.rglob("*")]:
        if path.is_file() and path.name != "changelog" and path.suffix != ".lock":
            assert f"{VERSION}" not in path.read_text(encoding="utf-8", errors="replace"), path


def test_render_refuses_leftover_placeholders(tmp_path: Path) -> None:
    t = tmp_path / "t"
    t.write_text("@A@ @B@\n")
    assert pkgtool("render", str(t), "A=1", "B=2").stdout == "1 2\n"
    p = pkgtool("render", str(t), "A=1")
    assert p.returncode == 1 and "@B@" in p.stderr


def test_vendor_lock_is_pinned_and_hashed() -> None:
    text = (PACKAGING / "vendor.lock").read_text(encoding="utf-8")
    reqs = [r for r in text.replace("\\\n", " ").splitlines() if r and not r.startswith("#")]
    names = set()
    for r in reqs:
        spec = r.split()[0]
        assert "==" in spec, r
        assert "--hash=sha256:" in r, r
        names.add(spec.split("==")[0].lower())
    assert {"typer", "click", "requests", "psutil", "urllib3"} <= names
    assert not names & {"rich", "pygments", "markdown-it-py", "mdurl", "systemd-python"}


def test_build_names_a_missing_tool(tmp_path: Path) -> None:
    """With rpmbuild absent from PATH, build.sh stops at once and says so."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ["sh", "dirname", "sed", "cat", "python3", "dpkg-deb", "gzip", "tar", "md5sum",
                 "sha256sum", "strip", "aarch64-linux-gnu-strip", "date"]:  # fmt: skip
        real = shutil.which(tool)
        if real:
            (bindir / tool).symlink_to(real)
    env = {"PATH": str(bindir), "GD_DOCTOR_DIST": str(tmp_path / "dist")}
    p = subprocess.run(
        ["/bin/sh", str(PACKAGING / "build.sh")], capture_output=True, text=True, env=env
    )
    assert p.returncode == 1
    assert "missing tool" in p.stderr and "rpmbuild" in p.stderr
    assert not (tmp_path / "dist").exists()


def test_build_rejects_unknown_arch() -> None:
    p = subprocess.run(
        ["/bin/sh", str(PACKAGING / "build.sh"), "--arch", "ppc64le"],
        capture_output=True,
        text=True,
        env={**os.environ, "GD_DOCTOR_DIST": "/nonexistent"},
    )
    assert p.returncode == 1 and "unsupported architecture: ppc64le" in p.stderr
