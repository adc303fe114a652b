"""The built .deb and .rpm: same files, only python3 declared, clean lint. Needs dist/."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.packaging.conftest import DEB_ARCH, PACKAGING, VERSION, deb_path, need_tool, rpm_path

pytestmark = pytest.mark.packaging

ARCHES = list(DEB_ARCH)
# Files only one format carries, in that format's standard place.
DEB_ONLY = {
    "/usr/share/doc/gd-doctor/copyright",
    "/usr/share/lintian/overrides/gd-doctor",
}
RPM_ONLY = {"/usr/share/licenses/gd-doctor/LICENSE"}
ELF_MACHINE = {"x86_64": 62, "aarch64": 183}
EXAMPLES = [
    PACKAGING / "ssm" / "gd-doctor-run.json",
    *sorted((PACKAGING / "fleet").glob("*.json")),
    *sorted((PACKAGING / "fleet").glob("*.yaml")),
]


def run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def deb_files(deb: Path) -> dict[str, int]:
    """Path -> mode of every regular file and symlink in the .deb's data."""
    need_tool("dpkg-deb")
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data.stdout)) as tar:
        for m in tar.getmembers():
            if m.isfile() or m.issym():
                out["/" + m.name.lstrip("./")] = m.mode
    return out


def deb_field(deb: Path, field: str) -> str:
    return run("dpkg-deb", "-f", str(deb), field).strip()


def rpm_files(rpm: Path) -> dict[str, int]:
    need_tool("rpm")
    out = {}
    fmt = "[%{FILEMODES:octal} %{FILENAMES}\n]"
    for line in run("rpm", "-qp", "--qf", fmt, str(rpm)).splitlines():
        mode, name = line.split(" ", 1)
        m = int(mode, 8)
        if m & 0o170000 in (0o100000, 0o120000):  # regular file, symlink
            out[name] = m & 0o7777
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_same_files_in_deb_and_rpm(built: Path, arch: str) -> None:
    deb, rpm = deb_files(deb_path(arch)), rpm_files(rpm_path(arch))
    assert set(deb) - DEB_ONLY == set(rpm) - RPM_ONLY
    assert DEB_ONLY <= set(deb) and RPM_ONLY <= set(rpm)
    for name in set(deb) & set(rpm):
        assert deb[name] & 0o777 == rpm[name] & 0o777, name


