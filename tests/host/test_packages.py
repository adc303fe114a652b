"""The package layer (gd_doctor/host/packages.py) over real databases.

* dpkg: the status files of the cached debootstrap roots (real Debian 11/12/13 databases) are
  compared package by package with this machine's ``dpkg-query --admindir``, also with a journal
  file in ``updates/`` that dpkg has not merged yet;
* rpm: a real SQLite rpm database is built in a temp dir (``rpmbuild`` a tiny package, ``rpm -i
  --justdb``) and read under ``--root``; strace proves the read opens nothing for writing;
* the Berkeley DB path asks this machine's rpm (real where rpm is installed, recorded otherwise).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gd_doctor.host.commands import CommandResult, SubprocessRunner
from gd_doctor.host.fs import RootFS
from gd_doctor.host.packages import PackageQuery
from gd_doctor.parsers.dpkg_status import DpkgDatabase, parse_dpkg_database
from gd_doctor.parsers.rpm import RPM_QUERY_FORMAT
from tests.harness.container import cache_dir
from tests.hostkit import FakeRunner, make_host, write_tree

AGENT = "amazon-guardduty-agent"
REAL_ROOTS = sorted(p for p in (cache_dir() / "roots").glob("*/var/lib/dpkg/status"))
HAVE_DPKG_QUERY = shutil.which("dpkg-query") is not None
HAVE_RPMBUILD = shutil.which("rpmbuild") is not None and shutil.which("rpm") is not None


def _dpkg_query(admindir: Path) -> Dict[str, Tuple[str, str]]:
    out = subprocess.run(
        [
            "dpkg-query",
            "--admindir",
            str(admindir),
            "-W",
            "-f",
            "${Package}|${db:Status-Abbrev}|${Version}\\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = (line.split("|") for line in out.splitlines())
    return {name: (abbrev.strip(), version) for name, abbrev, version in rows}


def _root_with_status(tmp_path: Path, status: Path) -> Path:
    root = tmp_path / "root"
    (root / "var/lib/dpkg/updates").mkdir(parents=True)
    shutil.copy(status, root / "var/lib/dpkg/status")
    return root


@pytest.mark.skipif(not REAL_ROOTS or not HAVE_DPKG_QUERY, reason="no cached roots or dpkg")
@pytest.mark.parametrize("status", REAL_ROOTS, ids=lambda p: p.parents[3].name)
def test_dpkg_matches_dpkg_query_on_real_status_files(tmp_path: Path, status: Path) -> None:
    root = _root_with_status(tmp_path, status)
    # a journal entry dpkg wrote during an interrupted configure (not merged into status yet)
    (root / "var/lib/dpkg/updates/0007").write_text(
        "Package: apt\nStatus: install ok half-configured\nVersion: 9.9\n"
        "Architecture: amd64\nMaintainer: x\n",
        encoding="utf-8",
    )
    expected = _dpkg_query(root / "var/lib/dpkg")
    assert expected["apt"] == ("iF", "9.9")
    q = PackageQuery(RootFS(root), FakeRunner(), live=False)
    for name, (abbrev, version) in expected.items():
        info = q.dpkg(name)
        if abbrev.startswith(("ii", "iF", "iU", "iH", "hi")):
            assert (info.installed, info.dpkg_state, info.version) == (True, abbrev, version), name
        assert info.broken == (abbrev[1] in "FUH" or abbrev.endswith("R")), name
    assert q.dpkg("apt").broken and q.dpkg("no-such-package").installed is False


_TRICKY_STATUS = (
    "Package: bash-completion\r\nStatus: install ok installed\r\nVersion: 2.11\r\n\r\n"
    "Description: mentions bash and amazon-guardduty-agent\nPackage: bash\n"
    "Status: install ok installed\nVersion: 5.2\n \t\n"
    "Package: amazon-guardduty-agent\nStatus: purge ok not-installed\nArchitecture: i386\n\n"
    "Package:   amazon-guardduty-agent  \nStatus: install ok half-configured\nVersion: 1.9\n\n"
    "Package: amazon-guardduty-agent\nStatus: install ok installed\nVersion: 2.0\n\n\n\n"
    "Status: install ok installed\nVersion: 0\n"
)


@pytest.mark.parametrize(
    "status", [*REAL_ROOTS, None], ids=lambda p: p.parents[3].name if p else "tricky"
)
def test_lookup_by_name_equals_the_whole_parse(status: Optional[Path]) -> None:
    # the run parses only the stanzas of the packages it asks about; every answer must be the
    # one the parse of the whole file gives (broken beats installed beats the rest, first wins)
    text = status.read_text(encoding="utf-8") if status else _TRICKY_STATUS
    whole = parse_dpkg_database(text)
    db = DpkgDatabase(text)
    assert whole and all(db.get(name) == pkg for name, pkg in whole.items())
    assert db.get("no-such-package") is None and db.get("") is None
    if status is None:
        assert whole["amazon-guardduty-agent"].abbrev == "iF"  # the broken stanza speaks
        assert (db.get("bash").version, db.get("bash-completion").version) == ("5.2", "2.11")


def test_the_status_file_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = make_host(
        tmp_path,
        files={
            "/var/lib/dpkg/status": (
                "Package: amazon-guardduty-agent\nStatus: install ok installed\nVersion: 1.9.2\n"
            )
        },
        live=False,
    )
    reads: List[str] = []
    original = RootFS.read

    def counting(self: RootFS, abs_path: str, max_bytes: int = 0) -> object:
        reads.append(abs_path)
        return original(self, abs_path, max_bytes)

    monkeypatch.setattr(RootFS, "read", counting)
    for name in (AGENT, "amazon-ssm-agent", AGENT):
        host.packages.query(name)
    assert reads.count("/var/lib/dpkg/status") == 1
    assert host.packages.query(AGENT).version == "1.9.2"


def test_unreadable_or_oversized_status_is_unknown_never_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a/var/lib/dpkg/status").mkdir(parents=True)  # a directory where a file goes
    info = PackageQuery(RootFS(tmp_path / "a"), FakeRunner(), live=False).query(AGENT)
    assert (info.installed, info.manager) == (None, "dpkg")
    assert info.problem == "cannot read /var/lib/dpkg/status: not a regular file"
    monkeypatch.setattr("gd_doctor.host.packages.MAX_DPKG_BYTES", 10)
    write_tree(
        tmp_path / "b", {"/var/lib/dpkg/status": "Package: x\nStatus: install ok installed\n"}
    )
    big = PackageQuery(RootFS(tmp_path / "b"), FakeRunner(), live=False).query(AGENT)
    assert big.installed is None and "larger than" in (big.problem or "")


def test_no_database_at_all_is_unknown(tmp_path: Path) -> None:
    """Bottlerocket or an empty capture: no dpkg and no rpm database proves nothing."""
    info = PackageQuery(RootFS(tmp_path), FakeRunner(), live=False).query(AGENT)
    assert info.installed is None and info.problem == "no dpkg or rpm database found"


# --- rpm ---------------------------------------------------------------------------------------

SPEC = """Name: {name}
Version: {version}
Release: {release}
Summary: gd-doctor test package
License: MIT
BuildArch: noarch
%description
A package with no files, for the package layer's tests.
%files
"""


def _rpm_root(tmp_path: Path, packages: List[Tuple[str, str, str]]) -> Path:
    """A root whose /var/lib/rpm is a real rpm 4.16+ SQLite database holding ``packages``."""
    build = tmp_path / "build"
    rpms = []
    for name, version, release in packages:
        spec = build / f"{name}.spec"
        build.mkdir(exist_ok=True)
        spec.write_text(SPEC.format(name=name, version=version, release=release), "utf-8")
        subprocess.run(
            [
                "rpmbuild",
                "-bb",
                "--define",
                f"_topdir {build}/top",
                "--define",
                f"_rpmdir {build}/out",
                str(spec),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
        rpms += [str(p) for p in (build / "out").rglob(f"{name}-{version}-*.rpm")]
    db = tmp_path / "root/var/lib/rpm"
    db.mkdir(parents=True)
    subprocess.run(["rpm", "--initdb", "--dbpath", str(db)], timeout=60, check=True)
    subprocess.run(
        ["rpm", "-i", "--justdb", "--nodeps", "--dbpath", str(db), *rpms],
        capture_output=True,
        timeout=120,
        check=True,
    )
    for leftover in ("rpmdb.sqlite-wal", "rpmdb.sqlite-shm"):
        (db / leftover).unlink(missing_ok=True)  # as after a clean close on a real host
    return tmp_path / "root"


def _snapshot(directory: Path) -> Dict[str, Tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}


@pytest.mark.skipif(not HAVE_RPMBUILD, reason="rpm and rpmbuild are not installed")
def test_rpm_sqlite_database_under_root_is_read_without_writing(tmp_path: Path) -> None:
    root = _rpm_root(tmp_path, [(AGENT, "1.9.2", "1"), ("amazon-ssm-agent", "3.3.1142.0", "1")])
    db = root / "var/lib/rpm"
    before = _snapshot(db)
    q = PackageQuery(RootFS(root), FakeRunner(), live=False, tools=None)  # no rpm needed
    agent = q.query(AGENT)
    assert (agent.installed, agent.manager, agent.version, agent.release) == (
        True,
        "rpm",
        "1.9.2",
        "1",
    )
    assert q.rpm("amazon-ssm-agent").full_version == "3.3.1142.0-1"
    assert q.rpm("not-there").installed is False
    assert _snapshot(db) == before  # no -wal, no -shm, no lock file touched


@pytest.mark.skipif(
    not HAVE_RPMBUILD or shutil.which("strace") is None, reason="needs rpm, rpmbuild, strace"
)
def test_strace_sees_no_open_for_writing_in_the_rpm_database(tmp_path: Path) -> None:
    root = _rpm_root(tmp_path, [(AGENT, "1.9.2", "1")])
    script = (
        "import sys; from pathlib import Path; from gd_doctor.host.fs import RootFS; "
        "from gd_doctor.host.packages import PackageQuery; "
        "from gd_doctor.host.commands import UnavailableRunner; "
        "q = PackageQuery(RootFS(Path(sys.argv[1])), UnavailableRunner('root'), live=False); "
        f"print(q.rpm({AGENT!r}).installed)"
    )
    trace = tmp_path / "trace"
    out = subprocess.run(
        [
            "strace",
            "-f",
            "-e",
            "trace=open,openat,creat,mkdir,unlink,unlinkat,rename",
            "-o",
            str(trace),
            sys.executable,
            "-c",
            script,
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "True", out.stderr
    db_lines = [line for line in trace.read_text().splitlines() if "var/lib/rpm" in line]
    assert db_lines, "the trace should show the database being opened"
    writes = [
        line
        for line in db_lines
        if any(flag in line for flag in ("O_WRONLY", "O_RDWR", "O_CREAT", "unlink", "mkdir"))
    ]
    assert writes == []


@pytest.mark.skipif(not HAVE_RPMBUILD, reason="rpm and rpmbuild are not installed")
def test_a_non_empty_write_ahead_log_makes_the_answer_unknown(tmp_path: Path) -> None:
    root = _rpm_root(tmp_path, [(AGENT, "1.9.2", "1")])
    (root / "var/lib/rpm/rpmdb.sqlite-wal").write_bytes(b"\x37\x7f\x06\x82" + b"\0" * 28)
    info = PackageQuery(RootFS(root), FakeRunner(), live=False).rpm(AGENT)
    assert info.installed is None and "rpmdb.sqlite-wal" in (info.problem or "")


def _bdb_root(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "root", {"/var/lib/rpm/Packages": b"\0" * 4096})


def test_berkeley_db_under_root_asks_this_machines_rpm_read_only(tmp_path: Path) -> None:
    root = _bdb_root(tmp_path)
    argv = (
        "rpm",
        "--define",
        "_db_backend bdb_ro",
        "--dbpath",
        f"{root}/var/lib/rpm",
        "-q",
        "--qf",
        RPM_QUERY_FORMAT,
        AGENT,
    )
    tools = FakeRunner(
        {
            ("rpm", "--version"): "RPM version 4.18.0\n",
            argv: f"{AGENT}|1.9.2|1|x86_64\n",
        }
    )
    info = PackageQuery(RootFS(root), FakeRunner(), live=False, tools=tools).query(AGENT)
    assert (info.installed, info.version, info.manager) == (True, "1.9.2", "rpm")


def test_berkeley_db_without_rpm_here_says_install_rpm(tmp_path: Path) -> None:
    root = _bdb_root(tmp_path)
    missing = FakeRunner({("rpm", "--version"): CommandResult((), None, problem="not found")})
    info = PackageQuery(RootFS(root), FakeRunner(), live=False, tools=missing).rpm(AGENT)
    assert info.installed is None
    assert info.problem == (
        "unknown: install rpm on the machine gd-doctor runs on to read the rpm database in "
        "/var/lib/rpm"
    )


@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm is not installed")
def test_a_broken_berkeley_db_read_by_real_rpm_is_unknown(tmp_path: Path) -> None:
    root = _bdb_root(tmp_path)
    before = _snapshot(root / "var/lib/rpm")
    q = PackageQuery(RootFS(root), FakeRunner(), live=False, tools=SubprocessRunner())
    info = q.rpm(AGENT)
    assert info.installed is None and "rpm could not read the database" in (info.problem or "")
    assert _snapshot(root / "var/lib/rpm") == before


# --- snap ----------------------------------------------------------------------------------------

STATE = (
    '{"data": {"snaps": {"amazon-ssm-agent": {"type": "app", "sequence": [{"name": '
    '"amazon-ssm-agent", "snap-id": "x", "revision": "9881"}], "active": true, '
    '"current": "9881"}}}, "changes": {}}'
)


def test_snap_from_snapd_state_and_snap_yaml(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "root",
        {
            "/var/lib/snapd/state.json": STATE,
            "/snap/amazon-ssm-agent/9881/meta/snap.yaml": "name: amazon-ssm-agent\nversion: '3.3.1142.0'\n",
        },
    )
    os.symlink("9881", root / "snap/amazon-ssm-agent/current")
    q = PackageQuery(RootFS(root), FakeRunner(), live=False)
    ssm = q.snap("amazon-ssm-agent")
    assert (ssm.installed, ssm.version, ssm.release) == (True, "3.3.1142.0", "9881")
    assert q.snap(AGENT).installed is False
    assert q.query("amazon-ssm-agent", ("dpkg", "rpm", "snap")).manager == "snap"


def test_snap_live_falls_back_to_snap_list_when_state_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "var/lib/snapd/state.json").mkdir(parents=True)
    run = FakeRunner(
        {
            ("snap", "list", "amazon-ssm-agent"): (
                "Name              Version     Rev   Tracking       Publisher  Notes\n"
                "amazon-ssm-agent  3.3.1142.0  9881  latest/stable  aws✓       classic\n"
            )
        }
    )
    info = PackageQuery(RootFS(tmp_path), run, live=True).snap("amazon-ssm-agent")
    assert (info.installed, info.version, info.source) == (True, "3.3.1142.0", "snap list")
    offline = PackageQuery(RootFS(tmp_path), FakeRunner(), live=False).snap("amazon-ssm-agent")
    assert offline.installed is None and "state.json" in (offline.problem or "")


def test_live_berkeley_db_uses_the_read_only_backend_when_rpm_has_it(tmp_path: Path) -> None:
    root = _bdb_root(tmp_path)
    query = ("-q", "--qf", RPM_QUERY_FORMAT, AGENT)
    new = FakeRunner(
        {
            ("rpm", "--version"): "RPM version 4.16.1.3\n",
            (
                "rpm",
                "--define",
                "_db_backend bdb_ro",
                *query,
            ): f"package {AGENT} is not installed\n",
        }
    )
    info = PackageQuery(RootFS(root), new, live=True).query(AGENT)
    assert (info.installed, info.manager, info.consulted) == (False, "rpm", ("rpm",))
    # Amazon Linux 2's rpm 4.11 has no bdb_ro: plain rpm -q (documented in the module)
    old = FakeRunner(
        {
            ("rpm", "--version"): "RPM version 4.11.3\n",
            ("rpm", *query): f"{AGENT}|1.9.2|1.amzn2|x86_64\n",
        }
    )
    assert PackageQuery(RootFS(root), old, live=True).rpm(AGENT).full_version == "1.9.2-1.amzn2"
    # under --root that old rpm is not trusted with the root's database
    offline = PackageQuery(RootFS(root), FakeRunner(), live=False, tools=old).rpm(AGENT)
    assert offline.installed is None and "4.16 or later" in (offline.problem or "")


# Lines a status file may hold, the separators' edge cases among them: blank lines of spaces
# and tabs, runs of them, \r\n endings, a lone \r, a form feed (a line break for splitlines,
# not for dpkg), names inside other names and other fields.
_LINES = st.sampled_from(
    [
        "Package: a",
        "Package:  a ",
        "Package: ab",
        "Package: b",
        "Status: install ok installed",
        "Status: install ok half-configured",
        "Status: deinstall ok config-files",
        "Version: 1.0",
        "Version: 2.0",
        "Depends: a, b (>= 1)",
        "Description: a package named a",
        "",
        " ",
        "\t ",
        "\r",
        "\x0cPackage: a",
        " continuation a",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINES, max_size=30), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_lookup_by_name_equals_splitting_the_whole_file(
    lines: List[str], newline: str, final: bool
) -> None:
    text = newline.join(lines) + (newline if final else "")
    whole = parse_dpkg_database(text)
    db = DpkgDatabase(text)
    for name in ("a", "ab", "b", "install", ""):
        assert db.get(name) == whole.get(name)