@pytest.mark.parametrize("arch", ARCHES)
def test_layout(built: Path, arch: str) -> None:
    files = deb_files(deb_path(arch))
    names = set(files)
    for required in [
        "/usr/bin/gd-doctor",
        "/usr/lib/gd-doctor/gd-doctor.py",
        "/usr/lib/gd-doctor/gd_doctor/__init__.py",
        "/usr/lib/gd-doctor/gd_doctor/cli/__init__.py",
        "/usr/share/man/man1/gd-doctor.1.gz",
        "/usr/share/bash-completion/completions/gd-doctor",
        "/usr/share/doc/gd-doctor/changelog.gz",
        *(f"/usr/share/doc/gd-doctor/examples/{p.name}" for p in EXAMPLES),
    ]:
        assert required in names, required
    assert files["/usr/bin/gd-doctor"] & 0o777 == 0o755
    assert all(m & 0o111 == 0 for n, m in files.items() if n != "/usr/bin/gd-doctor")
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    top = {n.split("/")[5] for n in names if n.startswith("/usr/lib/gd-doctor/vendor/")}
    for pkg in ["typer", "click", "shellingham", "requests", "urllib3", "idna", "certifi",
                "charset_normalizer", "psutil", "annotated_doc"]:  # fmt: skip
        assert pkg in top, pkg
    assert not top & {"rich", "pygments", "markdown_it", "mdurl", "systemd", "bin"}
    # the package is copied whole: every module in the tree is there
    tree = {
        "/usr/lib/gd-doctor/" + str(p.relative_to(PACKAGING.parent))
        for p in (PACKAGING.parent / "gd_doctor").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert tree <= names


@pytest.mark.parametrize("arch", ARCHES)
def test_examples_are_the_fleet_definitions_as_in_the_tree(
    built: Path, arch: str, tmp_path: Path
) -> None:
    """The Run Command document and the fleet definitions ship unchanged, and nothing else."""
    run("dpkg-deb", "-x", str(deb_path(arch)), str(tmp_path))
    shipped = tmp_path / "usr/share/doc/gd-doctor/examples"
    assert sorted(p.name for p in shipped.iterdir()) == sorted(p.name for p in EXAMPLES)
    for src in EXAMPLES:
        assert (shipped / src.name).read_bytes() == src.read_bytes(), src.name


def test_sha256sums_names_the_four_packages(built: Path) -> None:
    """installFrom=https://<base>/ picks its package from SHA256SUMS and checks the hash."""
    lines = (built / "SHA256SUMS").read_text().splitlines()
    listed = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in lines}
    want = {deb_path(a).name for a in ARCHES} | {rpm_path(a).name for a in ARCHES}
    assert set(listed) == want
    for name, digest in listed.items():
        assert hashlib.sha256((built / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("arch", ARCHES)
def test_psutil_is_the_abi3_build_for_the_arch(built: Path, arch: str, tmp_path: Path) -> None:
    run("dpkg-deb", "-x", str(deb_path(arch)), str(tmp_path))
    so = list((tmp_path / "usr/lib/gd-doctor/vendor/psutil").glob("*.so"))
    assert [p.name for p in so] == ["_psutil_linux.abi3.so"]
    head = so[0].read_bytes()[:20]
    assert head[:4] == b"\x7fELF"
    assert int.from_bytes(head[18:20], "little") == ELF_MACHINE[arch]
    if arch == "x86_64":
        need_tool("readelf")
        assert ".symtab" not in run("readelf", "-S", str(so[0]))  # stripped


@pytest.mark.parametrize("arch", ARCHES)
def test_deb_metadata(built: Path, arch: str) -> None:
    deb = deb_path(arch)
    assert deb_field(deb, "Package") == "gd-doctor"
    assert deb_field(deb, "Version") == VERSION
    assert deb_field(deb, "Architecture") == DEB_ARCH[arch]
    assert deb_field(deb, "Depends") == "python3 (>= 3.9) | python3.9"
    assert deb_field(deb, "Recommends") == "python3-systemd"
    for f in ["Pre-Depends", "Suggests", "Conflicts", "Breaks", "Provides"]:
        assert deb_field(deb, f) == "", f


@pytest.mark.parametrize("arch", ARCHES)
def test_rpm_metadata(built: Path, arch: str) -> None:
    rpm = str(rpm_path(arch))
    need_tool("rpm")
    assert (
        run("rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{ARCH}", rpm)
        == f"gd-doctor {VERSION} {arch}"
    )
    requires = set(run("rpm", "-qpR", rpm).splitlines())
    # python(abi) is what every python3 >= 3.9 package provides; /bin/sh is for the scriptlets.
    assert {r for r in requires if not r.startswith("rpmlib(")} == {"python(abi) >= 3.9", "/bin/sh"}
    assert run("rpm", "-qp", "--recommends", rpm).split() == ["python3-systemd"]
    assert run("rpm", "-qp", "--suggests", rpm).strip() == ""
    provides = run("rpm", "-qp", "--provides", rpm).splitlines()
    assert f"gd-doctor = {VERSION}-1" in provides
    assert all(p.startswith("gd-doctor") for p in provides), provides  # nothing vendored leaks
    assert run("rpm", "-qp", "--qf", "%{PAYLOADCOMPRESSOR}", rpm) == "gzip"
    assert f"- {VERSION}-1" in run("rpm", "-qp", "--changelog", rpm)


@pytest.mark.parametrize("arch", ARCHES)
def test_man_page_and_changelog(built: Path, arch: str, tmp_path: Path) -> None:
    run("dpkg-deb", "-x", str(deb_path(arch)), str(tmp_path))
    man = gzip.decompress((tmp_path / "usr/share/man/man1/gd-doctor.1.gz").read_bytes()).decode()
    assert re.search(
        rf'^\.TH GD-DOCTOR 1 "\d{{4}}-\d\d-\d\d" "gd-doctor {re.escape(VERSION)}"', man
    )
    assert "@" not in man.replace("\\@", "")
    log = gzip.decompress((tmp_path / "usr/share/doc/gd-doctor/changelog.gz").read_bytes())
    assert log.decode().startswith(f"gd-doctor ({VERSION})")


@pytest.mark.parametrize("arch", ARCHES)
def test_lintian_clean(built: Path, arch: str) -> None:
    need_tool("lintian")
    p = subprocess.run(
        ["lintian", "--pedantic", "--fail-on", "error,warning,info,pedantic", str(deb_path(arch))],
        capture_output=True,
        text=True,
    )
    tags = [ln for ln in p.stdout.splitlines() if re.match(r"^[EWIPX]: ", ln)]
    assert p.returncode == 0 and not tags, p.stdout + p.stderr


def test_rpmlint_clean(built: Path) -> None:
    need_tool("rpmlint")
    p = subprocess.run(
        ["rpmlint", "-c", str(PACKAGING / "rpm/rpmlint.toml"), *map(str, map(rpm_path, ARCHES))],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0 and "0 errors, 0 warnings" in p.stdout, p.stdout + p.stderr
